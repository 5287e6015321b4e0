"""``export_run``: a run's training triplets, checked by the leakage guard, written in one format with a report
(``export.json``) and the list of what was held back (``withheld.jsonl``).

The export folder carries a marker (``.buildbench-export``) naming the files the export wrote. Only a new or
empty folder, or one with that marker, is written to; a rerun replaces the previous export's files and deletes
those of them it no longer writes, and nothing else in the folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..domain_pack import DedupConfig
from ..engine.rundir import atomic_write_json, atomic_write_text
from ..errors import ConfigError
from .formats import FORMATS, format_files
from .leakage import LeakageGuard, Match, make_guard
from .triplets import BuildStats, RunSource, Triplet, build_triplets, load_run

log = logging.getLogger(__name__)

MARKER = ".buildbench-export"
REPORT = "export.json"
WITHHELD = "withheld.jsonl"
DEFAULT_NEGATIVES = 3
LEAKING_QUERY, LEAKING_POSITIVE, LEAKING_NEGATIVE = "leaking_query", "leaking_positive", "leaking_negative"
SHORT = "short_of_negatives"
_SPLIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
POSITIVES_POLICY = ("one row per query: the passage it was written from is the positive; further passages the "
                    "qrels judge relevant are listed by the beir and jsonl formats and left out of the "
                    "sentence-transformers file (a query repeated in a batch would be its own in-batch negative)")


@dataclass
class ExportReport:
    """What an export wrote and held back; ``export.json`` is its ``to_dict``."""

    source_run: str
    config_hash: str
    domain: str
    format: str
    split: str
    out: str
    negatives_per_triplet: int
    files: list[str]
    counts: dict[str, Any]
    leakage_guard: dict[str, Any]
    positives: str = POSITIVES_POLICY
    created_at: str = ""
    buildbench_version: str = __version__
    withheld: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("withheld")
        return out

    def summary(self) -> str:
        """One paragraph for the terminal."""
        c, g = self.counts, self.leakage_guard
        k = self.negatives_per_triplet
        data = [f for f in self.files if f not in (WITHHELD, REPORT)]
        upto = "" if FORMATS[self.format][1] else "up to "
        text = (f"Exported {c['triplets_written']} of {c['queries_in_run']} queries as "
                f"{f'(query, positive, {upto}{k} hard negatives)' if k else '(query, positive) pairs'} "
                f"in {self.format} format to {self.out} ({', '.join(data)}).")
        if g["enabled"]:
            tasks = g["test_tasks"]
            names = ", ".join(f"{t['name']} ({t['documents']} documents, {t['queries']} queries)" for t in tasks[:3])
            w = c["withheld"]
            text += (f" Leakage guard against {len(tasks)} test task{'s' if len(tasks) != 1 else ''} ({names}"
                     f"{', ...' if len(tasks) > 3 else ''}; exact text and MinHash near-duplicates at Jaccard "
                     f"{g['thresholds']['documents']:g} for passages and {g['thresholds']['queries']:g} for "
                     f"queries): withheld {w[LEAKING_QUERY] + w[LEAKING_POSITIVE]} triplets ({w[LEAKING_QUERY]} "
                     f"with a leaking query, {w[LEAKING_POSITIVE]} with a leaking positive) and dropped "
                     f"{c['negatives_dropped'][LEAKING_NEGATIVE]} leaking negatives.")
        else:
            text += " The leakage guard was OFF (--no-leakage-guard): nothing was checked against test tasks."
        if any(t.get("note", "").startswith("a task of the exported run") for t in g.get("test_tasks", [])):
            text += " A test task is this run's own task, so its queries are withheld."
        if c["withheld"][SHORT]:
            text += f" {c['withheld'][SHORT]} triplets had fewer than {k} negatives and were left out."
        if c["triplets_written"] == 0:
            text += " Nothing was left to export."
        return text + f" Report: {Path(self.out) / REPORT}; every withheld item: {Path(self.out) / WITHHELD}."


# ---------------------------------------------------------------------------------------------- the out folder


def _marker(out: Path) -> dict | None:
    path = out / MARKER
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "buildbench" and data.get("kind") == "export" \
        else None


def check_out_dir(out: Path) -> list[str]:
    """Refuse a folder that is neither new, empty, nor a previous export (ConfigError, one line, nothing
    written); returns the files the previous export there wrote."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; give a folder for the export")
    if not out.exists():
        return []
    marker = _marker(out)
    if marker is None:
        if any(out.iterdir()):
            raise ConfigError(f"--out {out} is not a build-bench export folder: it holds files and no {MARKER} "
                              "marker; give a new or empty folder")
        return []
    return [str(f) for f in marker.get("files") or [] if isinstance(f, str)]


