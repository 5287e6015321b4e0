"""judge: relevance judgements, calibration first, by the LLM judge (``recipes.judge``) or, by default, the
query-likelihood judge (``domain.likelihood``).

A sample of queries is judged against its own positive and against a random passage of another document (the
controls that calibrate the judge). The LLM judge goes on to judge every positive, the closest mined
candidates and the LLM-written negatives, and each query's answerability, only when it tells the controls
apart (an untrusted judge's labels would not be acted on, so they are not paid for). The likelihood judge
costs prompt evaluation only, so it scores all of them at once: each query's positive, its closest candidates
(the same selection the LLM judge gets) and the controls, and writes every score to ``likelihoods``.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter

import pyarrow as pa

from ..engine.stage import StageContext, StageResult
from ..generators.likelihood import LIKELIHOOD_SCHEMA
from ..generators.recipes import JUDGEMENT_SCHEMA, QUERY_CHECK_SCHEMA, JudgePair, RelevanceJudge
from ..quality.mining import candidates_from_table, judge_selection
from ..quality.repair import CANDIDATE, CONTROL, POSITIVE, Verdict, calibrate
from ..records import Drop
from .common import JUDGE, check_role, llm_keys, make_llm, passage_texts, positives, track_llm

log = logging.getLogger(__name__)

# Of the repair settings, those the judge's own calibration and plan read: changing how the repair acts on
# its verdicts (or what it calibrates on once people labelled) costs no judging again.
CONFIG_KEYS = ("seed", "domain.recipes.judge", *llm_keys(JUDGE), "domain.mining", "domain.repair.controls",
               "domain.repair.answerability", "domain.repair.relevant_label", "domain.repair.trust_judge",
               "domain.repair.min_judge_accuracy", "domain.language", "domain.likelihood")
_check_llm_judge = check_role(JUDGE, lambda pack: pack.recipes.judge)


def check(config) -> None:
    """Fail before any stage runs if the judge cannot be built: the LLM judge's backend, or the likelihood
    judge's llama.cpp and model (it runs on the CPU whatever backend writes the queries)."""
    _check_llm_judge(config)
    pack = config.domain
    if not pack.recipes.judge and pack.likelihood.enabled:
        from ..generators.local import load_llama_cpp, resolve_model

        load_llama_cpp("The query-likelihood judge")
        resolve_model(pack.likelihood.model)


def run(ctx: StageContext) -> StageResult:
    pack, seed = ctx.config.domain, ctx.config.seed
    empty = {"judgements": JUDGEMENT_SCHEMA.empty_table(), "query_checks": QUERY_CHECK_SCHEMA.empty_table(),
             "likelihoods": LIKELIHOOD_SCHEMA.empty_table()}
    if not (pack.recipes.judge or pack.likelihood.enabled):
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
    if not pack.recipes.judge:
        titles = dict(zip(chunks["id"].to_pylist(), chunks["title"].to_pylist()))
        return _likelihood_judge(ctx, first, qtext, pos, texts, titles)
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
        "likelihoods": LIKELIHOOD_SCHEMA.empty_table(),
    }, drops=drops)


def _likelihood_judge(ctx: StageContext, first: list[JudgePair], qtext: dict[str, str],
                      pos: dict[str, list[str]], texts: dict[str, str], titles: dict[str, str]) -> StageResult:
    """Score the controls, every positive and each query's closest candidates; verdicts from the threshold."""
    from ..generators.likelihood import QueryLikelihood, best_pmi, passage_text, score_pairs, specificity

    pack = ctx.config.domain
    cfg = pack.likelihood
    pairs = [(p.query_id, p.query, p.passage_id, p.passage, p.kind) for p in first]
    done = {(p.query_id, p.passage_id) for p in first}
    pairs += [(qid, qtext[qid], cid, texts[cid], POSITIVE) for qid, cids in pos.items() for cid in cids
              if (qid, cid) not in done]
    # The closest candidates of each query: where a missed positive, or a vague query's other answers, are.
    per_query: Counter = Counter()
    for c in sorted(judge_selection(candidates_from_table(ctx.read("candidates")), pack.mining),
                    key=lambda c: (c.query_id, c.rank)):
        if (c.query_id, c.passage_id) not in done and per_query[c.query_id] < cfg.candidates:
            per_query[c.query_id] += 1
            pairs.append((c.query_id, qtext[c.query_id], c.passage_id, texts[c.passage_id], CANDIDATE))
    # The scorer reads a passage as the corpus presents it: its document's title, then its text.
    pairs = [(qid, query, pid, passage_text(text, titles.get(pid, "")), kind)
             for qid, query, pid, text, kind in pairs]
    scorer = ctx.service("likelihood", lambda: QueryLikelihood(cfg.model, threads=cfg.threads,
                                                               max_passage_tokens=cfg.max_passage_tokens))
    t0 = time.perf_counter()
    read, scored_before = scorer.passages_read, scorer.queries_scored
    scored = score_pairs(scorer, pairs)
    own = best_pmi(scored, POSITIVE)
    rows = []
    for s in scored:
        label = s.label(cfg.threshold, cfg.strong_margin)
        reason = f"PMI {s.pmi:+.2f} nats/token (threshold {cfg.threshold:+.2f})"
        # A candidate is another answer only if it explains the query about as well as the query's own passage:
        # one that shares its document's title explains the entity's name, not the fact.
        if s.kind == CANDIDATE and label and s.pmi < own.get(s.query_id, float("-inf")) - cfg.candidate_margin:
            label = 0
            reason += f"; below its positive's {own[s.query_id]:+.2f} by more than {cfg.candidate_margin}"
        rows.append(dict(query_id=s.query_id, passage_id=s.passage_id, kind=s.kind, label=label, reason=reason,
                         model=scorer.model_id, cache_key="", backend="likelihood", prompt_hash=""))
    spec = sorted(specificity(scored, POSITIVE, CANDIDATE).values())
    ctx.stats.update(Counter(f"pairs.{s.kind}" for s in scored))
    ctx.stats.update({"likelihood.seconds": round(time.perf_counter() - t0, 1),
                      "likelihood.passages_read": scorer.passages_read - read,
                      "likelihood.queries_scored": scorer.queries_scored - scored_before,
                      "likelihood.queries_with_candidates": len(spec),
                      "likelihood.not_more_specific_than_a_candidate": sum(x <= 0 for x in spec)})
    return StageResult(outputs={
        "judgements": pa.Table.from_pylist(rows, schema=JUDGEMENT_SCHEMA),
        "query_checks": QUERY_CHECK_SCHEMA.empty_table(),
        "likelihoods": pa.Table.from_pylist([s.__dict__ for s in scored], schema=LIKELIHOOD_SCHEMA),
    })
