"""facts: the salient sentences (answer-first facts) of each chunk, by TF-IDF over the corpus of chunks.

The small examples are fictional and written for these tests; the FOMC test reads the shared passages by path.
"""

from __future__ import annotations

import json
import re
import time

from buildbench.builders.chunking import split_sentences
from buildbench.generators.recipes.facts import Fact, numbers_in, salient_facts

GENERIC = "Our company is committed to serving its customers well in every market where it operates."
NUMERIC = ("Revenue for the third quarter rose 21% to $412.6 million, driven by Larkspur Cloud subscriptions in "
           "Western Europe.")
VAGUE = "We believe that our strategy positions us well for the future."
BOILERPLATE = ("The Committee will continue to monitor the implications of incoming information for the economic "
               "outlook.")

# Eight fictional policy statements: each has its own decision, the same closing sentence, and a plain line.
DECISIONS = [
    "The Council decided to raise the policy rate by 25 basis points to 4.75 percent, effective 13 February 2025.",
    "Headline inflation declined to 3.4 percent in January, while services inflation stayed at 5.1 percent.",
    "Members noted that mortgage approvals had risen by 18 percent over the previous three months.",
    "The deposit facility rate was lowered to 4.00 percent and the lending facility rate to 5.50 percent.",
    "Real GDP contracted by 0.1 percent in the fourth quarter, led by a fall in business investment in Dunmore.",
    "The countercyclical capital buffer rate on Velorian exposures was raised from 1.0 percent to 1.5 percent.",
    "Wage settlements in the first quarter averaged 4.2 percent, down from 5.6 percent a year earlier.",
    "Two members, Ms. Aldane and Mr. Corwin, preferred to keep the rate unchanged at 5.00 percent.",
]
PLAIN = [
    "Growth in household spending slowed as real incomes were squeezed by energy bills.",
    "Firms reported that hiring intentions had softened across most regions.",
    "Credit conditions for small businesses tightened somewhat during the winter.",
    "Exporters faced weaker demand from the largest trading partners.",
    "Housing activity picked up after a long period of decline.",
    "Banks remained well capitalised and lending to households continued.",
    "Consumer confidence recovered from its low point in the autumn.",
    "Labour market conditions remained tight but showed signs of easing.",
]


def statements(boilerplate: str = BOILERPLATE) -> dict[str, str]:
    return {f"stmt-{i}": f"{boilerplate} {PLAIN[i]} {DECISIONS[i]}" for i in range(len(DECISIONS))}


# ---------------------------------------------------------------------------------------------- salience


def test_the_specific_numeric_sentence_is_the_fact():
    chunks = {"c1": f"{GENERIC} {NUMERIC} {VAGUE}", **statements(),
              "c2": "Revenue rose in the third quarter as expected, driven by demand for hardware.",
              "c3": "Operating costs rose by $3 million in the third quarter, driven by revenue growth."}
    facts = salient_facts(chunks, k=3)["c1"]
    top = facts[0]
    assert isinstance(top, Fact) and top.text == NUMERIC
    assert top.numbers == ("21%", "$412.6 million")
    # the words no other chunk uses, in sentence order; "revenue", "third", "rose" are in other chunks too
    assert top.terms == ("larkspur", "cloud", "subscriptions", "western", "europe")
    assert top.score > facts[1].score > 0


def test_boilerplate_repeated_across_chunks_is_never_first():
    facts = salient_facts(statements(), k=3)
    for cid, fs in facts.items():
        i = int(cid.split("-")[1])
        assert fs[0].text == DECISIONS[i], cid
        assert fs[-1].text == BOILERPLATE, cid  # still a sentence of the chunk, just the least salient


def test_low_mean_idf_alone_marks_boilerplate():
    """No cue phrase: a sentence that recurs in every chunk loses to a unique plain one by its low idf."""
    recurring = "Management regularly reviews these matters together with the audit committee of the board."
    chunks = {f"c{i}": f"{recurring} {PLAIN[i]}" for i in range(len(PLAIN))}
    facts = salient_facts(chunks, k=2)
    for i in range(len(PLAIN)):
        assert [f.text for f in facts[f"c{i}"]] == [PLAIN[i], recurring]


def test_boilerplate_cue_phrases_count_even_in_a_one_chunk_corpus():
    text = ("This release contains forward-looking statements about Larkspur Software revenue of $1.2 billion. "
            "Subscription customers renewed at a higher rate than in the prior year.")
    facts = salient_facts({"only": text}, k=2)["only"]
    assert facts[0].text.startswith("Subscription customers")


def test_a_question_is_not_the_fact_its_answer_is():
    """An earnings call's analyst question names the figure too, but asks; the answer that follows states."""
    question = "Analyst, Tarn Capital: Any update on the roughly $420 million of revenue that needed export licenses?"
    answer = "Larkspur Devices received licenses covering about $310 million of it in November."
    facts = salient_facts({"c": f"{question} {answer}", **statements()}, k=2)["c"]
    assert [f.text for f in facts] == [answer, question]


