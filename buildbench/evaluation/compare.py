"""Does a synthetic task rank models as a human-labelled reference does?

``compare`` evaluates the same models on a built (synthetic) task and on a reference task with human
relevance labels, and measures how well the two model rankings (by nDCG@k) agree: Spearman's rho and
Kendall's tau, each with a bootstrap interval. Each resample draws the queries of BOTH tasks independently
with replacement, recomputes every model's mean nDCG@k on each, and recomputes rho and tau; the intervals are
the percentiles of those. With few models the correlations take few values, so the intervals are coarse.

The "random" baseline is scored and shown but left out of rho and tau: it is last on every task, so keeping it
adds a pair of agreeing ranks for free and inflates both correlations.

``load_reference`` accepts either a task folder in our MTEB layout (corpus/, queries/, qrels/ Parquet) or a
BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv), which it converts once into an MTEB-layout folder
in a cache directory, named by a hash of the BEIR files so a changed reference is converted again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..engine.embeddings import EmbeddingCache
from ..engine.rundir import make_temp_dir
from ..errors import InputError
from ..tasks.assemble import write_retrieval_task
from ..tasks.info import TaskInfo
from ..tasks.layout import CONFIGS, SPLIT, TASK_JSON
from .results import ComparisonResult
from .validity import (
    ALPHA,
    corpus_size,
    json_number,
    kendall_tau,
    per_query_scores,
    percentile_interval,
    resample_indices,
    resampled_means,
    spearman_rho,
    summarize,
    task_name,
)

log = logging.getLogger(__name__)

# Published rank correlations between a generated benchmark and the human-made one it stands in for, as
# reference points for reading our rho/tau (values as cited in the issue that asked for this comparison):
# YourBench's model ranking on its generated MMLU replica vs on MMLU, and AIR-Bench's generated data vs
# human-labelled data.
ANCHORS = {"YourBench vs MMLU": 1.0, "AIR-Bench vs human": 0.82}

BEIR_FILES = ("corpus.jsonl", "queries.jsonl", f"qrels/{SPLIT}.tsv")
CONVERTER_VERSION = "1"  # bump when the conversion changes, so cached folders are rebuilt
# Scored and shown, but not ranked: a floor that is last everywhere only inflates rank agreement.
EXCLUDED_FROM_CORRELATION = ("random",)


def default_reference_cache() -> Path:
    """Where converted references go by default: $BUILDBENCH_CACHE/reference or ~/.cache/buildbench/reference."""
    root = os.environ.get("BUILDBENCH_CACHE") or Path.home() / ".cache" / "buildbench"
    return Path(root) / "reference"


def is_mteb_folder(path: Path) -> bool:
    return all(any((Path(path) / CONFIGS[c][0]).glob(f"{SPLIT}-*.parquet")) for c in ("corpus", "queries", "default"))


def is_beir_folder(path: Path) -> bool:
    return all((Path(path) / name).is_file() for name in BEIR_FILES)


def _beir_hash(path: Path) -> str:
    h = hashlib.sha256(CONVERTER_VERSION.encode())
    for name in BEIR_FILES:
        h.update(name.encode())
        with open(path / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{n} is not JSON: {exc.msg}") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise InputError(f"{path}:{n} has no '_id'")
            rows.append(row)
    return rows


def _read_qrels(path: Path) -> list[tuple[str, str, int]]:
    """BEIR qrels: query-id, corpus-id, score, tab-separated; a header row is optional."""
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t"), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise InputError(f"{path}:{n} has {len(row)} columns; expected query-id, corpus-id, score")
            q, c, s = row[0], row[1], row[-1]
            try:
                score = int(float(s))
            except ValueError:
                if n == 1:
                    continue  # the header
                raise InputError(f"{path}:{n} has a non-numeric score {s!r}") from None
            out.append((q.strip(), c.strip(), score))
    return out


def _task_name(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).resolve().name).strip("_") or "reference"
    return name if name[0].isalpha() else f"ref_{name}"


def convert_beir(path: Path, out_dir: Path, language: str = "en") -> Path:
    """Write the BEIR folder ``path`` as an MTEB-layout task in ``out_dir``.

    Only the queries with at least one relevant document (score > 0) are kept, with all their judgements
    (grade-0 ones too); judgements of documents missing from the corpus are dropped with a warning.
    """
    path = Path(path)
    corpus_rows = _read_jsonl(path / "corpus.jsonl")
    query_rows = _read_jsonl(path / "queries.jsonl")
    qrels = _read_qrels(path / "qrels" / f"{SPLIT}.tsv")
    corpus_ids = [str(r["_id"]) for r in corpus_rows]
    corpus_set = set(corpus_ids)
    dangling = [(q, c, s) for q, c, s in qrels if c not in corpus_set]
    if dangling:
        log.warning("%s: %d judgements name documents not in the corpus; dropped", path, len(dangling))
        qrels = [r for r in qrels if r[1] in corpus_set]
    relevant = {q for q, _, s in qrels if s > 0}
    queries = [r for r in query_rows if str(r["_id"]) in relevant]
    kept = {str(r["_id"]) for r in queries}
    if not queries:
        raise InputError(f"{path}: no query in queries.jsonl has a relevant document in qrels/{SPLIT}.tsv")
    qrels = [r for r in qrels if r[0] in kept]
    info = TaskInfo(
        name=_task_name(path),
        description=f"Reference retrieval task with human relevance labels, converted from the BEIR folder "
        f"{path.name}.",
        domain="general",
        language=language,
        license="see source",
        provenance={
            "source": str(path.resolve()),
            "format": "beir",
            "sha256": _beir_hash(path),
            "queries_in_file": len(query_rows),
            "queries_without_relevant_dropped": len(query_rows) - len(queries),
            "qrels_dangling_dropped": len(dangling),
        },
    )
    corpus = pa.table({
        "id": corpus_ids,
        "title": [str(r.get("title") or "") for r in corpus_rows],
        "text": [str(r.get("text") or "") for r in corpus_rows],
    })
    return write_retrieval_task(
        out_dir,
        corpus,
        pa.table({"id": [str(r["_id"]) for r in queries], "text": [str(r.get("text") or "") for r in queries]}),
        pa.table({"query-id": [q for q, _, _ in qrels], "corpus-id": [c for _, c, _ in qrels],
                  "score": pa.array([s for _, _, s in qrels], pa.int64())}),
        info,
    )


def load_reference(path: Path, cache_dir: Path | None = None, language: str = "en") -> Path:
    """A task folder ``evaluate_task`` can read for ``path``: itself when it is in MTEB layout, else the
    BEIR folder converted (once) into ``cache_dir`` (default ``default_reference_cache()``)."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"reference {path} is not a folder")
    if is_mteb_folder(path):
        return path
    if not is_beir_folder(path):
        raise InputError(
            f"reference {path} is neither an MTEB-layout task (corpus/, queries/, qrels/ Parquet) nor a BEIR "
            f"folder ({', '.join(BEIR_FILES)})"
        )
    cache_dir = Path(cache_dir) if cache_dir is not None else default_reference_cache()
    target = cache_dir / f"{_task_name(path)}-{_beir_hash(path)[:16]}"
    if (target / TASK_JSON).exists():
        log.info("reference %s: reusing %s", path, target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place: a crash or a concurrent conversion never leaves a
    # half-written folder under the final name.
    tmp = make_temp_dir(cache_dir, prefix=f".{target.name}.")  # the umask's mode, not mkdtemp's 0700
    try:
        convert_beir(path, tmp, language=language)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / TASK_JSON).exists():
                raise
            # another process converted it first: theirs is identical
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("reference %s: converted to %s", path, target)
    return target


