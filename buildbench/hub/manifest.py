"""Benchmark manifests: a benchmark is a name, a version and a list of task ``repo@version`` references.

A benchmark folder holds ``benchmark.json`` (the manifest, with each task resolved against the registry: name,
commit, content hash, languages, license) and a README.md card, and is published like a task folder
(``publish_benchmark``: one commit, tagged with the benchmark's version). ``write_benchmark`` refuses a
manifest naming a task that is not in the registry at exactly that version, so a benchmark only ever pins
accepted, validated task versions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ..engine.rundir import atomic_write_json, atomic_write_text
from ..errors import InputError
from .registry import Registry, RegistryEntry

BENCHMARK_JSON = "benchmark.json"
CARD = "README.md"

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,127}$")


def normalize_version(version: str) -> str:
    """``v1.2.0`` for ``1.2.0`` or ``v1.2.0``; other strings unchanged (compared as they are)."""
    from .versioning import Version

    try:
        return Version.parse(version).tag
    except Exception:
        return version


class TaskRef(BaseModel):
    """One task of a benchmark: the dataset repo and the version (tag) it is pinned at."""

    model_config = ConfigDict(extra="forbid")

    repo: str
    version: str

    @classmethod
    def parse(cls, text: str) -> "TaskRef":
        """``ORG/NAME@v1.0.0`` -> TaskRef."""
        repo, sep, version = str(text).strip().rpartition("@")
        if not sep or not repo or not version:
            raise InputError(f"'{text}' is not a task reference: expected ORG/NAME@VERSION")
        return cls(repo=repo, version=version)

    @field_validator("version")
    @classmethod
    def _norm_version(cls, v: str) -> str:
        return normalize_version(v)

    def __str__(self) -> str:
        return f"{self.repo}@{self.version}"


class BenchmarkManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    description: str = ""
    tasks: list[TaskRef]

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"benchmark name '{v}' must start with a letter and hold only letters, digits, "
                             "'_', '-', '.'")
        return v

    @field_validator("version")
    @classmethod
    def _semver(cls, v: str) -> str:
        from .versioning import Version

        return Version.parse(v).tag

    @field_validator("tasks", mode="before")
    @classmethod
    def _refs(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [TaskRef.parse(x) if isinstance(x, str) else x for x in v]
        return v

    @model_validator(mode="after")
    def _some_unique_tasks(self) -> "BenchmarkManifest":
        if not self.tasks:
            raise ValueError("a benchmark lists at least one task")
        repos = [t.repo for t in self.tasks]
        dup = sorted({r for r in repos if repos.count(r) > 1})
        if dup:
            raise ValueError(f"a benchmark pins each task once; listed more than once: {', '.join(dup)}")
        return self


def resolve_tasks(manifest: BenchmarkManifest, registry: Registry) -> list[RegistryEntry]:
    """The registry entry of every task the manifest pins; InputError naming every task not registered at
    exactly that version (and the versions that are)."""
    found, problems = [], []
    for ref in manifest.tasks:
        entry = next((e for e in registry.entries("task")
                      if e.repo == ref.repo and normalize_version(e.version) == ref.version), None)
        if entry is None:
            known = [e.version for e in registry.entries("task") if e.repo == ref.repo]
            problems.append(f"{ref} (registered versions: {', '.join(known)})" if known
                            else f"{ref} (repo not in the registry)")
            continue
        found.append(entry)
    if problems:
        raise InputError(
            f"benchmark {manifest.name} {manifest.version} lists tasks not in the registry {registry.source} at that "
            f"version: {'; '.join(problems)}"
        )
    return found


def benchmark_record(manifest: BenchmarkManifest, entries: list[RegistryEntry]) -> dict[str, Any]:
    return {
        "name": manifest.name,
        "version": manifest.version,
        "description": manifest.description,
        "tasks": [
            {"repo": e.repo, "version": normalize_version(e.version), "name": e.name, "revision": e.revision,
             "content_hash": e.content_hash, "languages": e.languages, "license": e.license}
            for e in entries
        ],
    }


def render_benchmark_card(record: dict[str, Any]) -> str:
    import yaml

    from ..tasks.assemble import _cell

    languages = sorted({lang for t in record["tasks"] for lang in t["languages"]})
    header = {
        "pretty_name": record["name"],
        "language": languages,
        "tags": ["mteb", "buildbench", "benchmark"],
    }
    lines = [
        f"# {record['name']} {record['version']}",
        "",
        record["description"].strip() or f"A benchmark of {len(record['tasks'])} tasks.",
        "",
        "| Task | Repo | Version | Revision | Languages | License |",
        "|---|---|---|---|---|---|",
    ]
    for t in record["tasks"]:
        lines.append("| " + " | ".join(_cell(v) for v in (
            t["name"], t["repo"], t["version"], (t["revision"] or "-")[:12], ", ".join(t["languages"]) or "-",
            t["license"] or "-")) + " |")
    lines += ["", f"Each task is pinned at its version; `{BENCHMARK_JSON}` lists the exact revisions.", ""]
    head = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{head}---\n\n" + "\n".join(lines)


def write_benchmark(out_dir: Path, manifest: BenchmarkManifest, registry: Registry) -> Path:
    """Check the manifest against the registry, then write ``benchmark.json`` and README.md under ``out_dir``."""
    entries = resolve_tasks(manifest, registry)
    record = benchmark_record(manifest, entries)
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / CARD, render_benchmark_card(record))
    atomic_write_json(out_dir / BENCHMARK_JSON, record)
    return out_dir


def read_benchmark(folder: Path) -> BenchmarkManifest:
    path = Path(folder) / BENCHMARK_JSON
    if not path.is_file():
        raise InputError(f"{folder} is not a benchmark folder (no {BENCHMARK_JSON})")
    return _manifest_from(path.read_text(encoding="utf-8"), str(path))


def _manifest_from(text: str, where: str) -> BenchmarkManifest:
    try:
        record = json.loads(text)
        return BenchmarkManifest(name=record["name"], version=record["version"],
                                 description=record.get("description", ""),
                                 tasks=[{"repo": t["repo"], "version": t["version"]} for t in record["tasks"]])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{where} is not a valid benchmark manifest: {' '.join(str(exc).split())}") from None


def publish_benchmark(folder: Path, to: str, registry: Registry, *, hub=None):
    """Re-check ``folder``'s manifest against the registry and publish it to ``to`` (one commit, tagged with the
    benchmark version); then record the benchmark in the registry. Returns the PublishResult."""
    from .publish import parse_target

    folder = Path(folder)
    manifest = read_benchmark(folder)
    entries = resolve_tasks(manifest, registry)
    target_hub, repo_id = parse_target(to)
    hub = hub or target_hub
    files = {name: (folder / name).read_bytes() for name in (BENCHMARK_JSON, CARD)}
    hub.ensure_repo(repo_id)
    result = hub.publish(repo_id, files, f"Publish benchmark {manifest.name} {manifest.version}",
                         revision_tag=manifest.version)
    registry.add(RegistryEntry(
        kind="benchmark", name=manifest.name, repo=repo_id, version=manifest.version, revision=result.commit,
        languages=sorted({lang for e in entries for lang in e.languages}),
        license=_shared_license(entries) or "",
    ))
    registry.save(f"Add benchmark {manifest.name} {manifest.version}")
    return result


def _shared_license(entries: list[RegistryEntry]) -> Optional[str]:
    licenses = {e.license for e in entries}
    return licenses.pop() if len(licenses) == 1 else "mixed" if licenses else None


# -- a build's tasks as one benchmark

RUN_BENCHMARK_JSON = "benchmark.json"  # written by a build into its run directory: the tasks, not yet published


@dataclass
class RunPublishResult:
    tasks: list[tuple[str, Any]]  # (repo id, PublishResult) per task
    benchmark_repo: str
    benchmark: Any  # PublishResult of the manifest, or None when nothing changed
    manifest: BenchmarkManifest


def publish_run(run_dir: Path, to: str, registry: Registry, *, version: Optional[str] = None,
                bump: Optional[str] = None, hub=None) -> RunPublishResult:
    """Publish every task of a build and then its benchmark manifest pinning them.

    to: ``hf://ORG`` or ``file://ROOT/ORG``; each task goes to ``ORG/<TaskName>`` and the manifest to
    ``ORG/<BenchmarkName>``. version/bump apply to each changed task (unchanged ones keep their version). The
    published tasks are registered at their versions, so the manifest resolves. The benchmark's own version is
    1.0.0 at first, a minor bump when any pinned task version changed, and unchanged otherwise.
    """
    import tempfile

    from .publish import parse_target, publish_task
    from .versioning import Version, latest_version

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


def read_benchmark_from_hub(hub, repo_id: str, revision: str) -> Optional[BenchmarkManifest]:
    raw = hub.read_file(repo_id, BENCHMARK_JSON, revision)
    return None if raw is None else _manifest_from(raw.decode("utf-8"), f"{repo_id}@{revision}")
