"""Community submissions: ``submit_task`` opens a pull request with a validated task; ``review_submission``
re-validates a pull request from the hub and accepts it into the registry.

- submit: ``validate_submission`` on the folder (without dot-files and buildbench's compiled mteb module, which
  publishing rebuilds), then one ``Publisher.publish(..., create_pr=True)`` of exactly the validated files: a
  Hub pull request, or ``refs/pr/N`` on a ``LocalHub``. The commit title is "Submit task NAME"; the commit
  description (the pull request's description on the Hub) is the task in a few lines, with the row counts
  read from the submitted Parquet files (not the submitter's claims), and the validation report. Every field
  from the submission in it is one clean line, HTML-escaped (``sanitize``).
- review, in this order, and nothing written before step 4:

  1. the pull request's head commit is resolved once; everything after reads that commit, never ``refs/pr/N``;
  2. its tree is listed with git modes: a bad name, a refused file type or any entry that is not a regular
     file (a symbolic link, a submodule) refuses the pull request before a single file is read; the files are
     materialised into a private temporary folder (``materialise_files``: exclusive creates, no link following,
     caps), and nothing in it is ever executed;
  3. ``validate_task`` runs again there against the registry; then everything an acceptance needs is decided
     and checked: the version (``decide_version``), the registry entry (name rule, not registered yet) and the
     fingerprints. A failure here is a failed check (or a one-line error for bad options): nothing written;
  4. the writes, as one transaction: merge (only if the pull request's head is still the validated commit),
     check main's data is exactly the validated data, tag, then save the registry. If any step fails, what was
     done is undone in reverse: the registry's files are put back, the tag is deleted, main is moved back. A
     LocalHub undoes everything. The Hugging Face Hub cannot unmerge: the tag is deleted and the error says
     the merge stays; running review again on the merged pull request then tags and registers it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from ..errors import BuildBenchError, InputError, PublishError
from .base import PublishResult, irregular_entry_reason
from .checks import Check
from .registry import Registry, RegistryEntry, StagedTask
from .safety import Limits, check_member, human_size, submission_files
from .sanitize import clean_line, escape_html
from .targets import parse_target
from .unpack import materialise_files
from .validate import ValidationReport, refused_report, validate_submission, validate_task

log = logging.getLogger(__name__)

PR_DESCRIPTION_LIMIT = 2000


# -- submit


@dataclass
class SubmitResult:
    report: ValidationReport
    pr: Optional[PublishResult] = None  # None when validation failed and nothing was sent
    description: str = ""

    @property
    def ok(self) -> bool:
        return self.pr is not None


# Row counts shown in the PR description, by the folder of their Parquet files (the task layout's configs).
_COUNTED = (("corpus", "Documents"), ("queries", "queries"), ("qrels", "relevance judgements"),
            ("top_ranked", "candidate lists"))


def data_counts(files: Mapping[str, bytes]) -> dict[str, Optional[int]]:
    """Rows per config folder (corpus, queries, qrels, top_ranked), summed over its Parquet files, from the
    files' own footers: what the data holds, whatever task.json or the card claim. None for an unreadable
    footer; folders without Parquet files are left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    counts: dict[str, Optional[int]] = {}
    for folder, _ in _COUNTED:
        shards = [data for name, data in sorted(files.items())
                  if name.startswith(folder + "/") and name.endswith(".parquet")]
        if not shards:
            continue
        try:
            counts[folder] = sum(pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows for data in shards)
        except (pa.ArrowException, OSError):
            counts[folder] = None
    return counts


def _field(record: Mapping, key: str, limit: int, default: str = "") -> str:
    """A task.json field from a submission, made safe to show: one clean line, HTML-escaped."""
    value = record.get(key)
    return escape_html(default if value is None else value, limit)


def pr_description(record: dict, report: ValidationReport, files: Mapping[str, bytes]) -> str:
    """The PR description: title line, blank line, the task in a few lines, then one line per check; always
    shorter than ``PR_DESCRIPTION_LIMIT`` (check lines are shortened, then summarised, to fit).

    Row counts come from the Parquet files in ``files``, never from the record's own ``counts``; every text
    from the submission (name, description, type, language, license, check reasons naming its files) is one
    clean line, HTML-escaped, so it shows as text on a Hub discussion page and on a terminal.
    """
    from .versioning import content_hash

    counts = data_counts(files)

    def rows(folder: str) -> str:
        value = counts.get(folder)
        return "?" if value is None else str(value)

    amounts = ", ".join(f"{label}: {rows(folder)}" for folder, label in _COUNTED
                        if folder in counts or folder != "top_ranked")
    head = [
        f"Submit task {_field(record, 'name', 80)}",
        "",
        _field(record, "description", 300),
        "",
        f"- Type: {_field(record, 'type', 20, 'Retrieval')}; language: {_field(record, 'language', 20)}; "
        f"license: {_field(record, 'license', 40)}",
        f"- {amounts} (counted in the data)",
        f"- Files: {len(files)} ({human_size(sum(len(b) for b in files.values()))}); data {content_hash(files)[:19]}…",
        f"- Validation: {'all ' + str(len(report.checks)) + ' checks passed' if report.ok else 'FAILED'}",
        "",
    ]
    tail = ["", "Review with `build-bench review REPO --pr N --registry REGISTRY`."]
    for width in (160, 100, 60, 0):
        lines = [f"- {'PASS' if c.passed else 'FAIL'} {c.id}" + (f": {escape_html(c.reason, width)}" if width else "")
                 for c in report.checks]
        text = "\n".join(head + lines + tail)
        if len(text) < PR_DESCRIPTION_LIMIT:
            break
    else:
        text = "\n".join(head + [f"- {len(report.checks)} checks, see `build-bench validate`"] + tail)
    assert len(text) < PR_DESCRIPTION_LIMIT, f"PR description is {len(text)} characters"
    return text


