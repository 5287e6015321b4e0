"""The command line's shape: one parser with a subcommand per command, `build` the default, `--help` at every
level, usage errors exit 2, and errors, Ctrl-C and system errors each end as one clean line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from buildbench.cli import main, make_parser
from buildbench.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
DOC = "The committee decided to keep the target range for the federal funds rate at 5-1/4 to 5-1/2 percent.\n"

# Each command with options its --help must document.
COMMANDS = {
    "build": ["--domain", "--docs", "--out", "--max-docs", "--queries-per-chunk", "--max-queries", "--seed",
              "--generator", "--model", "--base-url", "--corpus-size", "--judge", "--until", "--no-progress",
              "--verbose"],
    "stages": [],
    "eval": ["task_dir", "--models", "--k", "--bootstrap", "--seed", "--via-mteb", "--cache-dir", "--overwrite",
             "--json", "--out"],
    "compare": ["synth_task", "reference", "--models", "--k", "--bootstrap", "--seed", "--via-mteb", "--cache-dir",
                "--overwrite", "--out"],
    "export": ["RUN_DIR", "--format", "--split", "--out", "--negatives", "--test-task", "--registry",
               "--near-dup-threshold", "--no-leakage-guard"],
    "publish": ["task_dir", "--to", "--registry", "--version", "--bump", "--message"],
    "validate": ["task_dir", "--registry", "--json"],
    "submit": ["task_dir", "--to", "--registry"],
    "review": ["REPO", "--pr", "--registry", "--version", "--bump"],
    "list": ["--registry"],
    "label": ["RUN_DIR", "--reviewer", "--sample", "--seed", "--host", "--port", "--no-browser", "--import",
              "--format"],
}


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buildbench.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env=ENV, timeout=300, **kwargs)


def usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: build-bench") and "Traceback" not in err
    return err


def test_help_lists_every_command_and_the_build_options():
    proc = cli("--help")
    assert proc.returncode == 0
    commands = proc.stdout.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    listed = [line.split()[0] for line in commands.splitlines() if len(line) - len(line.lstrip()) == 4]
    assert listed == list(COMMANDS)
    for name in COMMANDS:  # each with its one-line summary
        assert len(next(line for line in commands.splitlines() if line.split()[:1] == [name]).split()) > 3
    build_options = proc.stdout.split("\nbuild options", 1)[1]
    assert "build-bench build --help" in build_options.splitlines()[0]
    for option in COMMANDS["build"]:
        assert option in build_options


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_documents_its_options(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: build-bench {command} ")
    description = out.split("\n\n", 2)[1]
    assert len(description.split()) >= 8  # a sentence, not just the name
    for option in COMMANDS[command]:
        assert option in out, f"{command} --help does not mention {option}"


def test_build_is_the_default_command(tmp_path, capsys):
    parser = make_parser()
    assert parser.parse_args(["build", "--domain", "finance"]).func.__name__ == "run_build"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(DOC * 3)
    (docs / "b.txt").write_text("Inflation remained elevated, reflecting supply and demand imbalances.\n" * 3)
    options = ["--domain", "finance", "--docs", str(docs), "--until", "ingest", "--no-progress"]
    assert main([*options, "--out", str(tmp_path / "implicit")]) == 0
    implicit = capsys.readouterr().out
    assert main(["build", *options, "--out", str(tmp_path / "explicit")]) == 0
    explicit = capsys.readouterr().out
    for out in (implicit, explicit):
        assert "Run directory:" in out and "ingest" in out
    tables = [pq.read_table(tmp_path / run / "data" / "documents").sort_by("id") for run in ("implicit", "explicit")]
    assert tables[0].num_rows == 2 and tables[0].column("text").to_pylist() == tables[1].column("text").to_pylist()
    # No arguments at all is build without its required --domain: a usage error, not a crash.
    assert "--domain" in usage_error(capsys, [])


def test_unknown_command_and_option_are_usage_errors(capsys):
    err = usage_error(capsys, ["frobnicate", "x"])
    assert "invalid choice: 'frobnicate'" in err and "'publish'" in err
    assert "unrecognized arguments: --frob" in usage_error(capsys, ["--domain", "finance", "--frob"])
    assert "unrecognized arguments: --frob" in usage_error(capsys, ["eval", "some/task", "--frob"])
    assert "--to" in usage_error(capsys, ["publish", "some/task"])
    assert "not allowed with argument" in usage_error(capsys, ["review", "file://h/o/n", "--pr", "1", "--version",
                                                               "1.0.0", "--bump", "minor"])
    assert "invalid int value" in usage_error(capsys, ["eval", "some/task", "--k", "ten"])


def test_error_is_one_clean_line(tmp_path, capsys):
    """An error quoting text from the command line or a file (here a domain name) reaches the terminal without
    escape sequences, bidi controls or line breaks."""
    name = "evil\x1b[31mred\x1b]0;title\x07\nsecond line\u202e"
    code = main(["--domain", name, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code
    assert err.count("\n") == 1 and err.startswith("build-bench: error: unknown domain 'evilred")
    assert "second line" in err
    assert not any(ch in err for ch in "\x1b\x07\u202e")
    assert not (tmp_path / "run").exists()


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    """Ctrl-C while the build waits on an LLM server that never answers: exit 130 and how to resume."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(DOC * 4)
    connected = threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        held = []

        def accept() -> None:  # accept connections, never answer
            try:
                while True:
                    held.append(server.accept()[0])
                    connected.set()
            except OSError:
                pass

        threading.Thread(target=accept, daemon=True).start()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        proc = subprocess.Popen([sys.executable, "-m", "buildbench.cli", "--domain", "finance", "--docs", str(docs),
                                 "--out", str(tmp_path / "run"), "--base-url", url, "--no-progress",
                                 "--until", "generate_queries"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=REPO, env=ENV)
        try:
            assert connected.wait(240), "the build never called the LLM server"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
            for conn in held:
                conn.close()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("build-bench:")] == [
        "build-bench: interrupted; rerun the same command to resume"]


def test_unknown_until_stage_is_one_line_before_any_write(tmp_path, capsys):
    code = main(["--domain", "finance", "--until", "nosuchstage", "--out", str(tmp_path / "run")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("build-bench:")]
    assert code == ConfigError.exit_code and len(err) == 1
    assert err[0].startswith("build-bench: error: unknown stage 'nosuchstage' (stages: ingest, ")
    assert not (tmp_path / "run").exists()


def test_readme_lists_the_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("| command | what it does |", 1)[1].split("\n\n", 1)[0]
    assert [row.split("`")[1].split()[0] for row in table.splitlines() if row.startswith("| `")] == list(COMMANDS)


def test_base_url_repeats_and_takes_commas():
    from buildbench.config import make_config

    a, b, c = "http://u:pw@127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1", "http://127.0.0.1:8003/v1"
    def parse(*args: str):
        return make_parser().parse_args(["build", "--domain", "finance", *args]).base_url

    assert parse() is None
    one = parse("--base-url", a)
    assert make_config("finance", out="o", generator={"base_url": one}).domain.generator.base_url == a  # as before
    several = parse("--base-url", a, "--base-url", f"{b},{c}")
    assert several == [a, f"{b},{c}"]
    assert make_config("finance", out="o", generator={"base_url": several}).domain.generator.base_urls == [a, b, c]
