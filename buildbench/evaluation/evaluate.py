"""Score retrieval models on a written task: nDCG@k, Recall@k and MRR@k, per query and averaged.

Models:

- ``"bm25"``: bm25s over lowercased words without stopwords (stemmed when PyStemmer is installed);
- ``"random"``: a seeded random ranking, the floor every other model must clear;
- ``"minilm"``, ``"static"``, ``"mpnet"``, ``"e5-small"`` or a sentence-transformers folder/name: exact cosine
  search over embeddings from ``buildbench.engine.embeddings`` (cached when a cache is given; queries and
  documents are embedded as such, which asymmetric models like e5-small need).

The metrics are our own code, written to agree with trec_eval (which mteb uses): linear gains from the graded
qrels, a log2(rank + 1) discount, the ideal ranking taken from all of a query's judgements, and scores of 0 or
less counting as not relevant.

A reranking task (one with a ``top_ranked`` config) is scored as mteb scores it: each query's candidate list
is ordered by the model and nothing outside it is ranked; relevant documents missing from the list still count
in the ideal ranking.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..engine.embeddings import EmbeddingCache, embed
from ..engine.parallel import InProcess, Parallel, piece_size
from ..errors import InputError, require
from ..tasks.layout import CONFIGS, RERANKING, SPLIT, TASK_JSON, TOP_RANKED, read_task_record

log = logging.getLogger(__name__)

LEXICAL_MODELS = ("bm25", "random")
# Queries per piece of a search: at most this many, fewer so that each worker gets about two pieces, and not
# fewer than the least, below which a Ray task's fixed cost outweighs its search.
QUERY_PIECE, MIN_QUERY_PIECE = 4096, 256


# -- loading


def load_task(task_dir: Path) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(corpus, queries, qrels) of a written task, read straight from its Parquet files."""
    task_dir = Path(task_dir)
    tables = []
    for config in ("corpus", "queries", "default"):
        folder, columns = CONFIGS[config]
        paths = sorted((task_dir / folder).glob(f"{SPLIT}-*.parquet"))
        if not paths:
            raise InputError(f"{task_dir} has no {folder}/{SPLIT}-*.parquet; is it a buildbench task folder?")
        table = pa.concat_tables([pq.read_table(p, columns=list(columns)) for p in paths])
        tables.append(table)
    return tables[0], tables[1], tables[2]


def load_top_ranked(task_dir: Path) -> dict[str, list[str]] | None:
    """query id -> candidate corpus ids of a reranking task, in stored order; None for a retrieval task.

    task.json decides (type "Reranking"), so a stale top_ranked folder under a rewritten retrieval task is
    ignored; a bare MTEB folder without task.json is a reranking task when it has top_ranked shards.
    """
    task_dir = Path(task_dir)
    try:
        if read_task_record(task_dir).get("type") != RERANKING:
            return None
    except InputError:
        pass
    folder, columns = CONFIGS[TOP_RANKED]
    paths = sorted((task_dir / folder).glob(f"{SPLIT}-*.parquet"))
    if not paths:
        if (task_dir / TASK_JSON).exists():
            raise InputError(f"{task_dir} is a reranking task but has no {folder}/{SPLIT}-*.parquet")
        return None
    table = pa.concat_tables([pq.read_table(p, columns=list(columns)) for p in paths])
    return {
        str(q): [str(c) for c in (ids or [])]
        for q, ids in zip(table.column("query-id").to_pylist(), table.column("corpus-ids").to_pylist())
    }


def qrels_by_query(qrels: pa.Table) -> dict[str, dict[str, int]]:
    """query id -> {corpus id: grade}, all grades kept (a 0 is a judged non-relevant document)."""
    out: dict[str, dict[str, int]] = {}
    for q, c, s in zip(
        qrels.column("query-id").to_pylist(), qrels.column("corpus-id").to_pylist(), qrels.column("score").to_pylist()
    ):
        out.setdefault(q, {})[c] = int(s)
    return out


def document_texts(corpus: pa.Table) -> list[str]:
    """What a model reads for each document: title and text joined, exactly as mteb builds it."""
    titles = corpus.column("title").to_pylist() if "title" in corpus.column_names else [None] * corpus.num_rows
    texts = corpus.column("text").to_pylist()
    return [(f"{t} {x}".strip() if t else x.strip()) for t, x in zip(titles, texts)]


