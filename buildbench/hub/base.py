"""What a hub is to buildbench: the ``Publisher`` protocol and its typed records.

Two hubs implement it: ``LocalHub`` (bare git repos on disk, laid out so olah can serve them as Hub dataset
repos) and ``HfHub`` (the Hugging Face Hub through ``huggingface_hub.HfApi``). Everything above this layer
(versioning, cards, ``publish_task``, submissions) talks to a ``Publisher`` and never to git or HTTP.

Conventions shared by both hubs:

- ``repo_id`` is ``ORG/NAME`` of a *dataset* repo.
- ``publish`` makes ONE commit whose tree is exactly ``files`` (a snapshot: paths not in ``files`` are removed,
  except the Hub's own ``.gitattributes``). Committing a tree equal to the current one makes no commit.
- Versions are tags (``v1.2.0``). A tag is never moved: ``publish`` with an existing ``revision_tag`` raises
  ``PublishError`` before committing anything, and ``create_tag`` of an existing tag raises unless it already
  points at that very commit (then it is a no-op). Unchanged content is detected above this layer
  (``versioning``), from the content hash a published card records.
- A pull request is ``refs/pr/N``. ``revision`` arguments take a branch, a tag, ``refs/pr/N`` or a commit.
- Only regular files are content: ``list_tree`` gives each path's git mode so a reader can refuse symbolic
  links (120000) and submodules (160000) before it reads anything.
- ``merge_pr``, ``create_tag``, ``delete_tag`` and ``undo_merge`` are the steps of a review, which undoes what
  it did when a later step fails: a LocalHub undoes everything; the Hub cannot unmerge (``undo_merge`` says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Protocol, runtime_checkable

from ..errors import PublishError

MAIN = "main"
# git's two modes of a regular file; 120000 is a symbolic link, 160000 a submodule (gitlink), 040000 a folder.
REGULAR_FILE_MODES = frozenset({"100644", "100755"})
_MODE_KINDS = {"120000": "a symbolic link", "160000": "a git submodule (gitlink)", "040000": "a folder"}

# The Hub's own rule for a repo id part: letters, digits, '-', '_', '.'; not starting or ending with '-'/'.',
# no '--' or '..'. Checked here too so a local repo is always publishable to the Hub under the same id.
_PART_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class PublishResult:
    """What one publish did.

    commit: the commit the content is at (the new commit, or the existing one when nothing changed).
    tag: the version tag pointing at ``commit`` (None when none was asked for).
    pr_ref: ``refs/pr/N`` when the commit opened a pull request, else None.
    url: where a person sees it (a Hub page, or ``file://...@revision`` for a local hub).
    unchanged: True when nothing was committed because the content was already there.
    """

    commit: str
    tag: Optional[str]
    pr_ref: Optional[str]
    url: str
    unchanged: bool = False

    @property
    def pr_number(self) -> Optional[int]:
        return int(self.pr_ref.rsplit("/", 1)[1]) if self.pr_ref else None


@dataclass(frozen=True, order=True)
class TreeEntry:
    """One file of a repo at a revision: its path and git mode (``100644`` for a plain file)."""

    path: str
    mode: str = "100644"

    @property
    def regular(self) -> bool:
        return self.mode in REGULAR_FILE_MODES


def irregular_entry_reason(entry: TreeEntry) -> Optional[str]:
    """Why a repo entry is not a plain file (a link would be followed by whoever checks the repo out), or None."""
    if entry.regular:
        return None
    kind = _MODE_KINDS.get(entry.mode, "not a regular file")
    return f"{entry.path} is {kind} (git mode {entry.mode}); only regular files are accepted"


@runtime_checkable
class Publisher(Protocol):
    """A place dataset repos are published to. Every failure is a one-line ``PublishError``."""

    def ensure_repo(self, repo_id: str) -> str:
        """Create the dataset repo if it does not exist; returns its URL."""
        ...

    def publish(
        self,
        repo_id: str,
        files: dict[str, bytes],
        message: str,
        *,
        revision_tag: Optional[str] = None,
        create_pr: bool = False,
        description: Optional[str] = None,
    ) -> PublishResult:
        """Commit ``files`` (repo path -> content, the whole tree) in one commit on main, or as a new pull
        request with ``create_pr``; then tag that commit ``revision_tag``. An existing ``revision_tag`` raises
        PublishError before anything is committed. A tree equal to main's makes no commit (``unchanged``).
        ``message`` is the commit title; ``description`` its body (a pull request's description on the Hub)."""
        ...

    def create_tag(self, repo_id: str, tag: str, revision: str, message: Optional[str] = None) -> str:
        """Tag ``revision`` (e.g. a merged PR's commit on main); returns the tagged commit. Never moves a tag."""
        ...

    def tags(self, repo_id: str) -> dict[str, str]:
        """Tag name -> commit id; {} for a repo that does not exist yet."""
        ...

    def read_file(self, repo_id: str, path: str, revision: str = MAIN) -> Optional[bytes]:
        """The file's bytes at ``revision``; None when the repo, revision or file does not exist."""
        ...

    def list_files(self, repo_id: str, revision: str = MAIN) -> list[str]:
        """Sorted paths of the files at ``revision``; [] when the repo or revision does not exist."""
        ...

    def pull_requests(self, repo_id: str) -> dict[int, str]:
        """Pull request number -> its head commit; {} for a repo that does not exist yet."""
        ...

    def list_tree(self, repo_id: str, revision: str = MAIN) -> list[TreeEntry]:
        """Every file entry at ``revision`` with its git mode, sorted; [] when the repo or revision does not exist."""
        ...

    def main_commit(self, repo_id: str) -> Optional[str]:
        """The commit main points at; None for a repo without commits (or no repo)."""
        ...

    def merge_pr(self, repo_id: str, pr_number: int, *, head: Optional[str] = None,
                 message: Optional[str] = None) -> str:
        """Merge pull request ``pr_number`` into main; returns main's new commit. With ``head``, refuses (before
        merging) a pull request whose head is no longer that commit: only what was reviewed is merged."""
        ...

    def undo_merge(self, repo_id: str, merged: str, previous: Optional[str]) -> bool:
        """Move main from ``merged`` back to ``previous``; False when this hub cannot (the Hub)."""
        ...

    def delete_tag(self, repo_id: str, tag: str, commit: str) -> bool:
        """Delete ``tag`` if it points at ``commit`` (a review undoing its own tag); False when there is no such
        tag; PublishError when it points elsewhere."""
        ...


def check_repo_id(repo_id: str) -> tuple[str, str]:
    """``ORG/NAME`` split in two, or PublishError naming what is wrong."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if len(parts) != 2 or not all(_PART_RE.match(p) and ".." not in p and "--" not in p for p in parts):
        raise PublishError(
            f"'{repo_id}' is not a dataset repo id: expected ORG/NAME (letters, digits, '-', '_', '.')"
        )
    if parts[1].endswith(".git"):
        raise PublishError(f"'{repo_id}': a repo name cannot end in '.git'")
    return parts[0], parts[1]


_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_tag(tag: str) -> str:
    """A tag name both git and the Hub accept (``v1.2.0``), or PublishError."""
    if not isinstance(tag, str) or not _TAG_RE.match(tag) or ".." in tag or tag.endswith((".", ".lock")):
        raise PublishError(f"'{tag}' is not a valid tag name")
    return tag


def check_path(path: str) -> str:
    """A relative repo path without '..', '.', empty parts or a '.git' part, or PublishError."""
    parts = path.split("/") if isinstance(path, str) else [""]
    if not path or path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts) or "\\" in path:
        raise PublishError(f"'{path}' is not a valid file path in a repo")
    return path


def check_publish(repo_id: str, files: dict[str, bytes], revision_tag: Optional[str]) -> None:
    """What every publisher checks before it touches a repo: the repo id, a non-empty tree, safe paths, the tag."""
    check_repo_id(repo_id)
    if not files:
        raise PublishError(f"nothing to publish to {repo_id}: no files")
    for path in files:
        check_path(path)
    if revision_tag is not None:
        check_tag(revision_tag)


def tag_exists(repo_id: str, tag: str, commit: str) -> PublishError:
    """The refusal to move a tag."""
    return PublishError(f"tag {tag} already exists in {repo_id} at {commit[:12]}; tags are never moved: "
                        "publish a new version")


def pr_moved(repo_id: str, pr_number: int, validated: str, now: Optional[str]) -> PublishError:
    """The refusal to merge a pull request whose head is not the commit that was validated."""
    return PublishError(f"pull request #{pr_number} of {repo_id} changed since it was validated "
                        f"({validated[:12]} -> {(now or 'gone')[:12]}); nothing merged: review it again")
