from buildbench.domain_pack import LengthConfig
from buildbench.quality import LengthFilter


def test_length_bounds_and_reasons():
    f = LengthFilter(LengthConfig(min_words=3, max_words=6))
    ids = ["empty", "blank", "short", "ok-min", "ok-max", "long"]
    texts = ["", " \n\t ", "fed rate", "fed rate today", "one two three four five six", "a b c d e f g"]
    result = f.apply(ids, texts)
    assert result.keep == [False, False, False, True, True, False]
    assert [(d.item_id, d.reason) for d in result.drops] == [
        ("empty", "empty"),
        ("blank", "empty"),
        ("short", "too_short"),
        ("long", "too_long"),
    ]
    assert result.drops[2].detail == "2 words, minimum 3"
    assert result.drops[3].detail == "7 words, maximum 6"
    assert all(d.stage == "length" for d in result.drops)
    assert result.counts == {"in": 6, "kept": 2, "dropped": 4}


def test_length_defaults_from_config():
    result = LengthFilter().apply(["q"], ["what is the current federal funds rate"])
    assert result.keep == [True]
