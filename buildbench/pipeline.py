"""The stage registry of a build, and the library entry point ``build(config)``.

Every stage is declared once here: name, inputs, outputs, whether it needs an LLM, and the config keys it
reads (their hash decides whether a finished stage can be reused).
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from collections import Counter
from typing import Optional

import pyarrow as pa

from . import __version__
from .builders.chunking import chunk_documents
from .builders.readers import hub_address, read_documents, read_hub
from .config import BuildConfig, CopyConfig, HubSource, sample_dir
from .engine.rundir import RunDir, atomic_write_json
from .engine.runner import Runner
from .engine.stage import Stage, StageContext, StageResult
from .errors import ConfigError, InputError, QualityError
from .generators.recipes import PersonaQueryRecipe, plan_queries
from .quality import CopyFilter, LanguageFilter, LengthFilter, PromptEchoFilter, RoundTripFilter, dedup_texts
from .records import Chunk, Document, Drop, Query, empty_table, from_table, to_table
from .report import filter_table, make_report, render_html

log = logging.getLogger("buildbench")


# ---------------------------------------------------------------- ingest
def resolve_sources(config: BuildConfig):
    """The inputs of a run: --docs, else the pack's Hub source when reachable, else its bundled sample.

    Returns a list of specs for read_documents, or the pack's HubSource (which names its own split and fields).
    """
    if config.docs:
        return list(config.docs)
    pack = config.domain
    if pack.sources.hub and _hub_reachable():
        return pack.sources.hub
    sample = sample_dir(pack)
    if sample is None or not sample.exists():
        raise ConfigError(f"domain '{pack.name}' has no --docs, no reachable Hub source and no bundled sample")
    log.warning("No --docs given and the Hub is not reachable: building from the bundled sample corpus "
                "(%s), the team's own example documents.", sample)
    return [str(sample)]


def _hub_reachable(timeout: float = 3.0) -> bool:
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _ingest(ctx: StageContext) -> StageResult:
    cfg = ctx.config
    sources = resolve_sources(cfg)
    if isinstance(sources, HubSource):
        result = read_hub(sources, cfg.domain.reader, max_docs=cfg.max_docs or sources.max_docs)
        specs = [hub_address(sources)]
    else:
        specs = sources
        result = read_documents(specs, cfg.domain.reader, max_docs=cfg.max_docs)
    if not result.documents:
        raise InputError(f"no readable documents in {', '.join(specs)} "
                         f"({len(result.skipped)} inputs skipped; see the report)")
    for d in result.skipped:
        log.warning("skipped %s: %s (%s)", d.item_id, d.reason, d.detail)
    for w in result.warnings:
        log.info("note %s: %s", w.item_id, w.detail)
    ctx.rundir.write("ingest_warnings", to_table(result.warnings, Drop))
    return StageResult(
        outputs={"documents": to_table(result.documents, Document)},
        drops=result.skipped,
        stats={"sources": len(specs), "documents": len(result.documents), "skipped_inputs": len(result.skipped),
               "warnings": len(result.warnings),
               "bundled_sample": int(not cfg.docs and not isinstance(sources, HubSource))},
    )


# ---------------------------------------------------------------- documents
def _filter_documents(ctx: StageContext) -> StageResult:
    cfg = ctx.config.domain.filters
    table = ctx.rundir.read("documents")
    steps = []
    if cfg.doc_dedup.enabled:
        steps.append((_Dedup(cfg.doc_dedup, "doc_dedup"), None))
    if cfg.language.enabled:
        steps.append((LanguageFilter(ctx.config.domain.language, cfg.language, stage="doc_language"), None))
    stats: Counter = Counter()
    drops, keep = apply_filters(steps, table["id"].to_pylist(), table["text"].to_pylist(), stats)
    return StageResult(outputs={"documents_clean": table.filter(pa.array(keep, pa.bool_()))}, drops=drops,
                       stats=stats)


class _Dedup:
    """Exact then MinHash dedup as one filter step."""

    def __init__(self, cfg, name: str):
        self.cfg, self.name = cfg, name

    def apply(self, ids, texts, refs=None):
        return dedup_texts(ids, texts, self.cfg, self.name)


def apply_filters(steps, ids: list[str], texts: list[str], stats: Counter) -> tuple[list[Drop], list[bool]]:
    """Run filters in order, each over the items the earlier ones kept.

    ``steps`` holds (filter, refs) pairs: refs is the per-item reference list that filter needs (aligned
    with ids), or None. Each filter's in/dropped counts, seconds and own stats go into ``stats``.
    """
    keep = [True] * len(ids)
    drops: list[Drop] = []
    for flt, refs in steps:
        name = flt.name
        live = [i for i, k in enumerate(keep) if k]
        t0 = time.perf_counter()
        res = flt.apply([ids[i] for i in live], [texts[i] for i in live],
                        [refs[i] for i in live] if refs is not None else None)
        stats[f"{name}.in"] += len(live)
        stats[f"{name}.dropped"] += len(res.drops)
        stats[f"{name}.seconds"] += round(time.perf_counter() - t0, 4)
        for k, v in res.stats.items():
            stats[f"{name}.{k}"] += v
        for i, k in zip(live, res.keep):
            keep[i] = k
        drops.extend(res.drops)
    return drops, keep


# ---------------------------------------------------------------- chunks
def _chunk(shard: pa.Table, ctx: StageContext):
    docs = from_table(shard, Document)
    chunks, drops = chunk_documents(docs, ctx.config.domain.chunking)
    ctx.stats["chunks"] += len(chunks)
    return to_table(chunks, Chunk), drops


def _dedup_chunks(ctx: StageContext) -> StageResult:
    """Exact duplicate chunks across documents (a paragraph repeated verbatim in two statements whose other
    paragraphs differ): one copy stays, or the corpus would hold an unlabelled twin of a positive."""
    from .quality import ExactDedup

    table = ctx.rundir.read("chunks_raw")
    stats: Counter = Counter()
    drops, keep = apply_filters([(ExactDedup(stage="chunk_dedup"), None)], table["id"].to_pylist(),
                                table["text"].to_pylist(), stats)
    return StageResult(outputs={"chunks": table.filter(pa.array(keep, pa.bool_()))}, drops=drops, stats=stats)


# ---------------------------------------------------------------- queries
def _plan(ctx: StageContext) -> StageResult:
    ids = [i for t in ctx.rundir.iter_shards("chunks") for i in t["id"].to_pylist()]
    if not ctx.config.domain.recipes.persona:
        ids = []
    plan = plan_queries(ids, ctx.config.domain, ctx.config.queries_per_chunk, ctx.config.seed,
                        max_queries=ctx.config.max_queries)
    return StageResult(outputs={"plan": plan}, stats={"slots": plan.num_rows})


def make_llm(ctx: StageContext, role: str = "query_writer"):
    """A model role's backend behind the shared call cache, built once per process."""
    from .generators.cache import CachedLLM, LLMCache
    from .generators.factory import make_backend, role_config

    def build():
        cache = ctx.service("llm.cache", lambda: LLMCache(ctx.rundir.cache_dir / "llm.sqlite"))
        return CachedLLM(make_backend(role_config(ctx.config.domain, role)), cache)

    return ctx.service(f"llm.{role}", build)