def _write_marker(out: Path, files: Iterable[str]) -> None:
    atomic_write_json(out / MARKER, {"tool": "buildbench", "kind": "export", "version": __version__,
                                     "files": sorted(set(files))})


def _remove_stale(out: Path, old: Iterable[str], new: Iterable[str]) -> None:
    """Delete the previous export's files this one did not write again: only regular files inside ``out``."""
    root = out.resolve()
    for rel in sorted(set(old) - set(new)):
        path = out / rel
        if path.is_symlink() or not path.is_file() or root not in path.resolve().parents:
            continue
        path.unlink()
        parent = path.parent
        while parent != out and root in parent.resolve().parents and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


# ---------------------------------------------------------------------------------------------- the guard


def _excerpt(text: str, n: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _record(t: Triplet, action: str, reason: str, item: str, item_id: str, text: str, match: Match) -> dict:
    return {"query_id": t.query_id, "action": action, "reason": reason, "item": item, "item_id": item_id,
            "text": _excerpt(text), "match": match.as_dict()}


def apply_guard(triplets: Sequence[Triplet], guard: LeakageGuard | None
                ) -> tuple[list[Triplet], list[dict], Counter, dict[str, int]]:
    """The triplets that do not leak (leaking negatives dropped), the withheld records, the counts per reason,
    and how many texts were checked."""
    counts: Counter = Counter()
    if guard is None:
        return list(triplets), [], counts, {}
    queries = {t.query_id: t.query for t in triplets}
    passages: dict[str, str] = {}
    for t in triplets:
        passages.update(zip((*t.positive_ids, *t.negative_ids), (t.positive, *t.other_positives, *t.negatives)))
    leaking_q, leaking_p = guard.find(queries, passages)
    kept, records = [], []
    for t in triplets:
        bad_pos = [(pid, text) for pid, text in zip(t.positive_ids, (t.positive, *t.other_positives))
                   if pid in leaking_p]
        if t.query_id in leaking_q or bad_pos:
            reason = LEAKING_QUERY if t.query_id in leaking_q else LEAKING_POSITIVE
            counts[reason] += 1
            if t.query_id in leaking_q:
                records.append(_record(t, "withhold_triplet", reason, "query", t.query_id, t.query,
                                       leaking_q[t.query_id]))
            records += [_record(t, "withhold_triplet", reason, "positive", pid, text, leaking_p[pid])
                        for pid, text in bad_pos]
            continue
        keep = [pid not in leaking_p for pid in t.negative_ids]
        for pid, text, ok in zip(t.negative_ids, t.negatives, keep):
            if not ok:
                counts[LEAKING_NEGATIVE] += 1
                records.append(_record(t, "drop_negative", LEAKING_NEGATIVE, "negative", pid, text, leaking_p[pid]))
        kept.append(t.keep_negatives(keep))
    checked = {"queries": len(queries), "passages": len(passages), "leaking_queries": len(leaking_q),
               "leaking_passages": len(leaking_p)}
    return kept, records, counts, checked


# ---------------------------------------------------------------------------------------------- export_run


def export_run(run_dir: str | Path, out: str | Path, fmt: str = "sentence-transformers", split: str = "train",
               test_tasks: Sequence[str | Path] = (), *, registry: str | None = None,
               negatives: int = DEFAULT_NEGATIVES, near_dup_threshold: float | None = None,
               leakage_guard: bool = True) -> ExportReport:
    """Export a finished run's (query, positive, hard negatives) triplets for fine-tuning.

    fmt: "sentence-transformers", "beir" or "jsonl" (see ``export.formats``). split: the name of the written
    split. test_tasks / registry: what the leakage guard checks against (``export.leakage``); one of them is
    required unless ``leakage_guard`` is False. negatives: hard negatives per triplet, K; the
    sentence-transformers format writes exactly K columns and leaves out the triplets with fewer (counted), the
    others write up to K. near_dup_threshold: overrides the run's document and query dedup thresholds.
    BuildBenchError (one line) for a folder that is not a finished run, an unknown format, a bad test task or
    out folder, or a missing guard; nothing is written then.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}' (formats: {', '.join(FORMATS)})")
    if not _SPLIT.match(split or ""):
        raise ConfigError(f"--split {split!r} is not a plain split name (letters, digits, '_' and '-')")
    if negatives < 0:
        raise ConfigError(f"--negatives must be 0 or more, got {negatives}")
    test_tasks = [str(test_tasks)] if isinstance(test_tasks, (str, Path)) else [str(p) for p in test_tasks]
    if not leakage_guard and (test_tasks or registry or near_dup_threshold is not None):
        raise ConfigError("--no-leakage-guard contradicts --test-task/--registry/--near-dup-threshold: drop one "
                          "of them")
    if leakage_guard and not (test_tasks or registry):
        raise ConfigError("no test tasks to guard against: pass --test-task TASK_DIR (repeatable) or --registry "
                          "PATH, or --no-leakage-guard to export without the leakage guard")
    out = Path(out)
    previous = check_out_dir(out)
    source = load_run(run_dir)
    guard = None
    if leakage_guard:
        guard = make_guard(test_tasks, registry, source.filters.doc_dedup, source.filters.query_dedup,
                           near_dup_threshold)
        for task in guard.test.tasks:
            if task.source == "task" and Path(task.path).resolve().is_relative_to(source.root.resolve()):
                task.note = "a task of the exported run itself: every query of it is withheld"
                log.warning("--test-task %s is a task of the run being exported: its queries cannot be trained on",
                            task.path)
    triplets, built = build_triplets(source)
    kept, withheld, counts, checked = apply_guard(triplets, guard)
    writer, exact_k = FORMATS[fmt]
    final = []
    for t in kept:
        if len(t.negative_ids) < negatives and exact_k:
            counts[SHORT] += 1
            withheld.append({"query_id": t.query_id, "action": "withhold_triplet", "reason": SHORT,
                             "item": "triplet", "item_id": t.query_id, "text": _excerpt(t.query), "match": None,
                             "negatives": len(t.negative_ids), "needed": negatives})
            continue
        final.append(t.first_negatives(negatives))

    files = [MARKER, *format_files(fmt, split), WITHHELD, REPORT]
    out.mkdir(parents=True, exist_ok=True)
    _write_marker(out, [*previous, *files])  # first: an interrupted export is still known as ours
    (out / REPORT).unlink(missing_ok=True)  # written last, so its presence means "complete"
    written = writer(out, split, final, negatives, source.titles)
    atomic_write_text(out / WITHHELD, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in withheld))
    files = [*written, WITHHELD, REPORT]
    _remove_stale(out, previous, [MARKER, *files])
    _write_marker(out, files)
    report = ExportReport(
        source_run=str(Path(run_dir).resolve()), config_hash=source.config_hash, domain=source.domain, format=fmt,
        split=split, out=str(out.resolve()), negatives_per_triplet=negatives, files=files,
        counts=_counts(source, built, final, counts, negatives, exact_k, checked),
        leakage_guard=_guard_section(guard, registry, checked),
        created_at=_dt.datetime.now(tz=_dt.timezone.utc).replace(microsecond=0).isoformat(), withheld=withheld)
    atomic_write_json(out / REPORT, report.to_dict())
    log.info("export: %d triplets written to %s", len(final), out)
    return report


def _counts(source: RunSource, built: BuildStats, final: list[Triplet], counts: Counter, k: int, exact_k: bool,
            checked: dict[str, int]) -> dict[str, Any]:
    negs = [pid for t in final for pid in t.negative_ids]
    return {
        "queries_in_run": built.queries,
        "query_dataset": source.query_dataset,
        "triplets_built": built.triplets,
        "skipped_while_building": dict(built.skipped),
        "triplets_written": len(final),
        "withheld": {LEAKING_QUERY: counts[LEAKING_QUERY], LEAKING_POSITIVE: counts[LEAKING_POSITIVE],
                     SHORT: counts[SHORT]},
        "negatives_dropped": {LEAKING_NEGATIVE: counts[LEAKING_NEGATIVE]},
        "negatives_written": len(negs),
        "synthetic_negatives_written": sum(pid in source.synthetic for pid in negs),
        "triplets_with_fewer_than_k_negatives": 0 if exact_k else sum(len(t.negative_ids) < k for t in final),
        "triplets_with_several_positives": sum(bool(t.other_positive_ids) for t in final),
    }


def _guard_section(guard: LeakageGuard | None, registry: str | None, checked: dict[str, int]) -> dict:
    if guard is None:
        return {"enabled": False, "test_tasks": [], "registry": None}
    def settings(cfg: DedupConfig) -> dict[str, Any]:
        return {"threshold": cfg.threshold, "shingle": f"{cfg.shingle} {cfg.ngram}-grams", "num_perm": cfg.num_perm,
                "distinct_numbers": cfg.distinct_numbers}

    return {
        "enabled": True,
        "test_tasks": [asdict(t) for t in guard.test.tasks],
        "registry": registry,
        "thresholds": guard.thresholds,
        # Passages are compared with the test documents, queries with the test queries.
        "near_duplicates": {"passages": settings(guard.documents), "queries": settings(guard.queries)},
        "exact": "SHA-256 of the normalised text (casefolded, punctuation and extra spaces removed), against "
                 "every test document and query",
        "checked": checked,
    }
