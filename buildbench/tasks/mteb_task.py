"""A written task as an mteb v2 ``AbsTaskRetrieval``, so ``mteb.evaluate`` runs it offline from its folder;
and ``compile_task``, which writes the compiled mteb task beside the data.

mteb's own loader reads the folder: ``load_dataset(<folder>, "corpus" | "queries" | "default")``, split
``test``, plus ``"top_ranked"`` when the card lists it. Nothing here re-implements loading, so what mteb scores
is exactly what was published.

Reranking tasks are ``AbsTaskRetrieval`` too in mteb 2.x: the ``top_ranked`` config is what makes mteb score
each query on its candidate list only, and ``type="Reranking"`` (from task.json) is what mteb and model
wrappers read to pick prompts and (for sparse models) dense embeddings.

The metadata itself is compiled in ``metadata.compile_metadata``, shared with the standalone task module.

``descriptive_statistics``: mteb's ``AbsTask.calculate_descriptive_statistics`` returns the stats file shipped
in mteb's package folder when one exists for the task's *name* (``descriptive_stats/<type>/<name>.json``) and
writes its result there. Both are wrong for a local task (a stale or foreign file; a write into
site-packages), so the per-split function ``_calculate_descriptive_statistics_from_split`` is called on the
loaded task instead: the same numbers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..engine.rundir import atomic_write_json
from ..errors import require
from .assemble import set_card_section
from .layout import SPLIT
from .metadata import METADATA_JSON, class_name, compile_metadata, write_task_module
from .rules import enforce_quality_rules

log = logging.getLogger(__name__)

DESCRIPTIVE_STATS_JSON = "descriptive_stats.json"
COMPILED_MARK = "<!-- buildbench:compiled -->"


def make_mteb_task(task_dir: Path, name: str | None = None, revision: str = "local"):
    """An mteb ``AbsTaskRetrieval`` instance over the task written in ``task_dir``, of the type in its task.json.

    name: the mteb task name (defaults to the name in task.json).
    revision: recorded in mteb's results as the dataset revision; a local folder has none, hence "local".
    """
    abstasks = require("mteb.abstasks", "eval", "Evaluating with mteb")
    metadata = compile_metadata(task_dir, revision=revision)
    if name:
        metadata = metadata.model_copy(update={"name": name})
    # A class per task, because mteb reads `metadata` from the class: this is how mteb's own tasks are declared.
    cls = type(
        f"BuildBench{metadata.type}_{metadata.name}",
        (abstasks.AbsTaskRetrieval,),
        {"metadata": metadata, "__module__": __name__},
    )
    return cls()


# -- descriptive statistics


def descriptive_statistics(task_dir: Path) -> dict[str, Any]:
    """mteb's descriptive statistics of the task's test split, as ``{"test": {...}}`` (mteb's file layout).

    Computed by mteb (``AbsTaskRetrieval._calculate_descriptive_statistics_from_split``) on the task loaded
    offline from ``task_dir``: counts of queries and documents, text lengths and unique texts, relevant
    documents per query, missing ids and, for reranking tasks, candidates per query.
    """
    task = make_mteb_task(Path(task_dir))
    task.load_data()
    stats = task._calculate_descriptive_statistics_from_split(SPLIT)
    return {SPLIT: _plain(dict(stats))}


def write_descriptive_statistics(task_dir: Path) -> Path:
    """Write ``<task_dir>/descriptive_stats.json`` (atomically); returns its path."""
    path = Path(task_dir) / DESCRIPTIVE_STATS_JSON
    atomic_write_json(path, descriptive_statistics(task_dir))
    return path


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars become Python numbers; tuples lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


# -- compiling a written task for mteb


def compile_task(task_dir: Path, *, repo: str | None = None, revision: str = "local") -> dict[str, Path]:
    """Check a written task against the quality rules and compile it for mteb; returns the files written.

    Raises QualityError (one line, every failing rule) before writing anything. Then writes
    ``descriptive_stats.json`` (mteb's statistics of the test split), ``<TaskName>_task.py`` (a standalone mteb
    task pinned at ``repo``@``revision``), ``metadata.json`` (the mteb TaskMetadata) and a card section naming
    them. repo: a Hub dataset id or a folder (default: ``task_dir``).
    Not called by ``write_retrieval_task``: the pipeline compiles once the repo and revision are known.
    """
    task_dir = Path(task_dir)
    enforce_quality_rules(task_dir)
    stats_path = write_descriptive_statistics(task_dir)
    module = write_task_module(task_dir, repo, revision)
    metadata = compile_metadata(task_dir, repo=repo, revision=revision)
    metadata_path = task_dir / METADATA_JSON
    atomic_write_json(metadata_path, metadata.model_dump(mode="json"))
    _add_compiled_card_section(task_dir, module.name, class_name(metadata.name), stats_path.name, metadata_path.name,
                               metadata.dataset)
    log.info("compiled task %s in %s: %s, %s, %s", metadata.name, task_dir, module.name, stats_path.name,
             metadata_path.name)
    return {"task_module": module, "descriptive_stats": stats_path, "metadata": metadata_path}


def _add_compiled_card_section(task_dir: Path, module: str, cls: str, stats: str, metadata: str, dataset: dict) -> None:
    """The card's "mteb task" section: how to load the compiled task module."""
    set_card_section(task_dir, "compiled", [
        "## mteb task",
        "",
        (
            f"`{module}` declares the task for mteb (it imports only mteb), loading `{dataset['path']}` at "
            f"revision `{dataset['revision']}`:"
        ),
        "",
        "```python",
        "import mteb",
        f"from {module[:-3]} import {cls}",
        "",
        f"results = mteb.evaluate(model, tasks=[{cls}()])",
        "```",
        "",
        (
            f"`{metadata}` holds the mteb `TaskMetadata`; `{stats}` holds mteb's descriptive statistics of the "
            f"`{SPLIT}` split."
        ),
    ])