@contextmanager
def track_llm(ctx: StageContext, llm):
    """Count the calls, cache hits, tokens, retries and failures made inside into the stage's stats."""
    before = Counter(llm.stats)
    try:
        yield llm
    finally:
        for k, v in (Counter(llm.stats) - before).items():
            ctx.stats[f"llm.{k}"] += v


def call_llm(ctx: StageContext, llm, requests):
    with track_llm(ctx, llm):
        return llm.generate(requests)


def _check_role(role: str, enabled=lambda pack: True):
    """A plan check: fail before any stage runs if a role's backend cannot be built (package, model, URL)."""

    def check(config: BuildConfig) -> None:
        from .generators.factory import check_backend, role_config

        if enabled(config.domain):
            check_backend(role_config(config.domain, role))

    return check


def _chunk_texts(ctx: StageContext) -> dict[str, str]:
    def load():
        table = ctx.rundir.read("chunks")
        return dict(zip(table["id"].to_pylist(), table["text"].to_pylist()))

    return ctx.service("chunk_texts", load)


def _generate(shard: pa.Table, ctx: StageContext):
    cfg = ctx.config
    llm = make_llm(ctx)
    recipe = ctx.service("recipe.persona", lambda: PersonaQueryRecipe(cfg.domain, cfg.domain.generator, cfg.seed))
    texts = _chunk_texts(ctx)
    slots = shard.to_pylist()
    requests = [recipe.build_request(s, texts[s["chunk_id"]]) for s in slots]
    results = call_llm(ctx, llm, requests)
    queries, drops = [], []
    for slot, req, res in zip(slots, requests, results):
        parsed = recipe.parse(res)
        if parsed.text is None:
            drops.append(Drop("generate_queries", slot["slot_id"], parsed.drop_reason, parsed.detail))
            continue
        queries.append(Query(
            id=f"q-{_short(slot['slot_id'])}",
            text=parsed.text, chunk_ids=[slot["chunk_id"]], recipe=recipe.name, persona=slot["persona"],
            style=slot["style"], difficulty=slot["difficulty"], language=cfg.domain.query_language,
            backend=llm.name, model=llm.model_id,
            prompt_hash=req.prompt_hash, cache_key=res.cache_key,
        ))
    ctx.stats["queries"] += len(queries)
    return to_table(queries, Query), drops


