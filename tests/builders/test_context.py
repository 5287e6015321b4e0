"""context: a document's title, entity and period, and a chunk's section, read from the document alone.

Every example document here is fictional and written for these tests; the sample-corpus test reads the
bundled finance samples through the real ingest reader, as the pipeline does.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from buildbench.builders.context import DocContext, dated_days, document_context, section_of

from .conftest import read

SAMPLES = Path(__file__).resolve().parents[2] / "buildbench" / "domains" / "samples" / "finance"

ABL = """Ironwood Industrial Supply Co. - Asset-Based Revolving Credit Facility: Borrowing Base Terms \
(Amendment No. 3, effective August 1, 2025)

Facility size: $300 million asset-based revolving credit facility, maturing August 1, 2030. The Administrative \
Agent is Harrowgate National Bank.

Borrowing Base: The Borrowing Base equals 90% of Eligible Accounts plus 70% of Eligible Inventory.
"""

MINUTES_MD = """# Central Bank of Dunmore: Minutes of the Monetary Policy Council Meeting, 9–10 April 2025

Members discussed economic developments since the February meeting. Headline inflation had fallen to 2.8 percent in
March, and real GDP contracted by 0.1 percent in the fourth quarter of 2024.

## Monetary policy decision

The Council voted to reduce the policy rate by 25 basis points to 4.75 percent.
"""


# ---------------------------------------------------------------------------------------------- title


def test_first_line_heading_is_the_title_and_names_entity_and_period():
    ctx = document_context(ABL, title="abl-facility-ironwood-supply")
    assert ctx == DocContext(
        title="Ironwood Industrial Supply Co. - Asset-Based Revolving Credit Facility: Borrowing Base Terms "
              "(Amendment No. 3, effective August 1, 2025)",
        entity="Ironwood Industrial Supply Co.",
        period="August 2025",
    )


def test_markdown_minutes_heading():
    ctx = document_context(MINUTES_MD)
    assert ctx.title == ("Central Bank of Dunmore: Minutes of the Monetary Policy Council Meeting, 9–10 April 2025")
    assert ctx.entity == "Central Bank of Dunmore"
    assert ctx.period == "April 2025"  # the meeting, not the "fourth quarter of 2024" the text compares with


def test_file_stem_or_id_title_is_not_a_title():
    body = "Net sales rose 4% in fiscal 2024. Margins improved as freight costs eased.\n\nMore text follows here."
    for stem in ("abl-facility-borrowing-base-ironwood-distribution", "q3_results_final", "doc-66da9179bdaeb8cc",
                 "fomc-stmt-19940204"):
        assert document_context(body, title=stem).title == "", stem


def test_sentence_first_line_falls_back_to_the_given_title():
    """An HTML page's text starts with its first paragraph; its <title> comes in as the title argument."""
    text = "The Monetary Policy Council decided to lower the policy rate to 4.25 percent. Two dissented.\n\nMore."
    ctx = document_context(text, title="Central Bank of Dunmore: Monetary Policy Statement, 12 February 2026")
    assert ctx == DocContext("Central Bank of Dunmore: Monetary Policy Statement, 12 February 2026",
                             "Central Bank of Dunmore", "February 2026")


def test_a_one_line_document_has_no_title_line():
    assert document_context("Revenue rose in FY 2025", title="").title == ""


# ---------------------------------------------------------------------------------------------- entity


@pytest.mark.parametrize("title, entity", [
    ("Copperfield Industrial Holdings, Inc. - Report on Internal Control (Fiscal Year 2025)",
     "Copperfield Industrial Holdings, Inc."),
    ("Risk Factors: Pinecrest Regional Bancorp", "Pinecrest Regional Bancorp"),
    ("MD&A: Larkspur Software, Quarter Ended October 31, 2025", "Larkspur Software"),
    ("Management's Discussion and Analysis: Granite Ridge Homebuilders, Year Ended December 31, 2025",
     "Granite Ridge Homebuilders"),
    ("Rating Action: Fenwick Water Corp. Downgraded to BBB from BBB+; Outlook Stable", "Fenwick Water Corp."),
    ("Rating Action: Elmstead Health System Revenue Bonds Affirmed at A-, Outlook Negative", "Elmstead Health System"),
    ("Summary of Terms: Saltcote Clinics Senior Secured Term Loan B (Indicative, January 2026)", "Saltcote Clinics"),
    ("Solenne Foods Q3 Fiscal 2025 Earnings Call: Prepared Remarks", "Solenne Foods"),
    ("Orrin Payments Second Quarter 2025 Results Call: Prepared Remarks", "Orrin Payments"),
    ("Tamsin Cement Group 2025 Sustainability Report: Decarbonisation Progress", "Tamsin Cement Group"),
    ("Independent Auditor's Report: Bellmoor Media Group plc, Key Audit Matter on Goodwill",
     "Bellmoor Media Group plc"),
    ("Varenne Telecom Holdings S.A.: Offering Circular, USD 500,000,000 6.5% Senior Notes due 2031",
     "Varenne Telecom Holdings S.A."),
    ("Hollis Global Infrastructure ETF (Ticker: HGIX): Summary Prospectus, September 30, 2025",
     "Hollis Global Infrastructure ETF"),
    ("Wexford & Lane Specialty Insurance - Commercial Property Policy Wording", "Wexford & Lane Specialty Insurance"),
    ("FOMC policy statement, 2019-06-19", "FOMC"),
])
def test_entity_from_title(title, entity):
    assert document_context("Body text of the document.", title=title).entity == entity