def test_short_fragments_lose_to_full_sentences():
    text = "Liquidity\n\nWe had total liquidity of EUR 2.46 billion at September 30, including undrawn commitments."
    facts = salient_facts({"c": text, **statements()}, k=2)["c"]
    assert facts[0].text.startswith("We had total liquidity")
    assert facts[0].numbers == ("EUR 2.46 billion", "September 30")
    # a heading of rare words outscores a plain sentence on TF-IDF alone; the fragment penalty turns that round
    heading = "Tessera Optical Interconnect Ramp Schedule"
    plain = "The team expects the ramp to continue over the coming months as planned by the team."
    facts = salient_facts({"c": f"{heading}\n\n{plain}", **statements()}, k=2)["c"]
    assert [f.text for f in facts] == [plain, heading]


def test_run_on_sentences_lose_to_a_specific_one():
    run_on = ("Under the agreement the parties acknowledge that the obligations of the guarantors and pledgors and "
              "grantors and every additional obligor joining hereafter shall remain continuing and absolute and "
              "unconditional irrespective of any amendment or waiver or modification or extension or renewal or "
              "substitution or release or exchange of any collateral or guaranty and irrespective of any insolvency "
              "proceeding or bankruptcy or reorganisation or arrangement or liquidation affecting any obligor or any "
              "other circumstance whatsoever that might otherwise constitute a legal or equitable discharge of a "
              "surety or guarantor in any jurisdiction.")
    assert len(run_on.split()) > 70
    cap = "The guarantee cap is $250 million for each guarantor."
    facts = salient_facts({"g": f"{run_on} {cap}", **statements()}, k=2)["g"]
    assert [f.text for f in facts] == [cap, run_on]


def test_a_named_entity_makes_a_sentence_more_specific():
    """Same number of equally rare words (a one-chunk corpus): the sentence naming a company wins, though second."""
    plain = "Orders grew after the deal with regional freight carriers closed."
    named = "Orders grew after the deal with Harrowgate Freight Lines closed."
    facts = salient_facts({"c": f"{plain} {named}"}, k=2)["c"]
    assert [f.text for f in facts] == [named, plain]


def test_a_roll_call_loses_to_the_dissent():
    roll = ("Voting for the action were: Amelia Aldane, Chair; Bertram Corwin, Vice Chair; Cora Dunmore; Dario Esk; "
            "Elin Fenwick; Farah Gale; Gideon Hale; and Hana Ives.")
    dissent = "Voting against was Ivo Jansen, who preferred an increase of 25 basis points."
    facts = salient_facts({"v": f"{roll} {dissent}", **statements()}, k=2)["v"]
    assert [f.text for f in facts] == [dissent, roll]
    # a list of figures is a fact, not an enumeration to penalise
    figures = ("The CET1 requirement is 10.67%, comprising the Pillar 1 minimum of 4.5%, a Pillar 2 requirement of "
               "1.41%, the conservation buffer of 2.5%, a countercyclical buffer of 0.76%, and a systemic buffer of "
               "1.5%, against a ratio of 14.6%, a Tier 1 ratio of 16.2%, and a total ratio of 19.0%.")
    facts = salient_facts({"f": f"{figures} {PLAIN[0]}", **statements()}, k=1)["f"]
    assert facts[0].text == figures


# ---------------------------------------------------------------------------------------------- sentences


def test_abbreviations_and_decimals_do_not_split_sentences():
    one = ("Larkspur Holdings Inc. and Fenwick Co. signed Amendment No. 2 under U.S. law, e.g. for the 4.75% notes "
           "held by Ostmere Bank Corp. and its affiliates.")
    facts = salient_facts({"c": one}, k=5)["c"]
    assert [f.text for f in facts] == [one]
    two = "Rates rose to 4.75 percent. The Council met on 9 April 2025 in Dunmore."
    assert sorted(f.text for f in salient_facts({"c": two}, k=5)["c"]) == [
        "Rates rose to 4.75 percent.", "The Council met on 9 April 2025 in Dunmore."]


def test_k_is_respected_and_facts_are_distinct():
    text = " ".join(DECISIONS[:5])
    chunks = {"c": text, "d": " ".join(PLAIN)}
    for k in (0, 1, 3, 5, 9):
        facts = salient_facts(chunks, k=k)["c"]
        assert len(facts) == min(k, 5)
        assert len({f.text for f in facts}) == len(facts)
        assert [f.score for f in facts] == sorted((f.score for f in facts), reverse=True)
    repeated = f"{DECISIONS[0]} {DECISIONS[0]} {PLAIN[0]}"
    assert len(salient_facts({"c": repeated}, k=3)["c"]) == 2  # the same sentence twice is one fact


def test_fewer_sentences_give_fewer_facts_and_a_long_sentence_is_kept():
    long_sentence = ("The Borrowing Base equals the sum of ninety percent of Eligible Accounts, plus eighty-five "
                     "percent of other accounts, plus the lesser of seventy percent of the cost of Eligible Inventory "
                     "and eighty-five percent of its net orderly liquidation value, minus reserves that the "
                     "Administrative Agent establishes in its permitted discretion from time to time after giving "
                     "the Borrower notice, including reserves for rent at leased locations, for customs duties, for "
                     "dilution above five percent and for any amounts owed to vendors under consignment terms, all as "
                     "set out in the schedule")
    assert len(long_sentence.split()) > 70
    out = salient_facts({"long": long_sentence, "one": NUMERIC, "empty": "", "marks": "--- | ---"}, k=2)
    assert [f.text for f in out["long"]] == [long_sentence]
    assert [f.text for f in out["one"]] == [NUMERIC]
    assert out["empty"] == [] and out["marks"] == []