def _short(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _filter_queries(ctx: StageContext) -> StageResult:
    from .quality import CitationFilter, EasinessFilter, SemanticDedup

    pack = ctx.config.domain
    cfg = pack.filters
    table = pa.concat_tables([ctx.rundir.read("raw_queries"), ctx.rundir.read("qa_queries")])
    chunks = _chunk_texts(ctx)
    ids, texts = table["id"].to_pylist(), table["text"].to_pylist()
    sources = table["chunk_ids"].to_pylist()  # every chunk a query was written from
    personas = {p.id: p.description for p in pack.personas}
    styles = {s.id: s.instruction for s in pack.query_styles}
    levels = {d.id: d.instruction for d in pack.difficulties}
    instructions = [f"{personas.get(p, '')} {styles.get(s, '')} {levels.get(d, '')}" for p, s, d in
                    zip(table["persona"].to_pylist(), table["style"].to_pylist(), table["difficulty"].to_pylist())]
    cache = _embedding_cache(ctx)
    corpus = ctx.rundir.read("chunks").select(["id", "title", "text"])
    # Cheapest first; the retrieval-based checks run last, on what is left. Easiness is last of all because
    # its embedding percentile is taken over the queries that survive everything else.
    steps = [
        (LengthFilter(cfg.length, stage="query_length"), None),
        (PromptEchoFilter(cfg.prompt_echo_max_overlap, stage="query_prompt_echo"), instructions),
        (CopyFilter(cfg.copy_filter, stage="query_copy"), [" ".join(chunks[c] for c in cs) for cs in sources]),
    ]
    if cfg.grounding.enabled:
        steps.append((CitationFilter(cfg.grounding, stage="query_grounding"),
                      [(c, [chunks[x] for x in cs]) for c, cs in zip(table["citations"].to_pylist(), sources)]))
    if cfg.language.enabled:
        steps.append((LanguageFilter(pack.query_language, cfg.language, stage="query_language"), None))
    if cfg.query_dedup.enabled:
        steps.append((_Dedup(cfg.query_dedup, "query_dedup"), None))
    if cfg.semantic_dedup.enabled:
        steps.append((SemanticDedup(cfg.semantic_dedup, cache=cache, stage="query_semantic_dedup"), None))
    if cfg.round_trip.enabled:
        steps.append((RoundTripFilter(corpus, cfg.round_trip.retrievers, cfg.round_trip.k, cache=cache,
                                      language=pack.language, stage="query_round_trip"), sources))
    if cfg.easiness.enabled:
        steps.append((EasinessFilter(cfg.easiness, corpus, cache=cache, language=pack.language,
                                     stage="query_easiness"), sources))
    stats: Counter = Counter()
    drops, keep = apply_filters(steps, ids, texts, stats)
    return StageResult(outputs={"queries": table.filter(pa.array(keep, pa.bool_()))}, drops=drops, stats=stats)


def _embedding_cache(ctx: StageContext):
    """One embedding cache per run: each text is embedded once per model, whichever stage asks first."""
    from .engine.embeddings import EmbeddingCache

    return ctx.service("embeddings", lambda: EmbeddingCache(ctx.rundir.cache_dir / "embeddings"))


def _generate_qa(ctx: StageContext) -> StageResult:
    """YourBench: a summary per document, then single-hop and multi-hop questions with citations."""
    from .generators.recipes import YourBenchRecipe, plan_multihop

    pack, seed = ctx.config.domain, ctx.config.seed
    wanted = pack.recipes
    if not (wanted.yourbench_single or wanted.yourbench_multi):
        return StageResult(outputs={"qa_queries": empty_table(Query)})
    llm = make_llm(ctx, "qa_writer")
    recipe = YourBenchRecipe.from_pack(llm, pack, seed=seed)
    table = ctx.rundir.read("chunks")
    chunks = from_table(table, Chunk)
    queries: list[Query] = []
    with track_llm(ctx, llm):
        summaries, drops = recipe.summarize(chunks)
        by_doc = {s.doc_id: s.summary for s in summaries}
        if wanted.yourbench_single:
            q, d = recipe.single_hop(chunks, by_doc, questions_per_chunk=wanted.yourbench_single)
            queries += q
            drops += d
        if wanted.yourbench_multi:
            groups = plan_multihop(table, seed, max_per_doc=wanted.yourbench_multi)
            q, d = recipe.multi_hop(groups, {c.id: c for c in chunks}, by_doc)
            queries += q
            drops += d
    ctx.stats.update({f"recipe.{k}": v for k, v in recipe.stats.items()})
    return StageResult(outputs={"qa_queries": to_table(queries, Query)}, drops=drops)


def _write_negatives(ctx: StageContext) -> StageResult:
    """LLM-written hard negatives: passages that look relevant to a query but do not answer it."""
    from .generators.recipes import HardNegativeRecipe

    pack = ctx.config.domain
    n = pack.recipes.hard_negatives
    if not n:
        return StageResult(outputs={"negatives": empty_table(Document)})
    llm = make_llm(ctx, "negative_writer")
    recipe = HardNegativeRecipe.from_pack(llm, pack, seed=ctx.config.seed, negatives_per_query=n)
    queries = from_table(ctx.rundir.read("queries"), Query)
    texts = _chunk_texts(ctx)
    with track_llm(ctx, llm):
        passages, drops = recipe.write(queries, texts)
    ctx.stats.update({f"recipe.{k}": v for k, v in recipe.stats.items()})
    # A "negative" that repeats its query's positive would be an unlabelled relevant passage: drop it.
    positives = {q.id: " ".join(texts[c] for c in q.chunk_ids) for q in queries}
    copies = CopyFilter(CopyConfig(max_overlap=0.5, ngram=3), stage="negative_copy").apply(
        [p.id for p in passages], [p.text for p in passages],
        [positives[p.metadata["negative_for"]] for p in passages])
    passages = [p for p, k in zip(passages, copies.keep) if k]
    drops += [Drop(d.stage, d.item_id, "copies_positive", d.detail) for d in copies.drops]
    # Corpus rows marked synthetic: their metadata names the recipe and the query they were written for.
    docs = [Document(id=p.id, text=p.text, title=p.title, source="llm", metadata=p.metadata) for p in passages]
    return StageResult(outputs={"negatives": to_table(docs, Document)}, drops=drops)


def _positives(queries: pa.Table) -> dict[str, list[str]]:
    return dict(zip(queries["id"].to_pylist(), queries["chunk_ids"].to_pylist()))


def _mining_corpus(ctx: StageContext) -> pa.Table:
    """The chunks plus the LLM-written negatives: the corpus the task will have."""
    cols = ["id", "title", "text"]
    return pa.concat_tables([ctx.rundir.read("chunks").select(cols), ctx.rundir.read("negatives").select(cols)])


def _synthetic_by_query(negatives: pa.Table) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pid, meta in zip(negatives["id"].to_pylist(), negatives["metadata"].to_pylist()):
        out.setdefault(json.loads(meta or "{}").get("negative_for", ""), []).append(pid)
    return out


def _mine(ctx: StageContext) -> StageResult:
    """Pool hard-negative candidates from several retrievers; classify them against the positive's score."""
    from .quality.mining import candidates_table, mine

    pack = ctx.config.domain
    if not pack.mining.enabled:
        return StageResult(outputs={"candidates": candidates_table([])})
    queries = ctx.rundir.read("queries")
    t0 = time.perf_counter()
    cands = mine(_mining_corpus(ctx), queries.select(["id", "text"]), _positives(queries), pack.mining,
                 synthetic=_synthetic_by_query(ctx.rundir.read("negatives")), cache=_embedding_cache(ctx),
                 language=pack.language)
    stats = Counter(f"decision.{c.decision}" for c in cands)
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    stats["queries_with_too_close"] = len({c.query_id for c in cands if c.decision == "too_close"})
    return StageResult(outputs={"candidates": candidates_table(cands)}, stats=stats)


def _judge(ctx: StageContext) -> StageResult:
    """LLM judgements, calibration first: a sample of queries against their own positive and against a random
    passage of another document. Only a judge that tells those apart (or is trusted by config) goes on to
    judge every positive, the closest mined candidates and the LLM-written negatives, and each query's
    answerability; an untrusted judge's labels would not be acted on, so they are not paid for."""
    import random

    from .generators.recipes import JUDGEMENT_SCHEMA, QUERY_CHECK_SCHEMA, JudgePair, RelevanceJudge
    from .quality.mining import candidates_from_table, judge_selection
    from .quality.repair import CANDIDATE, CONTROL, POSITIVE, Verdict, calibrate

    pack, seed = ctx.config.domain, ctx.config.seed
    empty = {"judgements": JUDGEMENT_SCHEMA.empty_table(), "query_checks": QUERY_CHECK_SCHEMA.empty_table()}
    if not pack.recipes.judge:
        return StageResult(outputs=empty)
    texts = dict(_chunk_texts(ctx))
    negatives = ctx.rundir.read("negatives")
    texts.update(zip(negatives["id"].to_pylist(), negatives["text"].to_pylist()))
    q = ctx.rundir.read("queries")
    qtext = dict(zip(q["id"].to_pylist(), q["text"].to_pylist()))
    positives = _positives(q)
    chunks = ctx.rundir.read("chunks")
    doc_of = dict(zip(chunks["id"].to_pylist(), chunks["doc_id"].to_pylist()))
    rng = random.Random(seed)
    chunk_ids = sorted(doc_of)
    sample = rng.sample(sorted(qtext), min(pack.repair.controls, len(qtext)))
    first: list[JudgePair] = []
    for qid in sample:
        own = {doc_of.get(c) for c in positives[qid]}
        others = [c for c in chunk_ids if doc_of[c] not in own]
        if others:
            cid = rng.choice(others)
            first.append(JudgePair(qid, qtext[qid], positives[qid][0], texts[positives[qid][0]], POSITIVE))
            first.append(JudgePair(qid, qtext[qid], cid, texts[cid], CONTROL))
    llm = make_llm(ctx, "judge")
    judge = RelevanceJudge.from_pack(llm, pack, seed=seed)
    with track_llm(ctx, llm):
        judgements, drops = judge.judge(first)
        cal = calibrate([Verdict(j.query_id, j.passage_id, j.kind, j.label) for j in judgements], pack.repair)
        ctx.stats["calibration_pairs"] = len(first)
        checks = []
        if cal.trusted:
            done = {(p.query_id, p.passage_id) for p in first}
            rest = [JudgePair(qid, qtext[qid], cid, texts[cid], POSITIVE) for qid, cids in positives.items()
                    for cid in cids if (qid, cid) not in done]
            picked = judge_selection(candidates_from_table(ctx.rundir.read("candidates")), pack.mining)
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
    return StageResult(outputs={
        "judgements": pa.Table.from_pylist([j.__dict__ for j in judgements], schema=JUDGEMENT_SCHEMA),
        "query_checks": pa.Table.from_pylist([c.__dict__ for c in checks], schema=QUERY_CHECK_SCHEMA),
    }, drops=drops)


def _repair(ctx: StageContext) -> StageResult:
    """AIR-Bench qrels repair from the judgements, gated by the judge's calibration; the per-query audit."""
    from .quality.mining import candidates_from_table
    from .quality.repair import Answerability, Verdict, audit_table, repair

    pack = ctx.config.domain
    queries = ctx.rundir.read("queries")
    texts = dict(_chunk_texts(ctx))
    negatives = ctx.rundir.read("negatives")
    texts.update(zip(negatives["id"].to_pylist(), negatives["text"].to_pylist()))
    verdicts = [Verdict(r["query_id"], r["passage_id"], r["kind"], r["label"])
                for r in ctx.rundir.read("judgements").to_pylist()]
    checks = [Answerability(r["query_id"], r["self_contained"], r["clear_intent"], r["reason"])
              for r in ctx.rundir.read("query_checks").to_pylist()]
    result = repair(queries["id"].to_pylist(), _positives(queries),
                    candidates_from_table(ctx.rundir.read("candidates")), texts, verdicts, checks, pack.repair)
    kept = set(result.kept_queries)
    drops = [Drop("repair_qrels", e.query_id, e.reason, e.detail) for e in result.audit if e.action == "drop_query"]
    qrels = pa.Table.from_pylist([{"query-id": q, "corpus-id": c, "score": s} for q, c, s in result.qrels],
                                 schema=QRELS_SCHEMA)
    hard = pa.Table.from_pylist([{"query_id": q, "passage_ids": ids} for q, ids in result.hard_negatives.items()],
                                schema=pa.schema([("query_id", pa.string()), ("passage_ids", pa.list_(pa.string()))]))
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
        "audit": audit_table(result.audit),
    }, drops=drops, stats=stats)