def test_entity_from_metadata_wins_over_title_and_text():
    meta = {"Company": "Zephyr Analytics Ltd", "fiscal_year": 2024}
    ctx = document_context("Quarterly review\n\nNorthwind Foods, Inc. reported higher sales.", metadata=meta)
    assert ctx.entity == "Zephyr Analytics Ltd"
    assert ctx.period == "fiscal 2024"
    assert document_context("x y.", metadata={"name-of-company": "Brackley Mills plc"}).entity == "Brackley Mills plc"
    assert document_context("x y.", metadata={"ISSUER": "Port Calder Airport Authority"}).entity == \
        "Port Calder Airport Authority"
    # a generic metadata value is no better than none: the title is used instead
    assert document_context("x y.", title="Orrin Payments Q2 2025 Results Call: Remarks",
                            metadata={"company": "The Company"}).entity == "Orrin Payments"


def test_entity_and_period_from_text_alone():
    text = ("In fiscal 2024, Northwind Foods, Inc. (the \"Company\") reported net sales of $2.1 billion, up 4% from "
            "fiscal 2023. The Company expects fiscal 2024 investments in automation to lower unit costs.")
    ctx = document_context(text)
    assert ctx == DocContext(title="", entity="Northwind Foods, Inc.", period="fiscal 2024")


def test_generic_words_are_never_an_entity():
    text = ("The Company reported higher sales. The Group expects the Fund to grow and the Bank to lend more. "
            "Holdings of Capital rose.")
    assert document_context(text).entity == ""
    # ... and a real name after a generic one is still found
    assert document_context("The Company said Aldmere Bancorp will merge with it.").entity == "Aldmere Bancorp"


@pytest.mark.parametrize("text", [
    # a run of capitalised words across a sentence end
    "Our new plant opened in Ohio. The Company spent $12.0 million on it in fiscal 2020.",
    "The fair value hierarchy is set out in Financial Instruments. The Group holds no level 3 assets.",
    # an accounting term ending in a suffix word, and a fiscal period before one
    "Working Capital fell by $1.1 million to $8.4 million at the end of 2020.",
    "The Hedging Reserve rose in 2020 as swap rates fell.",
    "FY20 Group revenue rose 4% to $310 million.",
    # a document part, and an upper-case heading with a pronoun
    "NOTE 7. LEASES We lease offices under operating leases that expire through 2027.",
    "ITEM NO. 4 – APPROVAL OF OUR 2021 STOCK PLAN",
])
def test_dates_sentence_ends_terms_and_headings_are_not_entities(text):
    """A corpus without titles (annual-report paragraphs) names no one in most paragraphs; what a capitalised run
    at its start picks up must not become the entity a query is told to name."""
    assert document_context(text).entity == ""


@pytest.mark.parametrize("title", [
    # a paragraph's opening line read as its title: a date, not a name
    "In March 2021, we granted 120,000 performance units to officers",
    "At June 30, 2020, we had three share plans for employees and directors",
    "ITEM NO. 4 – APPROVAL OF OUR 2021 STOCK PLAN",
])
def test_a_date_or_document_part_title_names_no_entity(title):
    assert document_context("Body text of the document.", title=title).entity == ""


@pytest.mark.parametrize("text, entity", [
    ("May Department Stores Co. reported higher sales in 2020.", "May Department Stores Co."),
    ("Our new plant opened in Ohio. Ferncliff Paper Co. spent $12.0 million on it.", "Ferncliff Paper Co."),
    ("FY20 Harlow Retail Group revenue rose 4%.", "Harlow Retail Group"),
])
def test_a_name_after_a_date_or_sentence_end_is_still_found(text, entity):
    assert document_context(text).entity == entity


