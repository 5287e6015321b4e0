"""Planning and prompting: stratified persona x style slots, seeded and order-independent; output cleaning."""

from collections import Counter

import pytest

from buildbench.config import load_domain_pack
from buildbench.generators.base import GenerationRequest, GenerationResult
from buildbench.generators.recipes import PersonaQueryRecipe, clean_query, derive_seed, plan_queries
from buildbench.generators.recipes.persona import keyword_style


@pytest.fixture(scope="module")
def pack():
    return load_domain_pack("finance")


def test_plan_is_balanced_over_personas_styles_and_difficulties(pack):
    cells = len(pack.personas) * len(pack.query_styles) * len(pack.difficulties)
    plan = plan_queries([f"c{i:03d}" for i in range(cells)], pack, queries_per_chunk=1, seed=3).to_pylist()
    combos = Counter((r["persona"], r["style"], r["difficulty"]) for r in plan)
    # As many slots as grid cells: every persona x style x difficulty combination exactly once.
    assert len(combos) == len(plan) == cells
    per_style = len(pack.personas) * len(pack.difficulties)
    assert Counter(r["style"] for r in plan) == {s.id: per_style for s in pack.query_styles}


def test_plan_is_seeded_and_sorted_by_style(pack):
    chunks = [f"c{i}" for i in range(30)]
    a = plan_queries(chunks, pack, 2, seed=1)
    b = plan_queries(list(reversed(chunks)), pack, 2, seed=1)
    c = plan_queries(chunks, pack, 2, seed=2)
    assert a.equals(b)  # input order does not matter
    assert not a.equals(c)
    styles = a["style"].to_pylist()
    assert styles == sorted(styles)
    assert a.num_rows == 60 and len(set(a["slot_id"].to_pylist())) == 60


TOPICAL = {
    "c-ins": "The policy excludes flood damage; the deductible is $250,000 per occurrence and the insurer pays "
             "coverage up to an annual aggregate limit after loss history is reviewed.",
    "c-esg": "Scope 1 and 2 emissions fell 17% against the 2022 baseline, and the green bond proceeds funded "
             "climate projects under our emissions targets.",
    "c-cov": "The Borrower must keep interest coverage above 3.0x and leverage below 3.75x; covenant headroom "
             "was 0.6x at year end, and the refinancing of the 2027 notes is planned.",
    "c-cpi": "Inflation eased to 2.9 percent and the Committee cut the policy rate; its growth forecasts were "
             "lowered for next year.",
    "c-tax": "The effective tax rate fell to 19% as deferred tax assets were recognised and tax-exempt income "
             "grew; withholding on dividends is 15%.",
}


def test_personas_go_to_the_chunks_that_speak_to_their_interests(pack):
    """A persona dealt at random asks about what its chunk does not hold; matched, the underwriter gets the
    policy wording, the ESG analyst the emissions, the economist the rate decision."""
    facts = {c: [t.split(";")[0].split(",")[0]] for c, t in TOPICAL.items()}
    plan = plan_queries(sorted(TOPICAL), pack, 2, seed=1, facts=facts, texts=TOPICAL).to_pylist()
    by_chunk = {}
    for r in plan:
        by_chunk.setdefault(r["chunk_id"], []).append(r["persona"])
    assert "insurance_underwriter" in by_chunk["c-ins"]
    assert "esg_analyst" in by_chunk["c-esg"]
    assert "economist" in by_chunk["c-cpi"]
    assert "tax_advisor" in by_chunk["c-tax"]
    assert "credit_analyst" in by_chunk["c-cov"] or "loan_officer" in by_chunk["c-cov"]
    assert all(len(set(ps)) == 2 for ps in by_chunk.values())  # two slots of a chunk, two personas
    # styles and difficulties are still dealt from the grid, and the plan is seeded and order-independent
    assert Counter(r["style"] for r in plan) == Counter(
        r["style"] for r in plan_queries(sorted(TOPICAL), pack, 2, seed=1).to_pylist())
    again = plan_queries(sorted(TOPICAL, reverse=True), pack, 2, seed=1, facts=facts, texts=TOPICAL)
    assert again.to_pylist() == plan


