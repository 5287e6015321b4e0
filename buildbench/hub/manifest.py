"""Benchmark manifests: a benchmark is a name, a version and a list of task ``repo@version`` references.

A benchmark folder holds ``benchmark.json`` (the manifest, with each task resolved against the registry: name,
commit, content hash, languages, license) and a README.md card, and is published like a task folder
(``publish_benchmark``: one commit, tagged with the benchmark's version). ``write_benchmark`` refuses a
manifest naming a task that is not in the registry at exactly that version, so a benchmark only ever pins
accepted, validated task versions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ..engine.rundir import atomic_write_json, atomic_write_text
from ..errors import InputError
from .registry import Registry, RegistryEntry
from .safety import NAME_PATTERN, NAME_RULE
from .targets import parse_target

BENCHMARK_JSON = "benchmark.json"
CARD = "README.md"

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
        if not NAME_PATTERN.match(v):
            raise ValueError(f"benchmark name '{v}' {NAME_RULE}")
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

    from ..tasks.assemble import cell as _cell

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
    files = _benchmark_files(folder)
    if BENCHMARK_JSON not in files:
        raise InputError(f"{folder} is not a benchmark folder (no {BENCHMARK_JSON})")
    return _manifest_from(files[BENCHMARK_JSON].decode("utf-8", errors="replace"), str(Path(folder) / BENCHMARK_JSON))


def _benchmark_files(folder: Path) -> dict[str, bytes]:
    """benchmark.json and the card of a benchmark folder, read without following links (``read_task_folder``)."""
    from .safety import read_task_folder

    try:
        return read_task_folder(Path(folder), keep=lambda rel: rel in (BENCHMARK_JSON, CARD))
    except InputError as exc:
        raise InputError(f"cannot read {folder}: {exc}") from None


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
    folder = Path(folder)
    files = _benchmark_files(folder)
    if set(files) != {BENCHMARK_JSON, CARD}:
        raise InputError(f"{folder} is not a benchmark folder (it needs {BENCHMARK_JSON} and {CARD})")
    manifest = _manifest_from(files[BENCHMARK_JSON].decode("utf-8", errors="replace"), str(folder / BENCHMARK_JSON))
    entries = resolve_tasks(manifest, registry)
    target_hub, repo_id = parse_target(to)
    hub = hub or target_hub
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


def read_benchmark_from_hub(hub, repo_id: str, revision: str) -> Optional[BenchmarkManifest]:
    raw = hub.read_file(repo_id, BENCHMARK_JSON, revision)
    return None if raw is None else _manifest_from(raw.decode("utf-8"), f"{repo_id}@{revision}")
