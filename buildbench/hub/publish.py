"""Publish a built task folder as a new version of a Hub dataset repo: ``publish_task``.

Targets:

- ``hf://ORG/NAME``: the Hugging Face Hub (``HfHub``; the endpoint from ``HF_ENDPOINT``, the token from
  ``HF_TOKEN`` or ``hf auth login``, resolved by huggingface_hub and never seen here);
- ``file://ROOT/ORG/NAME``: a ``LocalHub`` at ROOT (the repo itself lives at ``ROOT/datasets/ORG/NAME``, the
  layout olah serves when its ``mirrors-path`` is ROOT). ``file:///abs/hub/ORG/NAME`` is absolute;
  ``file://hub/ORG/NAME`` is relative to the working directory.

What is published is a snapshot of the folder in one commit, tagged ``vX.Y.Z``: the data (Parquet, task.json)
as it is, and, compiled for this version in a temporary copy so the folder itself is not touched: the mteb
task module and metadata.json pinned at ``ORG/NAME``@``vX.Y.Z``, descriptive_stats.json, and the card with its
provenance block, version section and changelog (``hub.card``).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union
from urllib.parse import unquote

from ..errors import PublishError, QualityError
from .base import PublishResult, check_repo_id
from .card import card_content_hash, write_published_card
from .hf import HfHub
from .local import LocalHub
from .versioning import (
    content_hash,
    decide_version,
    is_data_path,
    latest_version,
    task_data_files,
)

log = logging.getLogger(__name__)

Hub = Union[LocalHub, HfHub]


def parse_target(to: str) -> tuple[Hub, str]:
    """(hub, repo id) of ``hf://ORG/NAME`` or ``file://ROOT/ORG/NAME``."""
    if to.startswith("hf://"):
        repo_id = to[len("hf://"):].strip("/")
        if repo_id.startswith("datasets/"):
            repo_id = repo_id[len("datasets/"):]
        check_repo_id(repo_id)
        return HfHub(), repo_id
    if to.startswith("file://"):
        path = Path(unquote(to[len("file://"):])).expanduser()
        if len(path.parts) < 3:
            raise PublishError(f"'{to}' names no repo: expected file://ROOT/ORG/NAME")
        repo_id = f"{path.parent.name}/{path.name}"
        check_repo_id(repo_id)
        return LocalHub(path.parent.parent), repo_id
    raise PublishError(f"unknown publish target '{to}': expected hf://ORG/NAME or file://ROOT/ORG/NAME")


def publish_task(task_dir: Path, to: str, version: Optional[str] = None, bump: Optional[str] = None,
                 message: Optional[str] = None, *, hub: Optional[Hub] = None) -> PublishResult:
    """Publish ``task_dir`` to ``to`` as a new version, or report that its data is already the latest version.

    version: the version to publish (``1.2.0``); must be greater than the latest published one.
    bump: "major", "minor" or "patch": the latest published version, bumped. Without either, changed data is
        refused and the first publish is 1.0.0. Unchanged data is never published again: the result then has
        ``unchanged=True`` and the latest version's tag and commit.
    message: the commit message and changelog line (default: "Publish vX.Y.Z").
    hub: publish there instead of the hub ``to`` names (``to`` still gives the repo id); for tests and callers
        that hold a configured hub.
    Raises PublishError when the folder fails the quality rules, the data changed without a new version, or
    the hub refuses.
    """
    from ..tasks.assemble import read_task_record
    from ..tasks.rules import enforce_quality_rules

    task_dir = Path(task_dir)
    target_hub, repo_id = parse_target(to)
    hub = hub or target_hub
    record = read_task_record(task_dir)
    try:
        enforce_quality_rules(task_dir)
    except QualityError as exc:
        raise PublishError(f"refusing to publish {task_dir}: {exc}") from None

    new_hash = content_hash(task_data_files(task_dir))
    tags = hub.tags(repo_id)
    latest = latest_version(tags)
    previous_card = hub.read_file(repo_id, "README.md", latest.tag) if latest else None
    latest_hash = _published_hash(hub, repo_id, latest.tag, previous_card) if latest else None
    decision = decide_version(new_hash, latest, latest_hash, version=version, bump=bump)
    if decision.unchanged:
        tag = decision.version.tag
        log.info("%s is unchanged since %s (%s): nothing published", record["name"], tag, new_hash)
        return PublishResult(tags[tag], tag, None, hub.url(repo_id, tag), unchanged=True)

    target = decision.version
    message = (message or "").strip() or f"Publish {target.tag}"
    with tempfile.TemporaryDirectory(prefix="buildbench-publish-") as tmp:
        # Named like the folder: the task module's file name avoids the folder's and the repo's names.
        staged = Path(tmp) / task_dir.resolve().name
        shutil.copytree(task_dir, staged, ignore=shutil.ignore_patterns(".*"))
        _compile_for(staged, repo_id, target.tag, judged=_was_judged(task_dir))
        write_published_card(staged, repo_id=repo_id, version=target, content_hash=new_hash, message=message,
                             previous_card=previous_card.decode("utf-8") if previous_card else None)
        files = _snapshot(staged)
    if content_hash(files) != new_hash:  # compiling must never touch the data
        raise PublishError(f"the data of {task_dir} changed while it was being published; publish again")
    result = hub.publish(repo_id, files, message, revision_tag=target.tag)
    log.info("published %s %s to %s: commit %s", record["name"], target.tag, repo_id, result.commit[:12])
    return result


def _published_hash(hub: Hub, repo_id: str, tag: str, card: Optional[bytes]) -> str:
    """The content hash of a published version: from its card, else recomputed from its data files."""
    recorded = card_content_hash(card.decode("utf-8", errors="replace")) if card else None
    if recorded:
        return recorded
    files = {}
    for path in hub.list_files(repo_id, tag):
        if is_data_path(path):
            files[path] = hub.read_file(repo_id, path, tag) or b""
    return content_hash(files)


def _was_judged(task_dir: Path) -> bool:
    """Whether an earlier compile marked the qrels as judged (metadata.json's annotations)."""
    from ..tasks.metadata import ANNOTATIONS_LM_REVIEWED, METADATA_JSON

    path = task_dir / METADATA_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("annotations_creators") == ANNOTATIONS_LM_REVIEWED
    except (OSError, ValueError):
        return False


def _compile_for(staged: Path, repo_id: str, tag: str, *, judged: bool) -> None:
    from ..tasks.assemble import compile_task

    # A module compiled earlier for another repo or revision would be published beside the new one.
    for stale in staged.glob("*_task*.py"):
        stale.unlink()
    compile_task(staged, repo=repo_id, revision=tag, judged=judged)


def _snapshot(folder: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            files[rel] = path.read_bytes()
    return files
