"""Labels made elsewhere, imported into a run: ``build-bench label RUN_DIR --import FILE``.

Formats (``auto`` picks by extension and shape):

- ``jsonl`` / ``csv``: one label per row with ``query_id``, ``label`` and optional ``reviewer`` (or ``annotator``),
  ``passage_id`` and ``note``; labels are good, vague, wrong or missed_positive (case and -/space forgiven).
- ``argilla``: Argilla 2's record export (``dataset.records.to_json`` / ``to_list``, nested or ``flatten=True``):
  the record id or a ``query_id`` field or metadata names the query; the question whose answers are labels is
  the label, ``passage_id`` and ``note`` questions are read when present, each responding user is a reviewer.
- ``label-studio``: Label Studio's JSON export (tasks with ``data`` and ``annotations[].result``): ``choices``
  results give the label, a ``textarea`` result the note, ``completed_by`` (email or user id) the reviewer.

An import is all or nothing: every record is checked (known query, known passage, valid label) before any is
stored, and the first problems are listed with their record number.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from .store import LABELS, MISSED_POSITIVE, Label, LabelError, LabelStore, json_lines

FORMATS = ("auto", "jsonl", "csv", "argilla", "label-studio")
_MAX_LISTED = 5


@dataclass
class ImportResult:
    path: Path
    fmt: str
    labels: list[Label] = field(default_factory=list)

    def summary(self) -> str:
        by = Counter(lab.label for lab in self.labels)
        who = sorted({lab.reviewer for lab in self.labels})
        return (f"imported {len(self.labels)} labels from {self.path} ({self.fmt}): "
                + ", ".join(f"{by[k]} {k}" for k in LABELS if by[k])
                + f"; reviewers: {', '.join(who)}")


def import_labels(run_dir: Path, path: Path, fmt: str = "auto", reviewer: Optional[str] = None,
                  known: Optional[dict[str, set[str]]] = None) -> ImportResult:
    """Check every label in ``path`` against the run's queries and passages, then store them all.

    ``known`` maps each query id to the passage ids a missed positive may name (default: read from the run);
    ``reviewer`` fills in records that name none."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path}: no such label file")
    if fmt not in FORMATS:
        raise LabelError(f"unknown label format {fmt!r} (formats: {', '.join(FORMATS)})")
    text = path.read_text(encoding="utf-8-sig")
    fmt = sniff(path, text) if fmt == "auto" else fmt
    rows = list(_READERS[fmt](text, path))
    if not rows:
        raise LabelError(f"{path}: no labels found ({fmt})")
    known = known if known is not None else known_ids(run_dir)
    labels, problems = [], []
    for where, row in rows:
        row = dict(row)
        if reviewer and not row.get("reviewer"):
            row["reviewer"] = reviewer
        row.setdefault("reviewer", "import")
        row["label"] = normalise_label(row.get("label"))
        row["source"] = f"import:{fmt}"
        try:
            lab = Label.from_dict(row, where)
        except LabelError as e:
            problems.append(str(e))
            continue
        if lab.query_id not in known:
            problems.append(f"{where}: unknown query id {lab.query_id!r} (not a query of this run)")
        elif lab.passage_id and lab.passage_id not in known[lab.query_id]:
            problems.append(f"{where}: passage {lab.passage_id!r} is not a candidate of query {lab.query_id}")
        else:
            labels.append(lab)
    if problems:
        more = f" (and {len(problems) - _MAX_LISTED} more)" if len(problems) > _MAX_LISTED else ""
        raise LabelError(f"{path}: {len(problems)} bad label record(s), nothing imported: "
                         + "; ".join(problems[:_MAX_LISTED]) + more)
    stored = LabelStore(run_dir).append(labels)
    return ImportResult(path, fmt, stored)


def known_ids(run_dir: Path) -> dict[str, set[str]]:
    """Each reviewable query of the run and the passages a missed positive may name: any of its mined candidates,
    not only those the review page shows (a reviewer elsewhere may have seen more)."""
    from .queue import candidate_ids

    return candidate_ids(Path(run_dir))


