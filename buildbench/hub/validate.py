"""Validate a community-submitted task folder before anyone loads it: safety first, then data, then value.

``validate_task(task_dir, registry)`` runs the checks declared in ``CHECKS``, in that order, and returns a
``ValidationReport``: one ``Check`` (id, passed, reason) per check, so a report reads from "is it safe to open"
to "is it worth adding". Each ``CheckSpec`` names the checks it requires; when one of them did not pass, the
check is not run and is reported as skipped, naming the failed check(s). So a later check never reads what an
earlier one refused: nothing is parsed before the file checks passed, and no table is read before the sizes
its metadata declares and its schema did.

=================  ========================================  =================================================
check              requires                                  what (where it lives)
=================  ========================================  =================================================
paths              --                                        regular files, plain names, no links (``safety``)
extensions         --                                        data and text files only (``safety``)
sizes              --                                        per-file, total and file-count caps (``safety``)
card_yaml          paths, extensions, sizes                  a safe YAML header (``checks_card``)
card_paths         card_yaml                                 card data paths inside the folder
declared_sizes     paths, extensions, sizes                  declared and decoded sizes (``checks_data``)
card_html          paths, extensions, sizes                  allow-listed HTML and links only
metadata           paths, extensions, sizes                  task.json names a task the registry accepts
counts             card_paths, declared_sizes                declared row counts equal the data's
schema             card_yaml, card_paths, declared_sizes,    MTEB configs, columns and types; then the tables
                   metadata                                  are read
ids                schema                                    unique, non-empty ids; no pair judged twice
license            paths, extensions, sizes                  a known license, declared once
rules              schema                                    ``tasks.rules``, one check per rule (a group)
language           schema                                    sampled texts detected as the declared language
overlap            schema                                    no near-copies of registered tasks
baselines          ids, rules                                random and BM25 scores leave room to rank
=================  ========================================  =================================================

A check that raises on odd content fails with the error as its reason, so a hostile submission cannot crash
the reviewer's command. ``validate_submission`` validates what would be submitted from a folder (a private
copy, read with O_NOFOLLOW) or an archive (extracted with ``safety.extract_archive``). Every reason quoting
submitted text is shown through ``sanitize.clean_line`` (``format_report``).

To add a check: write it in ``checks_card`` or ``checks_data`` as a function of what it reads, returning a
``Check``, and declare it in ``CHECKS`` with the checks it requires.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, MissingDependencyError
from .checks import Check, error_reason
from .checks_card import Card, check_card_html, check_card_paths, check_card_yaml, check_counts, check_license, \
    check_metadata
from .checks_data import RULE_IDS, Tables, check_baselines, check_declared_sizes, check_ids, check_language, \
    check_overlap, check_rules, check_schema
from .safety import Limits, Listing, extensions_check, list_folder, listing_checks, paths_check, sizes_check, \
    submission_listing
from .sanitize import clean_line
from .unpack import copy_files, extract_archive

log = logging.getLogger(__name__)


@dataclass
class ValidationReport:
    """The checks of one validation. ``counts``: rows of each part as the Parquet metadata of the validated
    files states them (corpus, queries, qrels, top_ranked), whatever the card or task.json claim; {} when the
    files could not be read that far."""

    task_dir: Path
    checks: list[Check] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed and not c.skipped]

    def check(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_dir": str(self.task_dir),
            "ok": self.ok,
            "checks": [{"id": c.id, "passed": c.passed, "skipped": c.skipped, "reason": c.reason} for c in self.checks],
            "counts": dict(self.counts),
        }


def format_report(report: ValidationReport) -> str:
    """One line per check (PASS / FAIL / SKIP, id, reason) and a verdict line. Reasons quote submitted text,
    so each line goes through ``clean_line``: no escape sequence or bidi control reaches the terminal."""
    lines = []
    width = max((len(c.id) for c in report.checks), default=0)
    for c in report.checks:
        mark = "SKIP" if c.skipped else "PASS" if c.passed else "FAIL"
        lines.append(f"{mark}  {c.id:<{width}}  {clean_line(c.reason, 2000)}")
    n_failed = len(report.failed)
    n_skipped = sum(1 for c in report.checks if c.skipped)
    where = clean_line(str(report.task_dir), None)
    verdict = (
        f"{where}: all {len(report.checks)} checks passed"
        if report.ok
        else f"{where}: rejected, {n_failed} check(s) failed"
        + (f", {n_skipped} not run" if n_skipped else "")
    )
    lines.append(verdict)
    return "\n".join(lines)


# -- the declared checks


@dataclass
class Submission:
    """One folder under validation: what the checks read, and what earlier checks learnt for later ones."""

    task_dir: Path
    limits: Limits
    registry: Any = None  # a hub.registry.Registry for the overlap check, or None
    repo: str | None = None
    listing: Listing = field(default_factory=Listing)  # the folder's files, from lstat
    card: Card = field(default_factory=Card)  # card_yaml
    record: dict[str, Any] = field(default_factory=dict)  # metadata: task.json, {} when unreadable
    rows: dict[str, int] = field(default_factory=dict)  # declared_sizes: Parquet rows per file, once bounded
    counts: dict[str, int] = field(default_factory=dict)  # counts: the verified counts
    tables: Tables | None = None  # schema: the tables, once their schema passed

    @property
    def header(self) -> dict[str, Any]:
        return self.card.header or {}


@dataclass(frozen=True)
class CheckSpec:
    """One declared check.

    run: the check on a ``Submission``: a ``Check``, or a list of them for a group (the quality rules).
    requires: ids of earlier checks (or groups) that must all have passed; otherwise this one is reported as
        skipped, with the failed checks that kept it from running as its reason.
    reports: the ids a group is reported under when it does not run (default: its own id).
    """

    id: str
    run: Callable[[Submission], Check | list[Check]]
    requires: tuple[str, ...] = ()
    reports: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return self.reports or (self.id,)


def _card_yaml(s: Submission) -> Check:
    check, s.card = check_card_yaml(s.task_dir, s.limits)
    return check


def _declared_sizes(s: Submission) -> Check:
    check, rows = check_declared_sizes(s.task_dir, s.header, s.listing.files, s.limits)
    s.rows = rows or {}
    return check


def _metadata(s: Submission) -> Check:
    check, record = check_metadata(s.task_dir, s.limits)
    s.record = record or {}
    return check


def _counts(s: Submission) -> Check:
    check, s.counts = check_counts(s.header, s.record, s.listing.files, s.rows)
    return check


def _schema(s: Submission) -> Check:
    check, s.tables = check_schema(s.task_dir, s.header, s.record)
    return check


RULES = "rules"  # the group of quality rules; its checks report under the rules' own ids
_SAFE = ("paths", "extensions", "sizes")

CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("paths", lambda s: paths_check(s.listing)),
    CheckSpec("extensions", lambda s: extensions_check(s.listing)),
    CheckSpec("sizes", lambda s: sizes_check(s.listing, s.limits)),
    CheckSpec("card_yaml", _card_yaml, requires=_SAFE),
    CheckSpec("card_paths", lambda s: check_card_paths(s.task_dir, s.header), requires=("card_yaml",)),
    CheckSpec("declared_sizes", _declared_sizes, requires=_SAFE),
    CheckSpec("card_html", lambda s: check_card_html(s.card), requires=_SAFE),
    CheckSpec("metadata", _metadata, requires=_SAFE),
    CheckSpec("counts", _counts, requires=("card_paths", "declared_sizes")),
    CheckSpec("schema", _schema, requires=("card_yaml", "card_paths", "declared_sizes", "metadata")),
    CheckSpec("ids", lambda s: check_ids(s.tables), requires=("schema",)),
    CheckSpec("license", lambda s: check_license(s.header, s.record), requires=_SAFE),
    CheckSpec(RULES, lambda s: check_rules(s.task_dir), requires=("schema",), reports=RULE_IDS),
    CheckSpec("language", lambda s: check_language(s.tables, s.header, s.record, s.limits), requires=("schema",)),
    CheckSpec("overlap", lambda s: check_overlap(s.task_dir, str(s.record["name"]), s.registry, s.limits, s.repo),
              requires=("schema",)),
    CheckSpec("baselines", lambda s: check_baselines(s.task_dir, s.limits), requires=("ids", RULES)),
)


def declaration_problems(specs: tuple[CheckSpec, ...]) -> list[str]:
    """What is wrong with a declared list: an id declared twice, or a requirement that is not an earlier check."""
    problems, seen = [], set()
    for spec in specs:
        problems += [f"{spec.id} requires {r}, which is not declared before it" for r in spec.requires if r not in seen]
        if spec.id in seen:
            problems.append(f"{spec.id} is declared twice")
        seen.add(spec.id)
    return problems


# Every id a report holds when no check could run (a group under its reported ids), in order.
CHECK_IDS = tuple(i for spec in CHECKS for i in spec.ids)


def run_checks(submission: Submission, specs: tuple[CheckSpec, ...] = CHECKS) -> list[Check]:
    """Every check of ``specs`` in order: run when all it requires passed, else skipped naming the failed checks
    behind it (a check skipped in turn passes on its own reasons, so the reason names where it started)."""
    results: dict[str, list[Check]] = {}
    blocked_by: dict[str, list[str]] = {}  # spec id -> the failed checks that kept it from running
    out: list[Check] = []
    for spec in specs:
        failed: list[str] = []
        for required in spec.requires:
            for c in results[required]:
                if not c.passed:
                    causes = blocked_by.get(required, [c.id]) if c.skipped else [c.id]
                    failed += [x for x in causes if x not in failed]
        if failed:
            blocked_by[spec.id] = failed
            checks = [Check(i, False, f"not run: {', '.join(failed)} failed", skipped=True) for i in spec.ids]
        else:
            checks = _guarded(spec, submission)
        results[spec.id] = checks
        out += checks
    return out


def _guarded(spec: CheckSpec, submission: Submission) -> list[Check]:
    """Run one check; an exception on odd content (a language code bm25s chokes on, say) is a failed check with
    the error as its reason, so a hostile submission cannot crash the reviewer's command."""
    try:
        result = spec.run(submission)
    except MissingDependencyError:
        raise
    except Exception as exc:
        log.debug("%s check raised", spec.id, exc_info=True)
        return [Check(i, False, f"the check could not run on this data: {error_reason(exc)}") for i in spec.ids]
    return result if isinstance(result, list) else [result]


