"""Community submissions: ``submit_task`` opens a pull request with a validated task; ``review_submission``
re-validates a pull request from the hub and accepts it into the registry.

- submit: ``validate_submission`` on the folder (without dot-files and buildbench's compiled mteb module, which
  publishing rebuilds), then one ``Publisher.publish(..., create_pr=True)`` of exactly the validated files: a
  Hub pull request, or ``refs/pr/N`` on a ``LocalHub``. The commit message is the PR description (under
  ``PR_DESCRIPTION_LIMIT`` characters): the task in a few lines and the validation report.
- review: the PR's file names are checked before anything is read, its files are materialised into a private
  temporary folder (``materialise_files``: exclusive creates, no link following, caps), nothing in it is ever
  executed, and ``validate_task`` runs again there against the registry. An accepted PR is merged and tagged
  with its version on a ``LocalHub``; on the Hugging Face Hub, where a person merges, the exact URL and command
  are returned instead. Either way the task is added to the registry with its fingerprints.
"""

from __future__ import annotations

import html
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import InputError, PublishError
from .base import PublishResult
from .publish import parse_target
from .registry import Registry, RegistryEntry
from .validate import (
    Check,
    Limits,
    ValidationReport,
    _ALL_AFTER_SAFETY,
    _check_member,
    _human,
    materialise_files,
    submission_files,
    validate_submission,
    validate_task,
)

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


