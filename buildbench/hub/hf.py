"""The Hugging Face Hub as a ``Publisher``, through ``huggingface_hub.HfApi``.

One publish is: ``create_repo(repo_type="dataset", exist_ok=True)`` (``ensure_repo``), the repo's refs (the
tag must not exist yet; main's commit becomes the commit's parent, so a concurrent push makes the commit fail
instead of being overwritten), main's file list (files no longer in the snapshot are deleted in the same
commit; the Hub's own ``.gitattributes`` is kept), ONE ``create_commit`` with a ``CommitOperationAdd`` per file
(``create_pr=True`` opens a pull request instead of committing to main), then ``create_tag`` on that commit.

A submission's pull request is the same commit with ``create_pr=True``: its title is the commit message and
its description the commit description. A review merges it with ``HfApi.merge_pull_request`` after checking the
pull request is open, targets main and still has the head commit that was validated, then tags the merge
commit. The Hub cannot unmerge: a review that fails after merging deletes its tag and says so (``undo_merge``
returns False). The Hub's API reports no git modes, so ``list_tree`` gives every file as a plain file.

The token is never handled here: HfApi resolves it from ``HF_TOKEN`` or ``hf auth login`` (or
``huggingface-cli login``), and it is never passed on a command line nor logged.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from typing import Iterator, Optional
from urllib.parse import quote

from ..errors import PublishError
from .base import MAIN, PublishResult, TreeEntry, check_path, check_publish, check_repo_id, check_tag, pr_moved, \
    tag_exists

log = logging.getLogger(__name__)

REPO_TYPE = "dataset"
# The Hub creates this file in every new repo (LFS rules); a snapshot without it must not delete it.
KEEP = frozenset({".gitattributes"})


# The HTTP client huggingface_hub speaks, by its major version: httpx2 (2.x), httpx (1.x), requests (0.x).
_TRANSPORT_ERRORS = (("httpx2", "HTTPError"), ("httpx", "HTTPError"), ("requests", "RequestException"))


def transport_errors() -> tuple[type[BaseException], ...]:
    """The connection and protocol errors of whichever of those clients is installed (none is a dependency of
    buildbench itself: the declared huggingface_hub range spans all three)."""
    found = []
    for module, name in _TRANSPORT_ERRORS:
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


@contextlib.contextmanager
def hub_errors(what: str, repo_id: str) -> Iterator[None]:
    """Any client or HTTP failure becomes one line: what failed, for which repo, and the Hub's first line."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    try:
        yield
    except PublishError:
        raise
    except OfflineModeIsEnabled:
        raise PublishError(f"cannot {what} {repo_id}: HF_HUB_OFFLINE is set") from None
    except (HfHubHTTPError, ValueError, *transport_errors()) as exc:
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise PublishError(f"cannot {what} {repo_id} on the Hub: {first}") from None