@pytest.mark.parametrize("text, entity", [
    ("Chairman Rowe announced today that the Federal Open Market Committee decided to raise rates.",
     "Federal Open Market Committee"),
    ("At its meeting, the Monetary Policy Council of the Central Bank of Dunmore kept rates on hold.",
     "Monetary Policy Council"),
    ("Rates at the Bank of Aldmere were unchanged, the statement said.", "Bank of Aldmere"),
    ("The Federal Reserve Bank of Eastport approved the discount rate request.", "Federal Reserve Bank of Eastport"),
    ("Shares of Tessaly Real Estate Fund IV rose after the sale.", "Tessaly Real Estate Fund IV"),
    ("Ostmere Bank Group reported a CET1 ratio of 14.6%.", "Ostmere Bank Group"),
    ("We have audited Copperfield Holdings, Inc.'s internal control.", "Copperfield Holdings, Inc."),
])
def test_entity_name_patterns_in_text(text, entity):
    assert document_context(text).entity == entity


# ---------------------------------------------------------------------------------------------- period


@pytest.mark.parametrize("title, period", [
    ("Annual Report for fiscal year 2025", "fiscal 2025"),
    ("Results for Fiscal 2025", "fiscal 2025"),
    ("Outlook FY2025", "fiscal 2025"),
    ("Outlook FY 2025", "fiscal 2025"),
    ("Outlook FY25", "fiscal 2025"),
    ("Earnings Call Q3 2025", "Q3 2025"),
    ("Results for the third quarter of 2025", "Q3 2025"),
    ("Results for the Third Quarter of Fiscal 2025", "Q3 fiscal 2025"),
    ("Solenne Foods Q4 FY2025 Earnings Call", "Q4 fiscal 2025"),
    ("Minutes of the Meeting, 9–10 April 2025", "April 2025"),
    ("Statement dated April 9, 2025", "April 2025"),
    ("Financial Stability Report, April 2025", "April 2025"),
    ("Crestwood Corp. - Annual Report for fiscal year ended June 28, 2025", "fiscal 2025"),
    ("Granite Ridge: Year Ended December 31, 2025", "2025"),
    ("Bluehaven Inc., Results for the Nine Months Ended September 30, 2025", "nine months ended September 2025"),
    ("Review of the 2019 Stress Test", "2019"),
    ("6.125% Senior Secured Notes due 2031 (Issued November 2025)", "November 2025"),  # not the maturity
])
def test_period_forms_in_title(title, period):
    assert document_context("Body text.", title=title).period == period


def test_ids_and_maturities_are_not_periods():
    for title in ("Policy Form TM-CY-2025-04", "Notes due 2031", "Series 2025A Bonds"):
        ctx = document_context("Body text.", title=title)
        assert ctx.period == ("2025" if "Series" in title else ""), title


def test_text_period_prefers_the_most_frequent_year_and_reduces_dates_to_years():
    text = ("At December 31, 2025, total deposits were $14.8 billion, compared with $13.9 billion at December 31, "
            "2024. Uninsured deposits were 33% of the total at year-end 2025.")
    assert document_context(text).period == "2025"


@pytest.mark.parametrize("meta, period", [
    ({"period": "Q3 2025"}, "Q3 2025"),
    ({"fiscal_year": "2025"}, "fiscal 2025"),
    ({"fiscal_year": 2025}, "fiscal 2025"),
    ({"year": 2019}, "2019"),
    ({"date": "1994-02-04"}, "February 1994"),
    ({"date": 20250409}, "April 2025"),
    ({"Date": "April 9, 2025"}, "April 2025"),
    ({"period": "H1 2025"}, "2025"),
    ({"period": "Interim"}, "Interim"),
])
def test_period_from_metadata(meta, period):
    # metadata beats the title's "fiscal 2023"
    assert document_context("Body text.", title="Review of fiscal 2023", metadata=meta).period == period


# ---------------------------------------------------------------------------------------------- sections


def test_section_of_markdown_headings():
    text = MINUTES_MD
    assert section_of(text, text.index("Members"), "") == ""  # the title line is not a section
    assert section_of(text, text.index("The Council voted"), "") == "Monetary policy decision"
    assert section_of(text, text.index("## Monetary"), "") == "Monetary policy decision"  # a chunk starting at it
    assert section_of(text, len(text), "") == "Monetary policy decision"


