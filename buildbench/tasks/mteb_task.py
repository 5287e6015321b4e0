"""A written task as an mteb v2 ``AbsTaskRetrieval``, so ``mteb.evaluate`` runs it offline from its folder.

mteb's own loader reads the folder: ``load_dataset(<folder>, "corpus" | "queries" | "default")``, split
``test``, plus ``"top_ranked"`` when the card lists it. Nothing here re-implements loading, so what mteb scores
is exactly what was published.

Reranking tasks are ``AbsTaskRetrieval`` too in mteb 2.x: the ``top_ranked`` config is what makes mteb score
each query on its candidate list only, and ``type="Reranking"`` (from task.json) is what mteb and model
wrappers read to pick prompts and (for sparse models) dense embeddings.

The metadata itself is compiled in ``metadata.compile_metadata``, shared with the standalone task module.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import require
from .metadata import _literal_values, compile_metadata, mteb_domains, mteb_license

# The helpers moved to .metadata; the old private names stay importable from here for other task kinds.
_mteb_domains = mteb_domains
_mteb_license = mteb_license
__all__ = ["_literal_values", "_mteb_domains", "_mteb_license", "make_mteb_task"]


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
