"""mine_negatives: pooled candidates for each query from BM25 and a static embedding model, classified against
the positive; an LLM-written negative joins only its own query's pool."""

from __future__ import annotations

import json

from buildbench.records import Document, to_table

from .conftest import PASSAGES, chunks_table, make_cfg, queries_table, run_global


def test_candidates_exclude_the_positive_and_classify_the_rest(tmp_path, rundir):
    rundir.write("chunks", chunks_table([(f"c{i}", d, t) for i, (d, t) in enumerate(PASSAGES)]))
    rundir.write("queries", queries_table([("q0", "federal funds rate target range raised", ["c0"]),
                                           ("q1", "bank lending standards tighter for firms", ["c1"])]))
    fake = Document(id="neg-q0", text="The Committee lowered the federal funds rate target range to zero.",
                    title="", source="llm", metadata={"negative_for": "q0", "recipe": "hard_negatives"})
    rundir.write("negatives", to_table([fake], Document))
    cfg = make_cfg(tmp_path / "run", **{"mining.depth": 10})
    result, _ = run_global("mine_negatives", cfg, rundir)
    rows = result.outputs["candidates"].to_pylist()
    by_query = {q: [r for r in rows if r["query_id"] == q] for q in ("q0", "q1")}
    assert by_query["q0"] and by_query["q1"]
    assert "c0" not in {r["passage_id"] for r in by_query["q0"]}  # never its own positive
    assert "c1" not in {r["passage_id"] for r in by_query["q1"]}
    synthetic = [r for r in rows if r["passage_id"] == "neg-q0"]
    assert [(r["query_id"], r["decision"], r["found_by"]) for r in synthetic] == [("q0", "synthetic", ["llm"])]
    for q, cands in by_query.items():
        assert sorted(r["rank"] for r in cands) == list(range(1, len(cands) + 1))
    decisions = {r["decision"] for r in rows}
    assert decisions <= {"negative", "pool", "too_close", "skipped_top", "synthetic"}
    assert result.stats["seconds"] >= 0
    assert sum(v for k, v in result.stats.items() if k.startswith("decision.")) == len(rows)
    assert json.loads(json.dumps(result.stats))  # plain numbers, as the manifest stores them


def test_mining_off_writes_no_candidates(tmp_path, rundir):
    cfg = make_cfg(tmp_path / "run", **{"mining.enabled": False})
    result, _ = run_global("mine_negatives", cfg, rundir)
    assert result.outputs["candidates"].num_rows == 0
