"""A hub on disk: one bare git repo per dataset, laid out so olah serves it as a Hugging Face Hub mirror.

Layout::

    ROOT/datasets/ORG/NAME/      a bare git repo (HEAD, objects/, refs/heads/main, refs/tags/v1.0.0, refs/pr/1)

No ``.git`` suffix on NAME: olah (0.5.x, ``olah/server_mirror.py``) looks a repo up at exactly
``<mirrors-path>/<repo_type>/<org>/<repo>`` and opens it with GitPython, which reads bare repos. Pointing
olah's ``mirrors-path`` at ROOT therefore serves every repo here to ``huggingface_hub``, ``datasets`` and mteb
at any branch, tag (``revision="v1.0.0"``) or commit.

Every write is git plumbing run as a subprocess (never a shell): blobs with ``hash-object``, the tree in a
throw-away index (``update-index``, ``write-tree``), the commit with ``commit-tree``, and the ref moved with
``update-ref`` given the value it is expected to have, so two publishers racing on main cannot lose a commit:
the second one fails and is told to publish again. Files are stored as plain git blobs (no LFS), which is
what olah reads back byte for byte.

Reading is by git mode: ``list_tree`` reports each entry's mode and ``read_file`` returns only regular files, so
a pull request pushed with plain git that holds a symbolic link (120000) or a submodule (160000) is seen as
such, never as the link target's text. A hub the user cannot write to fails with one line saying so.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from ..errors import PublishError
from .base import MAIN, PublishResult, TreeEntry, check_path, check_publish, check_repo_id, check_tag, pr_moved, \
    tag_exists

log = logging.getLogger(__name__)

_MAIN_REF = f"refs/heads/{MAIN}"
_PR_RE = re.compile(r"^refs/pr/([1-9][0-9]*)$")
# Commits and tags are written under a fixed identity, with the user's git config ignored: a global
# tag.gpgSign or hook must not change (or break) what a hub stores.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "buildbench",
    "GIT_AUTHOR_EMAIL": "buildbench@localhost",
    "GIT_COMMITTER_NAME": "buildbench",
    "GIT_COMMITTER_EMAIL": "buildbench@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}


class LocalHub:
    """A ``Publisher`` over bare git repos under ``root`` (see the module docstring for the layout)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalHub({str(self.root)!r})"

    # -- paths and git

    def repo_path(self, repo_id: str) -> Path:
        org, name = check_repo_id(repo_id)
        return self.root / "datasets" / org / name

    def url(self, repo_id: str, revision: Optional[str] = None) -> str:
        uri = self.repo_path(repo_id).as_uri()
        return f"{uri}@{revision}" if revision else uri

    def _git(self, repo: Path, *args: str, stdin: bytes | None = None, check: bool = True,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        cmd = ["git", f"--git-dir={repo}", *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, env={**os.environ, **_GIT_ENV, **(env or {})})
        if check and proc.returncode != 0:
            detail = proc.stderr.decode(errors="replace").strip().splitlines()
            raise PublishError(f"git {args[0]} failed in {repo}: {detail[-1] if detail else f'exit {proc.returncode}'}")
        return proc

    def _out(self, repo: Path, *args: str, stdin: bytes | None = None) -> str:
        return self._git(repo, *args, stdin=stdin).stdout.decode().strip()

    def _exists(self, repo: Path) -> bool:
        return (repo / "HEAD").is_file()

    def _resolve(self, repo: Path, revision: str) -> Optional[str]:
        """The commit ``revision`` names, or None."""
        if not revision or revision.startswith("-"):
            return None
        proc = self._git(repo, "rev-parse", "--verify", "-q", f"{revision}^{{commit}}", check=False)
        if proc.returncode != 0:
            return None
        return proc.stdout.decode().strip() or None

    def _tree_of(self, repo: Path, commit: str) -> str:
        return self._out(repo, "rev-parse", f"{commit}^{{tree}}")

    def _require(self, repo_id: str) -> Path:
        repo = self.repo_path(repo_id)
        if not self._exists(repo):
            raise PublishError(f"no dataset repo {repo_id} in {self.root}")
        return repo

    def _not_writable(self, repo_id: str, reason: str, creating: bool = False) -> PublishError:
        what = "create" if creating else "write to"
        return PublishError(f"the hub {self.root} is not writable ({reason}): cannot {what} the dataset repo {repo_id}")

    def _require_writable(self, repo: Path, repo_id: str) -> None:
        """Checked before a write, so a read-only hub fails with one line instead of git's partial output."""
        for path in (repo / "objects", repo / "refs"):
            if not os.access(path, os.W_OK):
                statvfs, flag = getattr(os, "statvfs", None), getattr(os, "ST_RDONLY", 0)
                read_only = bool(statvfs and flag and statvfs(path).f_flag & flag)
                raise self._not_writable(repo_id, os.strerror(errno.EROFS if read_only else errno.EACCES))

    # -- Publisher

    def ensure_repo(self, repo_id: str) -> str:
        repo = self.repo_path(repo_id)
        if not self._exists(repo):
            try:
                repo.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise self._not_writable(repo_id, exc.strerror, creating=True) from None
                raise PublishError(f"cannot create the dataset repo {repo_id} in {self.root}: {exc.strerror}") from None
            proc = subprocess.run(["git", "init", "--bare", "-q", f"--initial-branch={MAIN}", str(repo)],
                                  capture_output=True, env={**os.environ, **_GIT_ENV})
            if proc.returncode != 0:
                raise PublishError(f"cannot create a git repo in {repo}: {proc.stderr.decode(errors='replace').strip()}")
            log.info("created dataset repo %s in %s", repo_id, self.root)
        return self.url(repo_id)

    def publish(self, repo_id: str, files: dict[str, bytes], message: str, *, revision_tag: Optional[str] = None,
                create_pr: bool = False, description: Optional[str] = None) -> PublishResult:
        check_publish(repo_id, files, revision_tag)
        self.ensure_repo(repo_id)
        repo = self.repo_path(repo_id)
        self._require_writable(repo, repo_id)
        if description and description.strip():
            message = f"{message.strip()}\n\n{description.strip()}"  # git's title, blank line, body
        tagged = self.tags(repo_id).get(revision_tag) if revision_tag is not None else None
        if tagged is not None:
            raise tag_exists(repo_id, revision_tag, tagged)
        parent = self._resolve(repo, _MAIN_REF)
        tree = self._write_tree(repo, files)

        pr_ref = None
        unchanged = False
        if create_pr:
            commit = self._commit_tree(repo, tree, [parent] if parent else [], message)
            pr_ref = self._open_pr(repo, commit)
        elif parent and self._tree_of(repo, parent) == tree:
            commit, unchanged = parent, True
        else:
            commit = self._commit_tree(repo, tree, [parent] if parent else [], message)
            self._move_main(repo, repo_id, commit, parent)
        if revision_tag is not None:
            self._tag(repo, repo_id, revision_tag, commit, message)
        revision = revision_tag or pr_ref or commit
        log.info("published %s to %s: %s%s", repo_id, self.root, commit[:12],
                 f" ({revision_tag})" if revision_tag else "")
        return PublishResult(commit, revision_tag, pr_ref, self.url(repo_id, revision), unchanged=unchanged)

    def create_tag(self, repo_id: str, tag: str, revision: str, message: Optional[str] = None) -> str:
        check_tag(tag)
        repo = self._require(repo_id)
        self._require_writable(repo, repo_id)
        commit = self._resolve(repo, revision)
        if commit is None:
            raise PublishError(f"no revision '{revision}' in {repo_id}")
        self._tag(repo, repo_id, tag, commit, message or tag)
        return commit

    def tags(self, repo_id: str) -> dict[str, str]:
        repo = self.repo_path(repo_id)
        if not self._exists(repo):
            return {}
        # %(*objectname) is the commit an annotated tag points at; empty for a lightweight tag.
        out = self._out(repo, "for-each-ref", "--format=%(refname:strip=2) %(objectname) %(*objectname)",
                        "refs/tags")
        result = {}
        for line in out.splitlines():
            name, obj, *peeled = line.split(" ")
            result[name] = peeled[0] if peeled and peeled[0] else obj
        return result

    def pull_requests(self, repo_id: str) -> dict[int, str]:
        """Pull request number -> its head commit, merged or not."""
        repo = self.repo_path(repo_id)
        if not self._exists(repo):
            return {}
        out = self._out(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/pr")
        prs = {}
        for line in out.splitlines():
            ref, obj = line.split(" ")
            m = _PR_RE.match(ref)
            if m:
                prs[int(m.group(1))] = obj
        return dict(sorted(prs.items()))

    def read_file(self, repo_id: str, path: str, revision: str = MAIN) -> Optional[bytes]:
        check_path(path)
        repo = self.repo_path(repo_id)
        if not self._exists(repo):
            return None
        commit = self._resolve(repo, revision)
        if commit is None:
            return None
        entry = self._entry(repo, commit, path)
        if entry is None or not entry.regular:
            return None  # a link's "content" is its target: never handed out as a file
        proc = self._git(repo, "cat-file", "blob", f"{commit}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def list_tree(self, repo_id: str, revision: str = MAIN) -> list[TreeEntry]:
        repo = self.repo_path(repo_id)
        if not self._exists(repo):
            return []
        commit = self._resolve(repo, revision)
        return [] if commit is None else self._ls_tree(repo, commit)

    def main_commit(self, repo_id: str) -> Optional[str]:
        repo = self.repo_path(repo_id)
        return self._resolve(repo, _MAIN_REF) if self._exists(repo) else None

    def list_files(self, repo_id: str, revision: str = MAIN) -> list[str]:
        return [entry.path for entry in self.list_tree(repo_id, revision)]

    def merge_pr(self, repo_id: str, pr_number: int, *, head: Optional[str] = None,
                 message: Optional[str] = None) -> str:
        repo = self._require(repo_id)
        self._require_writable(repo, repo_id)
        validated, head = head, self._resolve(repo, f"refs/pr/{int(pr_number)}")
        if head is None:
            raise PublishError(f"{repo_id} has no pull request #{pr_number}")
        if validated is not None and head != validated:
            raise pr_moved(repo_id, pr_number, validated, head)
        main = self._resolve(repo, _MAIN_REF)
        if main is not None and self._is_ancestor(repo, head, main):
            raise PublishError(f"pull request #{pr_number} of {repo_id} is already merged into {MAIN}")
        if main is None or self._is_ancestor(repo, main, head):
            merged = head  # fast-forward: main has not moved since the PR was opened
        else:
            proc = self._git(repo, "merge-tree", "--write-tree", main, head, check=False)
            if proc.returncode != 0:
                raise PublishError(
                    f"pull request #{pr_number} of {repo_id} conflicts with {MAIN}; open a new one from {MAIN}"
                )
            tree = proc.stdout.decode().splitlines()[0].strip()
            merged = self._commit_tree(repo, tree, [main, head], message or f"Merge pull request #{pr_number}")
        self._move_main(repo, repo_id, merged, main)
        log.info("merged pull request #%d of %s into %s: %s", pr_number, repo_id, MAIN, merged[:12])
        return merged

    def undo_merge(self, repo_id: str, merged: str, previous: Optional[str]) -> bool:
        repo = self._require(repo_id)
        # Only from exactly ``merged``: a main that moved on since is never rewound.
        args = ["update-ref", "-m", "buildbench review rollback"]
        args += [_MAIN_REF, previous, merged] if previous else ["-d", _MAIN_REF, merged]
        proc = self._git(repo, *args, check=False)
        if proc.returncode != 0:
            raise PublishError(f"cannot move {MAIN} of {repo_id} back to {(previous or 'empty')[:12]}: it moved on "
                               f"from {merged[:12]}")
        log.info("moved %s of %s back to %s", MAIN, repo_id, (previous or "empty")[:12])
        return True

    def delete_tag(self, repo_id: str, tag: str, commit: str) -> bool:
        check_tag(tag)
        repo = self._require(repo_id)
        out = self._out(repo, "for-each-ref", "--format=%(objectname) %(*objectname)", f"refs/tags/{tag}")
        if not out:
            return False
        obj, _, peeled = out.partition(" ")
        if (peeled or obj) != commit:
            raise PublishError(f"tag {tag} of {repo_id} points at {(peeled or obj)[:12]}, not {commit[:12]}; "
                               "not deleted")
        self._git(repo, "update-ref", "-d", f"refs/tags/{tag}", obj)
        log.info("deleted tag %s of %s", tag, repo_id)
        return True

    # -- plumbing

    def _ls_tree(self, repo: Path, commit: str, path: Optional[str] = None) -> list[TreeEntry]:
        """Entries of ``commit`` (recursively; only ``path`` when given) with their modes."""
        args = ["ls-tree", "-r", "-z", "--full-tree", commit] + (["--", path] if path else [])
        out = self._git(repo, *args, env={"GIT_LITERAL_PATHSPECS": "1"}).stdout.decode("utf-8", "surrogateescape")
        entries = []
        for record in filter(None, out.split("\0")):
            meta, _, name = record.partition("\t")
            entries.append(TreeEntry(name, meta.split(" ", 1)[0]))
        return sorted(entries)

    def _entry(self, repo: Path, commit: str, path: str) -> Optional[TreeEntry]:
        return next((e for e in self._ls_tree(repo, commit, path) if e.path == path), None)

    def _write_tree(self, repo: Path, files: dict[str, bytes]) -> str:
        """Store ``files`` as blobs and return the id of the tree holding exactly them."""
        entries = []
        for path in sorted(files):
            blob = self._out(repo, "hash-object", "-w", "--stdin", stdin=bytes(files[path]))
            entries.append(f"100644 {blob}\t{path}".encode() + b"\0")
        with tempfile.TemporaryDirectory(prefix="buildbench-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            proc = self._git(repo, "update-index", "--add", "-z", "--index-info", stdin=b"".join(entries),
                             env=env, check=False)
            if proc.returncode != 0:
                # e.g. "a" and "a/b" both given: a path cannot be a file and a folder.
                raise PublishError(f"cannot build a tree from these files: "
                                   f"{proc.stderr.decode(errors='replace').strip().splitlines()[-1]}")
            return self._git(repo, "write-tree", env=env).stdout.decode().strip()

    def _commit_tree(self, repo: Path, tree: str, parents: list[str], message: str) -> str:
        args = ["commit-tree", tree]
        for p in parents:
            args += ["-p", p]
        return self._out(repo, *args, stdin=(message.strip() or "Update").encode() + b"\n")

    def _move_main(self, repo: Path, repo_id: str, commit: str, expected: Optional[str]) -> None:
        proc = self._git(repo, "update-ref", "-m", "buildbench publish", _MAIN_REF, commit, expected or "",
                         check=False)
        if proc.returncode != 0:
            raise PublishError(f"{MAIN} of {repo_id} moved while publishing; publish again")

    def _open_pr(self, repo: Path, commit: str) -> str:
        """Point the next free ``refs/pr/N`` at ``commit``; ``update-ref`` with an empty old value refuses an
        existing ref, so a racing publisher takes the next number instead of overwriting."""
        for _ in range(100):
            taken = [int(m.group(1)) for line in self._out(repo, "for-each-ref", "--format=%(refname)", "refs/pr")
                     .splitlines() if (m := _PR_RE.match(line))]
            ref = f"refs/pr/{max(taken, default=0) + 1}"
            if self._git(repo, "update-ref", ref, commit, "", check=False).returncode == 0:
                return ref
        raise PublishError(f"could not open a pull request in {repo}: refs/pr keeps changing")

    def _tag(self, repo: Path, repo_id: str, tag: str, commit: str, message: str) -> None:
        existing = self.tags(repo_id).get(tag)
        if existing == commit:
            return
        if existing is not None:
            raise PublishError(f"tag {tag} already exists in {repo_id} at {existing[:12]}; tags are never moved")
        # `git tag` without -f refuses an existing tag, so a racing publisher cannot move it either.
        proc = self._git(repo, "tag", "-a", tag, "-m", message.strip() or tag, commit, check=False)
        if proc.returncode != 0:
            existing = self.tags(repo_id).get(tag)
            if existing == commit:
                return
            raise PublishError(f"cannot create tag {tag} in {repo_id}: "
                               f"{proc.stderr.decode(errors='replace').strip() or 'it exists'}")

    def _is_ancestor(self, repo: Path, a: str, b: str) -> bool:
        return self._git(repo, "merge-base", "--is-ancestor", a, b, check=False).returncode == 0