# -- metrics


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gains, discount 1/log2(rank + 1), and the ideal DCG from every judged grade."""
    dcg = 0.0
    for i, doc in enumerate(ranked[:k]):
        gain = relevant.get(doc, 0)
        if gain > 0:
            dcg += gain / math.log2(i + 2)
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Relevant documents in the top k over all relevant documents of the query."""
    positives = {d for d, g in relevant.items() if g > 0}
    if not positives:
        return 0.0
    return len(positives.intersection(ranked[:k])) / len(positives)


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant document in the top k, or 0."""
    for i, doc in enumerate(ranked[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


METRIC_FUNCS = {"ndcg": ndcg_at_k, "recall": recall_at_k, "mrr": mrr_at_k}


def metric_names(k: int) -> list[str]:
    return [f"{name}_at_{k}" for name in METRIC_FUNCS]


@dataclass
class QueryScores:
    """One model's metrics for every evaluated query, aligned with ``query_ids`` (what bootstrap CIs need)."""

    model: str
    k: int
    query_ids: list[str]
    metrics: dict[str, np.ndarray] = field(default_factory=dict)  # "ndcg_at_10" -> float64[len(query_ids)]
    seconds: float = 0.0

    def mean(self) -> dict[str, float]:
        return {name: float(values.mean()) if len(values) else 0.0 for name, values in self.metrics.items()}


def score_rankings(
    rankings: Sequence[Sequence[str]], query_ids: Sequence[str], qrels: Mapping[str, Mapping[str, int]], k: int
) -> dict[str, np.ndarray]:
    """Per-query metrics of ranked corpus ids; ``rankings[i]`` belongs to ``query_ids[i]``."""
    out = {}
    for name, func in METRIC_FUNCS.items():
        out[f"{name}_at_{k}"] = np.array(
            [func(list(ranked), qrels.get(q, {}), k) for q, ranked in zip(query_ids, rankings)], dtype=np.float64
        )
    return out


# -- retrieval


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best columns of each row, best first; ties go to the lower index (deterministic)."""
    n = scores.shape[1]
    k = min(k, n)
    if k == n:
        part = np.broadcast_to(np.arange(n), scores.shape)
    else:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _bm25_index(corpus_texts: list[str], query_texts: list[str], language: str):
    """A BM25 index of the corpus and each query's tokens (empty when the query has no usable token)."""
    bm25s = require("bm25s", "eval", "BM25 evaluation")
    stemmer = None
    # PyStemmer is optional: without it bm25s matches surface forms only, which is still a fair lexical baseline.
    if language == "en" and importlib.util.find_spec("Stemmer") is not None:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
    try:
        stopwords = list(bm25s.tokenization._infer_stopwords(language))
    except ValueError:
        stopwords = []  # bm25s has no stopword list for this language
    opts = {"lower": True, "stopwords": stopwords, "stemmer": stemmer, "show_progress": False}
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus_texts, **opts), show_progress=False)
    tokens = [[t for t in q if t] for q in bm25s.tokenize(query_texts, return_ids=False, **opts)]
    return retriever, tokens


def _bm25_scores(corpus_texts: list[str], query_texts: list[str], language: str) -> Iterator[np.ndarray | None]:
    """Yield, per query, the BM25 score of every document (None when the query has no usable token)."""
    retriever, tokens = _bm25_index(corpus_texts, query_texts, language)
    for t in tokens:
        yield retriever.get_scores(t) if t else None


def _bm25_top(tokens: list[list[str]], retriever, k: int) -> list[list[tuple[int, float]]]:
    """The top k of each query of a piece, by BM25 over the shared index (a Ray task on the ray engine)."""
    results = []
    for t in tokens:
        if not t:
            results.append([])  # nothing to match: BM25 retrieves nothing
            continue
        scores = retriever.get_scores(t)
        top = _top_k(scores[None, :], k)[0]
        # A document sharing no term with the query is not retrieved, as in any inverted index.
        results.append([(int(i), float(scores[i])) for i in top if scores[i] > 0])
    return results


