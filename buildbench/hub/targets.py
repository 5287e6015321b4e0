"""Publish targets: ``hf://ORG/NAME`` (the Hugging Face Hub) or ``file://ROOT/ORG/NAME`` (a ``LocalHub`` at
ROOT), parsed into the hub and the repo id. Below ``publish``, ``manifest``, ``submit`` and ``registry``,
which all address repos this way."""

from __future__ import annotations

from pathlib import Path
from typing import Union
from urllib.parse import unquote

from ..errors import PublishError
from .base import check_repo_id
from .hf import HfHub
from .local import LocalHub

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