# -- the whole validation


def refused_report(source: Path | str, reason: str, why: str) -> ValidationReport:
    """The report of a submission refused before its files could be listed: ``paths`` failed with ``reason``,
    every other check skipped because ``why``."""
    report = ValidationReport(Path(source), [Check("paths", False, reason)])
    report.checks += [Check(i, False, f"not run: {why}", skipped=True) for i in CHECK_IDS if i != "paths"]
    return report


def validate_task(task_dir: Path, registry=None, *, limits: Limits = Limits(),
                  repo: str | None = None) -> ValidationReport:
    """Every check of ``CHECKS`` on the submitted folder ``task_dir``; see the module docstring.

    registry: a ``buildbench.hub.registry.Registry`` to check overlap against (None: not checked).
    repo: the dataset repo the task is submitted to. Registered versions from that repo are not compared for
        overlap, and a task name registered from another repo is refused. Without it (a local check), the
        registered versions of a task with the same name are the ones not compared.
    Never raises on bad content: each problem is a failed check with its reason.
    """
    task_dir = Path(task_dir)
    if not task_dir.is_dir():
        what = "does not exist" if not os.path.lexists(task_dir) else "is not a folder"
        return refused_report(task_dir, f"{task_dir} {what}", "there is no folder to check")
    submission = Submission(task_dir, limits, registry, repo, listing=list_folder(task_dir))
    report = ValidationReport(task_dir, run_checks(submission))
    report.counts = submission.counts
    return report