def test_every_document_asks_first_about_its_facts_with_a_figure(pack):
    """Only a figure can single out an unnamed excerpt (quality.support's unanchored rule), and in a named document
    a sentence without one yields topic searches, so a chunk's slots take the facts that state a figure first, in
    salience order, and the others only as spares."""
    facts = {"c1": ["Revenue recognition follows the input method.", "Costs rose $8.6 million in 2019.",
                    "The Group reviews its policies each year.", "Margins fell 40 basis points to 12.1%."]}
    named = {"c1": {"document": "Harlow Mills - 10-K 2019", "entity": "Harlow Mills", "period": "2019"}}
    for documents in (None, named):
        plan = plan_queries(["c1"], pack, 2, seed=1, facts=facts, documents=documents).to_pylist()
        by_slot = {r["slot_id"]: r for r in plan}
        assert by_slot["c1#0"]["fact"] == "Costs rose $8.6 million in 2019."
        assert by_slot["c1#1"]["fact"] == "Margins fell 40 basis points to 12.1%."
        # a keyword slot drops spares without a figure (below)
        for slot, spare in (("c1#0", "Revenue recognition follows the input method."),
                            ("c1#1", "The Group reviews its policies each year.")):
            row = by_slot[slot]
            assert row["spare_facts"] == ([] if row["style"] == keyword_style(pack) else [spare])
    # a chunk with no figure keeps its salience order
    plain = {"c1": ["Revenue recognition follows the input method.", "The Group reviews its policies each year."]}
    assert plan_queries(["c1"], pack, 1, seed=1, facts=plain, documents=named).to_pylist()[0]["fact"] == \
        "Revenue recognition follows the input method."


