"""repair_qrels: people's labels on the queries (``build-bench label``, RUN_DIR/labels/labels.jsonl) come first,
then AIR-Bench qrels repair from the judgements, the questions and requests the likelihood judge finds their
positive explains weakly and the searches of unnamed documents it finds another passage explains nearly as well,
gated by the judge's calibration (on controls, or on those labels once there are
enough); the per-query audit, human decisions marked as such; the calibration itself
(``judge_calibration``), which later stages read to know whether the judge's labels are trusted; and
``reviews``, one row per query people labelled."""

from __future__ import annotations

import json
import logging
from collections import Counter

import pyarrow as pa

from ..engine.stage import StageContext, StageResult
from ..generators.likelihood import best_pmi, read_scored, specificity
from ..labels.decide import Decision, decide
from ..labels.store import LABELS_DIR, LABELS_FILE, LabelStore
from ..quality.form import KEYWORDS, style_forms
from ..quality.mining import candidates_from_table
from ..quality.repair import (
    POSITIVE,
    Answerability,
    Calibration,
    Verdict,
    audit_table,
    repair,
    weakly_explained,
    weakly_specific,
)
from ..records import Drop
from .common import (
    chunk_documents,
    chunk_entities,
    passage_texts,
    positives,
    search_counts,
    search_figures,
    search_topics,
)

log = logging.getLogger(__name__)

# The likelihood judge's threshold and the styles' forms set which questions and requests are weakly explained.
CONFIG_KEYS = ("domain.repair", "domain.likelihood.threshold", "domain.query_styles")
# People's labels (``build-bench label``): a rebuild after labelling reruns this stage and what follows.
FILES = (f"{LABELS_DIR}/{LABELS_FILE}",)

QRELS_SCHEMA = pa.schema([("query-id", pa.string()), ("corpus-id", pa.string()), ("score", pa.int64())])
HARD_NEGATIVES_SCHEMA = pa.schema([("query_id", pa.string()), ("passage_ids", pa.list_(pa.string()))])
# One row per query people labelled: the decision, each reviewer's label (JSON), the missed positives named.
REVIEWS_SCHEMA = pa.schema([("query_id", pa.string()), ("label", pa.string()), ("votes", pa.string()),
                            ("passages", pa.list_(pa.string())), ("notes", pa.list_(pa.string()))])
# One row: whether the repair acted on the judge's verdicts, why, and the calibration numbers (JSON).
CALIBRATION_SCHEMA = pa.schema([("trusted", pa.bool_()), ("why", pa.string()), ("calibration", pa.string())])


def run(ctx: StageContext) -> StageResult:
    pack = ctx.config.domain
    queries = ctx.read("queries")
    texts = passage_texts(ctx)
    verdicts = [Verdict(r["query_id"], r["passage_id"], r["kind"], r["label"])
                for r in ctx.read("judgements").to_pylist()]
    checks = [Answerability(r["query_id"], r["self_contained"], r["clear_intent"], r["reason"])
              for r in ctx.read("query_checks").to_pylist()]
    human = human_decisions(ctx, set(queries["id"].to_pylist()))
    entities = chunk_entities(ctx)
    result = repair(queries["id"].to_pylist(), positives(queries),
                    candidates_from_table(ctx.read("candidates")), texts, verdicts, checks, pack.repair, human,
                    citations=dict(zip(queries["id"].to_pylist(), queries["citations"].to_pylist())),
                    weak=weak_queries(ctx, queries, entities), topics=search_topics(ctx, queries),
                    documents=chunk_documents(ctx), figures=search_figures(ctx, queries),
                    entities=entities, counts=search_counts(ctx, queries))
    kept = set(result.kept_queries)
    drops = [Drop(ctx.stage, e.query_id, e.reason, e.detail) for e in result.audit if e.action == "drop_query"]
    qrels = pa.Table.from_pylist([{"query-id": q, "corpus-id": c, "score": s} for q, c, s in result.qrels],
                                 schema=QRELS_SCHEMA)
    hard = pa.Table.from_pylist([{"query_id": q, "passage_ids": ids} for q, ids in result.hard_negatives.items()],
                                schema=HARD_NEGATIVES_SCHEMA)
    removed = pa.table({"id": pa.array(result.removed_synthetic, pa.string())})
    stats = Counter(result.stats)
    stats.update({f"judge.{k}": v for k, v in result.calibration.as_dict().items()
                  if isinstance(v, (int, float)) and v is not None})
    ctx.stats["judge_trusted"] = int(result.calibration.trusted)
    log.info("qrels repair: judge %s; %d false negatives added to the qrels, %d queries dropped",
             "trusted" if result.calibration.trusted else "not trusted (" + result.calibration.why + ")",
             stats["false_negatives_added"], len(drops))
    return StageResult(outputs={
        "final_queries": queries.filter(pa.array([q in kept for q in queries["id"].to_pylist()], pa.bool_())),
        "qrels": qrels, "hard_negatives": hard, "removed_negatives": removed,
        "audit": audit_table(result.audit, stage=ctx.stage),
        "judge_calibration": calibration_table(result.calibration),
        "reviews": reviews_table(human.values()),
    }, drops=drops, stats=stats)


