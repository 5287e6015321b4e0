"""Domain packs and the build config: strict validation with one-line errors naming the key."""

import json
import subprocess
import sys

import pytest
import yaml

from buildbench.config import DOMAINS_DIR, load_domain_pack, make_config
from buildbench.errors import ConfigError


def test_finance_pack_is_complete():
    pack = load_domain_pack("finance")
    assert len(pack.personas) >= 12
    assert {s.id for s in pack.query_styles} == {"keyword", "question", "long_form"}
    assert len(pack.few_shot) >= 12 and pack.tasks and pack.sources.sample


def write_pack(tmp_path, **changes):
    raw = yaml.safe_load((DOMAINS_DIR / "finance.yaml").read_text())
    raw.update(changes)
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_top_level_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'shiny_new_option'"):
        load_domain_pack(str(write_pack(tmp_path, shiny_new_option=True)))


def test_unknown_nested_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'generator.temprature'"):
        load_domain_pack(str(write_pack(tmp_path, generator={"temprature": 0.2})))


def test_few_shot_must_name_known_personas(tmp_path):
    raw = yaml.safe_load((DOMAINS_DIR / "finance.yaml").read_text())
    raw["few_shot"][0]["persona"] = "astronaut"
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="'astronaut' is not a persona id"):
        load_domain_pack(str(path))


def test_unknown_domain_lists_bundled_ones():
    with pytest.raises(ConfigError, match="unknown domain 'space'.*finance"):
        load_domain_pack("space")


def test_cli_overrides_and_stage_hash():
    a = make_config("finance", out="o", seed=1)
    b = make_config("finance", out="elsewhere", seed=1)
    c = make_config("finance", out="o", seed=2)
    assert a.config_hash() == b.config_hash() != c.config_hash()  # out is not part of what is built
    assert a.stage_hash(["domain.chunking"]) == c.stage_hash(["domain.chunking"])
    assert a.stage_hash(["seed"]) != c.stage_hash(["seed"])
    with pytest.raises(ConfigError, match="queries_per_chunk"):
        make_config("finance", out="o", queries_per_chunk=0)


