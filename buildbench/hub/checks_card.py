"""The checks of what a submission declares: its card (README.md) and task.json, read with bounded,
non-executing readers. Each check is a function of what it reads that returns a ``Check``; ``hub.validate``
runs them in order.

- ``card_yaml`` (``check_card_yaml``): README.md has a YAML header that ``yaml.safe_load`` reads as a mapping;
  python tags (``!!python/object``), aliases and nesting deeper than ``Limits.max_nesting`` are refused by the
  scanner, before the (recursive) loader runs;
- ``card_paths``: every ``configs[].data_files`` / ``data_dir`` path stays inside the folder, names an allowed
  file type and is not a URL (a card pointing at ``../../x`` or another repo is refused);
- ``card_html``: the card body, rendered as CommonMark and as raw text, holds only HTML an allow-list
  sanitiser (nh3) keeps, and every link is http, https, mailto or relative (``sanitize.card_html_problems``);
- ``metadata``: task.json (nesting bounded before parsing) is a JSON object naming the task; the name holds
  no invisible character and is one the registry accepts (``safety.NAME_PATTERN``);
- ``counts``: every row count the card (``dataset_info`` ``num_examples``, ``size_categories``) and task.json
  (``counts``) declare equals the rows in the Parquet metadata, and each card config reads exactly the files
  validated;
- ``license``: declared (card ``license`` or task.json), not "unknown", the two not contradicting.

``read_card_header``, ``declared_languages`` and ``declared_license`` read the same declarations for the
registry; ``declared_byte_sizes`` gives the sizes the card declares to the ``declared_sizes`` data check.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..errors import InputError, MissingDependencyError
from ..tasks.assemble import size_category
from ..tasks.info import EVAL_LANGS
from ..tasks.layout import CONFIGS, RERANKING, RETRIEVAL, SPLIT, TASK_JSON, TOP_RANKED
from .card import counts_text, split_header
from .checks import Check
from .safety import ALLOWED_EXTENSIONS, NAME_PATTERN, NAME_RULE, Limits, load_json, read_small, unsafe_name_reason
from .sanitize import card_html_problems, unsafe_name_chars

log = logging.getLogger(__name__)

CARD = "README.md"

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_UNKNOWN_LICENSES = ("", "unknown", "none", "n/a", "other-unknown")


@dataclass
class Card:
    """README.md as read: its text ("" when it could not be read) and YAML header (None until it passed)."""

    header: dict[str, Any] | None = None
    text: str = ""


_YAML_OPEN = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
              yaml.FlowSequenceStartToken)
_YAML_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _unsafe_yaml_reason(header: str, limits: Limits) -> str | None:
    """Tags, aliases and deep nesting in a YAML header, found by the scanner (which builds no objects and does
    not recurse; the composer recurses once per level and a few thousand levels raise RecursionError)."""
    depth = 0
    try:
        for token in yaml.scan(header, Loader=yaml.SafeLoader):
            if isinstance(token, _YAML_OPEN):
                depth += 1
                if depth > limits.max_nesting:
                    line = token.start_mark.line + 2
                    return f"{CARD} YAML header nests deeper than {limits.max_nesting} levels (line {line})"
            elif isinstance(token, _YAML_CLOSE):
                depth -= 1
            if isinstance(token, yaml.TagToken):
                handle, suffix = token.value
                tag = f"{handle or ''}{suffix}"
                line = token.start_mark.line + 2  # +1 for 1-based, +1 for the opening '---'
                if "python" in tag.lower():
                    return (
                        f"{CARD} YAML header uses the tag '{tag}' (line {line}): python tags build arbitrary "
                        "objects and are refused; the header is read with yaml.safe_load only"
                    )
                return f"{CARD} YAML header uses the tag '{tag}' (line {line}); explicit tags are refused"
            if isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
                line = token.start_mark.line + 2
                return (
                    f"{CARD} YAML header uses anchors/aliases (line {line}); they are refused because they can "
                    "expand a small header into a huge document"
                )
    except yaml.YAMLError as exc:
        return f"{CARD} YAML header is not valid YAML: {' '.join(str(exc).split())}"
    return None


def check_card_yaml(task_dir: Path, limits: Limits) -> tuple[Check, Card]:
    path = task_dir / CARD
    if not path.is_file():
        return Check("card_yaml", False, f"no {CARD} dataset card"), Card()
    try:
        text = read_small(path, limits)
    except InputError as exc:
        return Check("card_yaml", False, str(exc)), Card()
    raw, _ = split_header(text)
    card = Card(text=text)
    if raw is None:
        return Check("card_yaml", False, f"{CARD} has no YAML header (between '---' lines)"), card
    problem = _unsafe_yaml_reason(raw, limits)
    if problem:
        return Check("card_yaml", False, problem), card
    try:
        header = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        return Check("card_yaml", False, f"{CARD} YAML header is not valid YAML: {' '.join(str(exc).split())}"), card
    except RecursionError:  # pragma: no cover - the nesting scan above comes first
        return Check("card_yaml", False, f"{CARD} YAML header nests too deeply to be read"), card
    if not isinstance(header, dict):
        return Check("card_yaml", False, f"{CARD} YAML header is a {type(header).__name__}, not a mapping"), card
    card.header = header
    return Check("card_yaml", True, f"{CARD} YAML header read with yaml.safe_load ({len(header)} keys)"), card


def check_card_html(card: Card) -> Check:
    if not card.text:
        return Check("card_html", False, f"no {CARD} to check", skipped=True)
    raw, body = split_header(card.text)
    first_line = 1 if raw is None else card.text[: len(card.text) - len(body)].count("\n") + 1
    try:
        problems = card_html_problems(body, first_line=first_line)
    except MissingDependencyError:
        raise
    except Exception as exc:  # a sanitiser failure on odd input is a refusal, never a pass
        log.debug("card HTML check raised", exc_info=True)
        problems = [f"its HTML could not be checked ({type(exc).__name__})"]
    if problems:
        return Check("card_html", False, f"{CARD} holds " + "; ".join(problems))
    return Check("card_html", True, f"{CARD} holds only allow-listed HTML and http, https, mailto or relative links")

def _data_file_patterns(config: Mapping[str, Any]) -> list[str]:
    """Every path string of one card ``configs`` entry (data_files in any of its shapes, and data_dir)."""
    out: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            for v in value:
                add(v)
        elif isinstance(value, Mapping):
            if "path" in value:
                add(value["path"])
            else:  # {split: path} form
                for v in value.values():
                    add(v)
        elif value is not None:
            out.append(repr(value))  # not a path at all; reported as such below

    add(config.get("data_files"))
    if config.get("data_dir") is not None:
        add(config.get("data_dir"))
    return out


def card_configs(header: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    configs = header.get("configs") or []
    return [c for c in configs if isinstance(c, Mapping)] if isinstance(configs, list) else []


def check_card_paths(task_dir: Path, header: Mapping[str, Any]) -> Check:
    configs = header.get("configs")
    if configs is not None and not isinstance(configs, list):
        return Check("card_paths", False, f"{CARD} configs is a {type(configs).__name__}, not a list")
    problems = []
    root = task_dir.resolve()
    n = 0
    for config in card_configs(header):
        name = config.get("config_name", "?")
        for pattern in _data_file_patterns(config):
            n += 1
            if _URL.match(pattern):
                problems.append(f"config '{name}' reads {pattern!r}, a URL outside this submission")
                continue
            problem = unsafe_name_reason(pattern.rstrip("/"))
            if problem:
                problems.append(f"config '{name}' data path: {problem}")
                continue
            if not (root / pattern).resolve().is_relative_to(root):
                problems.append(f"config '{name}' data path {pattern!r} leaves the folder")
                continue
            suffix = PurePosixPath(pattern).suffix.lower()
            if suffix and "*" not in suffix and suffix not in ALLOWED_EXTENSIONS:
                problems.append(f"config '{name}' data path {pattern!r} names a '{suffix}' file")
    if problems:
        return Check("card_paths", False, "; ".join(problems))
    return Check("card_paths", True, f"{n} card data paths, all inside the folder")


def declared_byte_sizes(header: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(where, value) of every size the card's ``dataset_info`` declares."""
    info = header.get("dataset_info")
    blocks = info if isinstance(info, list) else [info] if isinstance(info, Mapping) else []
    out = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        cfg = block.get("config_name", "default")
        for key in ("download_size", "dataset_size"):
            if key in block:
                out.append((f"{key} of config '{cfg}'", block[key]))
        splits = block.get("splits") or []
        if isinstance(splits, Mapping):
            splits = [{"name": k, **v} if isinstance(v, Mapping) else {"name": k} for k, v in splits.items()]
        for split in splits if isinstance(splits, list) else []:
            if isinstance(split, Mapping) and "num_bytes" in split:
                out.append((f"num_bytes of config '{cfg}' split '{split.get('name', '?')}'", split["num_bytes"]))
    return out


