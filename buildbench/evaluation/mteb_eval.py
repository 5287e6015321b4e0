"""Rankings of a sentence-transformers model on a written task, as mteb itself produces them.

``mteb_rankings`` runs ``mteb.evaluate`` on ``make_mteb_task(task_dir)`` with the model, asks mteb to save its
predictions (``prediction_folder=``), and reads back each query's ranked corpus ids. The search -- mteb's
data loading from the task folder, its text building, its similarity function and its top-k -- is mteb's; the
per-query metrics are then computed with our ``score_rankings`` (which agrees with trec_eval), so that every
query has its own nDCG/Recall/MRR for the bootstrap.

With an ``EmbeddingCache``, mteb's encoder is wrapped so that texts the same model has already embedded are
read from the cache instead of being embedded again (the wrapper falls back to mteb's own encoding when the
model uses prompts, which our cache does not key on). Everything after the encoder is unchanged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ..engine.embeddings import EmbeddingCache, embed, get_model
from ..errors import InputError, require
from .evaluate import LEXICAL_MODELS, load_task, qrels_by_query

log = logging.getLogger(__name__)

# Models our own search always scores: they have no sentence-transformers object for mteb to wrap.
NOT_SENTENCE_TRANSFORMERS = (*LEXICAL_MODELS, "static", "e5-small")


def sentence_transformer(model_name: str) -> Any | None:
    """The ``SentenceTransformer`` behind a model name ("minilm", "mpnet" or a model path), or None for others."""
    if model_name in NOT_SENTENCE_TRANSFORMERS:
        return None
    st_model = getattr(get_model(model_name), "model", None)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return st_model if isinstance(st_model, SentenceTransformer) else None


def scored_query_ids(task_dir: Path) -> list[str]:
    """The queries a task is scored on, in file order: those with at least one relevant document (as mteb)."""
    _, queries, qrels = load_task(task_dir)
    judged = qrels_by_query(qrels)
    return [q for q in queries.column("id").to_pylist() if any(g > 0 for g in judged.get(q, {}).values())]


def _uses_prompts(st_model: Any) -> bool:
    prompts = getattr(st_model, "prompts", None) or {}
    return bool(getattr(st_model, "default_prompt_name", None)) or any(v for v in prompts.values())


def _encoder(model_name: str, st_model: Any, cache: EmbeddingCache | None, batch_size: int) -> Any:
    """What mteb.evaluate is given: the SentenceTransformer itself, or mteb's wrapper reading our cache first."""
    if cache is None or _uses_prompts(st_model):
        return st_model  # mteb wraps it in its SentenceTransformerEncoderWrapper
    wrappers = require("mteb.models.sentence_transformer_wrapper", "eval", "Evaluating with mteb")

    class CachedEncoder(wrappers.SentenceTransformerEncoderWrapper):
        """mteb's sentence-transformers wrapper; texts are embedded through ``embed`` (and its cache)."""

        def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs):
            try:
                texts = [text for batch in inputs for text in batch["text"]]
            except (KeyError, TypeError):  # not a text-only input: let mteb encode it
                texts = None
            if texts is None or not all(isinstance(t, str) for t in texts):
                return super().encode(inputs, task_metadata=task_metadata, hf_split=hf_split,
                                      hf_subset=hf_subset, prompt_type=prompt_type, **kwargs)
            return embed(model_name, texts, cache, batch_size=int(kwargs.get("batch_size") or batch_size))

    return CachedEncoder(st_model)


@contextlib.contextmanager
def _quiet_mteb():
    """No `datasets` progress bars and no mteb INFO lines while mteb runs (our logs and tables own the
    terminal); with DEBUG logging on, mteb keeps its INFO lines."""
    mteb_log = logging.getLogger("mteb")
    level = mteb_log.level
    if not log.isEnabledFor(logging.DEBUG):
        mteb_log.setLevel(logging.WARNING)
    try:
        import datasets
    except ImportError:  # pragma: no cover - mteb depends on datasets
        datasets = None
    was_enabled = datasets is not None and datasets.is_progress_bar_enabled()
    if datasets is not None:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        mteb_log.setLevel(level)
        if was_enabled:
            datasets.enable_progress_bars()


def mteb_search(
    task_dir: Path,
    model_name: str,
    k: int = 10,
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
) -> dict[str, list[tuple[str, float]]]:
    """query id -> the top-k (corpus id, score) mteb predicts, best first (ties: lower corpus id first)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    mteb = require("mteb", "eval", "Evaluating with mteb")
    from ..tasks.mteb_task import make_mteb_task

    st_model = sentence_transformer(model_name)
    if st_model is None:
        raise InputError(f"model '{model_name}' is not a sentence-transformers model; mteb cannot run it here")
    base = make_mteb_task(Path(task_dir))
    # A subclass whose largest cut-off is max(k, 10) (10: the main score): mteb then keeps and saves that many
    # documents per query instead of 1000.
    task_cls = type(type(base).__name__, (type(base),), {
        "k_values": tuple(sorted({1, 3, 5, 10, k})),
        "__module__": type(base).__module__,
    })
    task = task_cls()
    with tempfile.TemporaryDirectory(prefix="buildbench-mteb-") as tmp, warnings.catch_warnings(), \
            _quiet_mteb():
        # mteb 2.x calls sentence-transformers APIs that ST 6 renamed: harmless, and noisy.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        mteb.evaluate(
            _encoder(model_name, st_model, cache, batch_size),
            tasks=[task],
            cache=None,  # write nothing to ~/.cache/mteb
            overwrite_strategy="always",
            prediction_folder=tmp,
            show_progress_bar=False,
            encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
        )
        path = Path(tmp) / task.prediction_file_name
        if not path.exists():
            raise InputError(f"mteb wrote no predictions for {task_dir} (expected {path.name})")
        saved = json.loads(path.read_text(encoding="utf-8"))
    subsets = [v for key, v in saved.items() if key != "mteb_model_meta"]
    if len(subsets) != 1 or "test" not in subsets[0]:
        raise InputError(f"unexpected mteb predictions layout for {task_dir}: {sorted(saved)}")
    out = {}
    for query_id, scores in subsets[0]["test"].items():
        ranked = sorted(scores.items(), key=lambda item: (-float(item[1]), item[0]))[:k]
        out[str(query_id)] = [(str(doc), float(score)) for doc, score in ranked]
    return out


def mteb_rankings(
    task_dir: Path,
    model_name: str,
    k: int = 10,
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
    query_ids: list[str] | None = None,
) -> list[list[str]]:
    """Top-k corpus ids per query from mteb's predictions, aligned with ``query_ids``.

    query_ids: defaults to ``scored_query_ids(task_dir)``, the order ``evaluate_task_per_query`` uses. A query
        mteb returned nothing for gets an empty ranking (it scores 0).
    """
    hits = mteb_search(task_dir, model_name, k=k, cache=cache, batch_size=batch_size)
    if query_ids is None:
        query_ids = scored_query_ids(task_dir)
    missing = [q for q in query_ids if q not in hits]
    if missing:
        log.warning("%s: mteb returned no ranking for %d queries, e.g. %s", task_dir, len(missing), missing[0])
    return [[doc for doc, _ in hits.get(q, [])] for q in query_ids]
