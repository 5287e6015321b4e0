"""The dataset card of a published version.

Starts from the card the task was written with (``tasks.assemble.render_card``, plus the compiled-task section)
and adds:

- to the YAML header: a ``buildbench`` block (version, content hash, generator models, recipes, filters and
  their counts, seed, buildbench version: from task.json's provenance), and the tags mteb, buildbench and the
  domain; ``configs``, license, language, task_categories and size_categories stay as written;
- a "Version" section: how to load exactly this version;
- a "Changelog" section: one entry per version (version, date, content hash, counts, message), newest first.
  Earlier entries are carried forward, verbatim, from the card published with the previous version.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any, Optional

import yaml

from ..engine.rundir import atomic_write_text
from ..tasks.assemble import set_card_section
from ..tasks.layout import SPLIT, read_task_record
from .versioning import Version

VERSION_SECTION = "version"
CHANGELOG_SECTION = "changelog"
CHANGELOG_HEADING = "## Changelog"

def split_header(text: str) -> tuple[str | None, str]:
    """(YAML header text or None, body) of a dataset card; the header is not parsed (validation scans it first)."""
    if not text.startswith("---"):
        return None, text
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return None, text
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :])
    return None, text


def split_card(text: str) -> tuple[dict[str, Any], str]:
    """(YAML header as a dict, the rest of the card); ({}, text) when the card has no header."""
    raw, body = split_header(text or "")
    if raw is None:
        return {}, text or ""
    header = yaml.safe_load(raw) or {}
    return (header if isinstance(header, dict) else {}), body


def join_card(header: dict[str, Any], body: str) -> str:
    dumped = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{dumped}---\n" + body


def card_block(text: Optional[str]) -> dict[str, Any]:
    """The ``buildbench`` block of a published card's header ({} when absent)."""
    if not text:
        return {}
    try:
        block = split_card(text)[0].get("buildbench")
    except (yaml.YAMLError, RecursionError):  # a card from a hub repo is not trusted to be well-formed
        return {}
    return block if isinstance(block, dict) else {}


def card_content_hash(text: Optional[str]) -> Optional[str]:
    """The content hash a published card records, or None."""
    value = card_block(text).get("content_hash")
    return value if isinstance(value, str) and value else None


def previous_changelog(text: Optional[str]) -> list[str]:
    """The changelog entries of a published card, as lines without the section heading ([] when none)."""
    if not text:
        return []
    start, end = f"<!-- buildbench:{CHANGELOG_SECTION} -->", f"<!-- /buildbench:{CHANGELOG_SECTION} -->"
    if start not in text or end not in text:
        return []
    lines = text.split(start, 1)[1].split(end, 1)[0].strip("\n").splitlines()
    if lines and lines[0].strip() == CHANGELOG_HEADING:
        lines = lines[1:]
    while lines and not lines[0].strip():
        lines = lines[1:]
    return lines


def counts_text(counts: dict[str, Any]) -> str:
    text = f"{counts.get('corpus', 0)} documents, {counts.get('queries', 0)} queries, {counts.get('qrels', 0)} qrels"
    if "top_ranked" in counts:
        text += f", {counts['top_ranked']} candidate lists"
    return text


def changelog_entry(version: Version, date: str, content_hash: str, counts: dict[str, Any],
                    message: Optional[str]) -> list[str]:
    lines = [f"### {version.tag} ({date})", "", f"- content hash: `{content_hash}`", f"- {counts_text(counts)}"]
    if message and message.strip():
        lines.append(f"- {' '.join(message.split())}")
    return lines


def provenance_block(record: dict[str, Any], *, version: Version, content_hash: str, repo_id: str,
                     date: str) -> dict[str, Any]:
    """The header's ``buildbench`` block: this version, and how the task was built (task.json provenance)."""
    from .. import __version__

    prov = record.get("provenance") or {}
    models = []
    for key in ("generator", "generators", "generator_models"):
        value = prov.get(key)
        for m in [value] if isinstance(value, str) else (value or []):
            if m and m not in models:
                models.append(str(m))
    block: dict[str, Any] = {
        "version": str(version),
        "tag": version.tag,
        "repo": repo_id,
        "published": date,
        "content_hash": content_hash,
        "generator_models": models,
        "recipes": prov.get("recipes") or {},
        "filters": prov.get("filters") or {},
        "seed": prov.get("seed"),
        "buildbench_version": prov.get("buildbench_version") or __version__,
        "published_with": __version__,
    }
    for key in ("judge", "mining_models", "queries_per_chunk", "human_review"):
        if prov.get(key) is not None:
            block[key] = prov[key]
    return block


def write_published_card(task_dir: Path, *, repo_id: str, version: Version, content_hash: str,
                         message: Optional[str] = None, previous_card: Optional[str] = None,
                         date: Optional[str] = None) -> str:
    """Rewrite ``task_dir/README.md`` (a copy of the task being published) as the card of ``version``; returns
    the card's text. ``previous_card``: the card of the latest published version, whose changelog is kept."""
    task_dir = Path(task_dir)
    record = read_task_record(task_dir)
    date = date or _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    path = task_dir / "README.md"
    header, body = split_card(path.read_text(encoding="utf-8"))

    tags = [t for t in header.get("tags") or [] if t]
    for tag in ("mteb", "buildbench", record.get("domain")):
        if tag and tag not in tags:
            tags.append(tag)
    header["tags"] = tags
    header.setdefault("license", record.get("license"))
    header.setdefault("language", [record.get("language", "en")])
    header["buildbench"] = provenance_block(record, version=version, content_hash=content_hash,
                                            repo_id=repo_id, date=date)
    # The written card says "local" and "<this folder or repo>": a published version knows both.
    body = re.sub(r"^\| Revision \| .* \|$", f"| Revision | {version.tag} |", body, flags=re.M)
    body = body.replace("<this folder or repo>", repo_id)
    atomic_write_text(path, join_card(header, body))

    set_card_section(task_dir, VERSION_SECTION, [
        "## Version",
        "",
        f"This is version `{version}` of `{repo_id}` (tag `{version.tag}`), content hash `{content_hash}` "
        "(sha256 over the Parquet files and task.json). Load exactly this version:",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'corpus = load_dataset("{repo_id}", "corpus", split="{SPLIT}", revision="{version.tag}")',
        "```",
    ])
    entries = changelog_entry(version, date, content_hash, record.get("counts") or {}, message)
    earlier = previous_changelog(previous_card)
    set_card_section(task_dir, CHANGELOG_SECTION, [CHANGELOG_HEADING, "", *entries, *([""] + earlier if earlier else [])])
    return path.read_text(encoding="utf-8")