_TEXT_FIELDS = ("name", "description", "domain", "language", "eval_lang", "license", "revision", "reference", "type")


def check_metadata(task_dir: Path, limits: Limits) -> tuple[Check, dict[str, Any] | None]:
    path = task_dir / TASK_JSON
    if not path.is_file():
        return Check("metadata", False, f"no {TASK_JSON}"), None
    try:
        record = load_json(path, limits)
    except InputError as exc:
        return Check("metadata", False, str(exc)), None
    if not isinstance(record, dict):
        return Check("metadata", False, f"{TASK_JSON} is a {type(record).__name__}, not an object"), None
    if not isinstance(record.get("name"), str) or not record["name"].strip():
        return Check("metadata", False, f"{TASK_JSON} has no task name"), record
    name = record["name"]
    # The name becomes file names, a class name, registry rows and PR titles: refused here, before any
    # write, when it could display as something else or the registry would refuse it.
    hidden = unsafe_name_chars(name)
    if hidden:
        return Check("metadata", False, f"{TASK_JSON}: the task name {name!r} {hidden}"), record
    if not NAME_PATTERN.match(name):
        return Check("metadata", False, f"{TASK_JSON}: the task name {name!r} {NAME_RULE}"), record
    problems = [f"{key} is {type(record[key]).__name__}, not a string" for key in _TEXT_FIELDS
                if key in record and record[key] is not None and not isinstance(record[key], str)]
    if isinstance(record.get("type"), str) and record["type"] not in (RETRIEVAL, RERANKING):
        problems.append(f"type is '{record['type']}', not Retrieval or Reranking")
    if problems:
        return Check("metadata", False, f"{TASK_JSON}: " + "; ".join(problems)), record
    return Check("metadata", True, f"{TASK_JSON} names task '{name}'"), record