def _dense_top(qs: np.ndarray, docs: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """The top k of each query of a piece by cosine over the shared document vectors (a Ray task on the ray
    engine). Exact search with numpy: the vectors are normalised, so a dot product is the cosine. faiss
    IndexFlatIP would give the same ranking; at task sizes (<1M documents) blocked matmul is fast enough and exact."""
    results: list[list[tuple[int, float]]] = []
    block = max(1, 2_000_000 // max(1, docs.shape[0]))  # bounds the score block to ~2M floats
    for start in range(0, qs.shape[0], block):
        scores = qs[start : start + block] @ docs.T
        top = _top_k(scores, k)
        for row, idx in zip(scores, top):
            results.append([(int(i), float(row[i])) for i in idx])
    return results


def _rescored(docs: np.ndarray, q: np.ndarray, rows: list[int], k: int) -> list[tuple[int, float]]:
    """The top k of ``rows`` by cosine with ``q``, each a row-wise sum (no BLAS): bit-identical in any process;
    ties go to the lower index."""
    idx = np.asarray(rows, dtype=np.int64)
    if not len(idx):
        return []
    scores = (docs[idx] * q).sum(axis=1)
    order = np.lexsort((idx, -scores))[:k]
    return [(int(idx[j]), float(scores[j])) for j in order]


def _in_pieces(parallel: Parallel, fn, rows, *shared) -> list:
    """``fn`` over pieces of ``rows`` (queries) with the index in ``shared``, as the engine runs pieces: in this
    process, or as Ray tasks that each read the index from the object store. Results keep the queries' order."""
    size = piece_size(len(rows), QUERY_PIECE, parallel.width, least=MIN_QUERY_PIECE)
    pieces = (rows[i : i + size] for i in range(0, len(rows), size))
    return [hit for piece in parallel.map(fn, pieces, *shared) for hit in piece]


def _random_search(n_docs: int, n_queries: int, k: int, seed: int) -> list[list[tuple[int, float]]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_queries):
        picked = rng.choice(n_docs, size=min(k, n_docs), replace=False).tolist()
        out.append([(int(i), 1.0 / (r + 1)) for r, i in enumerate(picked)])  # scores only order the list
    return out


def search(
    model: str,
    corpus: pa.Table,
    queries: pa.Table,
    k: int = 10,
    cache: EmbeddingCache | None = None,
    language: str = "en",
    seed: int = 0,
    batch_size: int = 64,
    parallel: Parallel | None = None,
) -> list[list[tuple[str, float]]]:
    """The top-k (corpus id, score) of each query, best first (fewer than k when BM25 matches fewer documents).

    Scores are BM25 scores, cosines for dense models, and 1/rank for "random". ``parallel``: where the search's
    pieces run (``ctx.parallel`` of a stage: Ray tasks on the ray engine); the index is built, and the texts
    embedded, here, once.
    """
    corpus_ids = corpus.column("id").to_pylist()
    query_texts = queries.column("text").to_pylist()
    parallel = parallel if parallel is not None else InProcess()
    if model == "bm25":
        retriever, tokens = _bm25_index(document_texts(corpus), query_texts, language)
        hits = _in_pieces(parallel, _bm25_top, tokens, retriever, k)
    elif model == "random":
        hits = _random_search(len(corpus_ids), len(query_texts), k, seed)
    else:
        # kind: asymmetric models (e5-small) encode queries and passages with different prefixes.
        docs = embed(model, document_texts(corpus), cache, batch_size=batch_size, kind="passage")
        qs = embed(model, query_texts, cache, batch_size=batch_size, kind="query")
        # Pieces may run in other processes, whose BLAS (other threads, other blocking) rounds the last bits of a
        # cosine differently, which could swap two near-tied documents at the k-th place. So each piece returns
        # twice k, and the top k is chosen here from cosines recomputed row by row: the same on every engine.
        fetched = _in_pieces(parallel, _dense_top, qs, docs, min(2 * k, docs.shape[0]))
        hits = [_rescored(docs, q, [i for i, _ in row], k) for q, row in zip(qs, fetched)]
    return [[(corpus_ids[i], s) for i, s in row] for row in hits]


def retrieve(model: str, corpus: pa.Table, queries: pa.Table, **options) -> list[list[str]]:
    """The top-k corpus ids of each query, best first: ``search`` without the scores (same options)."""
    return [[doc for doc, _ in row] for row in search(model, corpus, queries, **options)]


def rerank(
    model: str,
    corpus: pa.Table,
    queries: pa.Table,
    candidates: Sequence[Sequence[str]],
    cache: EmbeddingCache | None = None,
    language: str = "en",
    seed: int = 0,
    batch_size: int = 64,
) -> list[list[tuple[str, float]]]:
    """Every candidate of each query as (corpus id, score), best first; ``candidates[i]`` belongs to query i.

    Only a query's own candidates are ranked. BM25 scores them with the statistics of the whole corpus (a
    candidate sharing no term with the query scores 0 and still appears); dense models use the cosine;
    "random" is a shuffle seeded by ``seed``. Ties keep the order of the candidate list.
    """
    corpus_ids = corpus.column("id").to_pylist()
    position = {c: i for i, c in enumerate(corpus_ids)}
    unknown = [c for cands in candidates for c in cands if c not in position]
    if unknown:
        raise InputError(f"candidate lists name {len(set(unknown))} ids not in the corpus, e.g. {unknown[0]}")
    index_lists = [np.array([position[c] for c in cands], dtype=np.int64) for cands in candidates]

    def ranked(idx: np.ndarray, scores: np.ndarray) -> list[tuple[str, float]]:
        order = np.argsort(-scores, kind="stable")
        return [(corpus_ids[idx[j]], float(scores[j])) for j in order]

    if model == "random":
        rng = np.random.default_rng(seed)
        out = []
        for idx in index_lists:
            perm = rng.permutation(len(idx))
            out.append([(corpus_ids[idx[j]], 1.0 / (r + 1)) for r, j in enumerate(perm)])
        return out
    query_texts = queries.column("text").to_pylist()
    if model == "bm25":
        rows = _bm25_scores(document_texts(corpus), query_texts, language)
        return [
            ranked(idx, row[idx] if row is not None else np.zeros(len(idx))) for idx, row in zip(index_lists, rows)
        ]
    docs = embed(model, document_texts(corpus), cache, batch_size=batch_size, kind="passage")
    qs = embed(model, query_texts, cache, batch_size=batch_size, kind="query")
    return [ranked(idx, docs[idx] @ q) for idx, q in zip(index_lists, qs)]


# -- evaluation


def evaluate_task_per_query(
    task_dir: Path,
    models: list[str],
    k: int = 10,
    cache: EmbeddingCache | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> dict[str, QueryScores]:
    """Per-query nDCG/Recall/MRR@k for each model. Queries without a relevant document are skipped, as mteb does.

    On a reranking task (see ``load_top_ranked``) each query's candidate list is reranked instead of searching
    the corpus.
    seed: for the "random" model only.
    batch_size: texts per forward pass of dense models.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    task_dir = Path(task_dir)
    corpus, queries, qrels = load_task(task_dir)
    language = _task_language(task_dir)
    judged = qrels_by_query(qrels)
    keep = [i for i, q in enumerate(queries.column("id").to_pylist()) if any(g > 0 for g in judged.get(q, {}).values())]
    if len(keep) < queries.num_rows:
        log.warning("%s: %d queries have no relevant document and are not scored", task_dir, queries.num_rows - len(keep))
    queries = queries.take(pa.array(keep, pa.int64()))
    query_ids = queries.column("id").to_pylist()
    top_ranked = load_top_ranked(task_dir)
    candidates = [top_ranked.get(q, []) for q in query_ids] if top_ranked is not None else None

    out: dict[str, QueryScores] = {}
    for model in models:
        start = time.perf_counter()
        if candidates is None:
            rankings = retrieve(model, corpus, queries, k=k, cache=cache, language=language, seed=seed,
                                batch_size=batch_size)
        else:
            hits = rerank(model, corpus, queries, candidates, cache=cache, language=language, seed=seed,
                          batch_size=batch_size)
            rankings = [[doc for doc, _ in row] for row in hits]
        scores = QueryScores(model=model, k=k, query_ids=query_ids, metrics=score_rankings(rankings, query_ids, judged, k))
        scores.seconds = time.perf_counter() - start
        log.info("%s on %s: %s (%.1fs)", model, task_dir.name, scores.mean(), scores.seconds)
        out[model] = scores
    return out


def evaluate_task(task_dir: Path, models: list[str], **options) -> dict[str, dict[str, float]]:
    """Mean ``ndcg_at_{k}``, ``recall_at_{k}`` and ``mrr_at_{k}`` over queries, per model: the means of
    ``evaluate_task_per_query`` (same options: k, cache, seed, batch_size), which keeps the per-query values
    for bootstrap confidence intervals."""
    per_query = evaluate_task_per_query(task_dir, models, **options)
    return {model: scores.mean() for model, scores in per_query.items()}


def _task_language(task_dir: Path) -> str:
    try:
        return read_task_record(task_dir).get("language", "en")
    except InputError:
        return "en"  # a bare MTEB folder without task.json: English is the common case


def format_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """A plain-text table: one row per model, one column per metric, best model first by the first metric."""
    if not results:
        return "(no results)"
    metrics: list[str] = []
    for scores in results.values():
        metrics += [m for m in scores if m not in metrics]
    headers = ["model"] + [m.replace("_at_", "@") for m in metrics]
    rows = sorted(results.items(), key=lambda item: -float(item[1].get(metrics[0], float("-inf"))))
    body = [[model] + [f"{scores[m]:.4f}" if m in scores else "-" for m in metrics] for model, scores in rows]
    widths = [max(len(str(r[i])) for r in [headers] + body) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in body])
