"""Publish a built task folder as a new version of a Hub dataset repo (``publish_task``), a build's run folder
as its tasks and a benchmark manifest pinning them (``publish_run``), or either one (``publish``).

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

The folder is read once, first, by ``read_task_folder`` (no link is followed; a symbolic link, a hard link or
a device refuses the folder) into that temporary copy; every later step (task.json, the quality rules, the
content hash, the compile) reads the copy, so what is checked is exactly what is published.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import ConfigError, InputError, PublishError, QualityError
from .base import PublishResult
from .card import card_content_hash, write_published_card
from .manifest import BenchmarkManifest, publish_benchmark, read_benchmark_from_hub, write_benchmark
from .registry import Registry
from .safety import read_task_folder
from .targets import Hub, parse_target
from .versioning import (
    Version,
    content_hash,
    decide_version,
    is_data_path,
    latest_version,
)

log = logging.getLogger(__name__)

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
    from ..tasks.layout import read_task_record
    from ..tasks.rules import enforce_quality_rules

    task_dir = Path(task_dir)
    target_hub, repo_id = parse_target(to)
    hub = hub or target_hub
    try:
        source = read_task_folder(task_dir)
    except InputError as exc:
        raise PublishError(f"refusing to publish {task_dir}: {exc}") from None
    if "task.json" not in source:
        raise InputError(f"{task_dir} is not a complete buildbench task (no task.json)")

    with tempfile.TemporaryDirectory(prefix="buildbench-publish-") as tmp:
        # Named like the folder: the task module's file name avoids the folder's and the repo's names.
        staged = Path(tmp) / task_dir.resolve().name
        _write_copy(staged, source)
        record = read_task_record(staged)
        try:
            enforce_quality_rules(staged)
        except QualityError as exc:
            raise PublishError(f"refusing to publish {task_dir}: {exc}") from None

        new_hash = content_hash(source)
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
        _compile_for(staged, repo_id, target.tag)
        write_published_card(staged, repo_id=repo_id, version=target, content_hash=new_hash, message=message,
                             previous_card=previous_card.decode("utf-8") if previous_card else None)
        files = read_task_folder(staged)
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


def _compile_for(staged: Path, repo_id: str, tag: str) -> None:
    from ..tasks.mteb_task import compile_task

    # A module compiled earlier for another repo or revision would be published beside the new one.
    for stale in staged.glob("*_task*.py"):
        stale.unlink()
    compile_task(staged, repo=repo_id, revision=tag)


def _write_copy(staged: Path, files: dict[str, bytes]) -> None:
    """The folder's files, as read, into a fresh private folder (names were listed from disk, so plain)."""
    for rel, data in files.items():
        path = staged / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# -- a build's run folder: its tasks as one benchmark

RUN_BENCHMARK_JSON = "benchmark.json"  # written by a build into its run directory: the tasks, not yet published


@dataclass
class RunPublishResult:
    tasks: list[tuple[str, PublishResult]]  # (repo id, result) per task
    benchmark_repo: str
    benchmark: Optional[PublishResult]  # None when the manifest did not change
    manifest: BenchmarkManifest


def publish_run(run_dir: Path, to: str, registry: Registry, *, version: Optional[str] = None,
                bump: Optional[str] = None, hub: Optional[Hub] = None) -> RunPublishResult:
    """Publish every task of a build and then its benchmark manifest pinning them.

    to: ``hf://ORG`` or ``file://ROOT/ORG``; each task goes to ``ORG/<TaskName>`` and the manifest to
    ``ORG/<BenchmarkName>``. version/bump apply to each changed task (unchanged ones keep their version). The
    published tasks are registered at their versions, so the manifest resolves. The benchmark's own version is
    1.0.0 at first, a minor bump when any pinned task version changed, and unchanged otherwise.
    """
    run_dir = Path(run_dir)
    path = run_dir / RUN_BENCHMARK_JSON
    if not path.is_file():
        raise InputError(f"{run_dir} is not a build run directory (no {RUN_BENCHMARK_JSON}); "
                         "publish a task folder instead")
    draft = json.loads(path.read_text(encoding="utf-8"))
    base = to.rstrip("/")
    published = []
    for task in draft["tasks"]:
        repo_to = f"{base}/{task['name']}"
        result = publish_task(Path(task["path"]), repo_to, version=version, bump=bump, hub=hub)
        _, repo_id = parse_target(repo_to)
        if registry.get(task["name"], result.tag) is None:
            registry.add_task(Path(task["path"]), repo=repo_id, version=result.tag, revision=result.commit)
        published.append((repo_id, result))
    registry.save(f"Register the tasks of {draft['name']}")

    bench_to = f"{base}/{draft['name']}"
    target_hub, bench_repo = parse_target(bench_to)
    bench_hub = hub or target_hub
    refs = [f"{repo}@{r.tag}" for repo, r in published]
    latest = latest_version(bench_hub.tags(bench_repo))
    if latest is not None:
        current = read_benchmark_from_hub(bench_hub, bench_repo, latest.tag)
        if current is not None and sorted(map(str, current.tasks)) == sorted(refs):
            return RunPublishResult(published, bench_repo, None, current)
    bench_version = Version.parse("1.0.0") if latest is None else latest.bump("minor")
    manifest = BenchmarkManifest(name=draft["name"], version=bench_version.tag,
                                 description=draft.get("description", ""), tasks=refs)
    with tempfile.TemporaryDirectory(prefix="buildbench-benchmark-") as tmp:
        folder = write_benchmark(Path(tmp), manifest, registry)
        result = publish_benchmark(folder, bench_to, registry, hub=bench_hub)
    return RunPublishResult(published, bench_repo, result, manifest)


def is_run_folder(path: Path) -> bool:
    """A build's run folder (it lists its tasks in benchmark.json), as opposed to one task folder."""
    return (Path(path) / RUN_BENCHMARK_JSON).is_file()


def publish(path: Path, to: str, *, registry: Registry | str | Path | None = None, version: Optional[str] = None,
            bump: Optional[str] = None, message: Optional[str] = None,
            hub: Optional[Hub] = None) -> PublishResult | RunPublishResult:
    """Publish ``path``: a run folder with ``publish_run`` (``to`` names the org; ``message`` is not used),
    else a task folder with ``publish_task``.

    registry: a ``Registry`` or where to load one (``Registry.load``). Only a run folder needs it (its
    manifest pins registered task versions); for a task folder it is not read.
    """
    if not is_run_folder(path):
        return publish_task(Path(path), to, version=version, bump=bump, message=message, hub=hub)
    if registry is None or registry == "":
        raise ConfigError("publishing a run's benchmark needs --registry (or $BUILDBENCH_REGISTRY): its manifest "
                          "pins registered task versions")
    if not isinstance(registry, Registry):
        registry = Registry.load(registry)
    return publish_run(Path(path), to, registry, version=version, bump=bump, hub=hub)