# -- declared counts

# Card config -> the key of task.json ``counts`` (and of ``ValidationReport.counts``) for its rows.
_COUNT_KEYS = {"corpus": "corpus", "queries": "queries", "default": "qrels", TOP_RANKED: "top_ranked"}


def _glob_regex(pattern: str) -> re.Pattern:
    """A data_files pattern as `datasets` resolves it: ``*`` and ``?`` stay within one folder, ``**`` spans
    folders."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + "$")


def _split_patterns(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """{split: data_files patterns} of one card config (a bare pattern is the "train" split, as in datasets)."""
    out: dict[str, list[str]] = {}

    def add(split: Any, paths: Any) -> None:
        for p in paths if isinstance(paths, list) else [paths]:
            if isinstance(p, str):
                out.setdefault(str(split), []).append(p)

    files = config.get("data_files")
    if isinstance(files, str):
        add("train", files)
    elif isinstance(files, list):
        for item in files:
            if isinstance(item, str):
                add("train", item)
            elif isinstance(item, Mapping):
                add(item.get("split", "train"), item.get("path"))
    elif isinstance(files, Mapping):
        for split, paths in files.items():
            add(split, paths)
    return out


def check_counts(header: Mapping[str, Any], record: Mapping[str, Any], files: list[tuple[str, int]],
                 rows: Mapping[str, int]) -> tuple[Check, dict[str, int]]:
    """Every row count the card and task.json declare against ``rows`` (relative name -> rows, from the Parquet
    metadata of the files validation reads); and the card's configs must name exactly those files (`datasets`
    loads what the card says). Returns the check and the verified counts."""
    names = [n for n, _ in files]
    validated: dict[str, list[str]] = {}
    for config in _COUNT_KEYS:
        folder = CONFIGS[config][0]
        shard = _glob_regex(f"{folder}/{SPLIT}-*.parquet")
        validated[config] = sorted(n for n in rows if shard.match(n))
    counts = {_COUNT_KEYS[c]: sum(rows[n] for n in found) for c, found in validated.items() if found}
    problems: list[str] = []
    for config in card_configs(header):
        name = config.get("config_name")
        if name not in _COUNT_KEYS or not validated[name]:
            continue
        patterns = _split_patterns(config).get(SPLIT, [])
        regexes = [_glob_regex(p) for p in patterns]
        read = sorted(n for n in names if any(r.match(n) for r in regexes))
        if read != validated[name]:
            problems.append(f"{CARD} config '{name}' reads {', '.join(read) or 'no file'}, not the validated "
                            f"{', '.join(validated[name])}")
    info = header.get("dataset_info")
    blocks = info if isinstance(info, list) else [info] if info is not None else []
    for i, block in enumerate(blocks, start=1):
        if not isinstance(block, Mapping):
            problems.append(f"{CARD} dataset_info entry {i} is a {type(block).__name__}, not a mapping")
            continue
        cfg = block.get("config_name", "default")
        splits = block.get("splits")
        if splits is None:
            continue
        if not isinstance(splits, list):
            problems.append(f"{CARD} dataset_info config '{cfg}' splits is a {type(splits).__name__}, not a list "
                            "of splits")
            continue
        for split in splits:
            if not isinstance(split, Mapping) or "num_examples" not in split:
                continue
            where = f"{CARD} dataset_info config '{cfg}' split '{split.get('name', '?')}'"
            n = split["num_examples"]
            if isinstance(n, bool) or not isinstance(n, int):
                problems.append(f"{where} num_examples is {n!r}, not a row count")
                continue
            key = _COUNT_KEYS.get(cfg)
            if key in counts and split.get("name") == SPLIT and n != counts[key]:
                problems.append(f"{where} declares {n} rows, the data has {counts[key]}")
    categories = header.get("size_categories")
    if categories is not None and "corpus" in counts:
        declared = [str(c) for c in (categories if isinstance(categories, list) else [categories])]
        expected = size_category(counts["corpus"])
        if expected not in declared:
            problems.append(f"{CARD} size_categories is {', '.join(declared) or 'empty'}, the corpus has "
                            f"{counts['corpus']} rows ({expected})")
    declared_counts = record.get("counts")
    if declared_counts is not None and not isinstance(declared_counts, Mapping):
        problems.append(f"{TASK_JSON} counts is a {type(declared_counts).__name__}, not an object")
    elif declared_counts:
        for key in ("corpus", "queries", "qrels", "top_ranked"):
            if key not in declared_counts:
                continue
            n = declared_counts[key]
            if n != counts.get(key):
                problems.append(f"{TASK_JSON} counts.{key} is {n!r}, the data has {counts.get(key, 'none')}")
    if problems:
        return Check("counts", False, "; ".join(problems)), counts
    return Check("counts", True, f"the card and {TASK_JSON} declare the rows the data has: "
                                 f"{counts_text(counts)}"), counts


def _iso639_1(code: Any) -> str | None:
    if not isinstance(code, str) or not code.strip():
        return None
    code = code.strip()
    for iso1, mteb in EVAL_LANGS.items():
        if code == mteb:
            return iso1
    return code.split("-")[0].split("_")[0].lower()


def declared_languages(header: Mapping[str, Any] | None, record: Mapping[str, Any] | None) -> tuple[list[str], str | None]:
    """(ISO 639-1 codes the task declares, a contradiction or None). task.json's language wins when both exist."""
    card = (header or {}).get("language")
    card_codes = [c for c in (_iso639_1(x) for x in (card if isinstance(card, list) else [card])) if c]
    task_code = _iso639_1((record or {}).get("language"))
    if task_code and card_codes and task_code not in card_codes:
        return [task_code], f"task.json says '{task_code}' but {CARD} says {', '.join(card_codes)}"
    return ([task_code] if task_code else card_codes), None