def submit_task(task_dir: Path, to: str, *, registry: Optional[Registry] = None, limits: Limits = Limits(),
                hub=None) -> SubmitResult:
    """Validate ``task_dir`` and, when every check passes, open a pull request with it on ``to``.

    to: ``hf://ORG/NAME`` or ``file://ROOT/ORG/NAME`` (the task's dataset repo; created if missing).
    registry: checked for overlap with accepted tasks (None: not checked).
    hub: use this hub instead of the one ``to`` names (``to`` still gives the repo id).
    Returns the report and, when it passed, the PR (``result.pr.pr_ref``) and its description (title line,
    blank line, body: the commit title and the commit description).
    """
    task_dir = Path(task_dir)
    target_hub, repo_id = parse_target(to)
    hub = hub or target_hub
    report = validate_submission(task_dir, registry, limits=limits, repo=repo_id)
    if not report.ok:
        return SubmitResult(report)
    files = submission_files(task_dir, limits)
    record = json.loads(files["task.json"])
    description = pr_description(record, report, files)
    title, _, body = description.partition("\n\n")
    hub.ensure_repo(repo_id)
    pr = hub.publish(repo_id, files, title, create_pr=True, description=body)
    log.info("submitted %s to %s as %s", clean_line(record.get("name"), 80), repo_id, pr.pr_ref)
    return SubmitResult(report, pr, description)


# -- review


@dataclass
class ReviewResult:
    report: ValidationReport
    accepted: bool = False
    version: Optional[str] = None  # the tag the accepted version gets
    merged_commit: Optional[str] = None  # main's commit after the merge: the tagged, registered revision
    entry: Optional[RegistryEntry] = None


def download_pr(hub, repo_id: str, revision: str, target: Path, limits: Limits = Limits()) -> Path:
    """Materialise the files of ``repo_id`` at ``revision`` under the empty folder ``target``.

    Every entry the hub lists is checked (traversal, absolute, backslash, control characters, file type, and
    its git mode: only regular files, never a symbolic link or a submodule) before a single file is read; then
    the files are written by ``materialise_files``. Raises InputError naming the first refused file,
    PublishError when the revision has no files.
    """
    entries = hub.list_tree(repo_id, revision)
    if not entries:
        raise PublishError(f"{repo_id} has no files at {revision}")
    if len(entries) > limits.max_files:
        raise InputError(f"refused submission: {len(entries)} files, above the {limits.max_files} file limit")
    for count, entry in enumerate(entries, start=1):
        check_member(entry.path, limits, count)
        reason = irregular_entry_reason(entry)
        if reason:
            raise InputError(f"refused submission file: {reason}")
    files, total = {}, 0
    for entry in entries:
        data = hub.read_file(repo_id, entry.path, revision)
        if data is None:
            raise PublishError(f"{repo_id}@{revision}: {entry.path} is listed but cannot be read")
        total += len(data)
        if len(data) > limits.max_file_bytes or total > limits.max_total_bytes:
            raise InputError(f"refused submission: {entry.path} takes it above the size limits")
        files[entry.path] = data
    return materialise_files(files, target, limits)


def _data_hash_at(hub, repo_id: str, revision: str) -> str:
    from .versioning import content_hash, is_data_path

    files = {p: hub.read_file(repo_id, p, revision) or b"" for p in hub.list_files(repo_id, revision) if is_data_path(p)}
    return content_hash(files)


