"""assemble_task: the retrieval task in MTEB v2 layout, and beside it the reranking (top_ranked) and
downsampled-corpus tasks and the extra task types (pair classification, clustering, STS); each compiled with
mteb's quality rules, and ``benchmark.json`` listing them."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path

import pyarrow as pa

from .. import __version__
from ..engine.rundir import atomic_write_json, atomic_write_parquet, file_sha256
from ..engine.stage import StageContext, StageResult
from ..errors import QualityError
from ..evaluation.evaluate import retrieve
from ..generators.factory import resolve_backend
from ..labels.decide import review_summary
from ..tasks import TaskInfo, compile_task
from ..tasks.clustering import labels_from_metadata
from ..tasks.downsample import downsample_corpus
from ..tasks.layout import read_task_record
from ..tasks.pair_classification import pair_rows
from ..tasks.reranking import candidate_lists
from ..tasks.sts import sts_rows
from ..tasks.variants import (
    CLUSTERING,
    DOWNSAMPLED,
    PAIR_CLASSIFICATION,
    RERANKING,
    RETRIEVAL,
    RETRIEVAL_VARIANTS,
    STS,
    VARIANTS,
    variant_name,
)
from .common import embedding_cache
from .repair_qrels import judge_trusted

log = logging.getLogger(__name__)

CONFIG_KEYS = ("seed", "queries_per_chunk", "domain.tasks", "domain.license", "domain.description", "domain.name",
               "domain.reranking", "domain.downsample", "domain.language", "domain.extra_tasks", "domain.mining",
               "domain.generator")

# The datasets whose writers' drops explain an empty task: every query was dropped somewhere on the way.
QUERY_DATASETS = ("raw_queries", "qa_queries", "queries", "final_queries")


def run(ctx: StageContext) -> StageResult:
    cfg = ctx.config
    pack = cfg.domain
    chunks = ctx.read("chunks")
    queries = ctx.read("final_queries")
    negatives = ctx.read("negatives")
    removed = set(ctx.read("removed_negatives")["id"].to_pylist())
    negatives = negatives.filter(pa.array([i not in removed for i in negatives["id"].to_pylist()], pa.bool_()))
    if queries.num_rows == 0:
        reasons = Counter(d["reason"] for name in QUERY_DATASETS for d in ctx.drops_of(name))
        raise QualityError("no queries left to build a task from: every generated query was dropped ("
                           + (", ".join(f"{r}: {n}" for r, n in reasons.most_common()) or "none were written")
                           + "); see report.json or data/_drops/")
    cols = ["id", "title", "text"]
    corpus = pa.concat_tables([chunks.select(cols), negatives.select(cols)])
    qrels = ctx.read("qrels")
    q_table = queries.select(["id", "text"])
    spec = pack.tasks[0]
    provenance = provenance_of(ctx, queries)

    def info(variant: str, description: str) -> TaskInfo:
        return TaskInfo(name=variant_name(spec.name, variant), description=description, domain=pack.name,
                        language=pack.language, license=pack.license, provenance=provenance)

    base = spec.description or pack.description
    written = []
    write = VARIANTS[RETRIEVAL].writer
    task_dir = write(ctx.rundir.variant_dir(RETRIEVAL), corpus, q_table, qrels, info(RETRIEVAL, base))
    written.append((RETRIEVAL, task_dir, corpus.num_rows))
    # Beside the MTEB configs: where every query and corpus row came from (not loaded by mteb).
    atomic_write_parquet(task_dir / "provenance" / "queries.parquet", queries)
    synthetic = pa.table({"id": negatives["id"], "synthetic": pa.array([True] * negatives.num_rows),
                          "metadata": negatives["metadata"]})
    atomic_write_parquet(task_dir / "provenance" / "synthetic_corpus.parquet", synthetic)
    atomic_write_parquet(task_dir / "provenance" / "audit.parquet", ctx.read("audit"))

    stats: Counter = Counter(corpus=corpus.num_rows, queries=queries.num_rows, qrels=qrels.num_rows,
                             synthetic_negatives=negatives.num_rows)
    positives: dict[str, list[str]] = {}
    for q, c in zip(qrels["query-id"].to_pylist(), qrels["corpus-id"].to_pylist()):
        positives.setdefault(q, []).append(c)
    if pack.reranking.enabled and queries.num_rows:
        hard = {r["query_id"]: r["passage_ids"] for r in ctx.read("hard_negatives").to_pylist()}
        # Fill from safe pooled candidates only: a too-close one may be an unlabelled positive.
        pool: dict[str, list[str]] = {}
        for r in sorted(ctx.read("candidates").to_pylist(), key=lambda r: r["rank"]):
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
            d = VARIANTS[RERANKING].writer(
                ctx.rundir.variant_dir(RERANKING), corpus, rr_queries, rr_qrels,
                info(RERANKING, f"{base} Reranking: each query's positives among its mined hard "
                     f"negatives ({pack.reranking.candidates} candidates per query), pooled "
                     f"from {', '.join(pack.mining.retrievers)} and kept below "
                     f"{pack.mining.max_ratio:.0%} of the positive's mean cosine under "
                     f"{', '.join(pack.mining.score_models)} (those models had a say in "
                     f"which candidates are safe negatives)."),
                top_ranked=top)
            written.append((RERANKING, d, corpus.num_rows))
            stats["reranking_lists"] = top.num_rows
    if pack.downsample.enabled and queries.num_rows:
        ds = pack.downsample
        pools = {name: dict(zip(q_table["id"].to_pylist(),
                                retrieve(name, corpus, q_table, k=ds.top_k, cache=embedding_cache(ctx),
                                         language=pack.language)))
                 for name in ds.retrievers}
        small, dstats = downsample_corpus(corpus, qrels, pools, ds.top_k, ds.corpus_size, cfg.seed)
        d = VARIANTS[DOWNSAMPLED].writer(
            ctx.rundir.variant_dir(DOWNSAMPLED), small, q_table, qrels,
            info(DOWNSAMPLED, f"{base} Downsampled corpus: gold documents plus the top "
                 f"{ds.top_k} of {', '.join(ds.retrievers)}."))
        written.append((DOWNSAMPLED, d, small.num_rows))
        stats.update({f"downsample.{k}": v for k, v in dstats.items() if isinstance(v, (int, float))})
    trusted = judge_trusted(ctx.read("judge_calibration"))
    extra = write_extra_tasks(ctx, queries, qrels, corpus, info, base, trusted)
    # mteb's quality rules (a failure stops the build with every failing rule named), descriptive statistics,
    # the TaskMetadata and a ready-to-use task module, for each variant.
    for _, folder, _ in written:  # the retrieval-layout variants; the single-config types check themselves
        compile_task(folder)
    written += extra
    write_benchmark_draft(ctx, written)
    # The content hash makes the evaluate stage rerun when a task's data changes, whatever its size.
    tasks = pa.Table.from_pylist([{"variant": v, "path": str(p), "corpus": n, "sha256": folder_hash(p)}
                                  for v, p, n in written])
    return StageResult(outputs={"tasks": tasks}, stats=stats)


def write_extra_tasks(ctx: StageContext, queries: pa.Table, qrels: pa.Table, corpus: pa.Table, info, base: str,
                      trusted: bool) -> list[tuple[str, Path, int]]:
    """Pair classification, clustering (when the pack names a label field) and STS (when the judge is
    trusted), each an MTEB-layout folder beside the retrieval task."""
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
        hard = {r["query_id"]: r["passage_ids"] for r in ctx.read("hard_negatives").to_pylist()}
        rows = pair_rows(qtext, positives, hard, texts, seed=ctx.config.seed)
        if rows.num_rows:
            d = VARIANTS[PAIR_CLASSIFICATION].writer(rundir.variant_dir(PAIR_CLASSIFICATION), rows, info(
                PAIR_CLASSIFICATION, f"{base} Pair classification: is the passage relevant to the query "
                "(its positive) or one of its mined hard negatives?"))
            written.append((PAIR_CLASSIFICATION, d, rows.num_rows))
    if cfg.clustering_field:
        labelled = labels_from_metadata(ctx.read("chunks"), ctx.read("documents_clean"), cfg.clustering_field)
        d = VARIANTS[CLUSTERING].writer(rundir.variant_dir(CLUSTERING), labelled["text"].to_pylist(),
                                        labelled["label"].to_pylist(), info(
                                            CLUSTERING, f"{base} Clustering of passages by {cfg.clustering_field}."))
        written.append((CLUSTERING, d, labelled.num_rows))
    judgements = ctx.read("judgements")
    if cfg.sts and judgements.num_rows and trusted:
        rows = sts_rows(qtext, judgements, texts)
        d = VARIANTS[STS].writer(rundir.variant_dir(STS), rows, info(
            STS, f"{base} Query-passage similarity graded 0-3 by the LLM judge."), min_score=0, max_score=3)
        written.append((STS, d, rows.num_rows))
    return written


def write_benchmark_draft(ctx: StageContext, written) -> None:
    """benchmark.json: the run's tasks as one benchmark, for `build-bench publish RUN_DIR` to publish and pin."""
    pack = ctx.config.domain
    stem = pack.tasks[0].name
    stem = stem[: -len("Retrieval")] if stem.endswith("Retrieval") else stem
    atomic_write_json(ctx.rundir.root / "benchmark.json", {
        "name": stem, "description": pack.description,
        # The retrieval-layout tasks; publishing, validation and the registry speak that layout.
        "tasks": [{"variant": v, "name": read_task_record(p)["name"], "path": str(p)} for v, p, _ in written
                  if v in RETRIEVAL_VARIANTS],
    })


def folder_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.parquet")):
        h.update(f"{path.relative_to(folder)}:{file_sha256(path)}".encode())
    return h.hexdigest()[:16]


def provenance_of(ctx: StageContext, queries: pa.Table) -> dict:
    """What the task was built with: version, generator, recipes, seed, the query mix and the filter funnel."""
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
        "filters": filter_funnel(ctx),
        # People's review (build-bench label): the metadata says "reviewed" only when they reviewed every query.
        "human_review": review_summary(ctx.read("reviews").to_pylist(), queries["id"].to_pylist()),
    }


def filter_funnel(ctx: StageContext) -> dict[str, str]:
    """Per filter, "in -> kept", in build order, from the filter lists the filter stages left in the manifest."""
    return {f["name"]: f"{f['in']} -> {f['kept']}" for f in ctx.filters_so_far()}
