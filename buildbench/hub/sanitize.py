"""Make untrusted submission text safe to show and to compare.

Everything in a community submission (task names, file names, card text, licenses, any task.json field) is
written by someone else. It is shown to a reviewer on a terminal, in a PR description, in a dataset card and in
the registry card, and it is fingerprinted to catch copies of registered tasks. This module holds the few
functions that make each of those uses safe:

- ``clean_line``: one line for a terminal or a log: no control characters (so no ANSI escape sequences that
  recolour, move the cursor or hide lines), no bidi overrides or zero-width characters, whitespace collapsed,
  bounded length.
- ``escape_html`` / ``escape_markdown``: a field placed into Markdown or HTML (PR description, cards).
- ``unsafe_name_chars``: why a name (task name, file name) holds a character that makes it display as
  something else, or None.
- ``card_html_problems`` / ``sanitize_card_html``: the HTML a card may carry, judged by ``nh3`` (the
  maintained Rust ``ammonia`` allow-list sanitiser, parsing as browsers do with html5ever) rather than by
  patterns, on the card rendered as CommonMark (``markdown-it-py``) and on its raw text, plus a check of
  every link's scheme after the parser decoded it.
- ``skeleton``: a confusable-folded form of a text (Unicode TR39 style: NFKC, casefold, and every character
  that Unicode's confusables data lists as a look-alike of an ASCII character replaced by it), so that a copy
  spelled with Cyrillic or Greek look-alike letters fingerprints like the original.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser

# C0 and C1 escape sequences a terminal acts on: CSI (ESC [ ... final byte, or the one-byte C1 CSI 0x9b),
# OSC / DCS / SOS / PM / APC strings up to BEL or ST, and two-byte ESC sequences. Removed whole, so no
# parameter bytes ("[31m") are left behind as visible junk.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Characters that are invisible or change how the text around them is displayed, though they are not in
# category Cf: Hangul fillers and the Braille blank render as nothing; line and paragraph separators break lines.
_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u3164\uffa0\u2800\u2028\u2029")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u180e")


def _char_kind(ch: str) -> str | None:
    """Why ``ch`` must not be shown or used in a name: a short kind, or None for a visible character."""
    if ch in _BIDI:
        return "a bidirectional control character"
    if ch in _ZERO_WIDTH:
        return "a zero-width character"
    cat = unicodedata.category(ch)
    if cat == "Cc":
        return "a control character"
    if cat == "Cf":
        return "an invisible format character"
    if cat == "Cs":
        return "a lone surrogate"
    if ch in _INVISIBLE_EXTRA:
        return "an invisible character"
    return None


@lru_cache(maxsize=1)
def _invisible_table() -> dict[int, str | None]:
    """A ``str.translate`` table deleting every character ``_char_kind`` refuses, except the whitespace
    controls, which become a space (they separate words). Built once from the Unicode database (~0.3 s)."""
    table: dict[int, str | None] = {cp: None for cp in range(0x110000) if _char_kind(chr(cp)) is not None}
    table.update({ord(ch): " " for ch in "\t\n\r\v\f\x85\u2028\u2029"})  # \x85: NEL, a C1 line break
    return table


def _strip_invisible(text: str) -> str:
    return _ESCAPE_SEQUENCE.sub("", text).translate(_invisible_table())


def clean_line(text: object, limit: int | None = 200) -> str:
    """``text`` as one safe line: escape sequences, C0/C1 controls, bidi controls, zero-width and other
    invisible format characters removed, whitespace collapsed, cut to ``limit`` characters with an ellipsis
    (None: no cut). Non-strings are shown through ``str``."""
    line = " ".join(_strip_invisible(text if isinstance(text, str) else str(text)).split())
    if limit is not None and len(line) > limit:
        line = line[: max(0, limit - 1)] + "\u2026"
    return line


def escape_html(text: object, limit: int | None = None) -> str:
    """``clean_line(text)`` escaped for HTML and Markdown (``& < > " '``): a submitter's field shown on a page
    is text, never markup."""
    return html.escape(clean_line(text, limit), quote=True)


# Characters with a meaning inside a line of (GitHub / Hub flavoured) Markdown: a license "[x](https://evil)"
# stays text and a "|" opens no table cell. ("<", ">" and "&" are already entities; "#", "-", "+", "." only
# mean something at the start of a line, where a field is never placed.)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()!|~])")


def escape_markdown(text: object, limit: int | None = None) -> str:
    """``escape_html`` plus a backslash before every Markdown punctuation character, for a field placed in
    Markdown prose or a table cell (links, emphasis, headings and table pipes stay literal)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escape_html(text, limit))


