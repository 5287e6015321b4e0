"""Scores with bootstrap confidence intervals, and diagnostics of whether a task measures anything.

``evaluate_with_ci`` scores models on a written task query by query (``evaluate_task_per_query``; with
``via_mteb=True`` sentence-transformers models are searched by mteb itself, see ``mteb_eval``) and returns
one JSON-able dict::

    {"task": str, "k": 10, "queries": int, "corpus": int, "n_boot": 1000,
     "models": {model: {"ndcg_at_10": {"mean", "ci_low", "ci_high"}, "recall_at_10": {...}, "mrr_at_10": {...}}},
     "diagnostics": {name: {..., "flag": bool, "message": str}},
     "scored_by": {model: "mteb" | "buildbench"}}

Confidence intervals are percentile bootstraps over queries (queries are the sampled unit: the corpus and
judgements are fixed). Every model is resampled with the same query indices, so differences between models
are paired.

Diagnostics (each flags a way a benchmark can fail to tell models apart or measure the wrong thing):

- ``saturation``: the best model's nDCG@k is >= 0.95; the task is too easy to rank models.
- ``random_baseline``: the "random" model's nDCG@k is above 0.05 (only when "random" was evaluated); the
  corpus is too small or queries have too many relevant documents for scores to mean much.
- ``lexical_leak``: BM25 beats every dense model by more than 0.05 nDCG@k; queries may copy their passages.
- ``discriminative_power``: a paired bootstrap test for every pair of models on nDCG@k (difference, 95% CI,
  p-value, significant), and the fraction of pairs told apart; flagged when under half are.
- ``ranking_stability``: queries are resampled, models ranked by mean nDCG@k, and each resample's ranking
  compared with the full one by Kendall's tau; flagged when the mean tau is under 0.8.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from ..engine.embeddings import EmbeddingCache
from ..errors import InputError
from ..tasks.layout import CONFIGS, SPLIT, TASK_JSON, read_task_record
from .evaluate import LEXICAL_MODELS, QueryScores, evaluate_task_per_query, load_task, qrels_by_query, score_rankings
from .results import EvaluationResult

log = logging.getLogger(__name__)

SATURATION = 0.95  # best nDCG@k at or above this: the task is saturated
RANDOM_CEILING = 0.05  # a random ranking should score at most this
LEAK_MARGIN = 0.05  # BM25 ahead of every dense model by more than this: lexical leak
ALPHA = 0.05  # significance level and (1 - coverage) of every interval
POWER_FLOOR = 0.5  # fewer significant pairs than this fraction: low discriminative power
STABILITY_FLOOR = 0.8  # mean Kendall tau under this: unstable model ranking

METRICS = ("ndcg", "recall", "mrr")


# -- bootstrap


def resample_indices(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n) query indices drawn with replacement; the same seed gives the same resamples."""
    if n < 1:
        raise ValueError("cannot bootstrap over zero queries")
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def resampled_means(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Mean of ``values`` under each resample (rows of ``idx``), in blocks to bound memory."""
    out = np.empty(idx.shape[0], dtype=np.float64)
    block = max(1, 4_000_000 // max(1, idx.shape[1]))
    for start in range(0, idx.shape[0], block):
        out[start : start + block] = values[idx[start : start + block]].mean(axis=1)
    return out


def percentile_interval(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    """The (alpha/2, 1 - alpha/2) percentiles of ``samples``, NaNs left out; (nan, nan) when none is left."""
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = ALPHA
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-query ``values`` and its percentile-bootstrap 1 - alpha interval."""
    values = np.asarray(values, dtype=np.float64)
    idx = resample_indices(len(values), n_boot, seed)
    low, high = percentile_interval(resampled_means(values, idx), alpha)
    mean = float(values.mean())
    # Percentiles of a discrete bootstrap can miss the mean by rounding only; keep mean inside [low, high].
    return mean, min(low, mean), max(high, mean)


def paired_test(
    a: np.ndarray, b: np.ndarray, idx: np.ndarray, alpha: float = ALPHA
) -> dict[str, float | bool]:
    """Paired bootstrap test of mean(a) == mean(b) over the same queries.

    The interval is the percentile bootstrap of the mean difference; the two-sided p-value is the share of
    resampled means of the centred differences at least as far from 0 as the observed one (Efron and
    Tibshirani's shift method), counted as (hits + 1) / (n_boot + 1) so it is never 0.
    """
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    observed = float(diff.mean())
    boot = resampled_means(diff, idx)
    low, high = percentile_interval(boot, alpha)
    centred = boot - observed
    hits = int(np.sum(np.abs(centred) >= abs(observed) - 1e-12))
    p_value = (hits + 1) / (len(boot) + 1)
    return {
        "difference": observed,
        "ci_low": min(low, observed),
        "ci_high": max(high, observed),
        "p_value": p_value,
        "significant": bool(p_value < alpha),
    }


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two score vectors (NaN when either is constant)."""
    from scipy.stats import kendalltau

    if len(x) < 2 or np.ptp(np.asarray(x, dtype=float)) == 0 or np.ptp(np.asarray(y, dtype=float)) == 0:
        return math.nan
    return float(kendalltau(x, y).statistic)


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho of two score vectors (NaN when either is constant)."""
    from scipy.stats import spearmanr

    if len(x) < 2 or np.ptp(np.asarray(x, dtype=float)) == 0 or np.ptp(np.asarray(y, dtype=float)) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


# -- scoring


def _is_sentence_transformer(model: str) -> bool:
    from .mteb_eval import sentence_transformer

    return sentence_transformer(model) is not None


def per_query_scores(
    task_dir: Path,
    models: Sequence[str],
    k: int = 10,
    cache: EmbeddingCache | None = None,
    seed: int = 0,
    batch_size: int = 64,
    via_mteb: bool = False,
) -> tuple[dict[str, QueryScores], dict[str, str]]:
    """Per-query metrics of each model, and who searched for it: "mteb" or "buildbench".

    via_mteb: search with mteb for sentence-transformers models ("minilm", model paths); BM25, random and
        "static" and "e5-small" always use our own search. A task mteb cannot load (no task.json) falls back to ours.
    """
    task_dir = Path(task_dir)
    models = list(dict.fromkeys(models))
    if not models:
        raise InputError("no models to evaluate")
    through_mteb: list[str] = []
    candidates = [m for m in models if m not in LEXICAL_MODELS + ("static", "e5-small")]
    if via_mteb and candidates:
        if (task_dir / TASK_JSON).exists():
            through_mteb = [m for m in candidates if _is_sentence_transformer(m)]
        elif task_dir.is_dir():
            log.warning("%s has no task.json, so mteb cannot load it; every model uses our own search", task_dir)
    ours = [m for m in models if m not in through_mteb]
    results = evaluate_task_per_query(task_dir, ours, k=k, cache=cache, seed=seed, batch_size=batch_size) if ours else {}
    if through_mteb:
        import time

        from .mteb_eval import mteb_rankings, scored_query_ids

        _, _, qrels = load_task(task_dir)
        judged = qrels_by_query(qrels)
        query_ids = scored_query_ids(task_dir)
        for model in through_mteb:
            start = time.perf_counter()
            rankings = mteb_rankings(task_dir, model, k=k, cache=cache, batch_size=batch_size, query_ids=query_ids)
            scores = QueryScores(model=model, k=k, query_ids=query_ids,
                                 metrics=score_rankings(rankings, query_ids, judged, k))
            scores.seconds = time.perf_counter() - start
            log.info("%s (mteb) on %s: %s (%.1fs)", model, task_dir.name, scores.mean(), scores.seconds)
            results[model] = scores
    scored_by = {m: ("mteb" if m in through_mteb else "buildbench") for m in models}
    return {m: results[m] for m in models}, scored_by


def task_name(task_dir: Path) -> str:
    try:
        return str(read_task_record(task_dir).get("name") or Path(task_dir).name)
    except InputError:
        return Path(task_dir).resolve().name


def corpus_size(task_dir: Path) -> int:
    folder, _ = CONFIGS["corpus"]
    return sum(pq.ParquetFile(p).metadata.num_rows for p in sorted((Path(task_dir) / folder).glob(f"{SPLIT}-*.parquet")))


def json_number(x: float | None) -> float | None:
    """Rounded for JSON; NaN (undefined) becomes None."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), 6)


def summarize(
    per_query: Mapping[str, QueryScores],
    task: str,
    corpus: int,
    k: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    scored_by: Mapping[str, str] | None = None,
) -> EvaluationResult:
    """The ``evaluate_with_ci`` dict from per-query scores (one ``QueryScores`` per model, same queries).

    An ``EvaluationResult``: the JSON-able dict, with ``to_pandas()`` for a table of means and intervals.
    """
    models = list(per_query)
    if not models:
        raise InputError("no models to summarize")
    query_ids = per_query[models[0]].query_ids
    for m in models[1:]:
        if per_query[m].query_ids != query_ids:
            raise ValueError(f"models {models[0]} and {m} were scored on different queries")
    if not query_ids:
        raise InputError(f"task {task} has no query with a relevant document to score")
    idx = resample_indices(len(query_ids), n_boot, seed)
    scores: dict[str, dict[str, dict[str, float | None]]] = {}
    for model in models:
        scores[model] = {}
        for name in METRICS:
            key = f"{name}_at_{k}"
            values = per_query[model].metrics[key]
            mean = float(values.mean())
            low, high = percentile_interval(resampled_means(values, idx), ALPHA)
            scores[model][key] = {"mean": json_number(mean), "ci_low": json_number(min(low, mean)),
                                  "ci_high": json_number(max(high, mean))}
    ndcg = {m: per_query[m].metrics[f"ndcg_at_{k}"] for m in models}
    result = EvaluationResult({
        "task": task,
        "k": k,
        "queries": len(query_ids),
        "corpus": int(corpus),
        "n_boot": n_boot,
        "models": scores,
        "diagnostics": diagnostics(ndcg, k=k, idx=idx),
    })
    if scored_by is not None:
        result["scored_by"] = dict(scored_by)
    return result


def evaluate_with_ci(
    task_dir: Path,
    models: Sequence[str],
    k: int = 10,
    cache: EmbeddingCache | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    via_mteb: bool = False,
    batch_size: int = 64,
) -> EvaluationResult:
    """Mean nDCG/Recall/MRR@k of each model with bootstrap CIs over queries, plus validity diagnostics.

    seed: seeds the bootstrap and the "random" model.
    via_mteb: sentence-transformers models are searched by mteb (see ``per_query_scores``).
    """
    task_dir = Path(task_dir)
    per_query, scored_by = per_query_scores(task_dir, models, k=k, cache=cache, seed=seed, batch_size=batch_size,
                                            via_mteb=via_mteb)
    return summarize(per_query, task_name(task_dir), corpus_size(task_dir), k=k, n_boot=n_boot, seed=seed,
                     scored_by=scored_by)


# -- diagnostics


def diagnostics(ndcg: Mapping[str, np.ndarray], k: int = 10, idx: np.ndarray | None = None,
                n_boot: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """The five diagnostics from per-query nDCG@k of each model (aligned arrays); ``idx``: resample indices."""
    models = list(ndcg)
    if idx is None:
        idx = resample_indices(len(next(iter(ndcg.values()))), n_boot, seed)
    means = {m: float(v.mean()) for m, v in ndcg.items()}
    return {
        "saturation": _saturation(means, k),
        "random_baseline": _random_baseline(means, k),
        "lexical_leak": _lexical_leak(means, k),
        "discriminative_power": _discriminative_power(ndcg, models, idx, k),
        "ranking_stability": _ranking_stability(ndcg, models, idx, k),
    }


def _saturation(means: Mapping[str, float], k: int) -> dict[str, Any]:
    best = max(means, key=lambda m: means[m])
    flag = means[best] >= SATURATION
    verdict = "saturated: too easy to rank models" if flag else "not saturated"
    return {
        "best_model": best,
        "best_ndcg": json_number(means[best]),
        "threshold": SATURATION,
        "flag": bool(flag),
        "message": f"best model {best} nDCG@{k} {means[best]:.3f} {'>=' if flag else '<'} {SATURATION}: {verdict}",
    }


def _random_baseline(means: Mapping[str, float], k: int) -> dict[str, Any]:
    if "random" not in means:
        return {"evaluated": False, "ndcg": None, "threshold": RANDOM_CEILING, "flag": False,
                "message": "random not evaluated"}
    value = means["random"]
    flag = value > RANDOM_CEILING
    message = (f"random nDCG@{k} {value:.3f} > {RANDOM_CEILING}: the corpus is too small or queries have too "
               "many relevant documents for scores to separate models from chance" if flag
               else f"random nDCG@{k} {value:.3f} <= {RANDOM_CEILING}, as expected")
    return {"evaluated": True, "ndcg": json_number(value), "threshold": RANDOM_CEILING, "flag": bool(flag), "message": message}


def _lexical_leak(means: Mapping[str, float], k: int) -> dict[str, Any]:
    dense = [m for m in means if m not in LEXICAL_MODELS]
    out: dict[str, Any] = {"bm25_ndcg": json_number(means.get("bm25")), "best_dense_model": None, "best_dense_ndcg": None,
                           "margin": None, "threshold": LEAK_MARGIN, "flag": False}
    if "bm25" not in means or not dense:
        out["message"] = "needs bm25 and at least one dense model"
        return out
    best = max(dense, key=lambda m: means[m])
    margin = means["bm25"] - means[best]
    flag = margin > LEAK_MARGIN
    out.update(best_dense_model=best, best_dense_ndcg=json_number(means[best]), margin=json_number(margin), flag=bool(flag))
    out["message"] = (
        f"bm25 beats every dense model by {margin:.3f} nDCG@{k} (best dense: {best} {means[best]:.3f}): "
        "queries may copy their passages" if flag
        else f"bm25 minus best dense model ({best}) nDCG@{k}: {margin:+.3f}, no lexical leak"
    )
    return out


def _discriminative_power(ndcg: Mapping[str, np.ndarray], models: list[str], idx: np.ndarray,
                          k: int) -> dict[str, Any]:
    pairs = []
    for a, b in itertools.combinations(models, 2):
        test = paired_test(ndcg[a], ndcg[b], idx)
        pairs.append({"model_a": a, "model_b": b, **{key: (json_number(v) if isinstance(v, float) else v)
                                                     for key, v in test.items()}})
    if not pairs:
        return {"pairs": [], "significant": 0, "significant_fraction": None, "alpha": ALPHA, "flag": False,
                "message": "needs at least two models"}
    n_sig = sum(p["significant"] for p in pairs)
    fraction = n_sig / len(pairs)
    flag = fraction < POWER_FLOOR
    message = (f"{n_sig} of {len(pairs)} model pairs differ significantly on nDCG@{k} (paired bootstrap, "
               f"p < {ALPHA})" + (": too few queries or too easy to tell models apart" if flag else ""))
    return {"pairs": pairs, "significant": n_sig, "significant_fraction": json_number(fraction), "alpha": ALPHA,
            "flag": bool(flag), "message": message}


def _ranking_stability(ndcg: Mapping[str, np.ndarray], models: list[str], idx: np.ndarray,
                       k: int) -> dict[str, Any]:
    out: dict[str, Any] = {"tau_mean": None, "ci_low": None, "ci_high": None, "undefined_resamples": 0,
                           "threshold": STABILITY_FLOOR, "flag": False}
    full = [float(ndcg[m].mean()) for m in models]
    if len(models) < 2 or np.ptp(full) == 0:
        out["message"] = "needs at least two models with different scores"
        return out
    boot = np.stack([resampled_means(ndcg[m], idx) for m in models], axis=1)  # (n_boot, models)
    taus = np.array([kendall_tau(full, row) for row in boot])
    defined = taus[~np.isnan(taus)]
    low, high = percentile_interval(taus, ALPHA)
    mean = float(defined.mean()) if defined.size else math.nan
    flag = not math.isnan(mean) and mean < STABILITY_FLOOR
    out.update(tau_mean=json_number(mean), ci_low=json_number(low), ci_high=json_number(high), undefined_resamples=int(np.isnan(taus).sum()),
               flag=bool(flag))
    out["message"] = (f"model ranking under query resampling: mean Kendall tau {mean:.3f} [{low:.3f}, {high:.3f}]"
                      + (": the ranking of models is not stable" if flag else ""))
    return out


# -- output


def format_ci_table(result: Mapping[str, Any]) -> str:
    """A plain-text table: one row per model, best first by nDCG@k, cells like ``0.366 [0.321, 0.410]``."""
    models = result.get("models") or {}
    if not models:
        return "(no results)"
    k = result.get("k", 10)
    keys = [f"{name}_at_{k}" for name in METRICS]
    headers = ["model"] + [key.replace("_at_", "@") for key in keys]

    def cell(stats: Mapping[str, Any] | None) -> str:
        if not stats or stats.get("mean") is None:
            return "-"
        low, high = stats.get("ci_low"), stats.get("ci_high")
        interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        return f"{stats['mean']:.3f}{interval}"

    rows = sorted(models.items(), key=lambda item: -float((item[1].get(keys[0]) or {}).get("mean") or 0.0))
    body = [[model] + [cell(scores.get(key)) for key in keys] for model, scores in rows]
    widths = [max(len(r[i]) for r in [headers] + body) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in body])


def format_diagnostics(result: Mapping[str, Any]) -> str:
    """One line per diagnostic, flagged ones marked ``[FLAG]``."""
    lines = []
    for name, diag in (result.get("diagnostics") or {}).items():
        mark = "[FLAG]" if diag.get("flag") else "[ok]  "
        lines.append(f"{mark} {name}: {diag.get('message', '')}")
    return "\n".join(lines)
