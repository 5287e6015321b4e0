"""generate_queries: answer-first, persona-conditioned InPars few-shot query writing with the LLM (a map stage over
the plan): each slot names its document and the fact its query must ask for. A draft that fails the form, copy or
support check is written again, up to ``generator.drafts`` times: about the same fact when its wording strayed,
about another fact of its chunk (the plan's spares) when its fact was the problem. A draft that loops, is cut off,
misses its style's form (a question that names a word twice aside) or asks what its fact cannot answer (when, why,
a value, what would be, a second thing) is the slot's last: a redraft of it was more often garbled than not. A
question that states its fact's figure ends its slot too, like those asks (its redrafts were not measured). A
keyword search loses any year that neither its passage nor its title states before it is checked (the writer
copies its examples' year, "2025", onto facts of documents that name none), and any multiple sign its passage never
writes or token said twice in a row ("53.53x", "2018 2018"). A search that passes every check but states no figure
gains its fact's one figure, once drafting is over ("inventory 2025" -> "inventory 60% 2025"). A question or
request slot that ends without a passing draft is written again, the same way, as a keyword search about a fact
of its chunk that states a figure (logged as ``restyled``)."""

from __future__ import annotations

import pyarrow as pa

from ..engine.stage import StageContext
from ..generators.recipes import ParsedQuery, PersonaQueryRecipe
from ..generators.recipes.persona import keyword_style
from ..records import Drop, Query, to_table
from ..quality import CopyFilter
from ..quality.form import KEYWORDS, form_problem, style_forms
from ..quality.numbers import figures
from ..quality.support import SupportFilter, tidy_search, with_fact_figure, without_invented_years
from .common import (
    QUERY_WRITER,
    call_llm,
    check_role,
    chunk_texts,
    llm_keys,
    make_llm,
    short_hash,
    support_refs,
)

# PersonaQueryRecipe reads the pack's personas, styles, difficulties, few-shot examples, name and languages.
CONFIG_KEYS = ("seed", *llm_keys(QUERY_WRITER), "domain.few_shot", "domain.personas", "domain.query_styles",
               "domain.difficulties", "domain.name", "domain.language", "domain.recipes.query_language",
               "domain.recipes.persona", "domain.filters.support", "domain.filters.copy_filter")
check = check_role(QUERY_WRITER, lambda pack: pack.recipes.persona)

# What a failed draft says about its slot (the reasons of quality.copy and quality.support), read on every kept
# query of labelled builds (benchmarks/query_labels/; benchmarks/README.md has the tables):
# - its wording strayed from a fact it could ask about: the next draft asks about the same fact (good 58 times in 78);
#   so does a question that names a word twice ("the CET1 ratio of ...'s capital ratio"), and a query that takes
#   its transcript turn's speaker for the subject (``names_speaker``) or states a figure of its passage that its
#   fact does not (``other_fact_figure``): of their 8 redrafts in nine labelled builds, 1 was kept (good); and a
#   keyword search that states a figure twice, runs past 15 words (``quality.form``) or puts its figure with the
#   measure its passage gives another figure (``misbound_figure``, ``quality.binding``): garbled wording, not a fact;
# - its fact is hard to ask about: the next draft is a first draft about a spare fact of its chunk (26 in 45, where
#   another draft of the same fact was 15 in 31; first drafts are good 75% of the time);
# - it copied its "About" line and asks nothing ("FOMC, February 1994"): a spare fact when its chunk has one, as
#   for a fact failure (and as measured), else the same fact again, a keyword search then started with its entity
#   as the examples' are, so that the writer goes on to the fact; 58 of the 220 slots of the FOMC build, whose
#   one-sentence chunks have no spare, ended on such a draft;
# - any other failure (not its style's form, an ask its fact cannot answer, a unit ("$", "%") its passage never
#   gives its figure, cut off, looping) ends the slot: a draft about a spare fact after one was good 17 times in 38
#   over six builds (`nextfact_all_*`), and taking them cost the rate three points. A question that states its
#   fact's figure (``states_answer``, added later) ends it too, as does a question or request about a year its fact
#   does not state (``asks_other_year``, later still) and one stating a change the other way from its fact's
#   (``opposite_direction``, last); their redrafts were not measured.
SAME_FACT_REDRAFT = frozenset({"unsupported_terms", "invented_phrase", "invented_relation", "copied_from_chunk",
                               "mentions_source", "repeated_term", "names_speaker", "other_fact_figure",
                               "repeated_figure", "long_search", "misbound_figure", "misdated_figure"})