def validate_submission(path: Path, registry=None, *, limits: Limits = Limits(),
                        repo: str | None = None) -> ValidationReport:
    """``validate_task`` on what would be submitted from ``path``: a task folder (without the files
    ``submission_listing`` leaves out), or a .tar/.zip archive extracted safely into a temporary folder.

    A folder that passes the file safety checks is copied into a private temporary folder first, each file
    read with O_NOFOLLOW, and the copy is validated: nothing later in the validation (Parquet readers, the
    quality rules) can be sent through a link that appeared after the checks.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return validate_task(path, registry, limits=limits, repo=repo)
    with tempfile.TemporaryDirectory(prefix="buildbench-submission-") as tmp:
        staged = Path(tmp) / "task"
        try:
            if path.is_dir():
                listing, left_out = submission_listing(path, limits)
                if not all(c.passed for c in listing_checks(listing, limits)):
                    return validate_task(path, registry, limits=limits, repo=repo)
                if left_out:
                    log.info("%s: left out of the submission: %s", clean_line(str(path), None),
                             clean_line(", ".join(left_out), 500))
                copy_files(path, [rel for rel, _ in listing.files], staged, limits)
            else:
                extract_archive(path, staged, limits)
        except (InputError, OSError) as exc:
            reason = str(exc) if isinstance(exc, InputError) else f"{path} cannot be read ({exc.strerror})"
            return refused_report(path, reason, "the submission was refused")
        report = validate_task(staged, registry, limits=limits, repo=repo)
        report.task_dir = path
        return report


__all__ = [
    "CHECKS",
    "CHECK_IDS",
    "CheckSpec",
    "Submission",
    "ValidationReport",
    "format_report",
    "refused_report",
    "run_checks",
    "validate_submission",
    "validate_task",
]