def unsafe_name_chars(name: str) -> str | None:
    """Why ``name`` holds a character that makes it display as something else, or None.

    Refused: control characters (C0, DEL, C1, so ANSI escapes), bidi overrides, embeddings, isolates and marks
    (a name that renders reversed), zero-width and other invisible format characters (two names that look
    alike), lone surrogates, line separators and the invisible fillers. The reason names the first such
    character by code point, e.g. "holds U+202E (RIGHT-TO-LEFT OVERRIDE), a bidirectional control character".
    """
    for ch in name:
        kind = _char_kind(ch)
        if kind is not None:
            label = unicodedata.name(ch, "") if unicodedata.category(ch) != "Cs" else ""
            return f"holds U+{ord(ch):04X}{f' ({label})' if label else ''}, {kind}"
    return None


# -- card HTML


# A card may carry ordinary formatting and links; nothing that runs script, loads other pages or styles
# the page. nh3's default tag set (it includes <img>, <details>, tables) with its default attributes, plus
# these harmless ones on any tag.
_EXTRA_ATTRIBUTES = {"title", "align", "width", "height"}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
# Attributes whose value a browser resolves as a URL (on any tag: a tag the allow-list refuses is reported
# anyway, this is about schemes).
_URL_ATTRIBUTES = frozenset({
    "href", "src", "action", "formaction", "data", "cite", "background", "poster", "srcset", "codebase",
    "longdesc", "usemap", "lowsrc", "dynsrc", "ping", "manifest", "icon", "profile", "classid", "archive",
    "xlink:href", "xml:base", "content",
})
_TAG_START = re.compile(r"</?([A-Za-z][^\t\n\f\r />]*)")
_SCHEME_RUN = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*(?=:)")
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _nh3():
    import nh3  # a base dependency; imported here so that showing a line never needs it

    return nh3


def _strict_attributes(nh3) -> dict[str, set[str]]:
    attributes = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = set(_EXTRA_ATTRIBUTES)
    return attributes


def sanitize_card_html(text: str) -> str:
    """``text`` (Markdown with inline HTML) with every tag, attribute and link the allow-list refuses
    removed, as nh3 serialises it. Used to show a card; ``card_html_problems`` decides whether to accept it."""
    nh3 = _nh3()
    return nh3.clean(text, attributes=_strict_attributes(nh3), url_schemes=set(LINK_SCHEMES), link_rel=None)


def link_scheme(value: str) -> str | None:
    """The scheme a browser reads from a URL attribute value (already entity-decoded), lower-cased, or None
    for a relative URL. Browsers drop leading and trailing spaces and C0 controls and every tab and newline
    (so ``java\\tscript:`` is ``javascript:``)."""
    v = value.strip("".join(chr(c) for c in range(0x21)))
    v = re.sub(r"[\t\n\r]", "", v)
    m = _URL_SCHEME.match(v)
    return m.group(1).lower() if m else None