NEXT_FACT_REDRAFT = frozenset({"off_fact", "invented_figure", "invented_period", "unanchored",
                               "ambiguous_document", "names_only_document"})
# Of NEXT_FACT_REDRAFT: drafted again about the same fact when there is no spare (the writer's copy, not the fact).
SAME_FACT_WITHOUT_SPARE = frozenset({"names_only_document"})


def run_shard(shard: pa.Table, ctx: StageContext) -> tuple[pa.Table, list[Drop]]:
    cfg = ctx.config
    llm = make_llm(ctx, QUERY_WRITER)
    recipe = ctx.service("recipe.persona", lambda: PersonaQueryRecipe(cfg.domain, cfg.domain.generator, cfg.seed))
    texts = chunk_texts(ctx)
    slots = shard.to_pylist()
    filters = cfg.domain.filters
    # The per-query checks filter_queries applies (form, copy, then support), run on each draft so that a
    # failing slot gets another try.
    copy = CopyFilter(filters.copy_filter)
    support = (SupportFilter(filters.support.max_unsupported, max_loose_pairs=filters.support.max_loose_pairs)
               if filters.support.enabled else None)
    forms = style_forms(cfg.domain.query_styles)
    keyword = keyword_style(cfg.domain)
    # Each slot's facts: its own, then its spares (SAME_FACT_REDRAFT and NEXT_FACT_REDRAFT say when each is asked).
    facts = [[s.get("fact") or "", *(s.get("spare_facts") or ())] for s in slots]
    at, tries, leads = [0] * len(slots), [0] * len(slots), [""] * len(slots)
    refs: dict[tuple[int, str], tuple] = {}
    passed: set[int] = set()  # slots whose draft passed every check (so were not drafted again)

    def ref(i: int) -> tuple:
        if (i, facts[i][at[i]]) not in refs:
            refs[i, facts[i][at[i]]] = support_refs(ctx, [[slots[i]["chunk_id"]]], [facts[i][at[i]]])[0]
        return refs[i, facts[i][at[i]]]

    def problem(i: int, text: str):
        return (form_problem(text, forms.get(slots[i]["style"])) or copy.check(text, texts[slots[i]["chunk_id"]])
                or (support.check(text, *ref(i)) if support else None))

    def failed(i: int):
        """(reason, detail) of slot ``i``'s final draft when it wrote no query or fails a check; None when it passes
        or when the backend failed (left to a rerun)."""
        parsed = final[i][2]
        if parsed.text is None:
            return None if parsed.drop_reason == "llm_error" else (parsed.drop_reason, parsed.detail)
        return problem(i, parsed.text)

    def tidy_keywords(i: int, parsed: ParsedQuery) -> ParsedQuery:
        """A keyword search without what no searcher types (``quality.support.tidy_search``: a multiple sign its
        passage never writes, a token twice in a row), and without the years its passage and title never state:
        the writer adds its examples' year ("net average space growth 1.4% 2025") to facts of documents that name
        none. The support check defines an invented year, so with it off the draft is left as written."""
        if support is None or not parsed.text or forms.get(slots[i]["style"]) != KEYWORDS:
            return parsed
        passage, _, naming = ref(i)[:3]
        text = tidy_search(parsed.text, passage)
        ctx.stats["searches_tidied"] += text != parsed.text
        rest = without_invented_years(text, passage, naming, filters.support.max_unsupported)
        ctx.stats["years_taken_out"] += rest is not None
        final = rest or text
        return parsed if final == parsed.text else ParsedQuery(final)

    final, drops = {}, []
    drafts = max(1, cfg.domain.generator.drafts)

    def write(pending: list[int], stat: str) -> None:
        """Draft ``pending`` slots, each up to ``drafts`` times (SAME_FACT_REDRAFT and NEXT_FACT_REDRAFT), counting
        each round's drafts under ``stat``."""
        for draft in range(drafts):
            # Slots whose prompts share a prefix (style, named entity, examples' rotation) run back to back: a switch
            # to a prefix the backend no longer keeps makes llama.cpp read it again (about 3 s on 2 cores).
            pending.sort(key=lambda i: (tries[i], i))
            requests = [recipe.build_request(dict(slots[i], fact=facts[i][at[i]]), texts[slots[i]["chunk_id"]],
                                             tries[i], leads[i]) for i in pending]
            retry = []
            for i, req, res in zip(pending, requests, call_llm(ctx, llm, requests)):
                parsed = final[i] = (req, res, tidy_keywords(i, recipe.parse(res, leads[i])))
                if draft + 1 == drafts:
                    continue
                text = parsed[2].text
                if text is None and parsed[2].drop_reason == "llm_error":
                    continue  # the backend's failure, not the draft's: left to its retries and to a rerun
                why = (parsed[2].drop_reason, parsed[2].detail) if text is None else problem(i, text)
                if not why:
                    passed.add(i)
                    continue
                if why[0] in SAME_FACT_REDRAFT:
                    tries[i] += 1
                elif why[0] in NEXT_FACT_REDRAFT and at[i] + 1 < len(facts[i]):
                    at[i], tries[i] = at[i] + 1, 0
                elif why[0] in SAME_FACT_WITHOUT_SPARE:
                    tries[i] += 1
                    if forms.get(slots[i]["style"]) == KEYWORDS:
                        leads[i] = slots[i].get("entity") or ""
                else:
                    continue  # not drafted again: filter_queries drops this draft for the same reason
                retry.append(i)
                drops.append(Drop(ctx.stage, slots[i]["slot_id"], "redrafted",
                                  f"draft {draft + 1} failed {why[0]} ({why[1]}): {text or ''!r}"))
            ctx.stats[f"{stat}_{draft + 1}"] += len(pending)
            pending = retry
            if not pending:
                break

    write(list(range(len(slots))), "drafts")
    ctx.stats["spare_facts_asked"] += sum(a > 0 for a in at)
    # A question or request slot that ends without a query is written again as a keyword search about a fact of
    # its chunk that states a figure (the one its last draft asked about first): the form the small writer keeps
    # most often and gets right most often (benchmarks/README.md), where otherwise the slot's calls keep nothing.
    # The slot keeps its persona and difficulty; the report counts it under the style it was planned as and the
    # one it ended as.
    restyle = []
    for i in range(len(slots)):
        if not keyword or support is None or forms.get(slots[i]["style"]) == KEYWORDS or i in passed:
            continue
        why, own = failed(i), [f for f in facts[i][at[i]:] + facts[i][:at[i]] if figures(f)]
        if not why or not own:
            continue
        drops.append(Drop(ctx.stage, slots[i]["slot_id"], "restyled",
                          f"{slots[i]['style']} draft failed {why[0]} ({why[1]}): {final[i][2].text or ''!r}; "
                          f"written again as a keyword search"))
        slots[i] = dict(slots[i], style=keyword)
        facts[i], at[i], tries[i], leads[i] = own, 0, 0, ""
        restyle.append(i)
    if restyle:
        ctx.stats["restyled"] += len(restyle)
        write(restyle, "restyled_drafts")
    # A passing search that names no figure gains its fact's one figure: "inventory 2025" fits every passage of
    # the agreement that names inventory, "inventory 60% 2025" the cap. Only after drafting, and only where both
    # forms pass, so that no draft's fate changes (a search naming only its document would pass with a figure).
    for i, (req, res, parsed) in final.items():
        if support is None or not parsed.text or forms.get(slots[i]["style"]) != KEYWORDS:
            continue
        text = with_fact_figure(parsed.text, facts[i][at[i]])
        # A last draft was never checked; any other final draft was, and passed.
        if text != parsed.text and (i in passed or not problem(i, parsed.text)) and not problem(i, text):
            final[i] = (req, res, ParsedQuery(text))
            ctx.stats["figures_added"] += 1
    queries = []
    for i, slot in enumerate(slots):
        req, res, parsed = final[i]
        fact = facts[i][at[i]]  # the last draft's: a slot moves to another fact only to draft it
        if parsed.text is None:
            drops.append(Drop(ctx.stage, slot["slot_id"], parsed.drop_reason, parsed.detail))
            continue
        queries.append(Query(
            id=f"q-{short_hash(slot['slot_id'])}",
            text=parsed.text, chunk_ids=[slot["chunk_id"]], recipe=recipe.name, persona=slot["persona"],
            style=slot["style"], difficulty=slot["difficulty"], language=cfg.domain.query_language,
            backend=llm.name, model=llm.model_id,
            prompt_hash=req.prompt_hash, cache_key=res.cache_key,
            # Answer-first: the fact the query was written to ask for is its answer and citation.
            answer=fact, citations=[fact] if fact else [],
        ))
    ctx.stats["queries"] += len(queries)
    return to_table(queries, Query), drops
