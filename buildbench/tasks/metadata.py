"""The mteb metadata of a written task: a filled ``TaskMetadata`` and a standalone mteb task module.

- ``compile_metadata``: a *filled* mteb ``TaskMetadata`` (``is_filled()`` is True) for a written task folder,
  the one place buildbench decides the mteb metadata; ``make_mteb_task`` uses it too.
- ``write_task_module``: ``<TaskName>_task.py`` beside the data, a Python file that imports only mteb and
  declares the task class with the literal metadata, pinned to a repo and revision.

mteb's descriptive statistics, and ``compile_task`` which writes all of it beside the data, are in
``mteb_task`` (they need the live mteb task).

Facts about mteb 2.x this relies on (``mteb/abstasks/task_metadata.py``):

- ``is_filled()`` requires every field but prompt, adapted_from, contributed_by and superseded_by to be
  non-None: so ``reference`` (a URL), ``date``, ``domains``, ``task_subtypes``, ``license``, ``dialect``,
  ``sample_creation`` and ``bibtex_citation`` must all be set ([] and "" count as set).
- ``AnnotatorType`` has "LM-generated" and "LM-generated and reviewed" (the latter: reviewed by humans);
  ``SampleCreationMethod`` has "LM-generated and verified". All three are used verbatim.
"""

from __future__ import annotations

import datetime as _dt
import keyword
import os
import re
import typing
from pathlib import Path
from typing import Any

from ..engine.rundir import atomic_write_text
from ..errors import ConfigError, InputError, require
from .info import EVAL_LANGS
from .layout import MAIN_SCORE, RERANKING, RETRIEVAL, SPLIT, TASK_JSON, read_task_record

METADATA_JSON = "metadata.json"

# Queries and their relevance judgements are written by an LLM. mteb's "LM-generated and reviewed" means reviewed
# by people: a task says so only when people reviewed every one of its queries (task.json provenance.human_review,
# from `build-bench label`); an LLM judge alone is not a review.
ANNOTATIONS_LM = "LM-generated"
ANNOTATIONS_LM_REVIEWED = "LM-generated and reviewed"
# Queries (and synthetic hard negatives) are LM-generated, then filtered/verified by the quality stages.
SAMPLE_CREATION = "LM-generated and verified"
# mteb needs a domain for is_filled(); a buildbench domain without an mteb counterpart is still written text.
FALLBACK_DOMAIN = "Written"

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

_EVAL_LANG_RE = re.compile(r"^[a-z]{3}-[A-Z][a-z]{3}$")
_HUB_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def _task_metadata_module():
    return require("mteb.abstasks.task_metadata", "eval", "Compiling mteb task metadata")


def literal_values(alias: Any) -> set[str]:
    """The strings of a typing Literal, possibly nested in a union (mteb writes ``Literal[...] | StrURL``)."""
    out: set[str] = set()
    for arg in typing.get_args(alias):
        if isinstance(arg, str):
            out.add(arg)
        else:
            out |= literal_values(arg)
    return out


def mteb_domains(domain: str, allowed: set[str]) -> list[str] | None:
    """The mteb TaskDomain of a buildbench domain name, or None when mteb has none."""
    by_lower = {d.lower(): d for d in allowed}
    name = _DOMAIN_ALIASES.get(domain.lower()) or by_lower.get(domain.lower())
    return [name] if name in allowed else None


def mteb_license(license: str, allowed: set[str]) -> str:
    """mteb's spelling of a license; a URL stays; anything else is "not specified" (the card keeps the real one)."""
    if license.lower() in allowed or license.startswith(("http://", "https://")):
        return license.lower() if license.lower() in allowed else license
    return "not specified"


def eval_langs(record: dict[str, Any]) -> list[str]:
    """``["eng-Latn"]`` from task.json: an explicit ``eval_lang`` wins, else the ISO 639-1 ``language`` mapped."""
    explicit = record.get("eval_lang")
    language = str(record.get("language") or "")
    if explicit:
        code = explicit
    elif _EVAL_LANG_RE.match(language):
        code = language
    elif language.lower() in EVAL_LANGS:
        code = EVAL_LANGS[language.lower()]
    else:
        raise ConfigError(
            f"task language '{language}' has no MTEB language code (known: {', '.join(sorted(EVAL_LANGS))}); "
            "set eval_lang (e.g. 'eng-Latn') on the task"
        )
    check = require("mteb.languages", "eval", "Compiling mteb task metadata").check_language_code
    try:
        check(code)
    except ValueError as exc:
        raise ConfigError(f"task language '{code}' is not a valid mteb language code: {exc}") from None
    return [code]


def _is_hub_repo(repo: str) -> bool:
    return not os.path.isdir(repo) and bool(_HUB_REPO_RE.match(repo))


def _reference(record: dict[str, Any], path: str) -> str:
    """A URL for ``reference`` (required by is_filled): the task's own, else its Hub page, else the folder."""
    if record.get("reference"):
        return str(record["reference"])
    if _is_hub_repo(path):
        return f"https://huggingface.co/datasets/{path}"
    return Path(path).resolve().as_uri()


def _date_range(task_dir: Path, record: dict[str, Any]) -> tuple[str, str]:
    """``provenance.date`` (a date or a [start, end] pair) when recorded; else the day task.json was written."""
    given = (record.get("provenance") or {}).get("date")
    if isinstance(given, str) and given:
        return (given, given)
    if isinstance(given, (list, tuple)) and len(given) == 2 and all(given):
        return (str(given[0]), str(given[1]))
    mtime = (task_dir / TASK_JSON).stat().st_mtime
    day = _dt.datetime.fromtimestamp(mtime, tz=_dt.timezone.utc).date().isoformat()
    return (day, day)