QRELS_SCHEMA = pa.schema([("query-id", pa.string()), ("corpus-id", pa.string()), ("score", pa.int64())])


# ---------------------------------------------------------------- task
VARIANTS = ("retrieval", "reranking", "downsampled")


def _assemble(ctx: StageContext) -> StageResult:
    """The retrieval task, and beside it the reranking task and the downsampled-corpus task."""
    from .engine.rundir import atomic_write_parquet
    from .tasks.assemble import TaskInfo, write_retrieval_task
    from .tasks.downsample import downsample_corpus
    from .tasks.evaluate import retrieve
    from .tasks.reranking import candidate_lists

    cfg = ctx.config
    pack = cfg.domain
    chunks = ctx.rundir.read("chunks")
    queries = ctx.rundir.read("final_queries")
    negatives = ctx.rundir.read("negatives")
    removed = set(ctx.rundir.read("removed_negatives")["id"].to_pylist())
    negatives = negatives.filter(pa.array([i not in removed for i in negatives["id"].to_pylist()], pa.bool_()))
    if queries.num_rows == 0:
        reasons = Counter(d["reason"] for st in ("generate_queries", "generate_qa", "filter_queries", "repair_qrels")
                          if ctx.rundir.has_dataset(f"_drops/{st}")
                          for d in ctx.rundir.read(f"_drops/{st}").to_pylist())
        raise QualityError("no queries left to build a task from: every generated query was dropped ("
                           + (", ".join(f"{r}: {n}" for r, n in reasons.most_common()) or "none were written")
                           + "); see report.json or data/_drops/")
    cols = ["id", "title", "text"]
    corpus = pa.concat_tables([chunks.select(cols), negatives.select(cols)])
    qrels = ctx.rundir.read("qrels")
    q_table = queries.select(["id", "text"])
    spec = pack.tasks[0]
    provenance = _provenance(ctx, queries)

    def info(variant: str, description: str) -> TaskInfo:
        return TaskInfo(name=variant_name(spec.name, variant), description=description, domain=pack.name,
                        language=pack.language, license=pack.license, provenance=provenance)

    base = spec.description or pack.description
    written = []
    task_dir = write_retrieval_task(ctx.rundir.task_dir, corpus, q_table, qrels, info("retrieval", base))
    written.append(("retrieval", task_dir, corpus.num_rows))
    # Beside the MTEB configs: where every query and corpus row came from (not loaded by mteb).
    atomic_write_parquet(task_dir / "provenance" / "queries.parquet", queries)
    synthetic = pa.table({"id": negatives["id"], "synthetic": pa.array([True] * negatives.num_rows),
                          "metadata": negatives["metadata"]})
    atomic_write_parquet(task_dir / "provenance" / "synthetic_corpus.parquet", synthetic)
    atomic_write_parquet(task_dir / "provenance" / "audit.parquet", ctx.rundir.read("audit"))

    stats: Counter = Counter(corpus=corpus.num_rows, queries=queries.num_rows, qrels=qrels.num_rows,
                             synthetic_negatives=negatives.num_rows)
    positives: dict[str, list[str]] = {}
    for q, c in zip(qrels["query-id"].to_pylist(), qrels["corpus-id"].to_pylist()):
        positives.setdefault(q, []).append(c)
    cache = _embedding_cache(ctx)
    if pack.reranking.enabled and queries.num_rows:
        hard = {r["query_id"]: r["passage_ids"] for r in ctx.rundir.read("hard_negatives").to_pylist()}
        # Fill from safe pooled candidates only: a too-close one may be an unlabelled positive.
        pool: dict[str, list[str]] = {}
        for r in sorted(ctx.rundir.read("candidates").to_pylist(), key=lambda r: r["rank"]):
            if r["decision"] in ("negative", "pool") and r["passage_id"] not in removed:
                pool.setdefault(r["query_id"], []).append(r["passage_id"])
        top = candidate_lists(q_table["id"].to_pylist(), positives, hard, pool, pack.reranking.candidates, cfg.seed)
        sizes = [len(ids) for ids in top["corpus-ids"].to_pylist()]
        enough = pa.array([n >= pack.reranking.min_candidates for n in sizes], pa.bool_())
        short = [q for q, n in zip(top["query-id"].to_pylist(), sizes) if n < pack.reranking.min_candidates]
        if short:
            log.info("reranking: %d queries have fewer than %d safe candidates and are left out (first: %s)",
                     len(short), pack.reranking.min_candidates, ", ".join(short[:5]))
        top = top.filter(enough)
        kept = set(top["query-id"].to_pylist())
        rr_queries = q_table.filter(pa.array([q in kept for q in q_table["id"].to_pylist()], pa.bool_()))
        rr_qrels = qrels.filter(pa.array([q in kept for q in qrels["query-id"].to_pylist()], pa.bool_()))
        stats["reranking_short_lists_left_out"] = len(short)
        if not top.num_rows:
            log.warning("reranking: no query has %d safe candidates; no reranking task", pack.reranking.min_candidates)
        else:
            d = write_retrieval_task(ctx.rundir.variant_dir("reranking"), corpus, rr_queries, rr_qrels,
                                     info("reranking", f"{base} Reranking: each query's positives among its mined hard "
                                          f"negatives ({pack.reranking.candidates} candidates per query), pooled "
                                          f"from {', '.join(pack.mining.retrievers)} and kept below "
                                          f"{pack.mining.max_ratio:.0%} of the positive's mean cosine under "
                                          f"{', '.join(pack.mining.score_models)} (those models had a say in "
                                          f"which candidates are safe negatives)."),
                                     top_ranked=top)
            written.append(("reranking", d, corpus.num_rows))
            stats["reranking_lists"] = top.num_rows
    if pack.downsample.enabled and queries.num_rows:
        pools = {name: dict(zip(q_table["id"].to_pylist(),
                                retrieve(name, corpus, q_table, k=pack.downsample.top_k, cache=cache,
                                         language=pack.language)))
                 for name in pack.downsample.retrievers}
        small, dstats = downsample_corpus(corpus, qrels, pools, pack.downsample.top_k,
                                          pack.downsample.corpus_size, cfg.seed)
        d = write_retrieval_task(ctx.rundir.variant_dir("downsampled"), small, q_table, qrels,
                                 info("downsampled", f"{base} Downsampled corpus: gold documents plus the top "
                                      f"{pack.downsample.top_k} of {', '.join(pack.downsample.retrievers)}."))
        written.append(("downsampled", d, small.num_rows))
        stats.update({f"downsample.{k}": v for k, v in dstats.items() if isinstance(v, (int, float))})
    extra = _write_extra_tasks(ctx, queries, qrels, corpus, info, base)
    # mteb's quality rules (a failure stops the build with every failing rule named), descriptive statistics,
    # the TaskMetadata and a ready-to-use task module, for each variant.
    from .tasks.assemble import compile_task

    judged = bool(ctx.rundir.read("judgements").num_rows) and _judge_trusted(ctx)
    for _, folder, _ in written:  # retrieval, reranking, downsampled; the single-config types check themselves
        compile_task(folder, judged=judged)
    written += extra
    _write_benchmark_draft(ctx, written)
    # The content hash makes the evaluate stage rerun when a task's data changes, whatever its size.
    tasks = pa.Table.from_pylist([{"variant": v, "path": str(p), "corpus": n, "sha256": _folder_hash(p)}
                                  for v, p, n in written])
    return StageResult(outputs={"tasks": tasks}, stats=stats)


