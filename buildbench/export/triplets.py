"""Training triplets (query, positive, hard negatives) from a finished run: the queries that survived its
filters and qrels repair (``final_queries``), their relevance judgements (``qrels``) and the hard negatives its
mining kept (``hard_negatives``), with passage texts from ``chunks`` and the LLM-written ``negatives``.

One query gives one triplet. Its positive is the passage it was written from (the first of its ``chunk_ids``
that the qrels hold as relevant, else its first relevant qrel); any further relevant passages the qrels repair
added (copies of the positive, passages the judge found relevant) ride along as ``other_positive_ids``: the
BEIR and jsonl formats list them, the sentence-transformers format trains on the first only, because a query
repeated in one batch would make its other positives in-batch negatives of itself. Negatives keep the mining's
order (closest first) and are never a positive of their query nor an LLM-written negative that the qrels repair
removed (``removed_negatives``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import BuildConfig
from ..domain_pack import FilterConfig
from ..engine.rundir import RunDir, is_build_bench_folder
from ..engine.stage import StageContext
from ..errors import InputError
from ..stages.common import chunk_titles, passage_texts, positives

log = logging.getLogger(__name__)

# The datasets an export reads; the queries come from the first of QUERY_DATASETS the run has.
QUERY_DATASETS = ("final_queries", "queries")
PASSAGE_DATASETS = ("chunks", "negatives")
LABEL_DATASETS = ("qrels", "hard_negatives")
REMOVED = "removed_negatives"


@dataclass(frozen=True)
class Triplet:
    """One training example: a query, its positive passage and its hard negatives (closest first)."""

    query_id: str
    query: str
    positive_id: str
    positive: str
    negative_ids: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ()
    # Further passages the qrels judge relevant to the query (see the module docstring).
    other_positive_ids: tuple[str, ...] = ()
    other_positives: tuple[str, ...] = ()

    @property
    def positive_ids(self) -> tuple[str, ...]:
        return (self.positive_id, *self.other_positive_ids)

    def keep_negatives(self, keep: list[bool]) -> Triplet:
        """This triplet with only the negatives whose flag in ``keep`` is true."""
        pairs = [(i, t) for i, t, k in zip(self.negative_ids, self.negatives, keep) if k]
        return Triplet(self.query_id, self.query, self.positive_id, self.positive,
                       tuple(i for i, _ in pairs), tuple(t for _, t in pairs),
                       self.other_positive_ids, self.other_positives)

    def first_negatives(self, k: int) -> Triplet:
        return self.keep_negatives([n < k for n in range(len(self.negative_ids))])


@dataclass
class RunSource:
    """What an export reads of a run folder."""

    root: Path
    manifest: dict[str, Any]
    config: BuildConfig | None
    query_dataset: str
    queries: list[tuple[str, str]]  # (id, text), in the run's order
    source_chunks: dict[str, list[str]]  # query id -> the chunks it was written from
    qrels: dict[str, list[str]]  # query id -> relevant corpus ids, in qrels order
    hard_negatives: dict[str, list[str]]
    texts: dict[str, str]  # every passage: chunks and LLM-written negatives
    titles: dict[str, str]
    synthetic: set[str]
    removed: set[str]

    @property
    def config_hash(self) -> str:
        return str(self.manifest.get("config_hash") or "")

    @property
    def filters(self) -> FilterConfig:
        """The run's filter settings (the defaults when its manifest has no readable config)."""
        return self.config.domain.filters if self.config is not None else FilterConfig()

    @property
    def domain(self) -> str:
        return self.config.domain.name if self.config is not None else ""


@dataclass
class BuildStats:
    """What building the triplets skipped, before any leakage check."""

    queries: int = 0
    triplets: int = 0
    skipped: Counter = field(default_factory=Counter)


def _config(manifest: dict[str, Any]) -> BuildConfig | None:
    try:
        return BuildConfig.model_validate(manifest.get("config"))
    except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        log.warning("the run's manifest.json has no readable config: the default dedup settings are used")
        return None


def load_run(run_dir: str | Path) -> RunSource:
    """Read a finished run folder (InputError, one line, when it is not one or has no final queries)."""
    root = Path(run_dir)
    if not root.is_dir() or not is_build_bench_folder(root):
        raise InputError(f"{root} is not a build-bench run folder (no .buildbench-run marker or manifest.json)")
    rundir = RunDir(root, claim=False)
    query_dataset = next((name for name in QUERY_DATASETS if rundir.has_dataset(name)), None)
    missing = [name for name in (*LABEL_DATASETS, *PASSAGE_DATASETS) if not rundir.has_dataset(name)]
    if query_dataset is None or missing:
        raise InputError(f"{root} has no final queries with qrels and hard negatives (missing: "
                         f"{', '.join(([] if query_dataset else ['final_queries']) + missing)}); finish the build "
                         "(rerun it without --until) before exporting")
    manifest = rundir.load_manifest()
    ctx = StageContext(config=_config(manifest), rundir=rundir, stage="export", log=log,
                       inputs=(query_dataset, *LABEL_DATASETS, *PASSAGE_DATASETS, REMOVED))
    queries = ctx.read(query_dataset)
    negatives = ctx.read("negatives")
    titles = dict(chunk_titles(ctx))
    titles.update(zip(negatives["id"].to_pylist(), negatives["title"].to_pylist()))
    qrels: dict[str, list[str]] = {}
    table = ctx.read("qrels")
    for q, c, s in zip(table["query-id"].to_pylist(), table["corpus-id"].to_pylist(), table["score"].to_pylist()):
        if s is not None and s > 0 and c not in qrels.setdefault(q, []):
            qrels[q].append(c)
    hard = {r["query_id"]: list(r["passage_ids"] or []) for r in ctx.read("hard_negatives").to_pylist()}
    removed = set(ctx.read(REMOVED)["id"].to_pylist()) if rundir.has_dataset(REMOVED) else set()
    return RunSource(
        root=root, manifest=manifest, config=ctx.config, query_dataset=query_dataset,
        queries=list(zip(queries["id"].to_pylist(), queries["text"].to_pylist())),
        source_chunks=positives(queries), qrels=qrels, hard_negatives=hard, texts=passage_texts(ctx),
        titles={k: v or "" for k, v in titles.items()}, synthetic=set(negatives["id"].to_pylist()), removed=removed,
    )


def build_triplets(source: RunSource) -> tuple[list[Triplet], BuildStats]:
    """One triplet per query that has a relevant passage with a text, with all of its usable hard negatives."""
    stats = BuildStats(queries=len(source.queries))
    out: list[Triplet] = []
    for qid, text in source.queries:
        relevant = [c for c in source.qrels.get(qid, []) if c in source.texts and c not in source.removed]
        if not text or not relevant:
            stats.skipped["no_positive" if text else "empty_query"] += 1
            continue
        first = next((c for c in source.source_chunks.get(qid) or [] if c in relevant), relevant[0])
        others = [c for c in relevant if c != first]
        negs = []
        for pid in source.hard_negatives.get(qid, []):
            if pid in source.removed:
                stats.skipped["negative_removed_by_repair"] += 1
            elif pid in relevant:
                stats.skipped["negative_is_a_positive"] += 1
            elif not source.texts.get(pid):
                stats.skipped["negative_without_text"] += 1
            elif pid not in negs:
                negs.append(pid)
        out.append(Triplet(qid, text, first, source.texts[first], tuple(negs),
                           tuple(source.texts[p] for p in negs), tuple(others),
                           tuple(source.texts[p] for p in others)))
    stats.triplets = len(out)
    return out, stats

