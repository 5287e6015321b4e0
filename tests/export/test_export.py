"""build-bench export on a small hand-built run folder (the datasets written with their real schemas): the
triplets, the three formats as `datasets.load_dataset` reads them, and the leakage guard against a planted test
task (an exact copy of a positive, a near-duplicate of another, a copy of a hard negative, a near-duplicate of
a query), against a registry's fingerprints, and its refusal to run without test tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from buildbench.cli import main
from buildbench.config import make_config
from buildbench.engine.rundir import RunDir
from buildbench.errors import ConfigError, InputError
from buildbench.export import export_run
from buildbench.export.leakage import text_key
from buildbench.export.triplets import build_triplets, load_run
from buildbench.quality.minhash import jaccard, shingles
from buildbench.records import Chunk, Document, Query, to_table
from buildbench.stages.repair_qrels import HARD_NEGATIVES_SCHEMA, QRELS_SCHEMA
from buildbench.tasks import TaskInfo, write_retrieval_task

PASSAGES = {
    "c0": "The Committee raised the target range for the federal funds rate by a quarter point to 5-1/4 percent, "
          "citing persistent inflation pressures in services and a labor market that remains very tight.",
    "c1": "Bank lending officers reported tighter standards on commercial and industrial loans to firms of all "
          "sizes, pointing to a less favorable economic outlook and reduced tolerance for risk.",
    "c2": "Liquidity in the Treasury market deteriorated during the quarter as dealers faced balance sheet "
          "constraints, widening bid-ask spreads and thinning the depth of the order book considerably.",
    "c3": "Household spending grew at a moderate pace, while residential investment declined further under the "
          "weight of elevated mortgage rates and sharply lower home sales across most regions.",
    "c4": "The Committee will continue reducing its holdings of Treasury securities and agency mortgage-backed "
          "securities, as described in its previously announced plans for balance sheet runoff.",
    "c5": "Capital ratios at the largest banks remained well above regulatory minimums, and stress test results "
          "showed that they could absorb severe losses while continuing to lend to households.",
    "c6": "Officials raised the federal funds target range by twenty-five basis points, pointing to inflation in "
          "services that has not eased and to hiring that keeps the job market tight.",
    "c7": "Energy prices fell sharply over the intermeeting period as crude oil inventories rose and global "
          "demand softened, pulling headline inflation down even as core measures stayed firm.",
}
SYNTHETIC = {
    "s0": "Corporate bond issuance surged to a record as investment-grade companies rushed to lock in funding "
          "ahead of expected rate increases later in the year.",
    "s1": "The Committee kept the target range unchanged at 5-1/4 percent and said inflation had returned to its "
          "2 percent goal, so no further increases were needed.",
}
QUERIES = {
    "q0": "why did the committee raise the federal funds rate by a quarter point",
    "q1": "are banks tightening standards on business loans",
    "q2": "why did treasury market liquidity get worse for dealers",
    "q3": "how are consumer spending and housing investment doing with high mortgage rates",
    "q4": "what is the plan for running off the balance sheet holdings",
    "q5": "how well capitalized are the largest banks according to the latest stress test results",
}
# Closest first; s1 is an LLM-written negative the qrels repair removed, c6 an added positive of q0.
HARD = {"q0": ["s1", "c3", "c4", "c5"], "q1": ["c2", "c3"], "q2": ["c1", "s1", "c3"], "q3": ["c7", "c0", "c5"],
        "q4": ["c7", "s0"], "q5": ["c1", "c2"]}
QRELS = [(q, f"c{q[1]}") for q in QUERIES] + [("q0", "c6")]


def write_run(root: Path) -> Path:
    """A finished run folder as repair_qrels leaves it, with a manifest the runner would write."""
    rundir = RunDir(root)
    chunks = [Chunk(cid, f"doc{cid}", text, title=f"FOMC statement {cid}") for cid, text in PASSAGES.items()]
    rundir.write("chunks", to_table(chunks, Chunk))
    rundir.write("negatives", to_table([Document(i, t, title="synthetic", metadata={"synthetic": True})
                                        for i, t in SYNTHETIC.items()], Document))
    rundir.write("removed_negatives", pa.table({"id": pa.array(["s1"], pa.string())}))
    queries = [Query(q, text, [f"c{q[1]}"]) for q, text in QUERIES.items()]
    rundir.write("queries", to_table(queries, Query))
    rundir.write("final_queries", to_table(queries, Query))
    rundir.write("qrels", pa.Table.from_pylist([{"query-id": q, "corpus-id": c, "score": 1} for q, c in QRELS],
                                               schema=QRELS_SCHEMA))
    hard = [{"query_id": q, "passage_ids": ids} for q, ids in HARD.items()]
    rundir.write("hard_negatives", pa.Table.from_pylist(hard, schema=HARD_NEGATIVES_SCHEMA))
    cfg = make_config("finance", out=str(root))
    rundir.save_manifest({"config": json.loads(cfg.model_dump_json(by_alias=True)),
                          "config_hash": cfg.config_hash(), "stages": {}})
    return root


def edit(text: str, swaps: dict[str, str]) -> str:
    for old, new in swaps.items():
        assert old in text
        text = text.replace(old, new)
    return text


# The planted test task: (a) an exact copy of q1's positive (recased, repunctuated), (b) a near-duplicate of
# q2's positive, (c) a copy of the hard negative c7 (q3's and q4's), (d) a near-duplicate of the query q5.
PLANTED_DOCS = {
    "t-a": PASSAGES["c1"].upper().replace(",", " ;"),
    "t-b": edit(PASSAGES["c2"], {"deteriorated": "worsened", "considerably": "markedly"}),
    "t-c": PASSAGES["c7"],
    "t-x": "Regional manufacturing activity expanded modestly, with new orders for durable goods picking up.",
}
PLANTED_QUERIES = {
    "tq-d": edit(QUERIES["q5"], {"latest": "recent"}),
    "tq-x": "which districts reported stronger manufacturing orders",
}


def write_test_task(folder: Path) -> Path:
    corpus = pa.table({"id": list(PLANTED_DOCS), "title": [""] * len(PLANTED_DOCS),
                       "text": list(PLANTED_DOCS.values())})
    queries = pa.table({"id": list(PLANTED_QUERIES), "text": list(PLANTED_QUERIES.values())})
    qrels = pa.table({"query-id": ["tq-d", "tq-x"], "corpus-id": ["t-a", "t-x"], "score": pa.array([1, 1], pa.int64())})
    info = TaskInfo(name="PlantedTestRetrieval", description="A published test task with planted copies.",
                    domain="finance")
    return write_retrieval_task(folder, corpus, queries, qrels, info)


@pytest.fixture
def run(tmp_path) -> Path:
    return write_run(tmp_path / "run")


@pytest.fixture
def test_task(tmp_path) -> Path:
    return write_test_task(tmp_path / "published" / "task")


def load(kind: str, files, tmp_path: Path, **kwargs):
    import datasets

    return datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train",
                                 cache_dir=str(tmp_path / "hf-cache"), **kwargs)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_planted_copies_are_what_they_claim():
    """(b) and (d) are near-duplicates at the run's thresholds (char 5-grams; 0.7 documents, 0.8 queries),
    not exact copies; (a) differs from its original only in case and punctuation."""
    assert jaccard(shingles(PLANTED_DOCS["t-b"]), shingles(PASSAGES["c2"])) >= 0.7
    assert jaccard(shingles(PLANTED_QUERIES["tq-d"]), shingles(QUERIES["q5"])) >= 0.8
    assert text_key(PLANTED_DOCS["t-b"]) != text_key(PASSAGES["c2"])
    assert PLANTED_DOCS["t-a"] != PASSAGES["c1"] and text_key(PLANTED_DOCS["t-a"]) == text_key(PASSAGES["c1"])


def test_triplets_follow_the_qrels_and_the_mining(run):
    source = load_run(run)
    assert source.query_dataset == "final_queries" and source.config_hash
    triplets, stats = build_triplets(source)
    by_id = {t.query_id: t for t in triplets}
    assert list(by_id) == list(QUERIES)  # one per query, in the run's order
    q0 = by_id["q0"]
    # The passage it was written from is the positive; the added one rides along.
    assert (q0.positive_id, q0.positive, q0.other_positive_ids) == ("c0", PASSAGES["c0"], ("c6",))
    assert q0.negative_ids == ("c3", "c4", "c5")  # s1 was removed by the repair: never a negative
    assert q0.negatives == tuple(PASSAGES[c] for c in ("c3", "c4", "c5"))
    assert by_id["q4"].negative_ids == ("c7", "s0") and by_id["q4"].negatives[1] == SYNTHETIC["s0"]
    assert stats.skipped["negative_removed_by_repair"] == 2 and stats.triplets == 6


@pytest.mark.parametrize("fmt", ["sentence-transformers", "beir", "jsonl"])
def test_each_format_loads_in_datasets(run, tmp_path, fmt):
    out = tmp_path / "export"
    report = export_run(run, out, fmt, "train", negatives=2, leakage_guard=False)
    assert report.leakage_guard == {"enabled": False, "test_tasks": [], "registry": None}
    assert "leakage guard was OFF" in report.summary()
    if fmt == "sentence-transformers":
        ds = load("parquet", [out / "train.parquet"], tmp_path)
        assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]
        assert len(ds) == 6  # every query has at least 2 negatives
        row = ds[0]
        assert (row["anchor"], row["positive"]) == (QUERIES["q0"], PASSAGES["c0"])
        assert (row["negative_1"], row["negative_2"]) == (PASSAGES["c3"], PASSAGES["c4"])
        ids = load("parquet", [out / "ids" / "train.parquet"], tmp_path)
        assert ids[0] == {"query_id": "q0", "positive_id": "c0", "negative_ids": ["c3", "c4"]}
    elif fmt == "beir":
        corpus = load("json", [out / "corpus.jsonl"], tmp_path)
        queries = load("json", [out / "queries.jsonl"], tmp_path)
        qrels = load("csv", [out / "qrels" / "train.tsv"], tmp_path, delimiter="\t")
        negs = load("json", [out / "hard_negatives.jsonl"], tmp_path)
        assert corpus.column_names == ["_id", "title", "text"] and queries.column_names == ["_id", "text"]
        assert qrels.column_names == ["query-id", "corpus-id", "score"]
        assert sorted(zip(qrels["query-id"], qrels["corpus-id"])) == sorted(QRELS)  # both positives of q0
        docs = dict(zip(corpus["_id"], corpus["text"]))
        assert docs["c6"] == PASSAGES["c6"] and "s1" not in docs and docs["s0"] == SYNTHETIC["s0"]
        assert dict(zip(corpus["_id"], corpus["title"]))["c0"] == "FOMC statement c0"
        assert dict(zip(negs["query_id"], negs["negative_ids"]))["q4"] == ["c7", "s0"]
        assert set(qrels["corpus-id"]) | {n for ids in negs["negative_ids"] for n in ids} == set(docs)
    else:
        ds = load("json", [out / "train.jsonl"], tmp_path)
        assert {"query", "pos", "neg", "query_id", "pos_ids", "neg_ids"} <= set(ds.column_names)
        row = ds[0]
        assert row["query"] == QUERIES["q0"] and row["pos"] == [PASSAGES["c0"], PASSAGES["c6"]]
        assert row["neg_ids"] == ["c3", "c4"] and row["neg"] == [PASSAGES["c3"], PASSAGES["c4"]]
    written = json.loads((out / "export.json").read_text())
    assert written["counts"]["triplets_written"] == 6 and written["format"] == fmt


def test_leakage_guard_withholds_the_planted_leaks(run, test_task, tmp_path):
    out = tmp_path / "export"
    report = export_run(run, out, "sentence-transformers", "train", [test_task], negatives=2)
    written = json.loads((out / "export.json").read_text())
    counts = written["counts"]
    assert counts["withheld"] == {"leaking_query": 1, "leaking_positive": 2, "short_of_negatives": 1}
    assert counts["negatives_dropped"] == {"leaking_negative": 2}
    assert counts["triplets_written"] == 2 and counts["queries_in_run"] == 6
    guard = written["leakage_guard"]
    assert guard["enabled"] and guard["thresholds"] == {"documents": 0.7, "queries": 0.8}
    assert guard["test_tasks"][0]["path"] == str(test_task) and guard["test_tasks"][0]["name"] == "PlantedTestRetrieval"
    assert (guard["test_tasks"][0]["documents"], guard["test_tasks"][0]["queries"]) == (4, 2)
    assert written["source_run"] == str(run.resolve()) and written["config_hash"] == load_run(run).config_hash

    withheld = {(r["query_id"], r["item_id"]): r for r in read_jsonl(out / "withheld.jsonl")}
    a = withheld[("q1", "c1")]  # (a) exact copy of a positive
    assert (a["action"], a["reason"], a["match"]["id"], a["match"]["how"]) == \
        ("withhold_triplet", "leaking_positive", "t-a", "exact")
    b = withheld[("q2", "c2")]  # (b) near-duplicate of a positive
    assert (b["reason"], b["match"]["id"], b["match"]["how"]) == ("leaking_positive", "t-b", "near_duplicate")
    assert 0.7 <= b["match"]["jaccard"] < 1.0
    for q in ("q3", "q4"):  # (c) a copy of a hard negative: dropped from both triplets it was in
        c = withheld[(q, "c7")]
        assert (c["action"], c["reason"], c["item"], c["match"]["id"]) == \
            ("drop_negative", "leaking_negative", "negative", "t-c")
    d = withheld[("q5", "q5")]  # (d) near-duplicate of a query
    assert (d["reason"], d["item"], d["match"]["kind"], d["match"]["id"]) == \
        ("leaking_query", "query", "query", "tq-d")
    short = next(r for r in read_jsonl(out / "withheld.jsonl") if r["reason"] == "short_of_negatives")
    assert (short["query_id"], short["negatives"], short["needed"]) == ("q4", 1, 2)  # s0 alone is left

    ds = load("parquet", [out / "train.parquet"], tmp_path)
    assert ds["anchor"] == [QUERIES["q0"], QUERIES["q3"]]
    assert ds[1]["negative_1"] == PASSAGES["c0"] and ds[1]["negative_2"] == PASSAGES["c5"]  # c7 dropped
    test_keys = {text_key(t) for t in [*PLANTED_DOCS.values(), *PLANTED_QUERIES.values()]}
    assert not test_keys & {text_key(v) for row in ds for v in row.values()}
    assert "withheld 3 triplets (1 with a leaking query, 2 with a leaking positive)" in report.summary()
    assert "dropped 2 leaking negatives" in report.summary()


def test_the_threshold_option_changes_what_is_near(run, test_task, tmp_path):
    report = export_run(run, tmp_path / "strict", "jsonl", "train", [test_task], near_dup_threshold=0.99)
    # Only the exact copies are left: (a) and (c); the near-duplicates (b) and (d) pass at 0.99.
    assert report.counts["withheld"]["leaking_positive"] == 1 and report.counts["withheld"]["leaking_query"] == 0
    assert report.leakage_guard["thresholds"] == {"documents": 0.99, "queries": 0.99}
    with pytest.raises(ConfigError, match="near-dup-threshold"):
        export_run(run, tmp_path / "bad", "jsonl", "train", [test_task], near_dup_threshold=1.5)


def test_registry_fingerprints_guard_too(run, test_task, tmp_path):
    from buildbench.hub.registry import Registry

    registry = Registry.load(tmp_path / "registry")
    registry.add_task(test_task, repo="acme/PlantedTestRetrieval", version="v1.0.0")
    registry.save()
    out = tmp_path / "export"
    report = export_run(run, out, "jsonl", "train", registry=str(tmp_path / "registry"), negatives=2)
    # Fingerprints hold no texts: the match names the task, by MinHash estimate (which catches the copies
    # surely; a near-duplicate just above the threshold, such as (d) at 0.8, only with its estimate's luck).
    withheld = {(r["query_id"], r["item_id"]): r for r in read_jsonl(out / "withheld.jsonl")}
    assert {k for k, r in withheld.items() if r["action"] == "withhold_triplet"} >= {("q1", "c1"), ("q2", "c2")}
    assert withheld[("q1", "c1")]["match"] == {"task": "registry:PlantedTestRetrieval@v1.0.0", "kind": "document",
                                               "id": "", "how": "fingerprint", "jaccard": None}
    assert ("q3", "c7") in withheld and report.leakage_guard["registry"] == str(tmp_path / "registry")
    assert report.leakage_guard["test_tasks"][0]["source"] == "registry"
    (tmp_path / "empty-registry").mkdir()
    with pytest.raises(ConfigError, match="holds no task fingerprints"):
        export_run(run, tmp_path / "e2", "jsonl", "train", registry=str(tmp_path / "empty-registry"))


def test_no_guard_is_refused_unless_asked_for(run, tmp_path, capsys):
    out = tmp_path / "export"
    with pytest.raises(ConfigError, match="no test tasks to guard against"):
        export_run(run, out, "sentence-transformers", "train")
    assert not out.exists()
    code = main(["export", str(run), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ConfigError.exit_code and len(err) == 1 and "--no-leakage-guard" in err[0]
    assert not out.exists()
    code = main(["export", str(run), "--out", str(out), "--no-leakage-guard", "--negatives", "0"])
    assert code == 0 and "leakage guard was OFF" in capsys.readouterr().out
    written = json.loads((out / "export.json").read_text())
    assert written["leakage_guard"]["enabled"] is False and written["negatives_per_triplet"] == 0
    assert load("parquet", [out / "train.parquet"], tmp_path).column_names == ["anchor", "positive"]  # pairs
    with pytest.raises(ConfigError, match="contradicts"):
        export_run(run, out, "jsonl", "train", [tmp_path], leakage_guard=False)


def test_cli_export_with_a_test_task(run, test_task, tmp_path, capsys):
    out = tmp_path / "export"
    code = main(["export", str(run), "--format", "beir", "--split", "dev", "--out", str(out),
                 "--test-task", str(test_task), "--negatives", "2"])
    printed = capsys.readouterr().out
    assert code == 0 and "Exported 3 of 6 queries" in printed and "withheld 3 triplets" in printed
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        ".buildbench-export", "corpus.jsonl", "export.json", "hard_negatives.jsonl", "qrels/dev.tsv",
        "queries.jsonl", "withheld.jsonl"]
    # beir writes up to K negatives: q4 keeps s0 alone instead of being left out.
    assert json.loads((out / "export.json").read_text())["counts"]["withheld"]["short_of_negatives"] == 0


@pytest.mark.parametrize("argv, message, exit_code", [
    (["/nonexistent-run", "--no-leakage-guard"], "is not a build-bench run folder", InputError.exit_code),
    (["{run}", "--format", "xml", "--no-leakage-guard"], "unknown export format 'xml'", ConfigError.exit_code),
    (["{run}", "--test-task", "{tmp}/nope"], "no such folder", InputError.exit_code),
    (["{run}", "--test-task", "{tmp}"], "is not an MTEB task folder", InputError.exit_code),
    (["{run}", "--test-task", "{run}"], "is a run folder, not a task folder", InputError.exit_code),
    (["{run}", "--split", "../up", "--no-leakage-guard"], "not a plain split name", ConfigError.exit_code),
    (["{run}", "--registry", "{tmp}/nope"], "no such registry folder", InputError.exit_code),
])
def test_errors_are_one_line(run, tmp_path, capsys, argv, message, exit_code):
    argv = [a.format(run=run, tmp=tmp_path) for a in argv]
    code = main(["export", *argv, "--out", str(tmp_path / "export")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == exit_code and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "export").exists()


def test_a_run_without_final_queries_is_refused(tmp_path):
    rundir = RunDir(tmp_path / "early")
    rundir.write("chunks", to_table([Chunk("c0", "d0", PASSAGES["c0"])], Chunk))
    with pytest.raises(InputError, match="no final queries .*missing: final_queries, qrels, hard_negatives, negatives"):
        export_run(tmp_path / "early", tmp_path / "export", "jsonl", "train", leakage_guard=False)


def test_the_out_folder_is_never_a_folder_of_yours(run, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a build-bench export folder"):
        export_run(run, mine, "jsonl", "train", leakage_guard=False)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]

    out = tmp_path / "export"
    export_run(run, out, "sentence-transformers", "train", leakage_guard=False)
    (out / "notes.txt").write_text("mine, added later")
    # A rerun in another format replaces the previous export: its files go, the user's file stays.
    export_run(run, out, "jsonl", "train", leakage_guard=False)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        ".buildbench-export", "export.json", "notes.txt", "train.jsonl", "withheld.jsonl"]
    assert not (out / "ids").exists()


def test_the_runs_own_task_as_test_task_withholds_everything(run, tmp_path):
    corpus = pa.table({"id": list(PASSAGES), "text": list(PASSAGES.values())})
    queries = pa.table({"id": list(QUERIES), "text": list(QUERIES.values())})
    qrels = pa.table({"query-id": [q for q, _ in QRELS], "corpus-id": [c for _, c in QRELS],
                      "score": pa.array([1] * len(QRELS), pa.int64())})
    own = write_retrieval_task(run / "task", corpus, queries, qrels,
                               TaskInfo(name="OwnRetrieval", description="The run's own task.", domain="finance"))
    report = export_run(run, tmp_path / "export", "jsonl", "train", [own])
    assert report.counts["withheld"]["leaking_query"] == 6 and report.counts["triplets_written"] == 0
    assert "this run's own task" in report.summary() and "Nothing was left to export" in report.summary()
