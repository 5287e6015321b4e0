import re

from buildbench.builders.normalize import normalize_text, normalize_title, stable_id


def test_nfc_composes_combining_accent():
    decomposed = "cafe\u0301 re\u0301sume\u0301"
    out = normalize_text(decomposed)
    assert out == "caf\u00e9 r\u00e9sum\u00e9"
    assert len(out) == len("café résumé")


def test_control_characters_removed_but_newlines_kept():
    raw = "Rates\x00 held\x07 steady.\nThe\x1b vote\u200b was\ufeff unanimous."
    assert normalize_text(raw) == "Rates held steady.\nThe vote was unanimous."


def test_spaces_and_tabs_collapse_and_lines_are_trimmed():
    raw = "   Growth \t\t slowed   in\u00a0the   quarter.   \n\t  Exports   fell.  "
    assert normalize_text(raw) == "Growth slowed in the quarter.\nExports fell."


def test_three_or_more_newlines_become_one_paragraph_break():
    raw = "First paragraph.\n\n\n\n  \n\t\nSecond paragraph.\n\nThird.\nsame paragraph"
    assert normalize_text(raw) == "First paragraph.\n\nSecond paragraph.\n\nThird.\nsame paragraph"


def test_crlf_form_feed_and_unicode_separators_are_line_breaks():
    raw = "Page one text.\r\nMore.\fPage two\u2028line"
    assert normalize_text(raw) == "Page one text.\nMore.\nPage two\nline"


def test_normalisation_is_idempotent_and_strips():
    raw = "\n\n  Title \n\n\n\n body\u0301 text \t\n\n"
    once = normalize_text(raw)
    assert once == normalize_text(once)
    assert once == once.strip()
    assert normalize_text("  \n\t \n ") == ""


def test_title_is_one_line():
    assert normalize_title("  Monetary\npolicy \t report ") == "Monetary policy report"


def test_stable_id_is_deterministic_and_short():
    a = stable_id("reports/q1.txt", "The text.")
    assert a == stable_id("reports/q1.txt", "The text.")
    assert re.fullmatch(r"doc-[0-9a-f]{16}", a)
    assert stable_id("reports/q1.txt", "Other text.") != a
    assert stable_id("x", prefix="chunk").startswith("chunk-")


def test_stable_id_parts_are_not_just_concatenated():
    assert stable_id("ab", "c") != stable_id("a", "bc")