def _write_benchmark_draft(ctx: StageContext, written) -> None:
    """benchmark.json: the run's tasks as one benchmark, for `build-bench publish RUN_DIR` to publish and pin."""
    from .engine.rundir import atomic_write_json
    from .tasks.assemble import read_task_record

    pack = ctx.config.domain
    stem = pack.tasks[0].name
    stem = stem[: -len("Retrieval")] if stem.endswith("Retrieval") else stem
    atomic_write_json(ctx.rundir.root / "benchmark.json", {
        "name": stem, "description": pack.description,
        # The retrieval-layout tasks; publishing, validation and the registry speak that layout.
        "tasks": [{"variant": v, "name": read_task_record(p)["name"], "path": str(p)} for v, p, _ in written
                  if v in VARIANTS],
    })


def variant_name(name: str, variant: str) -> str:
    """BuildBenchFinanceRetrieval -> BuildBenchFinanceReranking, ...RetrievalDownsampled, ...PairClassification."""
    if variant == "retrieval":
        return name
    stem = name[: -len("Retrieval")] if name.endswith("Retrieval") else name
    return {"reranking": f"{stem}Reranking", "downsampled": f"{stem}RetrievalDownsampled",
            "pair_classification": f"{stem}PairClassification", "clustering": f"{stem}Clustering",
            "sts": f"{stem}STS"}.get(variant, f"{name}{variant.title()}")


