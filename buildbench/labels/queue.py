"""The review queue: one ``ReviewItem`` per query of a run, with what a reviewer needs to judge it, and a
seeded sample stratified by persona, style, difficulty and recipe.

    items = review_items(run_dir)                      # the `queries` dataset (else `final_queries`)
    items = stratified_sample(items, 50, seed=0)       # every stratum as evenly as 50 allows

An item holds the query, its positive passages (from ``chunks``, else the LLM-written ``negatives``), its
closest mined candidates by rank with their decision and the retrievers that found them, and its provenance
(persona, style, difficulty, recipe, model and the filters of the build it passed). Not the judge's verdict:
the reviewer must not be steered by it.
"""

from __future__ import annotations

import ast
import json
import math
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..engine.rundir import MARKER, RunDir, is_run_dir
from ..engine.stage import Stage, manifest_filters, stage_writing
from ..errors import ConfigError
from ..stages.common import positives

# The datasets the queue reads. Queries: those that passed the filters (judge-dropped ones are reviewable
# too); a run folder from before that dataset was kept has only the repaired ones.
QUERY_DATASETS = ("queries", "final_queries")
CHUNKS, NEGATIVES, CANDIDATES = "chunks", "negatives", "candidates"
MAX_CANDIDATES = 8  # the closest ones shown, by rank; keys 1-9 pick one
STRATUM = ("persona", "style", "difficulty", "recipe")
CORPUS = "corpus"  # kinds of passage: a chunk of the corpus, or an LLM-written (synthetic) negative
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class Passage:
    id: str
    text: str
    title: str = ""
    doc_id: str = ""
    kind: str = CORPUS  # corpus, synthetic, or missing (named by the run but in neither dataset)


@dataclass(frozen=True)
class CandidateView:
    """One mined candidate of a query as the page shows it."""

    passage: Passage
    rank: int
    score: float
    ratio: float
    decision: str  # negative, pool, too_close, skipped_top, synthetic ... (quality.mining)
    found_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewItem:
    query_id: str
    text: str
    positives: tuple[Passage, ...]
    candidates: tuple[CandidateView, ...] = ()
    persona: str = ""
    style: str = ""
    difficulty: str = ""
    recipe: str = ""
    model: str = ""
    language: str = ""
    filters: tuple[str, ...] = ()  # the build's filters this query (and its passage) passed, in order
    dataset: str = ""  # the dataset it was read from (queries, else final_queries)

    @property
    def stratum(self) -> tuple[str, str, str, str]:
        return (self.persona, self.style, self.difficulty, self.recipe)

    @property
    def candidate_ids(self) -> frozenset[str]:
        return frozenset(c.passage.id for c in self.candidates)

    def to_json(self) -> dict[str, Any]:
        """The page's form of the item (plain JSON types)."""
        out = asdict(self)
        out["filters"] = list(self.filters)
        return out


def as_id_list(value: Any) -> list[str]:
    """A query's ``chunk_ids`` as a list: a list already, or a JSON or Python-literal list in text (some tables
    carry them so), or one bare id."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text[0] in "[(":
            for parse in (json.loads, ast.literal_eval):
                try:
                    parsed = parse(text)
                except (ValueError, SyntaxError, TypeError):
                    continue
                if isinstance(parsed, (list, tuple)):
                    return [str(x) for x in parsed]
        return [text]
    return [str(x) for x in value]


def _number(value: Any) -> float:
    """A finite float for the page (JSON has no NaN or infinity)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return 0.0
    return x if math.isfinite(x) else 0.0


def _registry(registry: Optional[Sequence[Stage]]) -> Sequence[Stage]:
    if registry is not None:
        return registry
    from ..pipeline import STAGES

    return STAGES


def _query_table(rd: RunDir) -> pa.Table:
    for name in QUERY_DATASETS:
        if rd.shards(name):
            return rd.read(name)
    raise ConfigError(f"{rd.root} has no queries to review (no {' or '.join(QUERY_DATASETS)} dataset): run the "
                      "build at least through filtering the queries")


