"""judge: LLM judgements, calibration first.

A sample of queries is judged against its own positive and against a random passage of another document. Only
a judge that tells those apart (or is trusted by config) goes on to judge every positive, the closest mined
candidates and the LLM-written negatives, and each query's answerability; an untrusted judge's labels would not
be acted on, so they are not paid for.
"""

from __future__ import annotations

import logging
import random
from collections import Counter

import pyarrow as pa

from ..engine.stage import StageContext, StageResult
from ..generators.recipes import JUDGEMENT_SCHEMA, QUERY_CHECK_SCHEMA, JudgePair, RelevanceJudge
from ..quality.mining import candidates_from_table, judge_selection
from ..quality.repair import CANDIDATE, CONTROL, POSITIVE, Verdict, calibrate
from ..records import Drop
from .common import JUDGE, check_role, llm_keys, make_llm, passage_texts, positives, track_llm

log = logging.getLogger(__name__)

CONFIG_KEYS = ("seed", "domain.recipes.judge", *llm_keys(JUDGE), "domain.mining", "domain.repair",
               "domain.language")
check = check_role(JUDGE, lambda pack: pack.recipes.judge)


def run(ctx: StageContext) -> StageResult:
    pack, seed = ctx.config.domain, ctx.config.seed
    empty = {"judgements": JUDGEMENT_SCHEMA.empty_table(), "query_checks": QUERY_CHECK_SCHEMA.empty_table()}
    if not pack.recipes.judge:
        return StageResult(outputs=empty)
    texts = passage_texts(ctx)
    q = ctx.read("queries")
    qtext = dict(zip(q["id"].to_pylist(), q["text"].to_pylist()))
    pos = positives(q)
    chunks = ctx.read("chunks")
    doc_of = dict(zip(chunks["id"].to_pylist(), chunks["doc_id"].to_pylist()))
    rng = random.Random(seed)
    chunk_ids = sorted(doc_of)
    sample = rng.sample(sorted(qtext), min(pack.repair.controls, len(qtext)))
    first: list[JudgePair] = []
    for qid in sample:
        own = {doc_of.get(c) for c in pos[qid]}
        others = [c for c in chunk_ids if doc_of[c] not in own]
        if others:
            cid = rng.choice(others)
            first.append(JudgePair(qid, qtext[qid], pos[qid][0], texts[pos[qid][0]], POSITIVE))
            first.append(JudgePair(qid, qtext[qid], cid, texts[cid], CONTROL))
    llm = make_llm(ctx, JUDGE)
    judge = RelevanceJudge.from_pack(llm, pack, seed=seed)
    with track_llm(ctx, llm):
        judgements, drops = judge.judge(first)
        cal = calibrate([Verdict(j.query_id, j.passage_id, j.kind, j.label) for j in judgements], pack.repair)
        ctx.stats["calibration_pairs"] = len(first)
        checks = []
        if cal.trusted:
            done = {(p.query_id, p.passage_id) for p in first}
            rest = [JudgePair(qid, qtext[qid], cid, texts[cid], POSITIVE) for qid, cids in pos.items()
                    for cid in cids if (qid, cid) not in done]
            picked = judge_selection(candidates_from_table(ctx.read("candidates")), pack.mining)
            rest += [JudgePair(c.query_id, qtext[c.query_id], c.passage_id, texts[c.passage_id], CANDIDATE)
                     for c in picked]
            more, more_drops = judge.judge(rest)
            judgements, drops = judgements + more, drops + more_drops
            ctx.stats.update(Counter(f"pairs.{p.kind}" for p in rest))
            if pack.repair.answerability:
                checks, more_drops = judge.check_queries(list(qtext.items()))
                drops += more_drops
        else:
            log.warning("judge not trusted (%s): candidates and answerability are not judged, and the qrels "
                        "repair uses only duplicate detection", cal.why)
    ctx.stats.update(Counter(f"pairs.{p.kind}" for p in first))
    ctx.stats.update({f"recipe.{k}": v for k, v in judge.stats.items()})
    drops = [Drop(ctx.stage, d.item_id, d.reason, d.detail) for d in drops]  # the recipe labels them its own way
    return StageResult(outputs={
        "judgements": pa.Table.from_pylist([j.__dict__ for j in judgements], schema=JUDGEMENT_SCHEMA),
        "query_checks": pa.Table.from_pylist([c.__dict__ for c in checks], schema=QUERY_CHECK_SCHEMA),
    }, drops=drops)