def normalise_label(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    v = value.strip().lower().replace("-", "_").replace(" ", "_")
    return {"missed": MISSED_POSITIVE, "missedpositive": MISSED_POSITIVE}.get(v, v)


def sniff(path: Path, text: str) -> str:
    if path.suffix.lower() == ".csv":
        return "csv"
    head = text.lstrip()[:1]
    if head != "[":
        return "jsonl"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LabelError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    first = data[0] if data else {}
    if isinstance(first, dict) and "annotations" in first and "data" in first:
        return "label-studio"
    if isinstance(first, dict) and ("responses" in first or any(k.endswith(".responses") for k in first)):
        return "argilla"
    return "json-list"


# -- readers: each yields ("file:record", {query_id, label, reviewer?, passage_id?, note?})

def _jsonl(text: str, path: Path) -> Iterator[tuple[str, dict]]:
    for where, row in json_lines(text, path):
        yield where, _plain(row, where)


def _json_list(text: str, path: Path) -> Iterator[tuple[str, dict]]:
    for n, row in enumerate(_json_array(text, path), 1):
        yield f"{path}: record {n}", _plain(row, f"{path}: record {n}")


def _csv(text: str, path: Path) -> Iterator[tuple[str, dict]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"query_id", "label"} <= {f.strip() for f in reader.fieldnames}:
        raise LabelError(f"{path}: a label CSV has a header with at least query_id and label")
    for n, row in enumerate(reader, 2):
        yield f"{path}:{n}", _plain({k.strip(): (v or "").strip() for k, v in row.items() if k}, f"{path}:{n}")


def _plain(row: Any, where: str) -> dict:
    if not isinstance(row, dict):
        raise LabelError(f"{where}: a label is an object with query_id and label")
    out = {k: row[k] for k in ("query_id", "label", "reviewer", "passage_id", "note") if row.get(k) not in (None, "")}
    if "reviewer" not in out and row.get("annotator") not in (None, ""):
        out["reviewer"] = str(row["annotator"])
    return out


def _argilla(text: str, path: Path) -> Iterator[tuple[str, dict]]:
    for n, rec in enumerate(_json_array(text, path), 1):
        where = f"{path}: record {n}"
        if not isinstance(rec, dict):
            raise LabelError(f"{where}: an Argilla record is an object")
        fields, meta = rec.get("fields") or {}, rec.get("metadata") or {}
        qid = fields.get("query_id") or meta.get("query_id") or rec.get("query_id") or rec.get("id")
        answers = _argilla_responses(rec)
        label_q = next((q for q, rs in answers.items() if any(normalise_label(v) in LABELS for v, _, _ in rs)), None)
        if label_q is None:
            continue  # a record nobody has answered yet
        extra = {q: {u: v for v, u, _ in rs} for q, rs in answers.items() if q in ("passage_id", "note")}
        for value, user, status in answers[label_q]:
            if status not in (None, "submitted"):
                continue  # drafts and discarded responses are not labels
            row = {"query_id": str(qid) if qid is not None else "", "label": value, "reviewer": user}
            for q in ("passage_id", "note"):
                if extra.get(q, {}).get(user) not in (None, ""):
                    row[q] = str(extra[q][user])
            yield where, row


def _argilla_responses(rec: dict) -> dict[str, list[tuple[Any, str, Optional[str]]]]:
    """{question: [(value, user, status)]} from a nested or a flattened Argilla record."""
    out: dict[str, list] = {}
    if isinstance(rec.get("responses"), dict):
        for q, rs in rec["responses"].items():
            out[q] = [(r.get("value"), str(r.get("user_id", "")), r.get("status")) for r in rs or []
                      if isinstance(r, dict)]
    for key, values in rec.items():
        if key.endswith(".responses") and isinstance(values, list):
            q = key[: -len(".responses")]
            users = rec.get(f"{key}.users") or [""] * len(values)
            status = rec.get(f"{key}.status") or [None] * len(values)
            out[q] = [(v, str(u), s) for v, u, s in zip(values, users, status)]
    return out


def _label_studio(text: str, path: Path) -> Iterator[tuple[str, dict]]:
    for n, task in enumerate(_json_array(text, path), 1):
        where = f"{path}: task {n}"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict):
            raise LabelError(f"{where}: a Label Studio task has a data object")
        qid = data.get("query_id") or data.get("id")
        for ann in task.get("annotations") or []:
            if not isinstance(ann, dict) or ann.get("was_cancelled"):
                continue
            by = ann.get("completed_by")
            reviewer = str(by.get("email") or by.get("id")) if isinstance(by, dict) else str(by or "")
            row: dict = {"query_id": str(qid) if qid is not None else "", "reviewer": _reviewer_name(reviewer)}
            for res in ann.get("result") or []:
                value = res.get("value") or {} if isinstance(res, dict) else {}
                if res.get("type") == "choices" and value.get("choices"):
                    choice = value["choices"][0]
                    if res.get("from_name") == "passage_id":
                        row["passage_id"] = str(choice)
                    else:
                        row["label"] = choice
                elif res.get("type") == "textarea" and value.get("text"):
                    key = "passage_id" if res.get("from_name") == "passage_id" else "note"
                    row[key] = "\n".join(map(str, value["text"]))
            if "label" in row:
                yield where, row


def _reviewer_name(raw: str) -> str:
    """Label Studio names annotators by email or a number; both pass the reviewer check once trimmed."""
    return raw.strip() or "label-studio"


def _json_array(text: str, path: Path) -> list:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LabelError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, list):
        raise LabelError(f"{path}: expected a JSON list of records")
    return data


_READERS = {"jsonl": _jsonl, "json-list": _json_list, "csv": _csv, "argilla": _argilla,
            "label-studio": _label_studio}