def test_matched_personas_stay_spread_over_the_pack(pack):
    """Every chunk speaking to one persona does not hand it every slot: each takes at most 1.5 times its even
    share, and slots nobody fits keep the persona they were dealt."""
    ids = [f"c{i:02d}" for i in range(40)]
    texts = {c: TOPICAL["c-ins"] for c in ids}
    plan = plan_queries(ids, pack, 2, seed=2, texts=texts).to_pylist()
    uses = Counter(r["persona"] for r in plan)
    assert uses["insurance_underwriter"] == -(-3 * len(plan) // (2 * len(pack.personas)))  # ceil(1.5 * share)
    assert len(uses) >= len(pack.personas) - 2
    blank = plan_queries(ids, pack, 2, seed=2, texts={c: "" for c in ids}).to_pylist()
    dealt = plan_queries(ids, pack, 2, seed=2).to_pylist()
    kept = sum(a["persona"] == b["persona"] for a, b in zip(blank, dealt))
    assert kept >= 0.9 * len(dealt)  # changed only where a chunk's two slots were dealt one persona
    assert all(len({r["persona"] for r in blank if r["chunk_id"] == c}) == 2 for c in ids)


def test_slot_seed_depends_only_on_seed_and_slot():
    assert derive_seed(1, "c1#0") == derive_seed(1, "c1#0")
    assert derive_seed(1, "c1#0") != derive_seed(1, "c1#1")


def test_prompt_is_answer_first_with_persona_style_examples_and_fact(pack):
    recipe = PersonaQueryRecipe(pack, pack.generator, seed=0)
    slot = {"slot_id": "c1#0", "chunk_id": "c1", "persona": "credit_analyst", "style": "keyword",
            "difficulty": "hard", "seed": 11, "entity": "Orlin Foods, Inc.", "period": "fiscal 2025",
            "fact": "The borrower must keep net leverage below 3.5 times."}
    req = recipe.build_request(slot, "Some other sentence. The borrower must keep net leverage below 3.5 times.")
    persona = next(p.description for p in pack.personas if p.id == "credit_analyst")
    # The writer is told whom and when the fact is about (from the document) and the fact, not the passage.
    assert req.prompt.endswith(f"Persona: {persona}\nStyle: {recipe.styles['keyword']}\n"
                               f"Difficulty: {recipe.difficulties['hard']}\n"
                               "About: Orlin Foods, Inc., fiscal 2025\n"
                               "Fact: The borrower must keep net leverage below 3.5 times.\nQuery:")
    assert "Some other sentence" not in req.prompt
    assert req.prompt.count("\nQuery: ") == pack.generator.few_shot
    assert req.stop == ("\n",) and req.seed == 11
    # Same-style examples first; each example states its entity and period and the fact its query asks for.
    assert "About: Larkspur Packaging Corp., 2025\n" in req.prompt
    assert "Query: Larkspur Packaging net leverage covenant step-down 2026\n" in req.prompt
    # The shared prefix is exactly the instructions plus the examples, identical for every keyword slot of a
    # document that names its entity.
    same = recipe.build_request({**slot, "persona": "auditor", "seed": 5, "fact": ""}, "Other text.")
    assert req.prompt[: req.prefix_chars] == same.prompt[: same.prefix_chars]
    assert req.prompt[req.prefix_chars:].startswith("Persona: ")
    # Without a fact (a chunk with no usable sentence) the passage stands in; a document naming no one says so,
    # and its examples are the unnamed ones: the same facts, single them out by their figures.
    other = recipe.build_request({**slot, "persona": "auditor", "seed": 5, "entity": "", "fact": ""}, "Other text.")
    assert other.prompt.endswith("About: the company (not named), fiscal 2025\nFact: Other text.\nQuery:")
    assert "About: the company (not named), 2025\n" in other.prompt
    assert "Query: net debt to EBITDA covenant 3.75x stepping down to 3.25x after June 2026\n" in other.prompt
    assert "Larkspur" not in other.prompt[: other.prefix_chars]
    assert other.prompt.count("\nQuery: ") == pack.generator.few_shot
    # A redraft rotates the examples (another one comes last) and samples with its own seed, hotter.
    again = recipe.build_request(slot, "Some other sentence.", draft=1)
    shown = [line for line in req.prompt.split("\n") if line.startswith("Query: ")]
    again_shown = [line for line in again.prompt.split("\n") if line.startswith("Query: ")]
    assert again_shown == shown[1:] + shown[:1] and again.seed not in (11, None)
    assert again.prompt.endswith(req.prompt[req.prefix_chars:])
    assert (req.temperature, again.temperature) == (pack.generator.temperature, pack.generator.redraft_temperature)


def test_long_facts_are_cut_at_a_word(pack):
    recipe = PersonaQueryRecipe(pack, pack.generator, seed=0, max_passage_chars=40)
    slot = {"slot_id": "c#0", "chunk_id": "c", "persona": "auditor", "style": "question", "difficulty": "easy",
            "seed": 1}
    req = recipe.build_request(slot, "word " * 100)
    assert "Fact: " + "word " * 8 + "...\nQuery:" in req.prompt


def test_plan_slots_carry_their_document_and_distinct_facts(pack):
    docs = {"c1": {"document": "Orlin Foods - Annual Report 2025", "entity": "Orlin Foods", "period": "2025"}}
    facts = {"c1": ["Net sales rose 8% to $2.1 billion.", "The dividend was raised to $0.40."]}
    plan = plan_queries(["c1", "c2"], pack, 3, seed=1, documents=docs, facts=facts).to_pylist()
    c1 = sorted((r for r in plan if r["chunk_id"] == "c1"), key=lambda r: r["slot_id"])
    # slot n asks about fact n; a chunk with fewer facts than slots repeats its last one
    assert [r["fact"] for r in c1] == facts["c1"] + facts["c1"][-1:]
    assert {r["entity"] for r in c1} == {"Orlin Foods"} and {r["period"] for r in c1} == {"2025"}
    c2 = [r for r in plan if r["chunk_id"] == "c2"]
    assert {r["fact"] for r in c2} == {""} and {r["document"] for r in c2} == {""}



def test_each_slot_keeps_its_own_spare_facts(pack):
    """A redraft after a fact problem asks about a spare: slot n of a chunk takes every queries_per_chunk-th fact
    after the ones asked, so two slots of a chunk never turn to the same spare."""
    facts = {"c1": [f"Fact {i} rose ${i}.5 million." for i in range(6)], "c2": ["Only fact rose $1 million."]}
    docs = {c: {"document": "Orlin Foods - Annual Report 2025", "entity": "Orlin Foods", "period": "2025"}
            for c in facts}
    plan = plan_queries(["c1", "c2"], pack, 2, seed=1, documents=docs, facts=facts).to_pylist()
    c1 = sorted((r for r in plan if r["chunk_id"] == "c1"), key=lambda r: r["slot_id"])
    assert [(r["fact"], r["spare_facts"]) for r in c1] == [
        (facts["c1"][0], [facts["c1"][2], facts["c1"][4]]), (facts["c1"][1], [facts["c1"][3], facts["c1"][5]])]
    assert {r["spare_facts"] == [] for r in plan if r["chunk_id"] == "c2"} == {True}


def test_a_keyword_search_is_never_redrafted_about_a_spare_without_a_figure(pack):
    """A search of a sentence that states no figure names a topic several passages share ("deposit base"): a keyword
    slot keeps only the spares that state one, and ends when they run out; a question or request keeps them all."""
    facts = {"c1": ["Uninsured deposits were $4.9 billion, or 33% of deposits.", "Borrowing capacity was $6.2 billion.",
                    "Our deposit base includes a significant share of uninsured balances.",
                    "Rapid withdrawals could force us to sell securities.", "Unrealized losses were $412 million.",
                    "Office loans were $1.06 billion."]}
    docs = {"c1": {"document": "Risk Factors: Ashgrove Regional Bancorp", "entity": "Ashgrove Regional Bancorp",
                   "period": "2025"}}
    keyword = keyword_style(pack)
    seen = set()
    for seed in range(12):
        for r in plan_queries(["c1"], pack, 2, seed=seed, documents=docs, facts=facts).to_pylist():
            # the facts with a figure first: $4.9, $6.2, $412, $1.06, then "deposit base", "withdrawals"
            own = [facts["c1"][i] for i in (0, 1, 4, 5, 2, 3)]
            spares = own[2 + int(r["slot_id"][-1])::2]
            want = [f for f in spares if "$" in f] if r["style"] == keyword else spares
            assert r["spare_facts"] == want, r
            seen.add(r["style"] == keyword)
    assert seen == {True, False}

@pytest.mark.parametrize("raw,clean", [
    (" What is the leverage covenant?\nPersona: x", "What is the leverage covenant?"),
    ('Query: "fed funds target range"', "fed funds target range"),
    ("- discount rate change 1995", "discount rate change 1995"),
    ("1. net interest margin guidance", "net interest margin guidance"),
    ("   ", ""),
])
def test_clean_query(raw, clean):
    assert clean_query(raw) == clean


def test_parse_reports_errors_and_empty_output(pack):
    recipe = PersonaQueryRecipe(pack, pack.generator, seed=0)
    assert recipe.parse(GenerationResult(text="", error="timeout")).drop_reason == "llm_error"
    assert recipe.parse(GenerationResult(text="\n\n")).drop_reason == "empty_output"
    assert recipe.parse(GenerationResult(text=" capital ratio 2025")).text == "capital ratio 2025"


def test_a_lead_starts_the_prompts_query_and_the_parsed_query(pack):
    recipe = PersonaQueryRecipe(pack, pack.generator, seed=0)
    slot = dict(style="keyword", persona=pack.personas[0].id, difficulty="easy", seed=1, entity="FOMC",
                period="February 1994", fact="The Committee decided to increase pressure on reserve positions.")
    plain = recipe.build_request(slot, "", draft=1)
    led = recipe.build_request(slot, "", draft=1, lead="FOMC")
    assert plain.prompt.endswith("\nQuery:") and led.prompt == plain.prompt + " FOMC"
    assert led.prefix_chars == plain.prefix_chars and led.key("m") != plain.key("m")
    parsed = recipe.parse(GenerationResult(text=" reserve pressure increase February 1994\n"), lead="FOMC")
    assert parsed.text == "FOMC reserve pressure increase February 1994"
    # a writer that adds nothing to its lead wrote no query
    assert recipe.parse(GenerationResult(text="\n"), lead="FOMC").drop_reason == "empty_output"


def test_request_key_covers_model_prompt_and_params():
    r = GenerationRequest(prompt="p", seed=1)
    assert r.key("m") == GenerationRequest(prompt="p", seed=1).key("m")
    assert r.key("m") != r.key("m2")
    assert r.key("m") != GenerationRequest(prompt="p", seed=2).key("m")
    assert r.key("m") != GenerationRequest(prompt="p", seed=1, temperature=0.1).key("m")
    with pytest.raises(ValueError):
        GenerationRequest()


def test_query_budget_samples_chunks_deterministically():
    pack = load_domain_pack("finance")
    ids = [f"c{i:02d}" for i in range(20)]
    plan = plan_queries(ids, pack, 2, seed=3, max_queries=10)
    assert plan.num_rows == 10 and len(set(plan["chunk_id"].to_pylist())) == 5
    assert plan.equals(plan_queries(ids, pack, 2, seed=3, max_queries=10))
    assert set(plan_queries(ids, pack, 2, seed=4, max_queries=10)["chunk_id"].to_pylist()) != set(
        plan["chunk_id"].to_pylist())
    # A budget above what the corpus needs changes nothing.
    assert plan_queries(ids, pack, 2, seed=3, max_queries=100).equals(plan_queries(ids, pack, 2, seed=3))


def test_a_query_budget_draws_from_chunks_with_something_to_ask(pack):
    """With a budget, chunks whose best fact scores below the median (a table's lead-in, boilerplate) get no
    query while enough others are left; with too few above it, every chunk can be drawn."""
    ids = [f"c{i:02d}" for i in range(20)]
    salience = {c: (5.0 if i % 2 else 0.5) for i, c in enumerate(ids)}  # odd chunks have a salient fact
    plan = plan_queries(ids, pack, 2, seed=3, max_queries=10, salience=salience)
    picked = set(plan["chunk_id"].to_pylist())
    assert len(picked) == 5 and all(int(c[1:]) % 2 for c in picked)
    assert plan.equals(plan_queries(ids, pack, 2, seed=3, max_queries=10, salience=salience))
    # 10 askable chunks but a budget of 14: every chunk can be drawn
    wide = set(plan_queries(ids, pack, 1, seed=3, max_queries=14, salience=salience)["chunk_id"].to_pylist())
    assert len(wide) == 14 and any(int(c[1:]) % 2 == 0 for c in wide)
    # without a budget, salience changes nothing
    assert plan_queries(ids, pack, 2, seed=3, salience=salience).equals(plan_queries(ids, pack, 2, seed=3))


def test_a_query_budget_asks_an_unnamed_document_about_its_figures_only(pack):
    """In a document that names no one a query is singled out by a figure only: under a budget, a chunk whose facts
    state none is not drawn, and a chunk gets a slot per fact stating one (up to queries_per_chunk), with more
    chunks drawn until the budget is spent. A named document's chunks are drawn as before; with too few chunks
    that have a figure, any chunk can be."""
    ids = [f"c{i:02d}" for i in range(20)]
    figure, another, plain = ("Revenue rose 12% to $4.1 million in 2019.", "Backlog was $2.3 million at year end.",
                              "The segment sells valves and pumps.")
    facts = {c: [plain] if i % 2 == 0 else [figure, another] if i % 4 == 1 else [figure, plain]
             for i, c in enumerate(ids)}
    unnamed = {c: {"entity": ""} for c in ids}
    plan = plan_queries(ids, pack, 2, seed=3, max_queries=10, documents=unnamed, facts=facts).to_pylist()
    assert len(plan) == 10 and all(int(s["chunk_id"][1:]) % 2 for s in plan)
    assert all(s["fact"] in (figure, another) for s in plan)
    per_chunk = Counter(s["chunk_id"] for s in plan)
    assert all(n == 1 for c, n in per_chunk.items() if int(c[1:]) % 4 == 3) and len(per_chunk) > 5
    assert plan == plan_queries(ids, pack, 2, seed=3, max_queries=10, documents=unnamed, facts=facts).to_pylist()
    named = {c: {"entity": "Harlow Valve Co."} for c in ids}
    drawn = plan_queries(ids, pack, 2, seed=3, max_queries=10, documents=named, facts=facts)
    assert drawn["chunk_id"].to_pylist() == plan_queries(ids, pack, 2, seed=3, max_queries=10)["chunk_id"].to_pylist()
    wide = set(plan_queries(ids, pack, 1, seed=3, max_queries=14, documents=unnamed, facts=facts)["chunk_id"]
               .to_pylist())
    assert len(wide) == 14 and any(int(c[1:]) % 2 == 0 for c in wide)
    # without a budget every chunk gets its slots
    assert plan_queries(ids, pack, 2, seed=3, documents=unnamed, facts=facts).num_rows == 40


def test_a_document_that_names_no_one_and_dates_no_quarter_or_month_gets_keyword_searches(pack):
    """A question or request may not state its answer's figure, so in a document that names no one only a month or
    quarter of its period can single its passage out: without one, every slot is a keyword search. Named and
    quarter-dated documents keep the dealt mix, and so does a chunk whose document is not known."""
    ids = [f"c{i:02d}" for i in range(36)]
    keyword = next(s.id for s in pack.query_styles if s.form == "keywords")
    documents = {c: ({"entity": "", "period": "2019"} if i % 3 == 0 else
                     {"entity": "", "period": "Q4 2019"} if i % 3 == 1 else
                     {"entity": "Harlow Valve Co.", "period": "2019"}) for i, c in enumerate(ids)}
    plan = plan_queries(ids, pack, 2, seed=3, documents=documents).to_pylist()
    styles = {k: Counter(s["style"] for s in plan if int(s["chunk_id"][1:]) % 3 == k) for k in range(3)}
    assert set(styles[0]) == {keyword} and sum(styles[0].values()) == 24
    for k in (1, 2):
        assert set(styles[k]) == {s.id for s in pack.query_styles}, styles[k]
    # personas and difficulties are dealt as before: only the style of an undated unnamed slot changes
    dealt = plan_queries(ids, pack, 2, seed=3).to_pylist()
    key = lambda rows: sorted((r["slot_id"], r["persona"], r["difficulty"]) for r in rows)  # noqa: E731
    assert key(plan) == key(dealt)
    assert [r["style"] for r in sorted(dealt, key=lambda r: r["slot_id"]) if int(r["chunk_id"][1:]) % 3] == \
        [r["style"] for r in sorted(plan, key=lambda r: r["slot_id"]) if int(r["chunk_id"][1:]) % 3]


def test_degenerate_outputs_are_no_queries(pack):
    from buildbench.generators.base import GenerationResult

    recipe = PersonaQueryRecipe(pack, pack.generator, seed=0)
    looped = recipe.parse(GenerationResult(text="the 15-year expected benefit the 15-year expected benefit",
                                           finish_reason="stop"))
    assert (looped.text, looped.drop_reason) == (None, "repetition")
    cut = recipe.parse(GenerationResult(text="grant date fair values of $7.47, $", finish_reason="length"))
    assert (cut.text, cut.drop_reason) == (None, "truncated")
    assert recipe.parse(GenerationResult(text=" Ardent discount rate 12.6%\n", finish_reason="stop")).text == \
        "Ardent discount rate 12.6%"
