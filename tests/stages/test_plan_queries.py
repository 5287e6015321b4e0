"""plan_queries: queries_per_chunk slots per chunk, personas, styles and difficulties spread over them."""

from __future__ import annotations

from collections import Counter

from .conftest import PASSAGES, chunks_table, docs_table, make_cfg, run_global


def _corpus(rundir):
    rundir.write("chunks", chunks_table([(f"c{i}", d, t) for i, (d, t) in enumerate(PASSAGES)]))
    rundir.write("documents_clean", docs_table(PASSAGES))


def test_plans_slots_for_every_chunk(tmp_path, rundir):
    _corpus(rundir)
    cfg = make_cfg(tmp_path / "run").model_copy(update={"queries_per_chunk": 3, "seed": 7})
    result, _ = run_global("plan_queries", cfg, rundir)
    plan = result.outputs["plan"].to_pylist()
    assert len(plan) == 18 and result.stats["slots"] == 18
    # Answer-first: every slot asks about a sentence of its own chunk, and a chunk's slots about different ones.
    assert result.stats["slots_with_fact"] == 18
    text = dict((f"c{i}", t) for i, (_, t) in enumerate(PASSAGES))
    assert all(s["fact"] in text[s["chunk_id"]] for s in plan)
    assert {s["fact"] for s in plan if s["chunk_id"] == "c0"} == {
        "The Committee decided to raise the target range for the federal funds rate to 5-1/4 to 5-1/2 percent.",
        "Inflation remains elevated and the Committee is strongly committed to returning it to 2 percent."}
    assert Counter(s["chunk_id"] for s in plan) == {f"c{i}": 3 for i in range(6)}
    assert len({s["slot_id"] for s in plan}) == 18
    pack = cfg.domain
    assert {s["persona"] for s in plan} <= {p.id for p in pack.personas}
    assert {s["style"] for s in plan} <= {s.id for s in pack.query_styles}
    assert {s["difficulty"] for s in plan} == {d.id for d in pack.difficulties}  # stratified: every level used
    again, _ = run_global("plan_queries", cfg, rundir)
    assert again.outputs["plan"].to_pylist() == plan  # seeded


def test_a_budget_and_the_persona_switch(tmp_path, rundir):
    _corpus(rundir)
    cfg = make_cfg(tmp_path / "run").model_copy(update={"max_queries": 4})
    assert run_global("plan_queries", cfg, rundir)[0].outputs["plan"].num_rows == 4
    off = make_cfg(tmp_path / "run", **{"recipes.persona": False})
    assert run_global("plan_queries", off, rundir)[0].outputs["plan"].num_rows == 0
