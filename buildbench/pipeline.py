"""The stage registry of a build, and the library entry point ``build(config)``.

Every stage is declared once here: name, inputs, outputs, whether it needs an LLM, and the config keys it
reads (their hash decides whether a finished stage can be reused).
"""

from __future__ import annotations

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
from .engine.runner import Runner, drops_dataset
from .engine.stage import Stage, StageContext, StageResult
from .errors import ConfigError, InputError
from .generators.recipes import PersonaQueryRecipe, plan_queries
from .quality import CopyFilter, LanguageFilter, LengthFilter, PromptEchoFilter, RoundTripFilter, dedup_texts
from .records import Chunk, Document, Drop, Query, empty_table, from_table, to_table

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


# ---------------------------------------------------------------- queries
def _plan(ctx: StageContext) -> StageResult:
    ids = [i for t in ctx.rundir.iter_shards("chunks") for i in t["id"].to_pylist()]
    if not ctx.config.domain.recipes.persona:
        ids = []
    plan = plan_queries(ids, ctx.config.domain, ctx.config.queries_per_chunk, ctx.config.seed)
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
    from .engine.embeddings import EmbeddingCache

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
    # Cheapest first; the retrieval-based round trip runs last, on what is left.
    steps = [
        (LengthFilter(cfg.length, stage="query_length"), None),
        (PromptEchoFilter(cfg.prompt_echo_max_overlap, stage="query_prompt_echo"), instructions),
        (CopyFilter(cfg.copy_filter, stage="query_copy"), [" ".join(chunks[c] for c in cs) for cs in sources]),
    ]
    if cfg.language.enabled:
        steps.append((LanguageFilter(pack.query_language, cfg.language, stage="query_language"), None))
    if cfg.query_dedup.enabled:
        steps.append((_Dedup(cfg.query_dedup, "query_dedup"), None))
    if cfg.round_trip.enabled:
        corpus = ctx.rundir.read("chunks").select(["id", "title", "text"])
        steps.append((RoundTripFilter(corpus, cfg.round_trip.retrievers, cfg.round_trip.k,
                                      cache=EmbeddingCache(ctx.rundir.cache_dir / "embeddings"),
                                      language=pack.language, stage="query_round_trip"), sources))
    stats: Counter = Counter()
    drops, keep = apply_filters(steps, ids, texts, stats)
    return StageResult(outputs={"queries": table.filter(pa.array(keep, pa.bool_()))}, drops=drops, stats=stats)


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


def _judge(ctx: StageContext) -> StageResult:
    """Graded LLM relevance judgements of each accepted query against its positives."""
    from .generators.recipes import JUDGEMENT_SCHEMA, JudgePair, RelevanceJudge

    pack = ctx.config.domain
    if not pack.recipes.judge:
        return StageResult(outputs={"judgements": JUDGEMENT_SCHEMA.empty_table()})
    llm = make_llm(ctx, "judge")
    judge = RelevanceJudge.from_pack(llm, pack, seed=ctx.config.seed)
    texts = _chunk_texts(ctx)
    q = ctx.rundir.read("queries")
    pairs = [JudgePair(qid, text, cid, texts[cid])
             for qid, text, cids in zip(q["id"].to_pylist(), q["text"].to_pylist(), q["chunk_ids"].to_pylist())
             for cid in cids]
    with track_llm(ctx, llm):
        judgements, drops = judge.judge(pairs)
    ctx.stats.update({f"recipe.{k}": v for k, v in judge.stats.items()})
    ctx.stats.update({f"label.{j.label}": 0 for j in judgements})
    for j in judgements:
        ctx.stats[f"label.{j.label}"] += 1
    rows = [j.__dict__ for j in judgements]
    return StageResult(outputs={"judgements": pa.Table.from_pylist(rows, schema=JUDGEMENT_SCHEMA)}, drops=drops)


