"""A written task as an mteb v2 ``AbsTaskRetrieval``, so ``mteb.evaluate`` runs it offline from its folder.

mteb's own loader reads the folder: ``load_dataset(<folder>, "corpus" | "queries" | "default")``, split
``test``, plus ``"top_ranked"`` when the card lists it. Nothing here re-implements loading, so what mteb scores
is exactly what was published.

Reranking tasks are ``AbsTaskRetrieval`` too in mteb 2.x: the ``top_ranked`` config is what makes mteb score
each query on its candidate list only, and ``type="Reranking"`` (from task.json) is what mteb and model
wrappers read to pick prompts and (for sparse models) dense embeddings.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from ..errors import InputError, require
from .assemble import MAIN_SCORE, RERANKING, RETRIEVAL, SPLIT, read_task_record

# buildbench domain names that differ from mteb's TaskDomain vocabulary.
_DOMAIN_ALIASES = {
    "finance": "Financial",
    "financial": "Financial",
    "law": "Legal",
    "legal": "Legal",
    "medicine": "Medical",
    "medical": "Medical",
    "health": "Medical",
    "biomedical": "Medical",
    "science": "Academic",
    "scientific": "Academic",
    "government": "Government",
    "policy": "Government",
    "news": "News",
    "code": "Programming",
    "programming": "Programming",
    "engineering": "Engineering",
    "chemistry": "Chemistry",
}


def _literal_values(alias: Any) -> set[str]:
    """The strings of a typing Literal, possibly nested in a union (mteb writes ``Literal[...] | StrURL``)."""
    out: set[str] = set()
    for arg in typing.get_args(alias):
        if isinstance(arg, str):
            out.add(arg)
        else:
            out |= _literal_values(arg)
    return out


def _mteb_domains(domain: str, allowed: set[str]) -> list[str] | None:
    by_lower = {d.lower(): d for d in allowed}
    name = _DOMAIN_ALIASES.get(domain.lower()) or by_lower.get(domain.lower())
    return [name] if name in allowed else None


def _mteb_license(license: str, allowed: set[str]) -> str:
    if license.lower() in allowed or license.startswith(("http://", "https://")):
        return license.lower() if license.lower() in allowed else license
    return "not specified"  # mteb rejects licenses outside its list; the card keeps the real one


def make_mteb_task(task_dir: Path, name: str | None = None, revision: str = "local"):
    """An mteb ``AbsTaskRetrieval`` instance over the task written in ``task_dir``, of the type in its task.json.

    name: the mteb task name (defaults to the name in task.json).
    revision: recorded in mteb's results as the dataset revision; a local folder has none, hence "local".
    """
    abstasks = require("mteb.abstasks", "eval", "Evaluating with mteb")
    task_metadata = require("mteb.abstasks.task_metadata", "eval", "Evaluating with mteb")

    task_dir = Path(task_dir).resolve()
    record = read_task_record(task_dir)
    task_type = record["type"]
    if task_type not in (RETRIEVAL, RERANKING):
        raise InputError(f"{task_dir}/task.json has type '{task_type}'; expected {RETRIEVAL} or {RERANKING}")
    metadata = task_metadata.TaskMetadata(
        name=name or record["name"],
        description=record["description"] or record["name"],
        reference=record.get("reference") or None,
        dataset={"path": str(task_dir), "revision": revision},
        type=task_type,
        category="t2t",
        modalities=["text"],
        eval_splits=[SPLIT],
        eval_langs=list(record["eval_langs"]),
        main_score=MAIN_SCORE,
        domains=_mteb_domains(record.get("domain", ""), _literal_values(task_metadata.TaskDomain)),
        task_subtypes=None,
        license=_mteb_license(record.get("license", ""), _literal_values(task_metadata.Licenses)),
        # Documents are found text; the queries and their judgements come from an LLM reading one passage.
        annotations_creators="LM-generated",
        sample_creation="found",
        dialect=[],
        bibtex_citation="",
    )
    # A class per task, because mteb reads `metadata` from the class: this is how mteb's own tasks are declared.
    cls = type(
        f"BuildBench{task_type}_{metadata.name}",
        (abstasks.AbsTaskRetrieval,),
        {"metadata": metadata, "__module__": __name__},
    )
    return cls()
