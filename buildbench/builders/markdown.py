"""Markdown to plain text and a title, by removing only the obvious syntax (no Markdown parser needed)."""

from __future__ import annotations

import re

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_RULE_OR_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-{2,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|(?:-[ \t]*){3,})[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$")
_LINK_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]+\S+.*$")
_INLINE = [
    (re.compile(r"<!--.*?-->", re.S), ""),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images keep their alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links keep their words
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),
    # Underscores only at word edges: snake_case identifiers in prose must survive.
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),
]


def strip_markdown(text: str) -> tuple[str, str]:
    """Markdown to plain text, and its title (front-matter ``title:``, else the first heading, else "").

    Only obvious syntax goes: heading marks, emphasis, link and image syntax, bullets, quotes, rules and
    code fences. The words of headings and code stay, so nothing a query could be written about is lost.
    """
    title = ""
    fm = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if fm:
        m = re.search(r"^title:[ \t]*(.+?)[ \t]*$", fm.group(1), re.M)
        if m:
            title = m.group(1).strip("'\"")
        text = text.replace("\r\n", "\n")[fm.end():]
    out: list[str] = []
    in_fence = False
    for line in text.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            out.append(line)
            continue
        heading = _ATX_HEADING.match(line)
        if heading:
            words = _strip_inline(heading.group(2) or "")
            if words and not title:
                title = words
            out.append(words)
            continue
        if _RULE_OR_UNDERLINE.match(line) or _TABLE_RULE.match(line) or _LINK_DEF.match(line):
            prev = out[-1].strip() if out else ""
            if prev and not title and line.strip().startswith(("=", "-")):
                title = prev  # setext heading: the line above the underline
            if prev:
                out.append("")  # an underline or rule also ends the paragraph above it
            continue
        line = re.sub(r"^[ \t]*(?:>[ \t]?)+", "", line)  # block quotes
        line = re.sub(r"^([ \t]*)[-*+][ \t]+", r"\1", line)  # bullets
        out.append(_strip_inline(line))
    return "\n".join(out), title


def _strip_inline(line: str) -> str:
    for pattern, repl in _INLINE:
        line = pattern.sub(repl, line)
    return line
