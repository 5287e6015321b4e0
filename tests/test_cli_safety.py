"""The command line never destroys user data: --out, --docs and eval/compare --out against folders and files
build-bench did not write; errors on the run folder are one line."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest

from buildbench.cli import main
from buildbench.tasks import write_retrieval_task
from buildbench.tasks import TaskInfo

REPO = Path(__file__).resolve().parents[1]
MARKER = ".buildbench-run"
DOC = "The committee decided to keep the target range for the federal funds rate at 5-1/4 to 5-1/2 percent.\n"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def error_lines(err: str) -> list[str]:
    """The CLI's own error lines (log lines may precede them on stderr); never a traceback."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("build-bench:")]


def build(capsys, *args) -> tuple[int, list[str]]:
    code = main(["--domain", "finance", "--no-progress", "--until", "ingest", *map(str, args)])
    return code, error_lines(capsys.readouterr().err)


def test_finding_01_out_over_a_project_keeps_its_files(tmp_path, capsys):
    """The issue's case: --docs proj/data/documents --out proj deleted the corpus and overwrote manifest.json."""
    proj = tmp_path / "proj"
    (proj / "data" / "documents").mkdir(parents=True)
    (proj / "data" / "documents" / "thesis.txt").write_text(DOC * 20)
    (proj / "manifest.json").write_text('{"project": "thesis", "chapters": 7}\n')
    before = snapshot(proj)
    code, err = build(capsys, "--docs", proj / "data" / "documents", "--out", proj)
    assert code != 0
    assert len(err) == 1 and err[0].startswith("build-bench: error:") and str(proj) in err[0]
    assert "not a build-bench run folder" in err[0]
    assert snapshot(proj) == before and not (proj / MARKER).exists()


