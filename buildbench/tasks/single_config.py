"""The writing, card and mteb-class helpers shared by the single-config task types (pair classification,
clustering, STS): one ``default`` config of one Parquet file under ``data/``, a dataset card and task.json.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from ..engine.rundir import atomic_write_json, atomic_write_parquet, atomic_write_text
from ..errors import InputError, QualityError, require
from .assemble import card_closing, markdown_table, size_category
from .info import TaskInfo
from .layout import SHARD_NAME, SPLIT, TASK_JSON, first_few, read_task_record
from .metadata import literal_values, mteb_domains, mteb_license

log = logging.getLogger(__name__)

DATA_FOLDER = "data"


def sentence_pair_schema(target: str, kind: pa.DataType) -> pa.Schema:
    """The rows of the query-passage pair tasks (pair classification, STS): the two texts, the ``target`` the
    model is scored against (``labels`` or ``score``), and where each pair came from."""
    return pa.schema([("sentence1", pa.string()), ("sentence2", pa.string()), (target, kind),
                      ("query-id", pa.string()), ("corpus-id", pa.string())])


def conform(table: pa.Table, schema: pa.Schema, optional: Sequence[str] = ()) -> pa.Table:
    """Select and cast ``schema``'s columns; an ``optional`` column that is missing is filled with ""."""
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            if field.name in optional:
                columns.append(pa.array([""] * table.num_rows, field.type))
                continue
            raise InputError(f"table has no '{field.name}' column (has: {', '.join(table.column_names)})")
        col = table.column(field.name)
        if field.name in optional:
            col = pc.fill_null(col.cast(pa.string()), "")
        try:
            col = col.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"column '{field.name}' cannot be read as {field.type}: {exc}") from None
        columns.append(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
    return pa.Table.from_arrays(columns, schema=schema)


def check_texts(table: pa.Table, columns: Sequence[str]) -> None:
    """Raise QualityError, naming the first rows, when a text in one of ``columns`` is empty."""
    for column in columns:
        values = table.column(column).to_pylist()
        empty = [i for i, t in enumerate(values) if t is None or not t.strip()]
        if empty:
            raise QualityError(f"{len(empty)} rows have an empty {column}: rows {first_few(empty)}")


def mean_chars(table: pa.Table, column: str) -> float:
    """Mean length in characters of ``column``, rounded for the card."""
    return round(float(pc.mean(pc.utf8_length(table.column(column))).as_py() or 0.0), 1)


def shard_file(task_dir: Path) -> Path:
    return Path(task_dir) / DATA_FOLDER / SHARD_NAME


def _feature(f: pa.Field) -> dict[str, Any]:
    dtype = {pa.string(): "string", pa.int64(): "int64", pa.float64(): "float64"}[f.type]
    return {"name": f.name, "dtype": dtype}


def render_single_config_card(
    info: TaskInfo,
    table: pa.Table,
    *,
    task_type: str,
    main_score: str,
    facts: list[tuple[str, Any]],
    explanation: str,
    task_categories: list[str],
    task_ids: list[str],
    factory: str,
) -> str:
    """README.md of a one-config task: YAML header (`datasets` configs and features), then facts and usage."""
    header = {
        "language": [info.language],
        "license": info.license,
        "multilinguality": "monolingual",
        "task_categories": task_categories,
        "task_ids": task_ids,
        "size_categories": [size_category(table.num_rows)],
        "source_datasets": ["original"],
        "pretty_name": info.name,
        "tags": ["mteb", "buildbench", info.domain],
        "configs": [
            {"config_name": "default", "data_files": [{"split": SPLIT, "path": f"{DATA_FOLDER}/{SPLIT}-*.parquet"}]}
        ],
        "dataset_info": [
            {
                "config_name": "default",
                "features": [_feature(f) for f in table.schema],
                "splits": [{"name": SPLIT, "num_bytes": table.nbytes, "num_examples": table.num_rows}],
            }
        ],
    }
    head = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)
    all_facts = [
        ("Task type", task_type),
        ("Domain", info.domain),
        ("Language", f"{info.language} ({info.mteb_lang()})"),
        ("License", info.license),
        ("Split", SPLIT),
        ("Main score", main_score),
        *facts,
        ("Revision", info.revision),
    ]
    if info.reference:
        all_facts.append(("Reference", info.reference))
    body = [
        f"# {info.name}",
        "",
        info.description.strip(),
        "",
        "## Task",
        "",
        markdown_table(all_facts, ("Field", "Value")),
        "",
        "## Data",
        "",
        "| Config | Columns | Rows | File |",
        "|---|---|---|---|",
        f"| `default` | {', '.join(table.column_names)} | {table.num_rows} | `{DATA_FOLDER}/{SHARD_NAME}` |",
        "",
        explanation,
        "",
        *card_closing(info.provenance, ['data = load_dataset("<this folder or repo>", split="test")'],
                      f"from {__package__}.{factory_module(factory)} import {factory}", factory),
    ]
    return f"---\n{head}---\n\n" + "\n".join(body)