def test_section_of_plain_headings_after_normalisation():
    """Ingest strips Markdown: headings become lines of their own between blank lines."""
    text = (
        "Tallowmere Mutual Insurance Company: CyberGuard Policy\n\n"
        "Insuring Agreement C\n\n"
        "We will pay the Income Loss. The waiting\n"
        "period is 10 hours\n"
        "for each interruption.\n\n"
        "The following exclusions apply to every insuring agreement in this section:\n\n"
        "War, invasion or acts of foreign enemies.\n\n"
        "Conditions:\n\n"
        "You must notify us within 30 days.\n\n"
        "LIQUIDITY AND CAPITAL RESOURCES\n"
        "At September 30 we had cash of $12 million.\n"
    )
    title = "tallowmere-cyber-policy"  # a file stem; the first line is still the title line, not a section
    assert section_of(text, text.index("Insuring"), title) == "Insuring Agreement C"
    assert section_of(text, text.index("We will pay"), title) == "Insuring Agreement C"
    # "period is 10 hours" is a wrapped line, and the lead-in sentence ending in ":" is no heading either
    assert section_of(text, text.index("War, invasion"), title) == "Insuring Agreement C"
    assert section_of(text, text.index("You must"), title) == "Conditions"
    assert section_of(text, text.index("At September"), title) == "LIQUIDITY AND CAPITAL RESOURCES"
    assert section_of(text, 0, title) == ""


def test_section_lookups_are_fast_for_every_chunk_of_a_long_document():
    paragraphs = ["Veloria Annual Report 2025"]
    for i in range(300):
        paragraphs.append(f"Section {i} Heading")
        paragraphs.append(f"Paragraph {i} says that revenue rose {i}% in the period. It also says more things.")
    text = "\n\n".join(paragraphs)
    offsets = [text.index(f"Paragraph {i} ") for i in range(300)]
    t0 = time.perf_counter()
    for _ in range(34):  # ~10,000 chunks
        found = [section_of(text, off, "") for off in offsets]
    assert found == [f"Section {i} Heading" for i in range(300)]
    assert time.perf_counter() - t0 < 5.0


# ---------------------------------------------------------------------------------------------- sample corpus


def test_sample_finance_corpus_entities_and_periods():
    docs = read([str(SAMPLES)]).documents
    assert len(docs) >= 40
    contexts = {d.source: document_context(d.text, d.title, d.metadata) for d in docs}
    no_entity = [src for src, ctx in contexts.items() if not ctx.entity]
    assert not no_entity
    for d in docs:  # read from the document, never invented
        ctx = contexts[d.source]
        assert ctx.entity in d.text or ctx.entity in d.title, (d.source, ctx.entity)
        assert ctx.title and not ctx.title.startswith("#"), d.source
    with_period = [ctx for ctx in contexts.values() if ctx.period]
    assert len(with_period) >= 0.8 * len(docs)
    by_name = {Path(src).name: ctx for src, ctx in contexts.items()}
    assert {by_name[n].entity for n in by_name if n.startswith("central-bank-veloria")} == {"Central Bank of Veloria"}
    assert by_name["central-bank-veloria-minutes-april-2025.md"].period == "April 2025"
    assert by_name["earnings-call-crestline-semiconductor-q4-fy2025-qa.md"] == DocContext(
        "Crestline Semiconductor Q4 Fiscal 2025 Earnings Call: Question-and-Answer Session (Excerpt)",
        "Crestline Semiconductor", "Q4 fiscal 2025")
    # a .txt file's title argument is its file stem; its first line is the real title
    assert by_name["risk-factors-tidewater-energy-partners.txt"].title.startswith("Tidewater Energy Partners, L.P. -")
    assert by_name["risk-factors-tidewater-energy-partners.txt"].entity == "Tidewater Energy Partners, L.P."


def test_dated_days_reads_each_day_with_its_year():
    assert dated_days("rate 1 December 2025", strict=True) == {(1, "December", "2025")}
    assert dated_days("on Sept. 30, 2025", strict=True) == {(30, "September", "2025")}
    # Any year YEAR reads, on either side: a maturity's "May 15, 2041" is checked as a report's day is.
    assert dated_days("notes due May 15, 2041", strict=True) == {(15, "May", "2041")}
    # A query's day without a year right after it dates nothing; a passage's takes the years of its date.
    assert dated_days("December 31 balances of 2025", strict=True) == set()
    assert dated_days("As of December 31, 2019 and 2018, we had") == {(31, "December", "2019"),
                                                                      (31, "December", "2018")}
    assert dated_days("at 30 June and 31 December 2025") == {(30, "June", "2025"), (31, "December", "2025")}
    assert dated_days("Meeting, 9–10 April 2025") == {(9, "April", "2025"), (10, "April", "2025")}