# -- comparison


def correlated_models(models: Sequence[str], exclude: Sequence[str] = EXCLUDED_FROM_CORRELATION) -> list[str]:
    """The models whose ranking rho and tau compare: all but the baselines in ``exclude``."""
    return [m for m in models if m not in exclude]


def correlation_bootstrap(
    synth: np.ndarray, ref: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = ALPHA,
    models: Sequence[str] | None = None, exclude: Sequence[str] = EXCLUDED_FROM_CORRELATION,
) -> dict[str, dict[str, float | None]]:
    """Spearman and Kendall between model means of two tasks, with intervals from resampling both tasks' queries.

    synth, ref: (models, queries) per-query nDCG of the same models, in the same order, on each task.
    models: the names of the rows; when given, rows named in ``exclude`` (the random baseline) are left out.
    """
    if models is not None:
        if len(models) != synth.shape[0] or len(models) != ref.shape[0]:
            raise ValueError(f"{len(models)} model names for {synth.shape[0]} and {ref.shape[0]} rows")
        keep = [i for i, m in enumerate(models) if m in correlated_models(models, exclude)]
        synth, ref = synth[keep], ref[keep]
    synth_means, ref_means = synth.mean(axis=1), ref.mean(axis=1)
    rng = np.random.default_rng(seed)
    seed_s, seed_r = (int(s) for s in rng.integers(0, 2**31 - 1, size=2))
    idx_s = resample_indices(synth.shape[1], n_boot, seed_s)
    idx_r = resample_indices(ref.shape[1], n_boot, seed_r)
    boot_s = np.stack([resampled_means(row, idx_s) for row in synth], axis=1)  # (n_boot, models)
    boot_r = np.stack([resampled_means(row, idx_r) for row in ref], axis=1)
    rhos = np.array([spearman_rho(a, b) for a, b in zip(boot_s, boot_r)])
    taus = np.array([kendall_tau(a, b) for a, b in zip(boot_s, boot_r)])
    out = {}
    for name, key, point, samples in (("spearman", "rho", spearman_rho(synth_means, ref_means), rhos),
                                      ("kendall", "tau", kendall_tau(synth_means, ref_means), taus)):
        low, high = percentile_interval(samples, alpha)
        if not math.isnan(point):
            low, high = (min(low, point), max(high, point)) if not math.isnan(low) else (point, point)
        out[name] = {key: json_number(point), "ci_low": json_number(low), "ci_high": json_number(high),
                     "undefined_resamples": int(np.isnan(samples).sum())}
    return out