def test_finding_01_docs_inside_a_run_folder_are_refused(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(DOC * 3)
    run = tmp_path / "run"
    code, err = build(capsys, "--docs", docs, "--out", run)
    assert code == 0 and (run / MARKER).is_file()
    # A marked run folder: documents copied into its data/ area would be deleted by the next build.
    kept = run / "data" / "documents" / "mine.txt"
    kept.write_text(DOC)
    before = snapshot(run)
    for spec in (run / "data" / "documents", run):
        code, err = build(capsys, "--docs", spec, "--out", run)
        assert code != 0 and len(err) == 1 and "--docs" in err[0] and str(spec) in err[0]
        assert snapshot(run) == before
    # And the rerun with proper inputs resumes.
    code, _ = build(capsys, "--docs", docs, "--out", run)
    assert code == 0


def test_finding_08_out_that_is_a_file_is_one_line(tmp_path, capsys):
    docs = tmp_path / "a.txt"
    docs.write_text(DOC)
    target = tmp_path / "out"
    target.write_text("my notes")
    code, err = build(capsys, "--docs", docs, "--out", target)
    assert code != 0 and len(err) == 1 and "is a file" in err[0] and str(target) in err[0]
    assert target.read_text() == "my notes"


def _as_nobody() -> list[str]:
    """Run a command as an unprivileged user: root writes into read-only folders regardless."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be tested")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_finding_08_read_only_out_is_one_line():
    # Under /tmp rather than tmp_path: pytest's own folders are private to root and the unprivileged user
    # must reach the documents.
    base = Path(tempfile.mkdtemp(prefix="bb-readonly-"))
    try:
        base.chmod(0o755)
        (base / "a.txt").write_text(DOC * 3)
        (base / "a.txt").chmod(0o644)
        for name in ("ro", "ro_parent/run"):
            out = base / name
            out.parent.mkdir(exist_ok=True)
            if name == "ro":
                out.mkdir()
            out.parent.chmod(0o555) if name != "ro" else out.chmod(0o555)
            env = {**os.environ, "HOME": str(base), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                   "TRANSFORMERS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
            proc = subprocess.run([*_as_nobody(), sys.executable, "-m", "buildbench.cli", "--domain", "finance",
                                   "--docs", str(base / "a.txt"), "--out", str(out), "--until", "ingest",
                                   "--no-progress"], capture_output=True, text=True, cwd=str(base), env=env,
                                  timeout=300)
            err = error_lines(proc.stderr)
            assert proc.returncode != 0, proc.stdout
            assert len(err) == 1 and err[0].startswith("build-bench: error:"), proc.stderr
            assert "Traceback" not in proc.stderr and str(out) in err[0] and "ermission denied" in err[0]
    finally:
        for p in [base, *base.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(stat.S_IRWXU)
        shutil.rmtree(base)


# -- eval and compare --out


@pytest.fixture
def small_task(tmp_path) -> Path:
    docs = ["Otters hold hands while sleeping so they do not drift apart.",
            "Copper turns green as it reacts with air and moisture over years.",
            "Figs are pollinated by tiny wasps that crawl inside the fruit."]
    return write_retrieval_task(
        tmp_path / "proj" / "task",
        pa.table({"id": ["a", "b", "c"], "text": docs}),
        pa.table({"id": ["s1", "s2", "s3"], "text": ["otters sleeping hands", "copper green air", "fig wasps"]}),
        pa.table({"query-id": ["s1", "s2", "s3"], "corpus-id": ["a", "b", "c"], "score": pa.array([1] * 3, pa.int64())}),
        TaskInfo(name="Tiny", description="Copied-keyword queries.", domain="general"))


def test_finding_01_eval_out_does_not_clobber_a_user_file(small_task, tmp_path, capsys):
    mine = tmp_path / "results.json"
    mine.write_text('{"my": "results"}\n')
    args = ["eval", str(small_task), "--models", "bm25", "random", "--bootstrap", "20"]
    assert main([*args, "--out", str(mine)]) != 0
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and str(mine) in err[0] and "--overwrite" in err[0]
    assert mine.read_text() == '{"my": "results"}\n'
    # A folder is not a file; asked explicitly, the file is replaced; a result of ours is replaced silently.
    assert main([*args, "--out", str(tmp_path)]) != 0
    assert main([*args, "--out", str(mine), "--overwrite"]) == 0
    assert json.loads(mine.read_text())["n_boot"] == 20
    assert main([*args, "--bootstrap", "30", "--out", str(mine)]) == 0
    assert json.loads(mine.read_text())["n_boot"] == 30
    # A build-bench file that is not a result (a run's manifest) is not replaced by one either.
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"config_hash": "abc", "stages": {}}\n')
    assert main([*args, "--out", str(manifest)]) != 0
    assert manifest.read_text() == '{"config_hash": "abc", "stages": {}}\n'


def test_finding_01_eval_leaves_a_report_json_of_someone_else_alone(small_task, capsys):
    """eval stores its result in TASK/../report.json only when that report is the run's (it names the task)."""
    report = small_task.parent / "report.json"
    report.write_text('{"quarterly": "report"}\n')
    assert main(["eval", str(small_task), "--models", "bm25", "--bootstrap", "20"]) == 0
    assert report.read_text() == '{"quarterly": "report"}\n'
    assert not (small_task.parent / "report.html").exists()


def test_finding_01_compare_default_out_does_not_clobber(small_task, capsys):
    mine = small_task.parent / "compare.json"
    mine.write_text("my comparison notes\n")
    assert main(["compare", str(small_task), str(small_task), "--models", "bm25", "random", "--bootstrap", "20"]) != 0
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and str(mine) in err[0]
    assert mine.read_text() == "my comparison notes\n"


def test_finding_08_unwritable_result_path_is_one_line(small_task, tmp_path, capsys):
    """An OSError past the checks (here: --out under a file) ends as one line naming the path, not a traceback."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    code = main(["eval", str(small_task), "--models", "bm25", "--bootstrap", "20", "--out", str(blocker / "r.json")])
    err = error_lines(capsys.readouterr().err)
    assert code != 0 and len(err) == 1 and str(blocker) in err[0]
    assert blocker.read_text() == "a file, not a folder"