def test_cli_bad_pack_is_one_line_and_non_zero(tmp_path):
    path = write_pack(tmp_path, shiny_new_option=True)
    proc = subprocess.run([sys.executable, "-m", "buildbench.cli", "--domain", str(path), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"build-bench: error: {path}: unknown key 'shiny_new_option'"]


def test_help_documents_every_option():
    proc = subprocess.run([sys.executable, "-m", "buildbench.cli", "--help"], capture_output=True, text=True)
    for opt in ("--domain", "--docs", "--out", "--max-docs", "--queries-per-chunk", "--seed", "--model", "--until"):
        assert opt in proc.stdout


# ------------------------------------------------------------------------ bad numbers and hostile packs


def cli_errors(capsys, *args) -> tuple[int, list[str]]:
    """Exit code and the CLI's stderr lines; never a traceback. --until ingest: a refusal must come before it."""
    from buildbench.cli import main

    code = main(["--domain", "finance", "--no-progress", "--until", "ingest", *map(str, args)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.strip()]


def test_finding_08_corpus_size_negative(tmp_path, capsys):
    """`--corpus-size -3` failed after 74 s of work with a traceback; it is refused before any stage runs."""
    with pytest.raises(ConfigError, match=r"--corpus-size.*at least 1 \(got -3\)"):
        make_config("finance", out=str(tmp_path / "o"), pack_overrides={"downsample.corpus_size": -3})
    code, err = cli_errors(capsys, "--corpus-size", -3, "--out", tmp_path / "run")
    assert code == 2
    assert err == ["build-bench: error: options: --corpus-size (downsample.corpus_size): must be at least 1 "
                   "(got -3)"]
    assert not (tmp_path / "run").exists()  # nothing was read or written
    with pytest.raises(ConfigError, match=r"downsample\.corpus_size: must be at least 1 \(got 0\)"):
        load_domain_pack(str(write_pack(tmp_path, downsample={"corpus_size": 0})))


def test_finding_09_max_docs_and_max_queries_zero(tmp_path, capsys):
    """`--max-docs 0` ended as "no readable documents" and `--max-queries 0` spent LLM calls first; both are
    refused up front with the option's name and the reason."""
    for option, key in (("--max-docs", "max_docs"), ("--max-queries", "max_queries")):
        with pytest.raises(ConfigError, match=rf"{option} \({key}\): must be at least 1 \(got 0\)"):
            make_config("finance", out=str(tmp_path / "o"), **{key: 0})
        code, err = cli_errors(capsys, option, 0, "--out", tmp_path / "run")
        assert code == 2
        assert err == [f"build-bench: error: options: {option} ({key}): must be at least 1 (got 0)"]
    assert not (tmp_path / "run").exists()
    # Unset means "no cap", and 1 is a valid cap.
    assert make_config("finance", out="o", max_docs=1, max_queries=1).max_queries == 1


def test_llm_numbers_are_checked(tmp_path):
    for key, value, reason in (("concurrency", 0, "at least 1"), ("max_retries", -1, "at least 0"),
                               ("timeout", 0, "more than 0"), ("max_tokens", 0, "at least 1")):
        with pytest.raises(ConfigError, match=rf"generator\.{key}: must be {reason}"):
            load_domain_pack(str(write_pack(tmp_path, generator={key: value})))
    with pytest.raises(ConfigError, match=r"--base-url \(generator\.base_url\): must be an http:// or https://"):
        make_config("finance", out="o", generator={"base_url": "localhost:8080/v1"})


def deep_yaml(depth: int, flow: bool) -> str:
    if flow:
        return "description: " + "[" * depth + "x" + "]" * depth + "\n"
    return "description:\n  " + "- " * depth + "x\n"  # block sequences, each nested in the one before


@pytest.mark.parametrize("flow", [True, False], ids=["flow", "block"])
def test_finding_08_deep_yaml_domain_pack(tmp_path, capsys, flow):
    """A pack nested 3,000+ deep gave a RecursionError traceback; now one ConfigError line, before parsing."""
    path = tmp_path / "deep.yaml"
    path.write_text(deep_yaml(3200, flow))
    with pytest.raises(ConfigError) as exc:
        load_domain_pack(str(path))
    assert str(exc.value) == f"{path}: nested deeper than 50 levels (a domain pack needs a few)"
    code, err = cli_errors(capsys, "--domain", path, "--out", tmp_path / "run")
    assert code == 2 and err == [f"build-bench: error: {path}: nested deeper than 50 levels (a domain pack needs a few)"]


def test_yaml_alias_bomb_is_refused(tmp_path):
    """Aliases can make a small file expand to billions of nodes; the expanded size is bounded too."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"expands to more than 1000000 values through aliases"):
        load_domain_pack(str(path))
    # A pack that uses anchors modestly still loads.
    raw = yaml.safe_load((DOMAINS_DIR / "finance.yaml").read_text())
    raw["judge"] = raw["negative_writer"] = {"model": "smollm2-135m-instruct", "max_tokens": 32}
    text = yaml.safe_dump(raw)
    assert "&id001" in text and "*id001" in text
    path.write_text(text)
    pack = load_domain_pack(str(path))
    assert pack.judge.model == pack.negative_writer.model == "smollm2-135m-instruct"


def test_finding_14_credentials_redacted():
    from buildbench.redact import redact_secrets, redact_text, redact_url

    assert redact_url("http://user:password@127.0.0.1:8080/v1") == "http://***@127.0.0.1:8080/v1"
    assert redact_url("https://token@api.example.com/v1") == "https://***@api.example.com/v1"
    assert (redact_url("https://api.example.com/v1?api_key=abc&api-version=2024-06&sig=zz&token=t")
            == "https://api.example.com/v1?api_key=***&api-version=2024-06&sig=***&token=***")
    assert redact_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"
    assert redact_url("data/documents") == "data/documents" and redact_url("hf://datasets/a/b") == "hf://datasets/a/b"
    assert (redact_text("proxy error: could not reach 'http://u:pw@10.0.0.1/v1?token=t' (refused)")
            == "proxy error: could not reach 'http://***@10.0.0.1/v1?token=***' (refused)")
    cfg = make_config("finance", out="o", generator={"base_url": "http://user:password@127.0.0.1:8080/v1"})
    dumped = json.dumps(redact_secrets(cfg.model_dump(mode="json")))
    assert "password" not in dumped and "http://***@127.0.0.1:8080/v1" in dumped
    assert cfg.domain.generator.base_url == "http://user:password@127.0.0.1:8080/v1"  # calls use the real URL


def test_several_base_urls():
    """`generator.base_url` takes one address (a string, as ever, so a single server's hashes do not move),
    several (a list, or commas between them), each with its own credentials, redacted wherever written."""
    from buildbench.redact import redact_secrets

    a = "http://user:pw-one@127.0.0.1:8080/v1"
    b = "https://api.example.com/v1?api_key=k3y-two"
    single = make_config("finance", out="o", generator={"base_url": a})
    assert single.domain.generator.base_url == a and single.domain.generator.base_urls == [a]
    assert make_config("finance", out="o", generator={"base_url": [a]}).config_hash() == single.config_hash()
    assert json.loads(single.model_dump_json())["domain"]["generator"]["base_url"] == a  # not a list of one
    assert make_config("finance", out="o").domain.generator.base_urls == []
    for value in ([a, b], f"{a},{b}", f" {a} , {b} ", [f"{a},{b}"]):
        cfg = make_config("finance", out="o", generator={"base_url": value})
        assert cfg.domain.generator.base_url == [a, b] and cfg.domain.generator.base_urls == [a, b]
    dumped = json.dumps(redact_secrets(cfg.model_dump(mode="json")))
    assert '"base_url": ["http://***@127.0.0.1:8080/v1", "https://api.example.com/v1?api_key=***"]' in dumped
    assert "pw-one" not in dumped and "k3y-two" not in dumped
    assert cfg.config_hash() != single.config_hash()
    # A comma inside an address (here in a password) does not split it.
    assert make_config("finance", out="o", generator={"base_url": "http://u:p,w@h/v1"}).domain.generator.base_url \
        == "http://u:p,w@h/v1"


def test_several_base_urls_in_a_pack(tmp_path):
    urls = ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]
    assert load_domain_pack(str(write_pack(tmp_path, generator={"base_url": urls}))).generator.base_urls == urls
    judge = {"backend": "openai", "base_url": ",".join(urls), "model": "judge"}
    assert load_domain_pack(str(write_pack(tmp_path, judge=judge))).judge.base_url == urls


@pytest.mark.parametrize("value, message", [
    (["http://u:pw-1@h:1/v1", "http://h:1/v1/"], "lists the same server twice ('http://***@h:1/v1' and 'http://h:1/v1/')"),
    ("http://h:1/v1,u:pw-1@h:2/v1", "separate several addresses with commas, each starting with http:// or https:// "
                                    "(got 'http://h:1/v1,...')"),
    (["http://h:1/v1", "u:pw-1@h:2/v1"], "must be an http:// or https:// address such as http://127.0.0.1:8080/v1 "
                                         "(got '***@h:2/v1')"),
    (["http://h:1/v1", 8080], "must be an address or a list of addresses (got int)"),
])
def test_bad_base_urls_are_named_without_credentials(value, message):
    with pytest.raises(ConfigError) as err:
        make_config("finance", out="o", generator={"base_url": value})
    assert str(err.value) == f"options: --base-url (generator.base_url): {message}"
    assert "pw-1" not in str(err.value)