def compare(
    synth_dir: Path,
    reference: Path,
    models: Sequence[str],
    k: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    via_mteb: bool = False,
    reference_cache: Path | None = None,
    batch_size: int = 64,
) -> ComparisonResult:
    """Evaluate ``models`` on the synthetic task and the reference, and correlate the two model rankings.

    reference: an MTEB-layout task folder or a BEIR folder (see ``load_reference``; converted into
        ``reference_cache``).
    Returns ``{"models", "correlated_models", "excluded_from_correlation", "synthetic", "reference",
    "spearman": {"rho", "ci_low", "ci_high"}, "kendall": {"tau", "ci_low", "ci_high"}, "anchors"}``: rho and
    tau rank ``correlated_models`` (all but "random"); "synthetic" and "reference" are
    ``evaluate_with_ci`` dicts. A ``ComparisonResult``: ``to_pandas()`` gives one row per side, model and metric.
    """
    models = list(dict.fromkeys(models))
    if len(models) < 2:
        raise InputError("comparing model rankings needs at least two models")
    synth_dir = Path(synth_dir)
    ref_dir = load_reference(reference, reference_cache)
    key = f"ndcg_at_{k}"
    sides: dict[str, dict[str, Any]] = {}
    arrays: dict[str, np.ndarray] = {}
    for side, task_dir in (("synthetic", synth_dir), ("reference", ref_dir)):
        per_query, scored_by = per_query_scores(task_dir, models, k=k, cache=cache, seed=seed,
                                                batch_size=batch_size, via_mteb=via_mteb)
        sides[side] = summarize(per_query, task_name(task_dir), corpus_size(task_dir), k=k, n_boot=n_boot,
                                seed=seed, scored_by=scored_by)
        arrays[side] = np.stack([per_query[m].metrics[key] for m in models])
    corr = correlation_bootstrap(arrays["synthetic"], arrays["reference"], n_boot=n_boot, seed=seed, models=models)
    return ComparisonResult({
        "models": models,
        "correlated_models": correlated_models(models),
        "excluded_from_correlation": [m for m in models if m not in correlated_models(models)],
        "k": k,
        "n_boot": n_boot,
        "reference_dir": str(ref_dir),
        "synthetic": sides["synthetic"],
        "reference": sides["reference"],
        "spearman": corr["spearman"],
        "kendall": corr["kendall"],
        "anchors": dict(ANCHORS),
    })


def format_compare(result: dict[str, Any]) -> str:
    """Per-model nDCG@k with intervals on both tasks, then the rank correlations and the anchors."""
    k = result.get("k", 10)
    key = f"ndcg_at_{k}"

    def cell(side: str, model: str) -> str:
        s = result[side]["models"].get(model, {}).get(key) or {}
        if s.get("mean") is None:
            return "-"
        return f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"

    syn, ref = result["synthetic"], result["reference"]
    headers = ["model", f"synthetic nDCG@{k}", f"reference nDCG@{k}"]
    order = sorted(result["models"],
                   key=lambda m: -float((ref["models"].get(m, {}).get(key) or {}).get("mean") or 0.0))
    body = [[m, cell("synthetic", m), cell("reference", m)] for m in order]
    widths = [max(len(r[i]) for r in [headers] + body) for i in range(3)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    ranked = result.get("correlated_models", result["models"])
    excluded = result.get("excluded_from_correlation", [])

    def corr(label: str, stats: dict[str, Any], sym: str) -> str:
        point = stats.get(sym)
        if point is None:
            why = "fewer than 2 models to rank" if len(ranked) < 2 else "a task scores every model the same"
            return f"{label} = undefined ({why})"
        return f"{label} = {point:.2f} [{stats['ci_low']:.2f}, {stats['ci_high']:.2f}]"

    over = f"{len(ranked)} models"
    if excluded:
        over += f"; {', '.join(excluded)} excluded: last on every task, it would inflate rho and tau"

    lines = [
        f"synthetic: {syn['task']} ({syn['queries']} queries, {syn['corpus']} documents)   "
        f"reference: {ref['task']} ({ref['queries']} queries, {ref['corpus']} documents)",
        line(headers),
        line(["-" * w for w in widths]),
        *[line(r) for r in body],
        "",
        f"{corr('Spearman rho', result['spearman'], 'rho')}, "
        f"{corr('Kendall tau', result['kendall'], 'tau')}  "
        f"({over}; {result['n_boot']} bootstrap resamples of both tasks' queries)",
        "Published anchors: " + ", ".join(f"{name} {value:.2f}" for name, value in result["anchors"].items()),
    ]
    return "\n".join(lines)