# ---------------------------------------------------------------- task
def _assemble(ctx: StageContext) -> StageResult:
    from .tasks.assemble import TaskInfo, write_retrieval_task

    from .engine.rundir import atomic_write_parquet

    cfg = ctx.config
    chunks = ctx.rundir.read("chunks")
    queries = ctx.rundir.read("queries")
    negatives = ctx.rundir.read("negatives")
    corpus = pa.concat_tables([chunks.select(["id", "title", "text"]), negatives.select(["id", "title", "text"])])
    qrels = pa.Table.from_pylist(
        [{"query-id": q, "corpus-id": c, "score": 1}
         for q, cs in zip(queries["id"].to_pylist(), queries["chunk_ids"].to_pylist()) for c in cs],
        schema=pa.schema([("query-id", pa.string()), ("corpus-id", pa.string()), ("score", pa.int64())]),
    )
    spec = cfg.domain.tasks[0]
    info = TaskInfo(
        name=spec.name, description=spec.description or cfg.domain.description, domain=cfg.domain.name,
        language=cfg.domain.language, license=cfg.domain.license,
        provenance=_provenance(ctx, queries),
    )
    task_dir = write_retrieval_task(ctx.rundir.task_dir, corpus, queries.select(["id", "text"]), qrels, info)
    # Beside the MTEB configs: where every query and corpus row came from (not loaded by mteb).
    atomic_write_parquet(task_dir / "provenance" / "queries.parquet", queries)
    synthetic = pa.table({"id": negatives["id"], "synthetic": pa.array([True] * negatives.num_rows),
                          "metadata": negatives["metadata"]})
    atomic_write_parquet(task_dir / "provenance" / "synthetic_corpus.parquet", synthetic)
    return StageResult(outputs={"qrels": qrels}, stats={"corpus": corpus.num_rows, "queries": queries.num_rows,
                                                        "qrels": qrels.num_rows,
                                                        "synthetic_negatives": negatives.num_rows})


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
    out = {}
    for stage in ("filter_documents", "filter_queries"):
        stats = manifest.get("stages", {}).get(stage, {}).get("stats", {})
        for key in sorted(k for k in stats if k.endswith(".in")):
            name = key[: -len(".in")]
            out[name] = f"{stats[key]} -> {stats[key] - stats.get(name + '.dropped', 0)}"
    return out


def _evaluate(ctx: StageContext) -> StageResult:
    from .engine.embeddings import EmbeddingCache
    from .tasks.evaluate import evaluate_task

    models = ctx.config.domain.eval.models
    scores = evaluate_task(ctx.rundir.task_dir, models, k=ctx.config.domain.eval.k,
                           cache=EmbeddingCache(ctx.rundir.cache_dir / "embeddings"))
    rows = [{"model": m, "metric": k, "value": float(v)} for m, d in scores.items() for k, v in d.items()]
    return StageResult(outputs={"scores": pa.Table.from_pylist(
        rows, schema=pa.schema([("model", pa.string()), ("metric", pa.string()), ("value", pa.float64())]))})