def open_run(run_dir: str | Path) -> RunDir:
    """The run folder, or a ConfigError (exit 2) when ``run_dir`` is not one."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder")
    if not is_run_dir(root):
        raise ConfigError(f"{root} is not a build-bench run folder (no {MARKER} marker)")
    return RunDir(root, claim=False)


def _passages(rd: RunDir, ids: set[str]) -> dict[str, Passage]:
    """The chunks and LLM-written negatives among ``ids``, read column by column and filtered in Arrow."""
    out: dict[str, Passage] = {}
    wanted = pa.array(sorted(ids), pa.string())
    for name, kind in ((CHUNKS, CORPUS), (NEGATIVES, SYNTHETIC)):
        if not ids or not rd.shards(name):
            continue
        table = rd.read(name)
        cols = [c for c in ("id", "doc_id", "title", "text") if c in table.column_names]
        table = table.select(cols).filter(pc.is_in(table["id"], value_set=wanted))
        for row in table.to_pylist():
            if row["id"] not in out:
                out[row["id"]] = Passage(id=row["id"], text=row.get("text") or "", title=row.get("title") or "",
                                         doc_id=row.get("doc_id") or "", kind=kind)
    return out


def _candidates(rd: RunDir, query_ids: set[str], limit: int) -> dict[str, list[dict]]:
    """Query id -> its ``limit`` closest candidates by rank (rows of the candidates dataset)."""
    if not rd.shards(CANDIDATES) or limit <= 0:
        return {}
    table = rd.read(CANDIDATES)
    keep = pc.and_(pc.is_in(table["query_id"], value_set=pa.array(sorted(query_ids), pa.string())),
                   pc.less_equal(table["rank"], limit + 8))  # a little spare for positives among them
    out: dict[str, list[dict]] = defaultdict(list)
    for row in table.filter(keep).to_pylist():
        out[row["query_id"]].append(row)
    for rows in out.values():
        rows.sort(key=lambda r: (r["rank"] if r["rank"] is not None else 1 << 30, r["passage_id"]))
    return out


def candidate_ids(run_dir: str | Path) -> dict[str, set[str]]:
    """Each reviewable query and the ids of all its mined candidates but its own positives: what an imported
    missed positive may name. Reads ids only, no passage text."""
    rd = open_run(run_dir)
    pos = {qid: set(as_id_list(v)) for qid, v in positives(_query_table(rd)).items()}
    out: dict[str, set[str]] = {qid: set() for qid in pos}
    if rd.shards(CANDIDATES):
        table = rd.read(CANDIDATES)
        for qid, pid in zip(table["query_id"].to_pylist(), table["passage_id"].to_pylist()):
            if qid in out and pid not in pos[qid]:
                out[qid].add(pid)
    return out


def passed_filters(manifest: dict, registry: Sequence[Stage], dataset: str) -> tuple[str, ...]:
    """The filters of the stages up to the one writing ``dataset``, in build order: what a query of that dataset
    (and the chunk it was written from) passed."""
    writer = stage_writing(registry, dataset)
    names = [st.name for st in registry]
    upto = names[: names.index(writer) + 1] if writer in names else names
    return tuple(f["name"] for f in manifest_filters(manifest, registry) if f["stage"] in upto)


def review_items(run_dir: str | Path, *, max_candidates: int = MAX_CANDIDATES,
                 registry: Optional[Sequence[Stage]] = None) -> list[ReviewItem]:
    """Every query of the run as a ReviewItem, in the dataset's order. ConfigError when ``run_dir`` is not a
    run folder or has no queries. ``registry``: the build's stages (default: this build-bench's)."""
    rd = open_run(run_dir)
    queries = _query_table(rd)
    dataset = next(name for name in QUERY_DATASETS if rd.shards(name))
    pos = {qid: as_id_list(v) for qid, v in positives(queries).items()}
    cands = _candidates(rd, set(pos), max_candidates)
    wanted = {c for ids in pos.values() for c in ids} | {r["passage_id"] for rows in cands.values() for r in rows}
    passages = _passages(rd, wanted)
    filters = passed_filters(rd.load_manifest(), _registry(registry), dataset)

    def passage(pid: str) -> Passage:
        return passages.get(pid) or Passage(id=pid, text="", kind="missing")

    items = []
    for row in queries.to_pylist():
        qid = row["id"]
        own = set(pos[qid])
        shown = [r for r in cands.get(qid, []) if r["passage_id"] not in own][:max_candidates]
        items.append(ReviewItem(
            query_id=qid, text=row.get("text") or "", positives=tuple(passage(c) for c in pos[qid]),
            candidates=tuple(CandidateView(passage(r["passage_id"]), int(r["rank"] or 0), _number(r["score"]),
                                           _number(r["ratio"]), r["decision"] or "",
                                           tuple(as_id_list(r.get("found_by"))))
                             for r in shown),
            persona=row.get("persona") or "", style=row.get("style") or "", difficulty=row.get("difficulty") or "",
            recipe=row.get("recipe") or "", model=row.get("model") or "", language=row.get("language") or "",
            filters=filters, dataset=dataset))
    return items


def stratified_sample(items: Sequence[ReviewItem], n: int, seed: int = 0) -> list[ReviewItem]:
    """``n`` items spread over the strata (persona x style x difficulty x recipe) as evenly as ``n`` allows;
    all items when ``n`` covers them. Deterministic for a seed, whatever the order of ``items``.

    Each pick takes a query from a stratum with the fewest picks so far; among those, the one whose persona,
    style, difficulty and recipe values have been picked least (so with fewer picks than strata every value
    still shows up as often as it can), ties broken by the seeded random order.
    """
    if n < 0:
        raise ValueError("the sample size is not negative")
    rng = random.Random(seed)
    pools: dict[tuple[str, ...], list[ReviewItem]] = defaultdict(list)
    for item in sorted(items, key=lambda it: it.query_id):
        pools[item.stratum].append(item)
    for key in sorted(pools):
        rng.shuffle(pools[key])
    order = sorted(pools)
    rng.shuffle(order)
    tiebreak = {key: i for i, key in enumerate(order)}
    picked: Counter = Counter()
    values: list[Counter] = [Counter() for _ in STRATUM]
    out: list[ReviewItem] = []
    while len(out) < n and any(pools.values()):
        key = min((k for k in order if pools[k]),
                  key=lambda k: (picked[k], sum(values[d][v] for d, v in enumerate(k)), tiebreak[k]))
        out.append(pools[key].pop())
        picked[key] += 1
        for d, v in enumerate(key):
            values[d][v] += 1
    return out
