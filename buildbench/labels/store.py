"""People's labels on a build's queries: the typed record and the append-only store in the run folder.

    store = LabelStore(run_dir)                       # RUN_DIR/labels/labels.jsonl
    store.append(Label("q-1", GOOD, reviewer="ana"))  # atomic: the file is rewritten whole, then renamed
    latest = store.latest()                           # {(reviewer, query_id): Label}, the last one counts

A reviewer may change their mind: every label is kept in order and the last one per (reviewer, query) counts.
Labels come from the review page and from imports; both check each record with ``Label.from_dict``, which
names the field and the reason in its error, because a label file is untrusted input like any other.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..engine.rundir import atomic_write_bytes
from ..errors import ConfigError

# What a reviewer can say about a query.
GOOD = "good"  # its positive answers it and singles it out
VAGUE = "vague"  # the positive answers it, but so could many passages: it does not single its passage out
WRONG = "wrong"  # the positive does not answer it
MISSED_POSITIVE = "missed_positive"  # the positive answers it, and so does one of the candidates (``passage_id``)
LABELS = (GOOD, VAGUE, WRONG, MISSED_POSITIVE)
# Where the positive passage answers the query (everything but "wrong"): the question the judge answers.
ANSWERS = frozenset({GOOD, VAGUE, MISSED_POSITIVE})

LABELS_DIR = "labels"
LABELS_FILE = "labels.jsonl"
MAX_NOTE = 2000
_REVIEWER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_ID = re.compile(r"^[^\x00-\x1f]{1,200}$")


class LabelError(ConfigError):
    """A label record that cannot be accepted; the message names the record and the reason."""


@dataclass(frozen=True)
class Label:
    query_id: str
    label: str
    reviewer: str = "reviewer"
    passage_id: str = ""  # the candidate that also answers the query (missed_positive only)
    note: str = ""
    time: str = ""  # ISO 8601, UTC; set when stored
    source: str = "review"  # review (the page) or import:<format>

    def __post_init__(self):
        if not isinstance(self.query_id, str) or not _ID.match(self.query_id):
            raise LabelError(f"query_id {self.query_id!r} is not a query id")
        if self.label not in LABELS:
            raise LabelError(f"query {self.query_id}: label {self.label!r} is not one of {', '.join(LABELS)}")
        if not isinstance(self.reviewer, str) or not _REVIEWER.match(self.reviewer):
            raise LabelError(f"query {self.query_id}: reviewer {self.reviewer!r} must be 1-64 letters, digits "
                             "or _.@- (starting with a letter or digit)")
        if self.label == MISSED_POSITIVE and not self.passage_id:
            raise LabelError(f"query {self.query_id}: a missed_positive label names the passage (passage_id) "
                             "that also answers it")
        if self.label != MISSED_POSITIVE and self.passage_id:
            raise LabelError(f"query {self.query_id}: passage_id is only for missed_positive labels")
        if self.passage_id and (not isinstance(self.passage_id, str) or not _ID.match(self.passage_id)):
            raise LabelError(f"query {self.query_id}: passage_id {self.passage_id!r} is not a passage id")
        if not isinstance(self.note, str) or len(self.note) > MAX_NOTE:
            raise LabelError(f"query {self.query_id}: the note must be text of at most {MAX_NOTE} characters")

    @classmethod
    def from_dict(cls, row: dict[str, Any], where: str = "") -> "Label":
        """A label from a JSON-like row; a LabelError naming ``where`` (file:line) and the field otherwise."""
        prefix = f"{where}: " if where else ""
        if not isinstance(row, dict):
            raise LabelError(f"{prefix}a label is an object with query_id and label")
        unknown = sorted(set(row) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise LabelError(f"{prefix}unknown field(s) {', '.join(unknown)}")
        missing = [f for f in ("query_id", "label") if not row.get(f)]
        if missing:
            raise LabelError(f"{prefix}missing {', '.join(missing)}")
        clean = {k: ("" if v is None else v) for k, v in row.items()}
        bad = [k for k, v in clean.items() if not isinstance(v, str)]
        if bad:
            raise LabelError(f"{prefix}field(s) {', '.join(sorted(bad))} must be text")
        try:
            return cls(**clean)
        except LabelError as e:
            raise LabelError(f"{prefix}{e}") from None

    def stamped(self) -> "Label":
        if self.time:
            return self
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return Label(**{**asdict(self), "time": now})


def json_lines(text: str, path: Path) -> Iterator[tuple[str, Any]]:
    """("file:line", value) for each non-blank line of a JSON Lines text; a LabelError naming a line that is
    not JSON."""
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield f"{path}:{n}", json.loads(line)
            except json.JSONDecodeError as e:
                raise LabelError(f"{path}:{n}: not JSON ({e.msg})") from None


class LabelStore:
    """``RUN_DIR/labels/labels.jsonl``: one JSON label per line, only ever added to."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LABELS_DIR / LABELS_FILE
        self._lock = threading.Lock()

    def read(self) -> list[Label]:
        """Every stored label in order; a LabelError naming the line of a corrupt record."""
        if not self.path.is_file():
            return []
        return [Label.from_dict(row, where) for where, row in json_lines(self.path.read_text(encoding="utf-8"),
                                                                         self.path)]

    def append(self, labels: Label | Iterable[Label]) -> list[Label]:
        """Add labels (stamped with the time); the file is written to a temp file and renamed, so a kill
        mid-write leaves the old file whole. Returns what was stored."""
        batch = [labels] if isinstance(labels, Label) else list(labels)
        stamped = [lab.stamped() for lab in batch]
        if not stamped:
            return []
        with self._lock, _file_lock(self.path):
            old = self.path.read_bytes() if self.path.is_file() else b""
            if old and not old.endswith(b"\n"):
                old += b"\n"
            new = "".join(json.dumps(asdict(lab), ensure_ascii=False) + "\n" for lab in stamped)
            atomic_write_bytes(self.path, old + new.encode("utf-8"))
        return stamped

    def latest(self) -> dict[tuple[str, str], Label]:
        """The last label of each (reviewer, query_id)."""
        return {(lab.reviewer, lab.query_id): lab for lab in self.read()}


class _file_lock:
    """An advisory lock next to the label file, so two processes (two review servers, an import) never
    interleave their read-then-rename."""

    def __init__(self, path: Path):
        self.path = path.with_name(path.name + ".lock")

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except ImportError:  # Windows: the in-process lock still holds
            pass
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the flock