def _write_extra_tasks(ctx: StageContext, queries: pa.Table, qrels: pa.Table, corpus: pa.Table, info,
                       base: str) -> list[tuple[str, object, int]]:
    """Pair classification, clustering (when the pack names a label field) and STS (when the judge is
    trusted), each an MTEB-layout folder beside the retrieval task."""
    from .tasks.clustering import labels_from_metadata, write_clustering_task
    from .tasks.pair_classification import pair_rows, write_pair_classification_task
    from .tasks.sts import sts_rows, write_sts_task

    pack, rundir = ctx.config.domain, ctx.rundir
    cfg = pack.extra_tasks
    written = []
    qtext = dict(zip(queries["id"].to_pylist(), queries["text"].to_pylist()))
    texts = dict(zip(corpus["id"].to_pylist(), corpus["text"].to_pylist()))
    positives: dict[str, list[str]] = {}
    for q, c, score in zip(qrels["query-id"].to_pylist(), qrels["corpus-id"].to_pylist(), qrels["score"].to_pylist()):
        if score > 0:
            positives.setdefault(q, []).append(c)
    if cfg.pair_classification and qtext:
        hard = {r["query_id"]: r["passage_ids"] for r in rundir.read("hard_negatives").to_pylist()}
        rows = pair_rows(qtext, positives, hard, texts, seed=ctx.config.seed)
        if rows.num_rows:
            d = write_pair_classification_task(rundir.variant_dir("pair_classification"), rows, info(
                "pair_classification", f"{base} Pair classification: is the passage relevant to the query "
                "(its positive) or one of its mined hard negatives?"))
            written.append(("pair_classification", d, rows.num_rows))
    if cfg.clustering_field:
        labelled = labels_from_metadata(rundir.read("chunks"), rundir.read("documents_clean"), cfg.clustering_field)
        d = write_clustering_task(rundir.variant_dir("clustering"), labelled["text"].to_pylist(),
                                  labelled["label"].to_pylist(), info(
                                      "clustering", f"{base} Clustering of passages by {cfg.clustering_field}."))
        written.append(("clustering", d, labelled.num_rows))
    judgements = rundir.read("judgements")
    if cfg.sts and judgements.num_rows and _judge_trusted(ctx):
        rows = sts_rows(qtext, judgements, texts)
        d = write_sts_task(rundir.variant_dir("sts"), rows, info(
            "sts", f"{base} Query-passage similarity graded 0-3 by the LLM judge."), min_score=0, max_score=3)
        written.append(("sts", d, rows.num_rows))
    return written


def _judge_trusted(ctx: StageContext) -> bool:
    """Whether the qrels repair acted on the judge's verdicts (its calibration passed)."""
    stats = ctx.rundir.load_manifest().get("stages", {}).get("repair_qrels", {}).get("stats", {})
    return bool(stats.get("judge_trusted"))


def _folder_hash(folder) -> str:
    import hashlib

    from .engine.rundir import file_sha256

    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.parquet")):
        h.update(f"{path.relative_to(folder)}:{file_sha256(path)}".encode())
    return h.hexdigest()[:16]