def weak_queries(ctx: StageContext, queries: pa.Table, entities: dict[str, str]) -> dict[str, tuple[str, str]]:
    """The questions and requests the likelihood judge finds their positive explains too weakly, and the keyword
    searches of documents that name no one that their positive explains hardly better than another passage
    (none of either when its margin is off, or when an LLM judge scored no likelihoods). ``entities``: chunk id ->
    its document's entity (``chunk_entities``)."""
    pack = ctx.config.domain
    floor, lead = pack.repair.request_margin, pack.repair.search_margin
    if floor is None and lead is None:
        return {}
    scored = read_scored(ctx.read("likelihoods"))
    form = style_forms(pack.query_styles)
    ids = queries["id"].to_pylist()
    forms = {q: form.get(style) for q, style in zip(ids, queries["style"].to_pylist())}
    weak = {}
    if floor is not None:
        weak.update(weakly_explained(best_pmi(scored, POSITIVE), forms, pack.likelihood.threshold + floor))
    if lead is not None:
        unnamed = {q for q, chunks in zip(ids, queries["chunk_ids"].to_pylist())
                   if forms[q] == KEYWORDS and chunks and not entities.get(chunks[0])}
        weak.update(weakly_specific(specificity(scored), unnamed, lead))
    return weak


def human_decisions(ctx: StageContext, query_ids: set[str]) -> dict[str, Decision]:
    """People's decisions on this build's queries. Labels of queries the build no longer has (a rebuild with
    other settings writes other queries) are counted and left alone."""
    decisions = decide(LabelStore(ctx.rundir.root).read())
    stale = sorted(set(decisions) - query_ids)
    if stale:
        log.warning("%d labelled queries are not in this build (first: %s); their labels are not applied",
                    len(stale), stale[0])
        ctx.stats["human.labels_not_applied"] = len(stale)
    applied = {q: d for q, d in decisions.items() if q in query_ids}
    ctx.stats["human.reviewed"] = len(applied)
    return applied


def reviews_table(decisions) -> pa.Table:
    return pa.Table.from_pylist([{"query_id": d.query_id, "label": d.label, "votes": json.dumps(d.votes, sort_keys=True),
                                  "passages": list(d.passages), "notes": list(d.notes)}
                                 for d in sorted(decisions, key=lambda d: d.query_id)], schema=REVIEWS_SCHEMA)


def calibration_table(cal: Calibration) -> pa.Table:
    return pa.Table.from_pylist([{"trusted": cal.trusted, "why": cal.why, "calibration": json.dumps(cal.as_dict())}],
                                schema=CALIBRATION_SCHEMA)


def judge_trusted(table: pa.Table) -> bool:
    """Whether the qrels repair acted on the judge's verdicts, from its ``judge_calibration`` output."""
    return bool(table.num_rows) and bool(table["trusted"][0].as_py())
