import pytest

from buildbench.quality import FilterResult
from buildbench.quality.base import check_aligned, normalize_text, words
from buildbench.records import Drop


def test_counts_and_reasons():
    result = FilterResult(
        keep=[True, False, True, False],
        drops=[Drop("s", "b", "too_short"), Drop("s", "d", "too_short")],
    )
    assert result.counts == {"in": 4, "kept": 2, "dropped": 2}
    assert result.kept_indices() == [0, 2]
    assert result.reasons() == {"too_short": 2}


def test_empty_result_counts():
    assert FilterResult([], []).counts == {"in": 0, "kept": 0, "dropped": 0}
    assert FilterResult([], []).stats == {}


def test_misaligned_columns_raise():
    with pytest.raises(ValueError, match="ids and texts"):
        check_aligned(["a"], ["x", "y"])
    with pytest.raises(ValueError, match="refs and texts"):
        check_aligned(["a"], ["x"], ["r1", "r2"])


def test_normalize_text():
    assert normalize_text("  The FED's  rate,\n\tup 0.25%!  ") == "the feds rate up 0 25"
    assert normalize_text("rate 2.5%") != normalize_text("rate 25%")
    assert normalize_text("5-1/2 percent") == "5 1 2 percent"
    assert normalize_text("Ｆｅｄ ﬁnance") == "fed finance"  # full-width and ligature (NFKC)
    assert normalize_text("Straße") == "strasse"  # casefold, not lower
    assert normalize_text("...") == ""
    assert words("Hello, world!") == ["hello", "world"]
    assert words("  ") == []