def _provenance(ctx: StageContext, queries: pa.Table) -> dict:
    from .generators.factory import resolve_backend

    gen = ctx.config.domain.generator
    return {
        "buildbench_version": __version__,
        "generator": f"{resolve_backend(gen)}:{gen.model}",
        "recipes": dict(Counter(queries["recipe"].to_pylist())),
        "difficulties": dict(Counter(queries["difficulty"].to_pylist())),
        "seed": ctx.config.seed,
        "queries_per_chunk": ctx.config.queries_per_chunk,
        "personas": dict(Counter(queries["persona"].to_pylist())),
        "styles": dict(Counter(queries["style"].to_pylist())),
        "filters": _filter_funnel(ctx.rundir.load_manifest()),
    }


def _filter_funnel(manifest: dict) -> dict[str, str]:
    """Per filter, "in -> kept", from the counters the filter stages left in the manifest."""
    return {name: f"{d['in']} -> {d['kept']}" for name, d in filter_table(manifest.get("stages", {})).items()}


def _evaluate(ctx: StageContext) -> StageResult:
    """Baselines on every written task variant, and how the downsampled corpus ranks models against the full one."""
    from .tasks.downsample import ranking_agreement
    from .tasks.evaluate import evaluate_task

    pack = ctx.config.domain
    cache = _embedding_cache(ctx)
    k = pack.eval.k
    rows = []
    tasks = ctx.rundir.read("tasks").to_pylist()
    results: dict[str, dict] = {}
    for t in tasks:
        if t["variant"] in MTEB_ONLY:
            scores = _mteb_scores(t["path"], t["variant"], pack.eval.models)
            rows += [{"task": t["variant"], "model": m, "metric": name, "value": float(v)}
                     for m, d in scores.items() for name, v in d.items()]
            continue
        models = list(pack.eval.models)
        if t["variant"] in ("retrieval", "downsampled") and pack.downsample.enabled:
            models += [m for m in pack.downsample.agreement_models if m not in models]
        results[t["variant"]] = evaluate_task(t["path"], models, k=k, cache=cache)
        rows += [{"task": t["variant"], "model": m, "metric": name, "value": float(v)}
                 for m, d in results[t["variant"]].items() for name, v in d.items()]
    validity = _validity(ctx, next((t for t in tasks if t["variant"] == "retrieval"), None))
    if "downsampled" in results:
        main = f"ndcg_at_{k}"
        models = pack.downsample.agreement_models
        agree = ranking_agreement({m: results["retrieval"][m][main] for m in models},
                                  {m: results["downsampled"][m][main] for m in models})
        for key, v in agree.items():
            if key == "scores":
                for m, pair in v.items():
                    ctx.stats[f"agreement.full.{m}"], ctx.stats[f"agreement.downsampled.{m}"] = pair["full"], pair["sub"]
            else:
                ctx.stats[f"agreement.{key}"] = " > ".join(v) if isinstance(v, list) else v
    return StageResult(outputs={"scores": pa.Table.from_pylist(rows, schema=SCORES_SCHEMA),
                                "validity": pa.table({"json": [json.dumps(validity)]})})


def _validity(ctx: StageContext, task: Optional[dict]) -> dict:
    """Bootstrap CIs and validity diagnostics of the retrieval task (models scored through mteb where they are
    sentence-transformers), also written into its dataset card."""
    from .tasks.assemble import set_card_section
    from .tasks.validity import evaluate_with_ci, format_ci_table, format_diagnostics

    if task is None:
        return {}
    pack = ctx.config.domain
    models = list(dict.fromkeys(["random", *pack.eval.models, *pack.eval.validity_models]))
    result = evaluate_with_ci(task["path"], models, k=pack.eval.k, cache=_embedding_cache(ctx),
                              n_boot=pack.eval.bootstrap, seed=ctx.config.seed, via_mteb=True)
    set_card_section(task["path"], "validity", [
        "## Validity", "",
        f"Scores with bootstrap 95% confidence intervals over the {result['queries']} queries "
        f"({result['n_boot']} resamples), and the diagnostics buildbench checks:", "",
        "```", format_ci_table(result), "", format_diagnostics(result), "```"])
    flagged = [name for name, d in result.get("diagnostics", {}).items() if d.get("flag")]
    if flagged:
        log.warning("validity diagnostics flagged: %s (see report.html)", ", ".join(flagged))
    return result


# Task types our own evaluator does not score: mteb does, with the sentence-transformers models among eval.models.
MTEB_ONLY = {"pair_classification": "buildbench.tasks.pair_classification:make_mteb_pair_task",
             "clustering": "buildbench.tasks.clustering:make_mteb_clustering_task",
             "sts": "buildbench.tasks.sts:make_mteb_sts_task"}


def _mteb_scores(path: str, variant: str, models: list[str]) -> dict[str, dict[str, float]]:
    import importlib

    import mteb

    from .engine.embeddings import get_model

    module, factory = MTEB_ONLY[variant].split(":")
    task = getattr(importlib.import_module(module), factory)(path)
    out = {}
    for name in models:
        if name in ("bm25", "random", "static"):
            continue  # not sentence-transformers models
        result = mteb.evaluate(get_model(name).model, tasks=[task], cache=None, show_progress_bar=False,
                               encode_kwargs={"show_progress_bar": False})
        scores = result.task_results[0].scores["test"][0]
        out[name] = {task.metadata.main_score: float(scores["main_score"])}
    return out


SCORES_SCHEMA = pa.schema([("task", pa.string()), ("model", pa.string()), ("metric", pa.string()),
                           ("value", pa.float64())])


