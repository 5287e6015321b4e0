"""Small hand-written finance texts shared by the quality tests (written for these tests)."""

from __future__ import annotations

import random

# Six different passages on one topic (central banks and rates), about 100 words each: same vocabulary,
# different content. Near-duplicate detection must keep all of them.
PASSAGES = [
    "The central bank raised its benchmark interest rate by a quarter of a percentage point on Wednesday, "
    "citing persistent inflation in services and a labour market that remains tight. Policymakers said "
    "further increases may be appropriate if price pressures do not ease over the coming months. The "
    "decision was widely expected by investors, and bond yields moved only slightly after the announcement. "
    "Several members of the committee argued for a pause, noting that earlier increases have not yet fully "
    "worked their way through the economy, particularly in housing and business investment, where "
    "borrowing costs have climbed to their highest level in more than a decade.",
    "Mortgage rates fell for the third consecutive week as long-term government bond yields declined on "
    "signs that the economy is cooling. The average thirty-year fixed rate dropped to its lowest level "
    "since the spring, giving some relief to prospective buyers who have been priced out of the market. "
    "Lenders reported a modest rise in refinancing applications, although activity remains far below the "
    "levels seen when rates were near historic lows. Analysts cautioned that home prices are still high "
    "relative to incomes, so affordability will improve only gradually even if borrowing costs continue "
    "to drift lower through the end of the year.",
    "A corporate bond is a loan that investors make to a company in exchange for regular interest "
    "payments and the return of the principal at maturity. The interest rate, called the coupon, depends "
    "on the credit quality of the issuer: firms with weaker balance sheets must pay higher yields to "
    "compensate lenders for the risk of default. Rating agencies grade issuers from investment grade down "
    "to speculative grade, and many pension funds are only allowed to hold the former. When interest "
    "rates rise, the market price of existing bonds falls, because newly issued bonds offer a better "
    "return to buyers.",
    "The yield curve describes how interest rates on government debt vary with the time remaining until "
    "maturity. Normally longer maturities pay more, because investors want compensation for tying up "
    "their money and for the risk that inflation erodes its value. When short-term rates rise above "
    "long-term rates, the curve is said to be inverted, a pattern that has preceded many recessions. "
    "Economists debate whether the signal still works, since central bank purchases of long-term bonds "
    "may have pushed long yields down artificially. Markets watch the spread between two-year and "
    "ten-year notes as a summary of the curve's shape.",
    "Quantitative easing is a policy in which a central bank buys large amounts of government bonds and "
    "other securities to push down long-term interest rates when short-term rates are already near zero. "
    "The purchases are paid for with newly created bank reserves, which expands the central bank's "
    "balance sheet. Supporters argue the programme lowered borrowing costs and supported asset prices "
    "during the financial crisis and the pandemic. Critics worry that it inflated the prices of stocks "
    "and houses, widening inequality, and that unwinding the holdings later, known as quantitative "
    "tightening, could disrupt markets if it is done too quickly or without clear communication.",
    "Inflation expectations matter because households and firms set wages and prices based on what they "
    "think will happen to the cost of living. If people expect prices to keep rising quickly, workers "
    "demand larger pay increases and companies raise prices in advance, which can make high inflation "
    "self-fulfilling. Central banks therefore track surveys of consumers and professional forecasters as "
    "well as market measures derived from inflation-protected bonds. A credible commitment to a stable "
    "target, usually around two percent a year, helps keep expectations anchored, so that a temporary "
    "jump in energy or food prices does not turn into a lasting wage and price spiral.",
]

# Policy-statement paragraphs in the style of a central bank's rate announcements, written for these tests.
# RATE_HIKE and RATE_CUT share one template and differ only in direction and numbers: distinct facts, not
# copies. NUMERIC_PASSAGE is a ~100-word report full of numbers for edit tests.
RATE_HIKE = (
    "The Committee decided today to raise its target for the overnight lending rate by 25 basis points to "
    "3-1/2 percent. Members judged that the outlook for growth and prices called for a further, measured "
    "adjustment of policy. In a related action, the Board approved an increase in the discount rate of 25 "
    "basis points to 3 percent."
)
RATE_CUT = (
    "The Committee decided today to lower its target for the overnight lending rate by 50 basis points to "
    "5-1/4 percent. Members judged that the outlook for growth and prices called for a further, measured "
    "adjustment of policy. In a related action, the Board approved a decrease in the discount rate of 50 "
    "basis points to 4-3/4 percent."
)
NUMERIC_PASSAGE = (
    "The bank said on Thursday that it would hold its policy rate at 4.25% for a third meeting, while "
    "trimming its monthly purchases of government bonds from $40 billion to $30 billion starting in March "
    "2024. Staff projections show inflation easing to 2.6% next year and reaching the 2 percent target by "
    "the end of 2026, with unemployment rising slightly to 4 3/4 percent. Two of the nine members voted "
    "for a cut of 25 basis points, arguing that credit growth of 1.8% was the weakest since 2011. The "
    "statement repeated that the board is prepared to adjust the pace of purchases if conditions change."
)

# Replacement words for simulated edits: plausible finance vocabulary, none of them rare.
EDIT_WORDS = (
    "market rate price bank policy growth credit loan bond yield risk fund asset debt equity cash "
    "capital revenue profit margin demand supply wage cost tax budget deficit surplus trade export "
    "import currency dollar euro index share stock dividend investor lender borrower deposit reserve"
).split()


_SCALE_WORDS = {"thousand", "million", "billion", "trillion"}


def _is_number_word(tok: str) -> bool:
    return any(c.isdigit() for c in tok) or tok.strip(".,;").lower() in _SCALE_WORDS


def edit_words(text: str, fraction: float = 0.1, seed: int = 0, keep_numbers: bool = False) -> str:
    """Replace ``fraction`` of the words of ``text`` (at random positions) with different words.

    With ``keep_numbers`` the words of numbers (those with a digit, and scale words such as "billion") are
    never replaced; ``fraction`` still counts all words.
    """
    rng = random.Random(seed)
    toks = text.split()
    k = max(1, round(fraction * len(toks)))
    positions = [i for i, t in enumerate(toks) if not (keep_numbers and _is_number_word(t))]
    for pos in rng.sample(positions, k):
        toks[pos] = rng.choice([w for w in EDIT_WORDS if w != toks[pos].lower()])
    return " ".join(toks)
