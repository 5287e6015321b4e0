"""quality.binding: which words a passage says a figure of. Texts are our own writing."""

from buildbench.quality.binding import misbound, misdated, said_of
from buildbench.quality.support import FIGURE_WORDS, QUERY_WORDS
from buildbench.quality.words import PREFIX, singular, words

STOP = QUERY_WORDS | FIGURE_WORDS
LOSSES = "We incurred net losses of $187.4 million in 2024 and had an accumulated deficit of $904 million."


def measure(text: str) -> set[str]:
    return {singular(w[:PREFIX]) for w in words(text)}


def test_a_figure_is_said_of_the_words_before_it_and_the_few_after_it():
    assert {"net", "losse"} <= said_of(LOSSES, "187.4", STOP)
    assert {"accum", "defic"} <= said_of(LOSSES, "904", STOP)
    assert not {"accum", "defic"} & said_of(LOSSES, "187.4", STOP)
    assert said_of(LOSSES, "12", STOP) is None
    # "$1.05 billion of cash": the words after a figure up to the next comma, "and" or figure
    assert "cash" in said_of("Debt-to-capital was 19.8%, and we had $1.05 billion of cash.", "1.05", STOP)
    # an empty stretch reaches back: a label before a colon, a link word between two figures
    assert "disco" in said_of("Original issue discount: 99.0, with flex of 0.5 points.", "99.0", STOP)
    assert "benef" in said_of("Salaries, wages and benefits increased 1.8% to $1.42 billion.", "1.42", STOP)
    # a figure restating the one before it in other units is said of its words too
    dividend = "The final dividend of 3.45 cents per share is equivalent to 2.70 pence."
    assert {"final", "divid"} <= said_of(dividend, "2.70", STOP)
    # "90-day" is a modifier, not a figure that cuts the stretch
    assert "surpl" in said_of("A liquidity surplus over a 90-day horizon of $9.8 billion.", "9.8", STOP)


def test_a_search_putting_its_figure_with_another_figures_measure_is_misbound():
    assert misbound("Larkfield Bio $187.4 million accumulated deficit 2025", measure("accumulated deficit"),
                    LOSSES, LOSSES, STOP) == ("187.4", "904")
    assert misbound("Larkfield Bio $904 million accumulated deficit", measure("accumulated deficit"),
                    LOSSES, LOSSES, STOP) is None
    assert misbound("Larkfield Bio $187.4 million net loss 2024", measure("net loss"), LOSSES, LOSSES, STOP) is None
    # the fact first, then its passage
    passage = f"Larkfield Bio annual report. {LOSSES} Cash was $310 million."
    assert misbound("Larkfield Bio $187.4 million accumulated deficit", measure("accumulated deficit"),
                    "", passage, STOP) == ("187.4", "904")


def test_lists_and_unbound_measures_are_left_alone():
    # measure words said of no figure: no evidence of another binding
    assert misbound("Larkfield Bio $187.4 million cash burn", measure("cash burn"), LOSSES, LOSSES, STOP) is None
    # two figures in the search: a list, whose order is the writer's
    assert misbound("Larkfield Bio $187.4 million $904 million accumulated deficit", measure("accumulated deficit"),
                    LOSSES, LOSSES, STOP) is None
    # a sentence of parallel figures: which goes with which is the table's order
    regions = "Asian, American and European regions represented 31.4%, 27.1% and 41.5% of sales, respectively."
    assert misbound("European region 31.4%", measure("European region"), regions, regions, STOP) is None


def test_a_search_giving_a_listed_figure_another_figures_year_is_misdated():
    listed = ("Depreciation expense was $31.4 million, $28.9 million and $25.0 million in fiscal 2025, fiscal 2024 "
              "and fiscal 2023, respectively.")
    assert misdated("$28.9 million depreciation expense 2025", listed, listed) == ("28.9", "2025")
    assert misdated("$28.9 million depreciation expense 2024", listed, listed) is None
    assert misdated("$31.4 million depreciation expense 2025", "", listed) is None
    # an earlier year's figure in a parenthesis: the figure before it is not that year's
    earlier = "The average price per share of awards released in 2025 was 412.5p (2024: 398.0p)."
    assert misdated("average price per share 412.5p 2024", earlier, earlier) == ("412.5", "2024")
    assert misdated("average price per share 412.5p 2025", earlier, earlier) is None
    assert misdated("average price per share 398.0p 2024", earlier, earlier) is None
    assert misdated("average price per share 412.5p (2024: 398.0p)", earlier, earlier) is None  # its own form
    # left alone: as many years as figures is the only pairing read, and one figure and one year only
    uneven = ("As of December 31, 2025 and 2024, reserves were $4.7 million and $4.6 million, and credits "
              "$16.0 million and $16.9 million, respectively.")
    assert misdated("reserves $4.6 million 2025", uneven, uneven) is None
    assert misdated("depreciation expense $28.9 million $25.0 million 2025", listed, listed) is None
    assert misdated("$28.9 million depreciation expense 2025 2024", listed, listed) is None