class _Inventory(HTMLParser):
    """Tags and attributes of nh3's own (well-formed) output, so two serialisations can be compared."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.items: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.items.append(f"<{tag}>")
        self.items += [f"<{tag} {name}>" for name, _ in attrs]

    handle_startendtag = handle_starttag


def _inventory(serialised: str) -> list[str]:
    parser = _Inventory()
    parser.feed(serialised)
    parser.close()
    return parser.items


@dataclass
class _Inspection:
    removed: list[str] = field(default_factory=list)  # "<tag>" / "<tag attr>" the allow-list removes
    links: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, attribute, scheme) refused
    content_removed: bool = False


def _inspect(fragment: str) -> _Inspection:
    """What the allow-list removes from an HTML fragment, and the URL attributes with a refused scheme."""
    nh3 = _nh3()
    fragment = fragment.replace("\x00", "\ufffd")
    # Everything the strict pass could remove must survive the permissive one: every candidate tag name
    # (html5ever lower-cases ASCII only), every attribute (any name starts with a character of the text) and
    # every scheme a URL attribute could have.
    tags = {m.group(1).translate(_ASCII_UPPER) for m in _TAG_START.finditer(fragment)}
    prefixes = {ch.translate(_ASCII_UPPER) for ch in set(fragment) if not ch.isspace()} or {"a"}
    decoded = re.sub(r"[\t\n\r]", "", html.unescape(fragment))
    schemes = set(LINK_SCHEMES)
    for m in _SCHEME_RUN.finditer(decoded):
        run = m.group(0).lower()
        schemes.update(run[i:] for i in range(len(run)) if run[i].isalpha())
    seen: list[tuple[str, str, str]] = []

    def record(tag: str, attribute: str, value: str) -> str:
        seen.append((tag, attribute, value))
        return value

    permissive = nh3.clean(
        fragment, tags=tags | set(nh3.ALLOWED_TAGS), clean_content_tags=set(), attributes={},
        generic_attribute_prefixes=prefixes, url_schemes=schemes, link_rel=None, attribute_filter=record,
    )
    strict = sanitize_card_html(fragment)
    out = _Inspection()
    for tag, attr, value in seen:
        if attr not in _URL_ATTRIBUTES or (attr == "content" and tag != "meta"):
            continue
        scheme = link_scheme(value)
        if scheme is not None and scheme not in LINK_SCHEMES and (tag, attr, scheme) not in out.links:
            out.links.append((tag, attr, scheme))
    if permissive != strict:
        kept = Counter(_inventory(strict))
        for item in _inventory(permissive):
            if kept.get(item, 0) > 0:
                kept[item] -= 1
            elif item not in out.removed:
                out.removed.append(item)
        out.content_removed = not out.removed
    return out


def _markdown():
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    # Keep every link as written (entities decoded): markdown-it would drop a javascript: link or
    # percent-encode a tab in it, and a reader's renderer may not; the scheme check judges them instead.
    md.validateLink = lambda url: True
    md.normalizeLink = lambda url: url
    return md


def render_markdown(text: str) -> tuple[str, str]:
    """(HTML of ``text`` rendered as CommonMark with tables and raw HTML, ``text`` with its code blocks,
    code spans and autolinks blanked out). The renderer's own harmless attributes (a code block's language
    class, a table column's text-align style) are left out, so only what the author wrote is judged."""
    md = _markdown()
    tokens = md.parse(text)
    lines = text.split("\n")
    for token in tokens:
        if token.type in ("th_open", "td_open") and token.attrs:
            token.attrs.pop("style", None)
        if token.type == "fence":
            token.info = ""
        if token.type in ("fence", "code_block") and token.map:
            for i in range(token.map[0], min(token.map[1], len(lines))):
                lines[i] = ""
    rendered = md.renderer.render(tokens, md.options, {})
    raw = "\n".join(lines)
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731 - keep line numbers
    raw = _CODE_SPAN.sub(blank, raw)
    raw = _AUTOLINK.sub(blank, raw)
    return rendered, raw


_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_AUTOLINK = re.compile(
    r"<[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*>"
    r"|<[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*>"
)


