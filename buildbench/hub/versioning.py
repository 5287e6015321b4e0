"""Versions of a published task: semantic versions, the content hash, and the rule that picks the next version.

The rules (``decide_version``):

- content whose hash equals the latest version's is not published again: the result is "unchanged, vX.Y.Z";
- changed content needs ``--version`` greater than the latest, or ``--bump major|minor|patch``;
- the first publish is 1.0.0 unless ``--version`` says otherwise;
- an existing tag is never moved (the hubs refuse it too).

The content hash covers the data only: every Parquet file and ``task.json``, by relative path and sha256. The
card, metadata.json, the mteb task module and descriptive_stats.json are derived from the data and the version
(they pin the revision), so they differ between versions of the same data and are left out.

Task folders are read by ``safety.read_task_folder``, which never follows a link: a symbolic link (to a file or a
folder), a hard link (a file with more than one name, possibly outside the folder) or a device refuses the
folder, so nothing outside it can be hashed or published through it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional

from ..errors import ConfigError, InputError, PublishError
from .safety import read_task_folder

BUMPS = ("major", "minor", "patch")
FIRST_VERSION = "1.0.0"
TASK_JSON = "task.json"

_VERSION_RE = re.compile(r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> "Version":
        """``1.2.3`` or ``v1.2.3``; anything else (pre-releases included) is a ConfigError."""
        m = _VERSION_RE.match(str(text).strip())
        if not m:
            raise ConfigError(f"'{text}' is not a version: expected MAJOR.MINOR.PATCH, e.g. 1.2.0")
        return cls(*(int(g) for g in m.groups()))

    def bump(self, part: str) -> "Version":
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise ConfigError(f"cannot bump '{part}': expected one of {', '.join(BUMPS)}")

    @property
    def tag(self) -> str:
        return f"v{self}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def versions_of(tags: Iterable[str]) -> dict[Version, str]:
    """The tags that are versions (``vX.Y.Z``), by version; other tags are ignored."""
    found = {}
    for tag in tags:
        if tag.startswith("v") and _VERSION_RE.match(tag):
            found[Version.parse(tag)] = tag
    return found


def latest_version(tags: Iterable[str]) -> Optional[Version]:
    versions = versions_of(tags)
    return max(versions) if versions else None


# -- content hash


def is_data_path(path: str) -> bool:
    """Whether a repo path is part of the content hash: any Parquet file, and task.json at the top."""
    return path == TASK_JSON or path.endswith(".parquet")


def content_hash(files: Mapping[str, bytes]) -> str:
    """``sha256:<hex>`` over the sorted (relative path, file sha256) pairs of the data files in ``files``."""
    h = hashlib.sha256()
    for path in sorted(p for p in files if is_data_path(p)):
        h.update(f"{path}\0{hashlib.sha256(files[path]).hexdigest()}\n".encode())
    return f"sha256:{h.hexdigest()}"


def task_data_files(task_dir: Path) -> dict[str, bytes]:
    """Relative path -> bytes of the data files of a task folder (what ``content_hash`` covers)."""
    try:
        return read_task_folder(task_dir, keep=is_data_path)
    except InputError as exc:
        raise InputError(f"cannot read {task_dir}: {exc}") from None


def task_content_hash(task_dir: Path) -> str:
    return content_hash(task_data_files(task_dir))


# -- the rule


@dataclass(frozen=True)
class VersionDecision:
    """version: what to publish (or, when ``unchanged``, the latest version that already holds the content)."""

    version: Version
    unchanged: bool
    latest: Optional[Version]


def decide_version(new_hash: str, latest: Optional[Version], latest_hash: Optional[str], *,
                   version: Optional[str] = None, bump: Optional[str] = None) -> VersionDecision:
    """Apply the versioning rules (module docstring). Raises ConfigError for bad options and PublishError when
    changed content comes without a version or bump, or with a version that is not greater than the latest."""
    if version is not None and bump is not None:
        raise ConfigError("give either --version or --bump, not both")
    if bump is not None and bump not in BUMPS:
        raise ConfigError(f"--bump must be one of {', '.join(BUMPS)} (got '{bump}')")
    wanted = Version.parse(version) if version is not None else None
    if latest is None:
        return VersionDecision(wanted or Version.parse(FIRST_VERSION), False, None)
    if latest_hash is not None and new_hash == latest_hash:
        return VersionDecision(latest, True, latest)
    if wanted is not None:
        if wanted <= latest:
            raise PublishError(f"version {wanted} is not greater than the latest published version {latest.tag}")
        return VersionDecision(wanted, False, latest)
    if bump is not None:
        return VersionDecision(latest.bump(bump), False, latest)
    raise PublishError(
        f"the data changed since {latest.tag} ({_short(latest_hash)} -> {_short(new_hash)}); pass --version X.Y.Z "
        f"greater than {latest} or --bump major|minor|patch"
    )


def _short(h: Optional[str]) -> str:
    return "unknown" if not h else h.split(":", 1)[-1][:12]
