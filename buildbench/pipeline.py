"""The stage registry of a build, and the library entry point ``build(config)``.

Every stage is declared once here: name, inputs, outputs, whether it needs an LLM, and its body, a module of
``buildbench.stages`` named after it, which declares the config keys it reads (their hash decides whether a
finished stage can be reused). A stage reads only the datasets it declares as inputs (``StageContext.read``).
"""

from __future__ import annotations

import time
from typing import Optional

from .config import BuildConfig
from .engine.remote import RunMirror, is_remote
from .engine.rundir import RunDir, atomic_write_json
from .engine.runner import Runner
from .engine.stage import Stage
from .errors import ConfigError
from .report import make_report, render_html
from .stages import (
    assemble_task,
    chunk,
    dedup_chunks,
    evaluate,
    filter_documents,
    filter_queries,
    generate_qa,
    generate_queries,
    ingest,
    judge,
    mine_negatives,
    plan_queries,
    repair_qrels,
    write_negatives,
)

# The stage names; other modules take them from here (or as arguments), never as string literals.
INGEST = "ingest"
FILTER_DOCUMENTS = "filter_documents"
CHUNK = "chunk"
DEDUP_CHUNKS = "dedup_chunks"
PLAN_QUERIES = "plan_queries"
GENERATE_QUERIES = "generate_queries"
GENERATE_QA = "generate_qa"
FILTER_QUERIES = "filter_queries"
WRITE_NEGATIVES = "write_negatives"
MINE_NEGATIVES = "mine_negatives"
JUDGE = "judge"
REPAIR_QRELS = "repair_qrels"
ASSEMBLE_TASK = "assemble_task"
EVALUATE = "evaluate"


def _stage(name: str, module, description: str, inputs: tuple[str, ...], outputs: tuple[str, ...],
           needs_llm: bool = False) -> Stage:
    """A registry entry whose body, config keys and plan check come from the stage's own module."""
    kind = "map" if hasattr(module, "run_shard") else "global"
    return Stage(name, description, inputs=inputs, outputs=outputs, kind=kind,
                 fn=module.run_shard if kind == "map" else module.run, config_keys=module.CONFIG_KEYS,
                 needs_llm=needs_llm, check=getattr(module, "check", None), files=getattr(module, "FILES", ()))


STAGES: list[Stage] = [
    _stage(INGEST, ingest, "read documents from files, folders, globs or the Hub; skip unreadable inputs",
           inputs=(), outputs=("documents",)),
    _stage(FILTER_DOCUMENTS, filter_documents,
           "exact and MinHash near-duplicate removal and language check of documents",
           inputs=("documents",), outputs=("documents_clean",)),
    _stage(CHUNK, chunk, "sentence-aware chunking with a size budget and overlap",
           inputs=("documents_clean",), outputs=("chunks_raw",)),
    _stage(DEDUP_CHUNKS, dedup_chunks, "exact duplicate chunks across documents (one copy stays)",
           inputs=("chunks_raw",), outputs=("chunks",)),
    _stage(PLAN_QUERIES, plan_queries,
           "stratified persona x style x difficulty slots; each gets a salient fact of its chunk and its document line",
           inputs=("chunks", "documents_clean"), outputs=("plan",)),
    _stage(GENERATE_QUERIES, generate_queries,
           "answer-first persona-conditioned InPars few-shot query writing with the LLM",
           inputs=("plan", "chunks"), outputs=("raw_queries",), needs_llm=True),
    _stage(GENERATE_QA, generate_qa,
           "YourBench summaries, single-hop and multi-hop questions with answers and citations",
           inputs=("chunks",), outputs=("qa_queries",), needs_llm=True),
    _stage(FILTER_QUERIES, filter_queries,
           "length, prompt-echo, copy, support, grounding, language, near-duplicate and round-trip filters",
           inputs=("raw_queries", "qa_queries", "chunks"), outputs=("queries",)),
    _stage(WRITE_NEGATIVES, write_negatives, "LLM-written hard negatives, added to the corpus marked synthetic",
           inputs=("queries", "chunks"), outputs=("negatives",), needs_llm=True),
    _stage(MINE_NEGATIVES, mine_negatives,
           "pool candidates from BM25 and dense retrievers; TopK-PercPos against the positive",
           inputs=("queries", "chunks", "negatives"), outputs=("candidates",)),
    _stage(JUDGE, judge,
           "relevance of positives, closest candidates and controls: query-likelihood judge, or the LLM judge "
           "(also LLM negatives and answerability)",
           inputs=("queries", "candidates", "chunks", "negatives"),
           outputs=("judgements", "query_checks", "likelihoods"), needs_llm=True),
    _stage(REPAIR_QRELS, repair_qrels,
           "people's labels (build-bench label) first, then AIR-Bench qrels repair (judge calibrated on controls or "
           "those labels); the per-query audit log",
           inputs=("queries", "candidates", "judgements", "query_checks", "likelihoods", "chunks", "negatives"),
           outputs=("final_queries", "qrels", "hard_negatives", "removed_negatives", "audit", "judge_calibration",
                    "reviews")),
    _stage(ASSEMBLE_TASK, assemble_task,
           "retrieval, reranking (top_ranked) and downsampled-corpus tasks in MTEB v2 layout",
           inputs=("final_queries", "qrels", "chunks", "negatives", "removed_negatives", "hard_negatives",
                   "candidates", "audit", "judgements", "judge_calibration", "documents_clean", "reviews"),
           outputs=("tasks",)),
    _stage(EVALUATE, evaluate,
           "baselines on each task; bootstrap CIs and validity diagnostics; downsampled-vs-full agreement",
           inputs=("tasks", "qrels"), outputs=("scores", "validity")),
]