def factory_module(factory: str) -> str:
    return {
        "make_mteb_pair_task": "pair_classification",
        "make_mteb_clustering_task": "clustering",
        "make_mteb_sts_task": "sts",
    }[factory]


def write_single_config_task(
    out_dir: Path,
    table: pa.Table,
    info: TaskInfo,
    *,
    task_type: str,
    main_score: str,
    counts: dict[str, Any],
    facts: list[tuple[str, Any]],
    explanation: str,
    task_categories: list[str],
    task_ids: list[str],
    factory: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``table`` as the one config of a task, its card, then task.json (last: it marks completion).

    extra: more task.json fields (e.g. STS score bounds) that the mteb class factory reads back.
    """
    out_dir = Path(out_dir)
    (out_dir / TASK_JSON).unlink(missing_ok=True)
    path = shard_file(out_dir)
    if path.parent.exists():
        # The card globs test-*.parquet; a shard left by an older write would be read as part of this task.
        for stale in path.parent.glob(f"{SPLIT}-*.parquet"):
            if stale.name != path.name:
                stale.unlink()
    atomic_write_parquet(path, table)
    card = render_single_config_card(
        info, table, task_type=task_type, main_score=main_score, facts=facts, explanation=explanation,
        task_categories=task_categories, task_ids=task_ids, factory=factory,
    )
    atomic_write_text(out_dir / "README.md", card)
    record = {
        **info.model_dump(mode="json"),
        "eval_langs": [info.mteb_lang()],
        "type": task_type,
        "main_score": main_score,
        "split": SPLIT,
        "counts": counts,
        "configs": {"default": f"{DATA_FOLDER}/{SHARD_NAME}"},
        **(extra or {}),
    }
    atomic_write_json(out_dir / TASK_JSON, record)
    return out_dir


def make_single_config_mteb_task(
    task_dir: Path,
    task_type: str,
    base: type,
    attrs: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]],
    *,
    name: str | None,
    revision: str,
    category: str,
    annotations_creators: str,
    task_subtypes: list[str] | None = None,
):
    """An instance of a per-task subclass of mteb's ``base`` over the one-config task in ``task_dir``.

    attrs: class attributes (or a function of task.json returning them), e.g. prompt types or score bounds.
    mteb's own loader reads the folder (``load_dataset(<folder>)``, split ``test``): nothing is re-implemented.
    """
    task_metadata = require("mteb.abstasks.task_metadata", "eval", "Evaluating with mteb")
    task_dir = Path(task_dir).resolve()
    record = read_task_record(task_dir)
    if record["type"] != task_type:
        raise InputError(f"{task_dir}/task.json has type '{record['type']}'; expected {task_type}")
    metadata = task_metadata.TaskMetadata(
        name=name or record["name"],
        description=record["description"] or record["name"],
        reference=record.get("reference") or None,
        dataset={"path": str(task_dir), "revision": revision},
        type=task_type,
        category=category,
        modalities=["text"],
        eval_splits=[record.get("split", SPLIT)],
        eval_langs=list(record["eval_langs"]),
        main_score=record["main_score"],
        domains=mteb_domains(record.get("domain", ""), literal_values(task_metadata.TaskDomain)),
        task_subtypes=task_subtypes,
        license=mteb_license(record.get("license", ""), literal_values(task_metadata.Licenses)),
        annotations_creators=annotations_creators,
        sample_creation="found",
        dialect=[],
        bibtex_citation="",
    )
    class_attrs = attrs(record) if callable(attrs) else dict(attrs)
    # A class per task, because mteb reads `metadata` from the class: this is how mteb's own tasks are declared.
    cls = type(
        f"BuildBench{task_type}_{metadata.name}",
        (base,),
        {"metadata": metadata, "__module__": __name__, **class_attrs},
    )
    return cls()