def declared_license(header: Mapping[str, Any] | None, record: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(license, contradiction or None) from the card's ``license`` and task.json's."""
    card = (header or {}).get("license")
    if isinstance(card, list):
        card = card[0] if len(card) == 1 else ", ".join(map(str, card)) if card else None
    task = (record or {}).get("license")
    card = str(card).strip() if card is not None else None
    task = str(task).strip() if task is not None else None
    if card and task and card.lower() != task.lower():
        return card, f"{CARD} declares license '{card}' but {TASK_JSON} declares '{task}'"
    return card or task, None


def check_license(header: Mapping[str, Any], record: Mapping[str, Any]) -> Check:
    license, conflict = declared_license(header, record)
    if conflict:
        return Check("license", False, conflict)
    if license is None or license.lower() in _UNKNOWN_LICENSES:
        shown = "no license" if not license else f"license '{license}'"
        return Check("license", False, f"{shown} declared ({CARD} license or {TASK_JSON} license); "
                     "a submission needs a known license")
    return Check("license", True, f"license '{license}'")


def read_card_header(task_dir: Path, limits: Limits = Limits()) -> dict[str, Any]:
    """The YAML header of a (validated) folder's card, read with the same safe reader; {} when absent."""
    _, card = check_card_yaml(Path(task_dir), limits)
    return card.header or {}


__all__ = [
    "CARD",
    "Card",
    "card_configs",
    "check_card_html",
    "check_card_paths",
    "check_card_yaml",
    "check_counts",
    "check_license",
    "check_metadata",
    "declared_byte_sizes",
    "declared_languages",
    "declared_license",
    "read_card_header",
]
