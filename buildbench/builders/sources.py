"""The ingest entry point: input specs (files, folders, globs, Hub addresses) to documents, in a fixed order.

``read_documents`` resolves every spec before reading anything, reads each file once, and stops at
``max_docs``. What an input that cannot be used becomes (a skip with a reason) is described in ``documents``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Optional, Union

from ..domain_pack import ReaderConfig
from ..errors import InputError
from .documents import Collector, FileInput, IngestResult, RecordFields
from .formats import read_file
from .hub import parse_hub_address, read_hub_into

log = logging.getLogger(__name__)

_GLOB_MAGIC = re.compile(r"[*?[]")


def read_documents(specs: list[str], cfg: ReaderConfig, max_docs: Optional[int] = None, *,
                   stage: str) -> IngestResult:
    """Read every document the input specs name, in a deterministic order.

    Args:
        specs: each one a file, a folder (read recursively; hidden files and folders are ignored), a glob
            (``docs/**/*.md``) or a Hub dataset ``hf://datasets/NAME[:config][@revision]`` (split ``train``;
            use ``read_hub`` with a ``HubSource`` for another split). Specs are read in the given order, the
            files of one spec sorted by path; a file named by two specs is read once.
        cfg: field names for record formats (JSONL/JSON/CSV/Parquet/Hub) and the per-file size cap.
        max_docs: stop once this many documents are read; ``None`` reads everything.
        stage: the name of the stage that reads, for the skips' and warnings' ``Drop.stage``.

    Returns:
        The documents, the skipped inputs and the warnings. An input that cannot be used never stops the
        run; if nothing at all is readable the result is empty and the caller decides.

    Raises:
        InputError: a spec matches nothing, or a Hub dataset cannot be streamed.
    """
    sink = Collector(max_docs, stage)
    inputs = _resolve(specs)  # every spec is checked before any file is read
    fields = RecordFields.from_config(cfg)
    for inp in inputs:
        if sink.full:
            break
        if isinstance(inp, str):
            name, config, revision = parse_hub_address(inp)
            read_hub_into(sink, inp, name, config, revision, "train", fields)
        else:
            read_file(sink, inp, cfg, fields)
    res = sink.result
    log.info("read %d documents from %d inputs (%d skipped, %d warnings)",
             len(res.documents), len(inputs), len(res.skipped), len(res.warnings))
    return res


def _resolve(specs: list[str]) -> list[Union[str, FileInput]]:
    out: list[Union[str, FileInput]] = []
    seen: set[Union[str, Path]] = set()
    for spec in specs:
        if spec.startswith("hf://"):
            parse_hub_address(spec)  # a malformed address fails now, before any reading
            if spec not in seen:
                seen.add(spec)
                out.append(spec)
            continue
        for inp in _expand(spec):
            key = inp.path.resolve()
            if key not in seen:
                seen.add(key)
                out.append(inp)
    return out


def _expand(spec: str) -> list[FileInput]:
    path = Path(spec).expanduser()
    if path.is_file():
        return [FileInput(path, path.name)]
    if path.is_dir():
        files = _walk(path)
        if not files:
            raise InputError(f"'{spec}' is a folder with no files in it")
        return files
    if _GLOB_MAGIC.search(spec):
        base = _glob_base(path)
        matches: list[FileInput] = []
        # Path.glob needs a relative pattern; the non-magic prefix is its anchor.
        pattern = str(path.relative_to(base)) if base != Path(".") else str(path)
        # Path.glob matches dotfiles with "*" (shell globs do not); only a pattern that asks for them gets them.
        want_hidden = any(part.startswith(".") for part in Path(pattern).parts)
        for hit in base.glob(pattern):
            if not want_hidden and any(part.startswith(".") for part in hit.relative_to(base).parts):
                continue
            if hit.is_file():
                matches.append(FileInput(hit, hit.relative_to(base).as_posix()))
            elif hit.is_dir():
                matches.extend(FileInput(f.path, f"{hit.relative_to(base).as_posix()}/{f.rel}") for f in _walk(hit))
        if not matches:
            raise InputError(f"no file matches '{spec}'")
        return sorted(matches, key=lambda f: f.rel)
    raise InputError(f"no such file or folder: '{spec}'")


def _walk(folder: Path) -> list[FileInput]:
    files = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        # Hidden files and folders are editor and VCS droppings (.git, .DS_Store), never documents.
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            files.append(FileInput(p, rel.as_posix()))
    return sorted(files, key=lambda f: f.rel)


def _glob_base(path: Path) -> Path:
    plain = []
    for part in path.parts:
        if _GLOB_MAGIC.search(part):
            break
        plain.append(part)
    return Path(*plain) if plain else Path(".")