class HfHub:
    """A ``Publisher`` for the Hugging Face Hub (or any server speaking its API, e.g. ``endpoint=HF_ENDPOINT``)."""

    def __init__(self, endpoint: Optional[str] = None):
        from huggingface_hub import HfApi

        from .. import __version__

        self.api = HfApi(endpoint=endpoint, library_name="buildbench", library_version=__version__)
        self.endpoint = self.api.endpoint.rstrip("/")

    def __repr__(self) -> str:
        return f"HfHub({self.endpoint!r})"

    def url(self, repo_id: str, revision: Optional[str] = None) -> str:
        base = f"{self.endpoint}/datasets/{repo_id}"
        return f"{base}/tree/{quote(revision, safe='')}" if revision else base

    # -- Publisher

    def ensure_repo(self, repo_id: str) -> str:
        check_repo_id(repo_id)
        with hub_errors("create", repo_id):
            return str(self.api.create_repo(repo_id, repo_type=REPO_TYPE, exist_ok=True))

    def publish(self, repo_id: str, files: dict[str, bytes], message: str, *, revision_tag: Optional[str] = None,
                create_pr: bool = False, description: Optional[str] = None) -> PublishResult:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        check_publish(repo_id, files, revision_tag)
        self.ensure_repo(repo_id)
        refs = self._refs(repo_id)
        if revision_tag is not None and revision_tag in refs["tags"]:
            raise tag_exists(repo_id, revision_tag, refs["tags"][revision_tag])
        parent = refs["branches"].get(MAIN)
        existing = self.list_files(repo_id, parent) if parent else []
        operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=bytes(files[path]))
                      for path in sorted(files)]
        operations += [CommitOperationDelete(path_in_repo=path)
                       for path in existing if path not in files and path not in KEEP]
        with hub_errors("commit to", repo_id):
            info = self.api.create_commit(repo_id, operations, commit_message=message.strip() or "Update",
                                          commit_description=(description or "").strip() or None,
                                          repo_type=REPO_TYPE, create_pr=create_pr, parent_commit=parent)
        commit = info.oid
        if revision_tag is not None:  # checked absent above; the Hub refuses (409) if it appeared since
            self._create_tag(repo_id, revision_tag, commit, message)
        pr_ref = info.pr_revision if create_pr else None
        unchanged = not create_pr and commit == parent
        url = info.pr_url or self.url(repo_id, revision_tag or commit)
        log.info("published %s to %s: %s%s", repo_id, self.endpoint, commit[:12],
                 f" ({revision_tag})" if revision_tag else (f" ({pr_ref})" if pr_ref else ""))
        return PublishResult(commit, revision_tag, pr_ref, url, unchanged=unchanged)

    def create_tag(self, repo_id: str, tag: str, revision: str, message: Optional[str] = None) -> str:
        check_repo_id(repo_id)
        check_tag(tag)
        with hub_errors("resolve a revision of", repo_id):
            commit = self.api.repo_info(repo_id, repo_type=REPO_TYPE, revision=revision).sha
        self._tag(repo_id, tag, commit, message or tag)
        return commit

    def tags(self, repo_id: str) -> dict[str, str]:
        return self._refs(repo_id)["tags"]

    def pull_requests(self, repo_id: str) -> dict[int, str]:
        """Pull request number -> its head commit."""
        from huggingface_hub.errors import RepositoryNotFoundError

        check_repo_id(repo_id)
        with hub_errors("list the pull requests of", repo_id):
            try:
                refs = self.api.list_repo_refs(repo_id, repo_type=REPO_TYPE, include_pull_requests=True)
            except RepositoryNotFoundError:
                return {}
        return dict(sorted((int(r.ref.rsplit("/", 1)[1]), r.target_commit) for r in refs.pull_requests or []))

    def read_file(self, repo_id: str, path: str, revision: str = MAIN) -> Optional[bytes]:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        check_repo_id(repo_id)
        check_path(path)
        url = hf_hub_url(repo_id, path, repo_type=REPO_TYPE, revision=revision, endpoint=self.endpoint)
        with hub_errors(f"read {path} at {revision} of", repo_id):
            response = get_session().get(url, headers=build_hf_headers(library_name="buildbench"))
            try:
                hf_raise_for_status(response)
            except (EntryNotFoundError, RevisionNotFoundError, RepositoryNotFoundError):
                return None
            return response.content

    def list_files(self, repo_id: str, revision: str = MAIN) -> list[str]:
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        check_repo_id(repo_id)
        with hub_errors(f"list the files at {revision} of", repo_id):
            try:
                return sorted(self.api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=revision))
            except (RepositoryNotFoundError, RevisionNotFoundError):
                return []

    def list_tree(self, repo_id: str, revision: str = MAIN) -> list[TreeEntry]:
        return [TreeEntry(path) for path in self.list_files(repo_id, revision)]

    def main_commit(self, repo_id: str) -> Optional[str]:
        return self._refs(repo_id)["branches"].get(MAIN)

    def merge_pr(self, repo_id: str, pr_number: int, *, head: Optional[str] = None,
                 message: Optional[str] = None) -> str:
        """Merge an open pull request into main with ``HfApi.merge_pull_request`` (``message``: the comment
        posted with the merge); a pull request already merged returns its merge commit, so a review that
        stopped after merging can finish. Returns the merge commit."""
        check_repo_id(repo_id)
        where = f"pull request #{pr_number} of {repo_id}"
        details = self._pr_details(repo_id, pr_number)
        if not details.is_pull_request:
            raise PublishError(f"#{pr_number} of {repo_id} is a discussion, not a pull request")
        if details.target_branch not in (MAIN, f"refs/heads/{MAIN}"):
            raise PublishError(f"{where} targets {details.target_branch}, not {MAIN}")
        if details.status not in ("open", "merged"):
            raise PublishError(f"{where} is {details.status}; only an open pull request is merged")
        if head is not None:
            now = self.pull_requests(repo_id).get(int(pr_number))
            if now != head:
                raise pr_moved(repo_id, pr_number, head, now)
        if details.status == "open":
            if details.conflicting_files:
                raise PublishError(f"{where} conflicts with {MAIN}; ask for a new one from {MAIN}")
            with hub_errors(f"merge pull request #{pr_number} of", repo_id):
                self.api.merge_pull_request(repo_id, int(pr_number), comment=message, repo_type=REPO_TYPE)
            details = self._pr_details(repo_id, pr_number)
        merged = details.merge_commit_oid or self.main_commit(repo_id)
        if not merged:
            raise PublishError(f"{where} was merged but the Hub reports no merge commit")
        log.info("merged pull request #%d of %s into %s: %s", pr_number, repo_id, MAIN, merged[:12])
        return merged

    def undo_merge(self, repo_id: str, merged: str, previous: Optional[str]) -> bool:
        # The Hub's API has no way to move main back; a revert would be a new commit, for a person to decide.
        return False

    def delete_tag(self, repo_id: str, tag: str, commit: str) -> bool:
        check_repo_id(repo_id)
        check_tag(tag)
        existing = self._refs(repo_id)["tags"].get(tag)
        if existing is None:
            return False
        if existing != commit:
            raise PublishError(f"tag {tag} of {repo_id} points at {existing[:12]}, not {commit[:12]}; not deleted")
        with hub_errors(f"delete tag {tag} of", repo_id):
            self.api.delete_tag(repo_id, tag=tag, repo_type=REPO_TYPE)
        log.info("deleted tag %s of %s", tag, repo_id)
        return True

    # -- helpers

    def _pr_details(self, repo_id: str, pr_number: int):
        with hub_errors(f"read pull request #{pr_number} of", repo_id):
            return self.api.get_discussion_details(repo_id, int(pr_number), repo_type=REPO_TYPE)

    def _refs(self, repo_id: str) -> dict[str, dict[str, str]]:
        from huggingface_hub.errors import RepositoryNotFoundError

        check_repo_id(repo_id)
        with hub_errors("list the refs of", repo_id):
            try:
                refs = self.api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
            except RepositoryNotFoundError:
                return {"branches": {}, "tags": {}}
        return {"branches": {b.name: b.target_commit for b in refs.branches},
                "tags": {t.name: t.target_commit for t in refs.tags}}

    def _tag(self, repo_id: str, tag: str, commit: str, message: str) -> None:
        existing = self._refs(repo_id)["tags"].get(tag)
        if existing == commit:
            return
        if existing is not None:
            raise PublishError(f"tag {tag} already exists in {repo_id} at {existing[:12]}; tags are never moved")
        self._create_tag(repo_id, tag, commit, message)

    def _create_tag(self, repo_id: str, tag: str, commit: str, message: str) -> None:
        with hub_errors(f"create tag {tag} in", repo_id):
            self.api.create_tag(repo_id, tag=tag, revision=commit, tag_message=message.strip() or tag,
                                repo_type=REPO_TYPE)