def test_skip_drops_the_title_line():
    title = "Larkspur Software: MD&A, Quarter Ended October 31, 2025"
    first = f"{title}\n\n{NUMERIC} {VAGUE}"
    run_in = f"{title} {VAGUE}"  # a title the splitter could not separate from the first sentence
    out = salient_facts({"first": first, "run_in": run_in}, k=5, skip={"first": title, "run_in": title})
    assert [f.text for f in out["first"]] == [NUMERIC, VAGUE]
    assert [f.text for f in out["run_in"]] == [VAGUE]
    assert title in [f.text for f in salient_facts({"first": first}, k=5)["first"]]  # without skip it is there


def test_deterministic_and_ties_keep_sentence_order():
    chunks = statements()
    a = salient_facts(chunks, k=3)
    b = salient_facts(dict(reversed(list(chunks.items()))), k=3)
    assert a == b
    tie = "Alpha beta gamma delta epsilon zeta rose. Zeta epsilon delta gamma beta alpha rose."
    facts = salient_facts({"t": tie}, k=2)["t"]
    assert facts[0].score == facts[1].score
    assert [f.text for f in facts] == ["Alpha beta gamma delta epsilon zeta rose.",
                                       "Zeta epsilon delta gamma beta alpha rose."]


def test_numbers_are_reported_as_written():
    assert numbers_in("The rate was cut by 25 basis points to 4.75 percent on 9 April 2025.") == (
        "25 basis points", "4.75 percent", "9 April 2025")
    assert numbers_in("Sales were $1.31 billion, up 34%, and EUR 18.9 billion at the bank; 1,480 beds.") == (
        "$1.31 billion", "34%", "EUR 18.9 billion", "1,480")
    assert numbers_in("A 25-basis-point increase to 5-3/4 percent, or 1/2 percentage point.") == (
        "25-basis-point", "5-3/4 percent", "1/2 percentage point")
    assert numbers_in("Effective August 1, 2025, the facility of $400 million applies.") == (
        "August 1, 2025", "$400 million")
    assert numbers_in("At 30 June and at September 30, 2025, and on May 1 it held.") == (
        "30 June", "September 30, 2025", "May 1")
    assert numbers_in("In 2025 growth was faster than in 2024.") == ()  # bare years are the period's job


# ---------------------------------------------------------------------------------------------- scale and data


def test_ten_thousand_chunks_in_a_few_seconds():
    chunks = {}
    for i in range(10_000):
        chunks[f"c{i}"] = (f"{PLAIN[i % 8]} {DECISIONS[(i * 3) % 8]} Unit {i} of Larkspur Group reported revenue of "
                           f"${i % 997}.{i % 10} million in region {i % 37}. {BOILERPLATE}")
    t0 = time.perf_counter()
    out = salient_facts(chunks, k=2)
    elapsed = time.perf_counter() - t0
    assert len(out) == 10_000 and all(len(fs) == 2 for fs in out.values())
    assert elapsed < 20.0, elapsed  # ~2 s on one core; the bound only catches a quadratic blow-up


NAME = re.compile(r"[A-Z][a-z]+")


def specific(sentence: str) -> bool:
    """States a number other than a bare year, or a capitalised name that is not the sentence's first word."""
    if re.search(r"\d", re.sub(r"\b(?:19|20)\d\d\b", "", sentence)):
        return True
    return any(m.start() > 0 for m in NAME.finditer(sentence))


def test_fomc_passages_facts_are_specific(fomc_passages):
    rows = [json.loads(line) for line in fomc_passages.read_text(encoding="utf-8").splitlines() if line.strip()]
    chunks = {r["_id"]: r["text"] for r in rows}
    facts = salient_facts(chunks, k=2)
    sample = list(chunks)[::4][:200]  # spread over 1994-2016
    assert len(sample) == 200
    assert sum(specific(facts[c][0].text) for c in sample) >= 0.7 * len(sample)
    # Where a passage states a number, the fact states it far more often than its first sentence does.
    first = {c: chunks[c][slice(*split_sentences(chunks[c])[0])] for c in sample}
    numeric = [c for c in sample if any(numbers_in(chunks[c][s:e]) for s, e in split_sentences(chunks[c]))]
    assert len(numeric) >= 50
    fact_rate = sum(bool(facts[c][0].numbers) for c in numeric) / len(numeric)
    first_rate = sum(bool(numbers_in(first[c])) for c in numeric) / len(numeric)
    assert fact_rate >= 0.85 and fact_rate > first_rate + 0.1, (fact_rate, first_rate)
    # every fact is a verbatim sentence of its passage
    for c in sample:
        for f in facts[c]:
            assert f.text in " ".join(chunks[c].split())
