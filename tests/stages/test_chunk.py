"""chunk (a map stage, one shard at a time) and dedup_chunks (a paragraph repeated verbatim in two documents)."""

from __future__ import annotations

from buildbench.pipeline import STAGES

from .conftest import PASSAGES, chunks_table, context, docs_table, make_cfg, run_global


def test_chunk_splits_each_document_and_counts_the_chunks(tmp_path, rundir):
    long = " ".join(f"Sentence {i} says the committee discussed item number {i} at length." for i in range(40))
    shard = docs_table([("long", long), ("short", PASSAGES[1][1])])
    cfg = make_cfg(tmp_path / "run", **{"chunking.max_chars": 400, "chunking.min_chars": 50})
    ctx = context("chunk", cfg, rundir)
    st = next(s for s in STAGES if s.name == "chunk")
    assert st.kind == "map"
    table, drops = st.fn(shard, ctx)
    rows = table.to_pylist()
    by_doc = {d: [r for r in rows if r["doc_id"] == d] for d in ("long", "short")}
    assert len(by_doc["long"]) > 3 and len(by_doc["short"]) == 1
    assert all(len(r["text"]) <= 400 for r in rows)
    assert [r["position"] for r in by_doc["long"]] == list(range(len(by_doc["long"])))
    assert by_doc["short"][0]["text"] == PASSAGES[1][1]
    assert ctx.stats["chunks"] == len(rows) and drops == []


def test_dedup_chunks_keeps_one_copy_of_a_repeated_paragraph(tmp_path, rundir):
    repeated = PASSAGES[0][1]
    rundir.write("chunks_raw", chunks_table([("a-0", "a", repeated), ("a-1", "a", PASSAGES[1][1]),
                                             ("b-0", "b", repeated), ("b-1", "b", PASSAGES[2][1])]))
    result, _ = run_global("dedup_chunks", make_cfg(tmp_path / "run"), rundir)
    assert result.outputs["chunks"]["id"].to_pylist() == ["a-0", "a-1", "b-1"]
    assert [(d.stage, d.item_id, d.reason) for d in result.drops] == [("chunk_dedup", "b-0", "exact_duplicate")]
    assert [f.to_json() | {"seconds": 0} for f in result.filters] == [
        {"name": "chunk_dedup", "in": 4, "kept": 3, "dropped": 1, "seconds": 0,
         "reasons": {"exact_duplicate": 1}, "extra": {}}]