def _one_line(text: object, limit: int) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def pr_description(record: dict, report: ValidationReport, files: dict[str, bytes]) -> str:
    """The PR description: title line, the task in a few lines, then one line per check; always shorter than
    ``PR_DESCRIPTION_LIMIT`` (check lines are shortened, then summarised, to fit)."""
    from .versioning import content_hash

    counts = record.get("counts") or {}
    name = _one_line(record.get("name"), 80)
    head = [
        f"Submit task {name}",
        "",
        # Task text is untrusted: one line, shortened and HTML-escaped before it lands on a discussion page.
        html.escape(_one_line(record.get("description"), 300)),
        "",
        f"- Type: {_one_line(record.get('type', 'Retrieval'), 20)}; language: {_one_line(record.get('language'), 20)}; "
        f"license: {_one_line(record.get('license'), 40)}",
        f"- Documents: {counts.get('corpus', '?')}, queries: {counts.get('queries', '?')}, "
        f"relevance judgements: {counts.get('qrels', '?')}",
        f"- Files: {len(files)} ({_human(sum(len(b) for b in files.values()))}); data {content_hash(files)[:19]}…",
        f"- Validation: {'all ' + str(len(report.checks)) + ' checks passed' if report.ok else 'FAILED'}",
        "",
    ]
    tail = ["", "Review with `build-bench review REPO --pr N --registry REGISTRY`."]
    for width in (160, 100, 60, 0):
        lines = [f"- {'PASS' if c.passed else 'FAIL'} {c.id}" + (f": {_one_line(c.reason, width)}" if width else "")
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
    Returns the report and, when it passed, the PR (``result.pr.pr_ref``) and its description.
    """
    import json

    task_dir = Path(task_dir)
    target_hub, repo_id = parse_target(to)
    hub = hub or target_hub
    report = validate_submission(task_dir, registry, limits=limits, repo=repo_id)
    if not report.ok:
        return SubmitResult(report)
    files = submission_files(task_dir, limits)
    record = json.loads(files["task.json"])
    description = pr_description(record, report, files)
    hub.ensure_repo(repo_id)
    pr = hub.publish(repo_id, files, description, create_pr=True)
    log.info("submitted %s to %s as %s", record.get("name"), repo_id, pr.pr_ref)
    return SubmitResult(report, pr, description)


# -- review


@dataclass
class ReviewResult:
    report: ValidationReport
    accepted: bool = False
    version: Optional[str] = None  # the tag the accepted version gets
    merged_commit: Optional[str] = None  # LocalHub: main after the merge
    merge_instructions: list[str] = field(default_factory=list)  # Hub: what the person merging runs
    entry: Optional[RegistryEntry] = None


def _refused(source: str, reason: str) -> ValidationReport:
    report = ValidationReport(Path(source), [Check("paths", False, reason)])
    report.checks += [Check(i, False, "not run: the submission's files were refused", skipped=True)
                      for i in _ALL_AFTER_SAFETY]
    return report


def download_pr(hub, repo_id: str, revision: str, target: Path, limits: Limits = Limits()) -> Path:
    """Materialise the files of ``repo_id`` at ``revision`` under the empty folder ``target``.

    Every name the hub lists is checked (traversal, absolute, backslash, control characters, file type) before
    a single file is read; then the files are written by ``materialise_files``. Raises InputError naming the
    first refused file, PublishError when the revision has no files.
    """
    names = hub.list_files(repo_id, revision)
    if not names:
        raise PublishError(f"{repo_id} has no files at {revision}")
    if len(names) > limits.max_files:
        raise InputError(f"refused submission: {len(names)} files, above the {limits.max_files} file limit")
    for count, name in enumerate(names, start=1):
        _check_member(name, limits, count)
    files, total = {}, 0
    for name in names:
        data = hub.read_file(repo_id, name, revision)
        if data is None:
            raise PublishError(f"{repo_id}@{revision}: {name} is listed but cannot be read")
        total += len(data)
        if len(data) > limits.max_file_bytes or total > limits.max_total_bytes:
            raise InputError(f"refused submission: {name} takes it above the size limits")
        files[name] = data
    return materialise_files(files, target, limits)


def _data_hash_at(hub, repo_id: str, revision: str) -> str:
    from .versioning import content_hash, is_data_path

    files = {p: hub.read_file(repo_id, p, revision) or b"" for p in hub.list_files(repo_id, revision) if is_data_path(p)}
    return content_hash(files)


def review_submission(repo: str, pr: int, *, registry: Registry, limits: Limits = Limits(), hub=None,
                      version: Optional[str] = None, bump: Optional[str] = None) -> ReviewResult:
    """Re-validate pull request ``pr`` of ``repo`` (``hf://ORG/NAME`` or ``file://ROOT/ORG/NAME``) and accept it.

    Accepting means: a version is chosen (``version``, else the latest tag bumped by ``bump``, default
    "minor"; 1.0.0 for the first), the PR is merged and tagged (LocalHub) or the merge command is returned
    (Hub), and the task is added to ``registry`` (saved) with its MinHash fingerprints. A refused PR changes
    nothing. The PR's files are never executed: only Parquet, JSON and text readers open them.
    """
    from .local import LocalHub
    from .versioning import content_hash, decide_version, latest_version, task_data_files

    target_hub, repo_id = parse_target(repo)
    hub = hub or target_hub
    ref = f"refs/pr/{int(pr)}"
    with tempfile.TemporaryDirectory(prefix="buildbench-review-") as tmp:
        task_dir = Path(tmp) / "task"
        try:
            download_pr(hub, repo_id, ref, task_dir, limits)
        except InputError as exc:
            return ReviewResult(_refused(f"{repo_id}@{ref}", str(exc)))
        report = validate_task(task_dir, registry, limits=limits, repo=repo_id)
        report.task_dir = Path(f"{repo_id}@{ref}")
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
        result = ReviewResult(report, accepted=True, version=tag)
        heads = getattr(hub, "pull_requests", lambda _r: {})(repo_id)
        if isinstance(hub, LocalHub):
            merged = hub.merge_pr(repo_id, int(pr))
            if _data_hash_at(hub, repo_id, merged) != new_hash:
                raise PublishError(f"merging pull request #{pr} of {repo_id} changed its data (main had moved); "
                                   "ask for a new pull request from main")
            hub.create_tag(repo_id, tag, merged, f"Accept pull request #{pr}")
            result.merged_commit = revision = merged
        else:
            revision = heads.get(int(pr), ref)
            url = f"{getattr(hub, 'endpoint', 'https://huggingface.co')}/datasets/{repo_id}/discussions/{int(pr)}"
            result.merge_instructions = [
                f"merge at {url}",
                "or run: python -c \"from huggingface_hub import HfApi; api = HfApi(); "
                f"api.merge_pull_request('{repo_id}', {int(pr)}, repo_type='dataset'); "
                f"api.create_tag('{repo_id}', tag='{tag}', repo_type='dataset')\"",
            ]
        result.entry = registry.add_task(task_dir, repo=repo_id, version=tag, revision=revision)
        registry.save(f"Accept {result.entry.name} {tag} from {repo_id} pull request #{pr}")
        return result