STAGES: list[Stage] = [
    Stage("ingest", "read documents from files, folders, globs or the Hub; skip unreadable inputs",
          inputs=(), outputs=("documents",), kind="global", fn=_ingest,
          config_keys=("docs", "max_docs", "domain.reader", "domain.sources")),
    Stage("filter_documents", "exact and MinHash near-duplicate removal and language check of documents",
          inputs=("documents",), outputs=("documents_clean",), kind="global", fn=_filter_documents,
          config_keys=("domain.filters.doc_dedup", "domain.filters.language", "domain.language")),
    Stage("chunk", "sentence-aware chunking with a size budget and overlap",
          inputs=("documents_clean",), outputs=("chunks",), kind="map", fn=_chunk,
          config_keys=("domain.chunking",)),
    Stage("plan_queries", "stratified persona x style x difficulty assignment of query slots to chunks",
          inputs=("chunks",), outputs=("plan",), kind="global", fn=_plan,
          config_keys=("queries_per_chunk", "seed", "domain.personas", "domain.query_styles",
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
    Stage("judge", "graded LLM relevance judgements of each query against its positives",
          inputs=("queries", "chunks"), outputs=("judgements",), kind="global", fn=_judge, needs_llm=True,
          check=_check_role("judge", lambda p: p.recipes.judge),
          config_keys=("seed", "domain.recipes.judge", "domain.judge", "domain.generator")),
    Stage("assemble_task", "the retrieval task in MTEB v2 layout with its dataset card",
          inputs=("queries", "chunks", "negatives"), outputs=("qrels",), kind="global", fn=_assemble,
          config_keys=("domain.tasks", "domain.license", "domain.description", "domain.name")),
    Stage("evaluate", "BM25 and dense baselines: nDCG@10, Recall@10, MRR@10",
          inputs=("qrels",), outputs=("scores",), kind="global", fn=_evaluate,
          config_keys=("domain.eval",)),
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
    report = make_report(rundir, manifest, runner.this_run, time.perf_counter() - t0)
    atomic_write_json(rundir.report_path, report)
    return report


def make_report(rundir: RunDir, manifest: dict, this_run: dict, seconds: float) -> dict:
    stages = {}
    for st in STAGES:
        entry = manifest.get("stages", {}).get(st.name)
        if not entry:
            continue
        stages[st.name] = {"seconds": entry.get("seconds"), "counts": entry.get("counts"),
                           "stats": entry.get("stats", {}),
                           "this_run": this_run.get(st.name, {"skipped": True})}
    drops: dict[str, list[dict]] = {}
    for st in STAGES:
        if rundir.has_dataset(drops_dataset(st.name)):
            rows = rundir.read(drops_dataset(st.name)).to_pylist()
            if rows:
                drops[st.name] = rows
    report = {
        "buildbench_version": __version__,
        "config_hash": manifest.get("config_hash"),
        "wall_seconds": round(seconds, 2),
        "stages": stages,
        "llm": _llm_accounting(rundir, this_run, stages),
        "inputs": {
            "skipped": drops.get("ingest", []),
            "warnings": rundir.read("ingest_warnings").to_pylist() if rundir.has_dataset("ingest_warnings") else [],
        },
        "queries": _query_mix(rundir),
        "drops": {k: _reason_counts(v) for k, v in drops.items()},
        # Every dropped item with its reason; also in data/_drops/<stage>/ as Parquet.
        "dropped_items": {k: v for k, v in drops.items() if k != "ingest"},
        "scores": _scores(rundir),
        "task_dir": str(rundir.task_dir),
    }
    return report


def _llm_accounting(rundir: RunDir, this_run: dict, stages: dict) -> dict:
    """This run's LLM work (zero on a rerun) and what the outputs cost in all (the call cache's contents)."""
    from .generators.cache import LLMCache

    run: Counter = Counter()
    for st in this_run.values():
        for k, v in st.get("stats", {}).items():
            if k.startswith("llm.") and isinstance(v, (int, float)):
                run[k[4:]] += v
    path = rundir.cache_dir / "llm.sqlite"
    stored = LLMCache(path).totals() if path.exists() else {"calls": 0, "tokens_in": 0, "tokens_out": 0}
    accepted = (stages.get("filter_queries", {}).get("counts") or {}).get("out") or 0
    return {
        "new_calls_this_run": int(run["calls"]),
        "cache_hits_this_run": int(run["cache_hits"]),
        "retries_this_run": int(run["retries"]),
        "failures_this_run": int(run["failures"]),
        "tokens_in_this_run": int(run["tokens_in"]),
        "tokens_out_this_run": int(run["tokens_out"]),
        "calls_total": stored["calls"],
        "tokens_in_total": stored["tokens_in"],
        "tokens_out_total": stored["tokens_out"],
        "calls_per_accepted_query": round(stored["calls"] / accepted, 3) if accepted else None,
    }


def _query_mix(rundir: RunDir) -> dict:
    """Accepted queries per recipe, persona, style and difficulty."""
    if not rundir.has_dataset("queries"):
        return {}
    q = rundir.read("queries")
    mix = {"accepted": q.num_rows}
    for col in ("recipe", "persona", "style", "difficulty", "language"):
        if col in q.column_names:
            mix[f"by_{col}"] = dict(Counter(v for v in q[col].to_pylist() if v))
    return mix


def _reason_counts(rows: list[dict]) -> dict[str, int]:
    return dict(Counter(f"{r['stage']}:{r['reason']}" for r in rows))


def _scores(rundir: RunDir) -> dict:
    if not rundir.has_dataset("scores"):
        return {}
    out: dict = {}
    for r in rundir.read("scores").to_pylist():
        out.setdefault(r["model"], {})[r["metric"]] = round(r["value"], 4)
    return out