def compile_metadata(task_dir: Path, *, repo: str | None = None, revision: str = "local"):
    """A filled mteb ``TaskMetadata`` for the task written in ``task_dir``.

    repo: where mteb loads the data from: a Hub dataset id ("org/name") or a folder; default ``task_dir``.
    revision: the dataset revision mteb pins (a Hub commit or tag); a local folder has none, hence "local".
    Annotations are "LM-generated and reviewed" when people reviewed every query (``human_reviewed``).
    """
    tm = _task_metadata_module()
    task_dir = Path(task_dir).resolve()
    record = read_task_record(task_dir)
    task_type = record["type"]
    if task_type not in (RETRIEVAL, RERANKING):
        raise InputError(f"{task_dir}/{TASK_JSON} has type '{task_type}'; expected {RETRIEVAL} or {RERANKING}")
    path = repo or str(task_dir)
    metadata = tm.TaskMetadata(
        name=record["name"],
        description=record.get("description") or record["name"],
        reference=_reference(record, path),
        dataset={"path": path, "revision": revision},
        type=task_type,
        category="t2t",
        modalities=["text"],
        eval_splits=[SPLIT],
        eval_langs=eval_langs(record),
        main_score=MAIN_SCORE,
        date=_date_range(task_dir, record),
        domains=mteb_domains(record.get("domain") or "", literal_values(tm.TaskDomain)) or [FALLBACK_DOMAIN],
        task_subtypes=[],
        license=mteb_license(record.get("license") or "", literal_values(tm.Licenses)),
        annotations_creators=ANNOTATIONS_LM_REVIEWED if human_reviewed(record) else ANNOTATIONS_LM,
        dialect=[],
        sample_creation=SAMPLE_CREATION,
        bibtex_citation="",
    )
    assert metadata.is_filled(), "compile_metadata left a TaskMetadata field empty"
    return metadata


def human_reviewed(record: dict) -> bool:
    """Whether people reviewed every query of the task (task.json ``provenance.human_review``)."""
    review = (record.get("provenance") or {}).get("human_review") or {}
    return bool(review.get("task_queries")) and review.get("reviewed_queries") == review.get("task_queries")


# -- the standalone task module


def class_name(task_name: str) -> str:
    """A Python identifier for a task name (names may hold '-' and '.')."""
    name = re.sub(r"\W", "_", task_name)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"Task_{name}"
    return name


def module_path(task_dir: Path, task_name: str, repo: str | None = None) -> Path:
    """``<task_dir>/<ClassName>_task.py``.

    Not ``<TaskName>.py``: `datasets` (5.x) refuses a folder or Hub repo holding ``<its own name>.py``
    ("Dataset scripts are no longer supported"), and task folders and repos are often named after the task.
    The ``_task`` suffix is extended in the unlikely case it still matches the folder or repo name.
    """
    task_dir = Path(task_dir)
    taken = {task_dir.resolve().name, Path(str(repo)).name if repo else ""}
    stem = f"{class_name(task_name)}_task"
    while stem in taken:
        stem += "_mteb"
    return task_dir / f"{stem}.py"


def render_task_module(metadata, module_name: str = "task_module") -> str:
    """The source of a module declaring ``metadata`` as an mteb ``AbsTaskRetrieval`` class; imports only mteb.

    Every value is written with ``repr``, so the file is valid Python whatever the text holds.
    """
    cls = class_name(metadata.name)
    fields = metadata.model_dump(exclude_none=True)
    defaults = {name: f.default for name, f in type(metadata).model_fields.items()}
    lines = []
    for name in type(metadata).model_fields:
        if name not in fields:
            continue
        value = fields[name]
        if name in ("is_public", "is_beta") and value == defaults.get(name):
            continue
        lines.append(f"        {name}={value!r},")
    repo = metadata.dataset["path"]
    doc = (
        f'"""The mteb task {metadata.name}, compiled by buildbench.\n'
        "\n"
        f"Loads {_doc_safe(repo)} at revision {_doc_safe(metadata.dataset['revision'])}. Usage::\n"
        "\n"
        "    import mteb\n"
        f"    from {module_name} import {cls}\n"
        "\n"
        f"    results = mteb.evaluate(model, tasks=[{cls}()])\n"
        '"""\n'
    )
    return (
        doc
        + "\n"
        + "from mteb.abstasks.retrieval import AbsTaskRetrieval\n"
        + "from mteb.abstasks.task_metadata import TaskMetadata\n"
        + "\n"
        + "\n"
        + f"class {cls}(AbsTaskRetrieval):\n"
        + "    metadata = TaskMetadata(\n"
        + "\n".join(lines)
        + "\n    )\n"
    )


def _doc_safe(text: str) -> str:
    """Text that cannot end or escape out of a docstring."""
    return repr(str(text)).replace('"', "'")


def write_task_module(task_dir: Path, repo: str | None = None, revision: str = "local") -> Path:
    """Write ``<task_dir>/<ClassName>_task.py`` for the task pinned at ``repo``@``revision``; returns its path.

    repo: a Hub dataset id, or a folder (mteb loads a local folder with ``datasets.load_dataset`` too); default
    the task folder itself.
    """
    metadata = compile_metadata(task_dir, repo=repo, revision=revision)
    path = module_path(task_dir, metadata.name, metadata.dataset["path"])
    source = render_task_module(metadata, path.stem)
    compile(source, str(path), "exec")  # a rendering bug fails here, not in the user's import
    atomic_write_text(path, source)
    return path
