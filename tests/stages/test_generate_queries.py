"""generate_queries on the real Gemma 3 270M model: a draft that fails the support check is written again with
another seed, the rejected draft is logged, and the last draft goes on (filter_queries judges it)."""

import pyarrow as pa
import pytest

from buildbench.generators.cache import LLMCache
from buildbench.generators.recipes.persona import PLAN_SCHEMA
from buildbench.quality.copy import CopyFilter
from buildbench.quality.support import SupportFilter
from buildbench.stages.common import support_refs

from .conftest import chunks_table, context, make_cfg, stage

pytestmark = pytest.mark.llm

# Passages with no figure, from documents that name no one, and facts that state one: no draft can single its
# fact out (no entity, no dated period, no figure of the passage): every first draft is rejected, as unanchored or
# for the figure words its passage does not hold.
CHUNKS = [
    ("c1", "d1", "Net interest income increased because average loan balances grew while deposit costs stayed flat."),
    ("c2", "d2", "The valuation allowance against deferred tax assets was released as the subsidiary returned to "
                 "profit."),
]
FACTS = {"c1": "Net interest income increased by $16.9 million.", "c2": "A $63 million valuation allowance was released."}


def test_a_failing_draft_is_written_again_and_logged(tmp_path, rundir):
    pytest.importorskip("llama_cpp")
    cfg = make_cfg(tmp_path)
    rundir.write("chunks", chunks_table(CHUNKS))
    plan = pa.Table.from_pylist(
        [dict(slot_id=f"{c}#0", chunk_id=c, persona="credit_analyst", style="keyword", difficulty="easy", seed=7,
              document="", entity="", period="", fact=FACTS[c]) for c, _, _ in CHUNKS], schema=PLAN_SCHEMA)
    ctx = context("generate_queries", cfg, rundir)
    queries, drops = stage("generate_queries").fn(plan, ctx)

    refs = support_refs(ctx, [[c] for c, _, _ in CHUNKS], [FACTS[c] for c, _, _ in CHUNKS])
    checker = SupportFilter(cfg.domain.filters.support.max_unsupported)
    drafts = cfg.domain.generator.drafts
    redrafted = [d for d in drops if d.reason == "redrafted"]
    # every draft but the last of each slot is rejected and logged
    assert sorted(d.item_id for d in redrafted) == sorted(["c1#0", "c2#0"] * (drafts - 1))
    for d in redrafted:
        slot = d.item_id
        reason, first = d.detail.split(" failed ", 1)[1].split(" ", 1)[0], d.detail.rsplit("): ", 1)[1].strip("'\"")
        # The logged draft fails exactly the check filter_queries would apply, for the reason logged (or wrote
        # no query at all: cut off at max_tokens, looping).
        i = 0 if slot == "c1#0" else 1
        if not first:
            assert reason in ("truncated", "repetition", "empty_output")
            continue
        assert (CopyFilter().check(first, CHUNKS[i][2]) or checker.check(first, *refs[i]))[0] == reason
    # Every draft of each slot was asked for, with its own seed, and is cached for a rerun.
    assert [ctx.stats[f"drafts_{n + 1}"] for n in range(drafts)] == [2] * drafts
    cache = LLMCache(rundir.cache_dir / "llm.sqlite")
    assert len(cache) == 2 * drafts
    # The last draft goes on: filter_queries drops it if it still fails.
    assert queries.num_rows == 2 and queries["answer"].to_pylist() == [FACTS["c1"], FACTS["c2"]]

    again, _ = stage("generate_queries").fn(plan, context("generate_queries", cfg, rundir))
    assert again["text"].to_pylist() == queries["text"].to_pylist()
