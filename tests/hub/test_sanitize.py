"""hub.sanitize: submitted text shown on a terminal, in Markdown/HTML, and folded for fingerprints."""

from __future__ import annotations

import pytest

from buildbench.hub.sanitize import (
    card_html_problems,
    clean_line,
    escape_html,
    escape_markdown,
    link_scheme,
    sanitize_card_html,
    skeleton,
    unsafe_name_chars,
)


def test_clean_line_drops_escape_sequences_controls_and_invisible_characters():
    text = ("Village\x1b[2J\x1b[1;1H\x1b[32mPASS\x1b[0m\x1b]0;title\x07 \u202eStories\u2066 \x9b31m"
            "zero\u200bwidth\u00ad\tnext\nline\x85end\x00")
    assert clean_line(text) == "VillagePASS Stories zerowidth next line end"


def test_clean_line_collapses_whitespace_and_cuts_with_an_ellipsis():
    assert clean_line("  a \t b\u2028c  ") == "a b c"
    assert clean_line("x" * 300) == "x" * 199 + "\u2026"
    assert clean_line("x" * 300, limit=None) == "x" * 300
    assert clean_line(42) == "42"


def test_escape_html_and_markdown():
    license = '<img src=x onerror="alert(1)"> | [click](javascript:alert(1)) *MIT*\x1b[31m'
    assert escape_html(license) == ("&lt;img src=x onerror=&quot;alert(1)&quot;&gt; | [click](javascript:alert(1)) "
                                    "*MIT*")
    assert escape_markdown(license) == (r"&lt;img src=x onerror=&quot;alert\(1\)&quot;&gt; \| \[click\]"
                                        r"\(javascript:alert\(1\)\) \*MIT\*")
    assert escape_markdown("cc-by-4.0") == "cc-by-4.0"


@pytest.mark.parametrize("name, reason", [
    ("notes\u202etxt.md", "holds U+202E (RIGHT-TO-LEFT OVERRIDE), a bidirectional control character"),
    ("a\u2067b", "holds U+2067 (RIGHT-TO-LEFT ISOLATE), a bidirectional control character"),
    ("a\u200fb", "holds U+200F (RIGHT-TO-LEFT MARK), a bidirectional control character"),
    ("Task\x9b", "holds U+009B, a control character"),
    ("Task\x1b[31m", "holds U+001B, a control character"),
    ("Ta\u200dsk", "holds U+200D (ZERO WIDTH JOINER), a zero-width character"),
    ("Ta\ufeffsk", "holds U+FEFF (ZERO WIDTH NO-BREAK SPACE), a zero-width character"),
    ("Ta\U000E0041sk", "holds U+E0041 (TAG LATIN CAPITAL LETTER A), an invisible format character"),
    ("Ta\u3164sk", "holds U+3164 (HANGUL FILLER), an invisible character"),
])
def test_unsafe_name_chars(name: str, reason: str):
    assert unsafe_name_chars(name) == reason


def test_plain_and_non_latin_names_are_fine():
    assert unsafe_name_chars("VillageStoriesRetrieval") is None
    assert unsafe_name_chars("Поиск_документов-1.2") is None


def test_skeleton_folds_cyrillic_and_greek_lookalikes_to_latin():
    # Cyrillic о а е р с у х і ѕ
    assert skeleton("\u043e\u0430\u0435\u0440\u0441\u0443\u0445\u0456\u0455") == "oaepcyxis"
    assert skeleton("\u0391\u0392\u0395\u039f\u03a1") == "abeop"  # Α Β Ε Ο Ρ
    assert skeleton("\uff21\U0001d401c \ufb01ne") == "abc fine"  # fullwidth, mathematical bold, ligature
    assert skeleton("pa\u200bss\u00adword") == "password"
    copy = "The harbour master repaired a wooden rowing boat".translate(
        str.maketrans({"o": "\u043e", "a": "\u0430", "e": "\u0435"}))
    assert copy != "The harbour master repaired a wooden rowing boat"
    assert skeleton(copy) == skeleton("The harbour master repaired a wooden rowing boat")


@pytest.mark.parametrize("value, scheme", [
    ("https://example.org", "https"), ("java\tscript:alert(1)", "javascript"), (" \x01JaVa\nScRiPt:x", "javascript"),
    ("/relative/path", None), ("#anchor", None), ("page.html?x=a:b", None), ("//host/x", None),
])
def test_link_scheme_reads_urls_as_browsers_do(value: str, scheme: str | None):
    assert link_scheme(value) == scheme


def test_sanitize_card_html_keeps_formatting_and_drops_the_rest():
    html = '<p align="center"><b>ok</b><img src="https://x.org/a.png" onerror="alert(1)"><script>x</script></p>'
    assert sanitize_card_html(html) == '<p align="center"><b>ok</b><img src="https://x.org/a.png"></p>'


def test_card_html_problems_gives_line_numbers_of_the_card():
    body = "# Title\n\ntext\n\n<object data=x></object>\n"
    assert card_html_problems(body, first_line=20) == ["HTML the allow-list removes: <object>, <object data> (line 24)"]