STAGES: list[Stage] = [
    Stage("ingest", "read documents from files, folders, globs or the Hub; skip unreadable inputs",
          inputs=(), outputs=("documents",), kind="global", fn=_ingest,
          config_keys=("docs", "max_docs", "domain.reader", "domain.sources")),
    Stage("filter_documents", "exact and MinHash near-duplicate removal and language check of documents",
          inputs=("documents",), outputs=("documents_clean",), kind="global", fn=_filter_documents,
          config_keys=("domain.filters.doc_dedup", "domain.filters.language", "domain.language")),
    Stage("chunk", "sentence-aware chunking with a size budget and overlap",
          inputs=("documents_clean",), outputs=("chunks_raw",), kind="map", fn=_chunk,
          config_keys=("domain.chunking",)),
    Stage("dedup_chunks", "exact duplicate chunks across documents (one copy stays)",
          inputs=("chunks_raw",), outputs=("chunks",), kind="global", fn=_dedup_chunks, config_keys=()),
    Stage("plan_queries", "stratified persona x style x difficulty assignment of query slots to chunks",
          inputs=("chunks",), outputs=("plan",), kind="global", fn=_plan,
          config_keys=("queries_per_chunk", "max_queries", "seed", "domain.personas", "domain.query_styles",
                       "domain.difficulties", "domain.recipes.persona")),
    Stage("generate_queries", "persona-conditioned InPars few-shot query writing with the LLM",
          inputs=("plan", "chunks"), outputs=("raw_queries",), kind="map", fn=_generate, needs_llm=True,
          check=_check_role("query_writer", lambda p: p.recipes.persona),
          config_keys=("seed", "domain.generator", "domain.few_shot", "domain.personas", "domain.query_styles",
                       "domain.difficulties", "domain.name", "domain.language", "domain.recipes.query_language")),
    Stage("generate_qa", "YourBench summaries, single-hop and multi-hop questions with answers and citations",
          inputs=("chunks",), outputs=("qa_queries",), kind="global", fn=_generate_qa, needs_llm=True,
          check=_check_role("qa_writer", lambda p: p.recipes.yourbench_single or p.recipes.yourbench_multi),
          config_keys=("seed", "domain.recipes", "domain.qa_writer", "domain.generator", "domain.language")),
    Stage("filter_queries", "length, prompt-echo, copy, language, near-duplicate and round-trip filters",
          inputs=("raw_queries", "qa_queries", "chunks"), outputs=("queries",), kind="global", fn=_filter_queries,
          config_keys=("domain.filters", "domain.language", "domain.recipes.query_language")),
    Stage("write_negatives", "LLM-written hard negatives, added to the corpus marked synthetic",
          inputs=("queries", "chunks"), outputs=("negatives",), kind="global", fn=_write_negatives, needs_llm=True,
          check=_check_role("negative_writer", lambda p: p.recipes.hard_negatives),
          config_keys=("seed", "domain.recipes.hard_negatives", "domain.negative_writer", "domain.generator",
                       "domain.language")),
    Stage("mine_negatives", "pool candidates from BM25 and dense retrievers; TopK-PercPos against the positive",
          inputs=("queries", "chunks", "negatives"), outputs=("candidates",), kind="global", fn=_mine,
          config_keys=("domain.mining", "domain.language")),
    Stage("judge", "LLM judge: positives, closest candidates, LLM negatives, controls; query answerability",
          inputs=("queries", "candidates", "chunks", "negatives"), outputs=("judgements", "query_checks"),
          kind="global", fn=_judge, needs_llm=True, check=_check_role("judge", lambda p: p.recipes.judge),
          config_keys=("seed", "domain.recipes.judge", "domain.judge", "domain.generator", "domain.mining",
                       "domain.repair.controls", "domain.repair.answerability")),
    Stage("repair_qrels", "AIR-Bench qrels repair (judge calibrated on controls) and the per-query audit log",
          inputs=("queries", "candidates", "judgements", "query_checks", "chunks", "negatives"),
          outputs=("final_queries", "qrels", "hard_negatives", "removed_negatives", "audit"), kind="global",
          fn=_repair, config_keys=("domain.repair",)),
    Stage("assemble_task", "retrieval, reranking (top_ranked) and downsampled-corpus tasks in MTEB v2 layout",
          inputs=("final_queries", "qrels", "chunks", "negatives", "removed_negatives", "hard_negatives",
                  "candidates", "audit", "judgements"), outputs=("tasks",), kind="global", fn=_assemble,
          config_keys=("seed", "domain.tasks", "domain.license", "domain.description", "domain.name",
                       "domain.reranking", "domain.downsample", "domain.language", "domain.extra_tasks")),
    Stage("evaluate", "baselines on each task; bootstrap CIs and validity diagnostics; downsampled-vs-full agreement",
          inputs=("tasks", "qrels"), outputs=("scores", "validity"), kind="global", fn=_evaluate,
          config_keys=("domain.eval", "domain.downsample")),
]

# Rows per shard of the plan: a killed run loses at most the calls of one unfinished shard's batch, and
# those are in the LLM cache anyway.
PLAN_SHARD_ROWS = 32


def build(config: BuildConfig, progress: bool = True, stages: Optional[list[str]] = None) -> dict:
    """Run the build end to end (or up to the named stages); returns the report."""
    rundir = RunDir(config.out)
    selected = [s for s in STAGES if stages is None or s.name in stages]
    runner = Runner(selected, config, rundir, progress=progress, shard_rows={"plan": PLAN_SHARD_ROWS})
    t0 = time.perf_counter()
    manifest = runner.run()
    report = make_report(rundir, manifest, runner.this_run, time.perf_counter() - t0, [s.name for s in STAGES])
    cache = runner.services.get("embeddings")
    if cache is not None:
        report["embeddings"] = {"vectors_stored": cache.stored(), "served_from_cache_this_run": dict(cache.served),
                                "embedded_this_run": dict(cache.embedded)}
    atomic_write_json(rundir.report_path, report)
    render_html(rundir, report)
    return report