def card_html_problems(text: str, *, first_line: int = 1, limit: int = 5) -> list[str]:
    """Why the Markdown body of a card is refused for its HTML or links: an empty list when acceptable.

    Two views of the card are judged, so a renderer that differs from CommonMark gains nothing: the card
    rendered as CommonMark (markdown-it, raw HTML on, every link kept as written), and the raw text with only
    its code blocks, code spans and autolinks blanked out. Each view is parsed twice by nh3 (html5ever, the
    way a browser parses it): once keeping every tag and attribute it holds, once with the allow-list. Any
    tag, attribute or element content the allow-list removes is reported (event handlers, ``<meta>``,
    ``<object>``, ``<embed>``, ``<form>``, ``<style>``, ``<base>``, ``style`` attributes with CSS
    ``expression()``, ...). Every URL-valued attribute (Markdown links and images included) is checked after
    the parser decoded its entities, with whitespace and controls dropped as browsers do: its scheme must be
    http, https or mailto, or the URL relative (no ``javascript:``, ``vbscript:``, ``data:``, including
    ``java&#x09;script:``). HTML comments are ignored. ``first_line``: the card line ``text`` starts on, for
    the line numbers in the reasons.
    """
    rendered, raw = render_markdown(text)
    views = [_inspect(rendered), _inspect(raw)]
    links, removed = [], []
    for view in views:
        links += [link for link in view.links if link not in links]
    for view in views:
        removed += [item for item in view.removed if item not in removed
                    and not any(item == f"<{tag} {attr}>" for tag, attr, _ in links)]
    problems = [f"a {scheme}: link in <{tag} {attr}> (only http, https, mailto or relative links)"
                for tag, attr, scheme in links]
    if removed:
        where = ""
        tag = removed[0][1:-1].split(" ")[0]
        m = re.search(rf"<\s*{re.escape(tag)}(?![^\s/>])", raw, re.IGNORECASE)
        if m:
            where = f" (line {first_line + raw.count(chr(10), 0, m.start())})"
        problems.append("HTML the allow-list removes: " + ", ".join(removed[:limit])
                        + (f" and {len(removed) - limit} more" if len(removed) > limit else "") + where)
    elif any(view.content_removed for view in views) and not links:
        problems.append("HTML content the allow-list removes (the text of a <script>, <style> or the like)")
    return [clean_line(p, 300) for p in problems]


# -- confusables


@lru_cache(maxsize=1)
def _confusable_map() -> dict[int, str]:
    """Code point -> the ASCII character Unicode's confusables data lists it as a look-alike of.

    From ``confusable_homoglyphs`` (MIT, its data generated from Unicode's confusables.txt): for a non-ASCII
    character, its homoglyph list holds at most one ASCII character (checked: none holds two), which is the
    prototype it is confused with. Marks (LRM) the data puts around right-to-left characters are dropped.
    """
    from confusable_homoglyphs.confusables import confusables_data as data  # a base dependency
    table: dict[int, str] = {}
    for char, homoglyphs in data.items():
        char = "".join(ch for ch in char if unicodedata.category(ch) != "Cf")
        if len(char) != 1 or char.isascii():
            continue
        for entry in homoglyphs:
            target = "".join(ch for ch in entry.get("c", "") if unicodedata.category(ch) != "Cf")
            if target and target.isascii() and target.isprintable():
                table[ord(char)] = target
                break
    return table


def skeleton(text: str) -> str:
    """A confusable-folded form of ``text`` for comparing texts: NFKC (fullwidth and mathematical letters,
    ligatures), casefold, invisible characters removed, every look-alike of an ASCII character replaced by
    that character (Cyrillic о а е р с у х і ѕ, Greek Α Β Ο ..., and the like), before and after
    casefolding, then NFKC again.
    Two texts that read the same on screen get the same skeleton; the skeleton itself is not for display."""
    table = _confusable_map()
    folded = unicodedata.normalize("NFKC", text).translate(_invisible_table())
    # Before and after casefolding: capital Greek Beta is a look-alike of B, its small form is not of b.
    folded = folded.translate(table).casefold().translate(table)
    return unicodedata.normalize("NFKC", folded.casefold())


__all__ = [
    "LINK_SCHEMES",
    "card_html_problems",
    "clean_line",
    "escape_html",
    "escape_markdown",
    "link_scheme",
    "render_markdown",
    "sanitize_card_html",
    "skeleton",
    "unsafe_name_chars",
]
