"""quality.form: a query must have its style's form. Texts are our own writing."""

import pytest

from buildbench.quality.form import FormFilter, form_problem


@pytest.mark.parametrize("text, form, reason", [
    ("Operating costs for the year 2018 are expected to be $9.5 million.", "request", "not_a_request"),
    ("a reduction in emissions associated with progress in energy efficiency.", "request", "not_a_request"),
    ("What did Harlow Mills pay in dividends? And what about buybacks?", "question", "two_questions"),
    ("Harlow Mills dividend per share in fiscal 2025", "question", "not_a_question"),
    ("what is the Harlow Mills dividend?", "keywords", "not_keywords"),
    # the filing's voice, not a searcher's; and a part of a whole the writer made up
    ("How much did our net income rise at Harlow Mills?", "question", "document_voice"),
    ("Harlow Mills our dividend 2025", "keywords", "document_voice"),
    ("How much of the $40 million was spent on Harlow Mills' new mill?", "question", "part_of"),
    # the writer's passage as antecedent; a case the passage does not state; an account of how
    ("Why are these notes due in 2031 and not the Harlow Mills term loan?", "question", "dangling_reference"),
    ("equity interests in this investee company 9% 2025", "keywords", "dangling_reference"),
    ("I need to know the reason for this action by Harlow Mills.", "request", "dangling_reference"),
    ("Harlow Mills dividend this year", "keywords", "dangling_reference"),  # a benchmark has no "now"
    ("What is the impact on Harlow Mills' revenue if the mill was sold in 2025?", "question", "hypothetical"),
    ("If Harlow Mills had $5 million of cash a year, how much would it hold now?", "question", "hypothetical"),
    ("Assuming rates rise, I need Harlow Mills' interest cost.", "request", "hypothetical"),
    ("How does Harlow Mills reduce its cost of capital?", "question", "open_how"),
    ("How did the change affect Harlow Mills' margins?", "request", "open_how"),
    # the same asks inside a request
    ("I need to know how much of the $40 million Harlow Mills spent on its new mill.", "request", "part_of"),
    ("How much of the $40 million did Harlow Mills spend on its new mill?", "request", "part_of"),
    # a request names the searcher's need; a bare question does not
    ("Which fund waives its front-end sales charge above $1 million?", "request", "bare_question"),
    ("I need to understand how the Harlow Mills board will proceed with the mill sale.", "request", "open_how"),
    # a question that names a word twice asks a garbled thing
    ("What is the leverage ratio of Harlow Mills' capital ratio?", "question", "repeated_term"),
    ("What is the recoverable amount of the carrying amount of Harlow Mills' mill?", "question", "repeated_term"),
    # a search that states one figure twice, or copies a sentence, is garbled
    ("Harlow Mills 7% investment credit 7% jobs credit", "keywords", "repeated_figure"),
    ("$35 million related to severance and $35 million related to mill exit costs", "keywords", "repeated_figure"),
    ("increase in Harlow Mills paper sales $1.7 million increase in pulp sales in the Americas region, a $0.8 million "
     "increase", "keywords", "long_search"),
])
def test_a_query_without_its_styles_form_is_dropped(text, form, reason):
    assert form_problem(text, form)[0] == reason


@pytest.mark.parametrize("text, form", [
    ("I need Harlow Mills' fiscal 2025 dividend per share for a client's income plan.", "request"),
    ("Reviewing covenant headroom, we are looking for the leverage step-down date.", "request"),
    ("We are benchmarking Harlow Mills' loan against our own bank lines and need its margin.", "request"),
    ("I need to know how much Harlow Mills spent on its new mill in 2025.", "request"),
    ("I need to know how many mills Harlow Mills closed and how long the closures took.", "request"),
    ("How much did Harlow Mills spend of its $40 million budget?", "question"),
    ("I need to know: which fund waives its front-end sales charge above $1 million?", "request"),
    ("How much did Harlow Mills raise its dividend in fiscal 2025?", "question"),
    ("Harlow Mills dividend increase 2025", "keywords"),
    # a demonstrative whose noun the query named before, or that is a pronoun; "if" as "whether" in a request
    ("I need Harlow Mills' decision to close the mill and the reason for this decision.", "request"),
    ("Harlow Mills' 2025 margins against those of 2024", "keywords"),
    ("I need to know if Harlow Mills will invest in private activity bonds.", "request"),
    ("How many mills did Harlow Mills close in 2025?", "question"),  # "Mills" the name, "mills" the noun
    # a keyword search lists a measure's figures, and a request may name its subject twice
    ("Harlow Mills cash and cash equivalents 2025", "keywords"),
    ("Harlow Mills net sales $1.7 million 2025 against $1.5 million 2024", "keywords"),  # years, other figures
    ("Harlow Mills overnight deposit rate 4.75 percent and marginal lending rate 5.50 percent", "keywords"),
    ("I need Harlow Mills' dividend policy and whether its 2025 dividend was cut.", "request"),
    ("How many basis points did Harlow Mills' rate rise, from 40 basis points?", "question"),  # units list figures
    ("anything at all", None),  # a style that declares no form is not checked
])
def test_a_query_with_its_styles_form_passes(text, form):
    assert form_problem(text, form) is None


def test_every_bundled_few_shot_example_has_its_styles_form():
    from buildbench.config import load_domain_pack

    for name in ("finance", "general"):
        pack = load_domain_pack(name)
        forms = {s.id: s.form for s in pack.query_styles}
        assert set(forms.values()) == {"keywords", "question", "request"}
        for e in pack.few_shot:
            for q in filter(None, (e.query, e.unnamed_query)):
                assert form_problem(q, forms[e.style]) is None, q


def test_apply_keeps_alignment_and_reports_reasons():
    out = FormFilter(stage="query_form").apply(
        ["a", "b", "c"], ["Harlow Mills dividend 2025", "Dividends were raised 8%.", "What was raised?"],
        ["keywords", "request", None])
    assert out.keep == [True, False, True]
    assert [(d.item_id, d.stage, d.reason) for d in out.drops] == [("b", "query_form", "not_a_request")]