def review_submission(repo: str, pr: int, *, registry: Registry, limits: Limits = Limits(), hub=None,
                      version: Optional[str] = None, bump: Optional[str] = None) -> ReviewResult:
    """Re-validate pull request ``pr`` of ``repo`` (``hf://ORG/NAME`` or ``file://ROOT/ORG/NAME``) and accept it.

    Accepting means: a version is chosen (``version``, else the latest tag bumped by ``bump``, default
    "minor"; 1.0.0 for the first), the PR is merged into main and the merge is tagged with it, and the task is
    added to ``registry`` (saved) with its MinHash fingerprints. The order, the checks made before the first
    write and what is undone when a write fails are in the module docstring. A refused PR changes nothing.
    The PR's files are never executed: only Parquet, JSON and text readers open them.
    """
    from .versioning import content_hash, decide_version, latest_version, task_data_files

    target_hub, repo_id = parse_target(repo)
    hub = hub or target_hub
    pr = int(pr)
    source = f"{repo_id}@refs/pr/{pr}"
    head = hub.pull_requests(repo_id).get(pr)
    if head is None:
        raise PublishError(f"{repo_id} has no pull request #{pr}")
    with tempfile.TemporaryDirectory(prefix="buildbench-review-") as tmp:
        task_dir = Path(tmp) / "task"
        try:
            download_pr(hub, repo_id, head, task_dir, limits)
        except InputError as exc:
            return ReviewResult(refused_report(source, str(exc), "the submission's files were refused"))
        report = validate_task(task_dir, registry, limits=limits, repo=repo_id)
        report.task_dir = Path(source)
        if not report.ok:
            return ReviewResult(report)

        new_hash = content_hash(task_data_files(task_dir))
        tags = hub.tags(repo_id)
        latest = latest_version(tags)
        latest_hash = _data_hash_at(hub, repo_id, latest.tag) if latest else None
        if version is None and bump is None and latest is not None:
            bump = "minor"
        decision = decide_version(new_hash, latest, latest_hash, version=version, bump=bump)
        if decision.unchanged:
            raise PublishError(f"pull request #{pr} of {repo_id} holds the data of {decision.version.tag} already")
        tag = decision.version.tag
        if tag in tags:
            raise PublishError(f"tag {tag} already exists in {repo_id}; pass --version greater than the latest")
        try:
            staged = registry.prepare_task(task_dir, repo=repo_id, version=tag)
        except InputError as exc:
            report.checks.append(Check("registration", False, clean_line(str(exc), 300)))
            return ReviewResult(report)
        report.checks.append(Check("registration", True, f"can be registered as {staged.entry.name} {tag}"))
        registry.check_writable()
        merged, entry = _accept(hub, registry, repo_id, pr, head, new_hash, tag, staged)
        return ReviewResult(report, accepted=True, version=tag, merged_commit=merged, entry=entry)


def _accept(hub, registry: Registry, repo_id: str, pr: int, head: str, new_hash: str, tag: str,
            staged: StagedTask) -> tuple[str, RegistryEntry]:
    """The writes of an accepted review (merge, tag, registry), undone in reverse if any of them fails."""
    where = f"pull request #{pr} of {repo_id}"
    previous = hub.main_commit(repo_id)
    merged = None
    try:
        merged = hub.merge_pr(repo_id, pr, head=head, message=f"Accept pull request #{pr} as {tag}")
        if _data_hash_at(hub, repo_id, merged) != new_hash:
            raise PublishError("merging changed the data that was validated (main had moved); ask for a new "
                               "pull request from main")
        hub.create_tag(repo_id, tag, merged, f"Accept pull request #{pr}")
        entry = registry.add(staged.entry.model_copy(update={"revision": merged}), staged.fingerprints)
        registry.save(f"Accept {entry.name} {tag} from {repo_id} pull request #{pr}")
    except BaseException as exc:
        registry.discard()
        if merged is None:
            raise  # the merge itself was refused: nothing was written
        undone = _roll_back(hub, repo_id, tag, merged, previous)
        if not isinstance(exc, Exception):
            raise  # Ctrl-C: rolled back, and still an interruption
        reason = clean_line(str(exc) or type(exc).__name__, 200)
        log.error("review of %s stopped after merging: %s; %s", where, reason, undone)
        raise PublishError(f"review of {where} stopped ({reason}); {undone}") from None
    log.info("accepted %s as %s: %s", where, tag, merged[:12])
    return merged, entry


def _roll_back(hub, repo_id: str, tag: str, merged: str, previous: Optional[str]) -> str:
    """Undo a review's tag and merge; a sentence saying what was and was not undone."""
    done, left = [], []
    try:
        if hub.delete_tag(repo_id, tag, merged):
            done.append(f"tag {tag} deleted")
    except BuildBenchError as exc:
        left.append(f"tag {tag} ({exc})")
    try:
        if hub.undo_merge(repo_id, merged, previous):
            done.append(f"main moved back to {previous[:12] if previous else 'no commit'}")
        else:
            left.append(f"the merge into main ({merged[:12]}) stays: this hub cannot undo a merge; run review "
                        "again to tag and register it, or revert it on the hub")
    except BuildBenchError as exc:
        left.append(f"main ({exc})")
    text = "rolled back: " + (", ".join(done) or "nothing") + ", the registry is unchanged"
    return text + (f"; NOT rolled back: {'; '.join(left)}" if left else "")