# Rows per shard of the plan: a killed run loses at most the calls of one unfinished shard's batch, and
# those are in the LLM cache anyway.
PLAN_SHARD_ROWS = 32


def stages_until(until: Optional[str]) -> list[Stage]:
    """The stages up to and including ``until`` (all of them for None); ConfigError naming the known stages."""
    if until is None:
        return list(STAGES)
    names = [st.name for st in STAGES]
    if until not in names:
        raise ConfigError(f"unknown stage '{until}' (stages: {', '.join(names)})")
    return STAGES[: names.index(until) + 1]


def build(config: BuildConfig, until: Optional[str] = None, progress: bool = True,
          stages: Optional[list[str]] = None) -> dict:
    """Run the build end to end, or up to and including the stage ``until``, or only the named ``stages``;
    returns the report."""
    selected = stages_until(until)
    if stages is not None:
        unknown = sorted(set(stages) - {st.name for st in STAGES})
        if unknown:
            raise ConfigError(f"unknown stage(s) {', '.join(unknown)} (stages: {', '.join(st.name for st in STAGES)})")
        selected = [st for st in selected if st.name in stages]
    # A URL (s3://, gs://, file://...) is worked on in a local copy, pushed after every shard and stage.
    mirror = RunMirror(config.out) if is_remote(config.out) else None
    root = mirror.pull() if mirror is not None else config.out
    # Refuses, before any write, a folder that is not build-bench's and --docs inside the folder's data.
    rundir = RunDir(root, inputs=config.docs)
    runner = Runner(selected, config, rundir, progress=progress, shard_rows={"plan": PLAN_SHARD_ROWS},
                    registry=STAGES, on_commit=mirror.push if mirror is not None else None)
    t0 = time.perf_counter()
    try:
        manifest = runner.run()
        report = make_report(rundir, manifest, runner.this_run, time.perf_counter() - t0, STAGES, config=config)
        cache = runner.services.get("embeddings")
        if cache is not None:
            report["embeddings"] = {"vectors_stored": cache.stored(),
                                    "served_from_cache_this_run": dict(cache.served),
                                    "embedded_this_run": dict(cache.embedded)}
        atomic_write_json(rundir.report_path, report)
        render_html(rundir, report)
    finally:
        if mirror is not None:  # what finished is kept, also when a later stage failed
            mirror.push()
    return report
