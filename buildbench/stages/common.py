"""What several stages share: the LLM of a model role (built once, its calls counted into the stage's stats),
the plan check of a role, chunk and passage texts, the embedding cache, and each query's positives."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from contextlib import contextmanager
from typing import Callable

import pyarrow as pa

from ..builders.context import LEGAL_FORM, document_context
from ..config import BuildConfig
from ..engine.stage import StageContext
from ..quality.form import KEYWORDS, style_forms
from ..quality.numbers import figures, value_figures
from ..quality.support import figure_search, singular_stems, topic_stems, written_figures

# The model roles, named by their config field on the domain pack (the query writer's is ``generator``). A role
# left unset uses the query writer's backend and model.
QUERY_WRITER, QA_WRITER, NEGATIVE_WRITER, JUDGE = "query_writer", "qa_writer", "negative_writer", "judge"


def llm_keys(role: str) -> tuple[str, ...]:
    """The config keys a role's LLM is built from (what ``make_llm`` reads)."""
    return ("domain.generator",) if role == QUERY_WRITER else (f"domain.{role}", "domain.generator")


def make_llm(ctx: StageContext, role: str = QUERY_WRITER):
    """A model role's backend behind the shared call cache, built once per process."""
    from ..generators.cache import CachedLLM, LLMCache
    from ..generators.factory import make_backend, role_config

    def build():
        cache = ctx.service("llm.cache", lambda: LLMCache(ctx.rundir.cache_dir / "llm.sqlite"))
        return CachedLLM(make_backend(role_config(ctx.config.domain, role)), cache)

    return ctx.service(f"llm.{role}", build)


@contextmanager
def track_llm(ctx: StageContext, llm):
    """Count the calls, cache hits, tokens, retries and failures made inside into the stage's stats."""
    before = Counter(llm.stats)
    try:
        yield llm
    finally:
        for k, v in (Counter(llm.stats) - before).items():
            ctx.stats[f"llm.{k}"] += v


def call_llm(ctx: StageContext, llm, requests):
    with track_llm(ctx, llm):
        return llm.generate(requests)


def check_role(role: str, enabled: Callable = lambda pack: True) -> Callable[[BuildConfig], None]:
    """A plan check: fail before any stage runs if a role's backend cannot be built (package, model, URL)."""

    def check(config: BuildConfig) -> None:
        from ..generators.factory import check_backend, role_config

        if enabled(config.domain):
            check_backend(role_config(config.domain, role))

    return check


def chunk_texts(ctx: StageContext) -> dict[str, str]:
    """Chunk id -> text, read once per process (the stage must declare ``chunks`` as an input)."""
    return _chunk_column(ctx, "text")


def chunk_titles(ctx: StageContext) -> dict[str, str]:
    """Chunk id -> its document's title (which names the entity and period), read once per process."""
    return _chunk_column(ctx, "title")


def chunk_documents(ctx: StageContext) -> dict[str, str]:
    """Chunk id -> its document's id, read once per process."""
    return _chunk_column(ctx, "doc_id")


def _chunk_column(ctx: StageContext, column: str) -> dict[str, str]:
    ctx.check_input("chunks")  # also when another stage loaded them first

    def load():
        table = ctx.read("chunks").select(["id", column])
        return dict(zip(table["id"].to_pylist(), table[column].to_pylist()))

    return ctx.service(f"chunks.{column}", load)


def naming(titles: dict[str, str], chunk_ids: list[str]) -> str:
    """The words that name a query's document: its passages' titles (entity and period)."""
    return " ".join(titles.get(c) or "" for c in chunk_ids)


def _keyword_searches(ctx: StageContext, queries: pa.Table):
    """(id, text, the words naming its document) of each keyword search among ``queries``: questions and requests
    ask more than their words, so another passage holding them need not answer them ("What is the net proceeds of
    Kaleva Telecom Holdings S.A. in 2025?" of the notes' equity-offering redemption terms)."""
    titles, form = chunk_titles(ctx), style_forms(ctx.config.domain.query_styles)
    for qid, text, chunk_ids, style in zip(queries["id"].to_pylist(), queries["text"].to_pylist(),
                                           queries["chunk_ids"].to_pylist(), queries["style"].to_pylist()):
        if form.get(style) == KEYWORDS:
            yield qid, text, naming(titles, chunk_ids)


def search_topics(ctx: StageContext, queries: pa.Table) -> dict[str, frozenset[str]]:
    """Keyword search id -> the words it asks with, when it names no figure, month or quarter (``topic_stems``; its
    passages' titles name its document)."""
    return {qid: topic for qid, text, names in _keyword_searches(ctx, queries) if (topic := topic_stems(text, names))}


def search_figures(ctx: StageContext, queries: pa.Table) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Keyword search id -> the figures it writes and the words it asks with (``figure_search``), when it writes a
    figure."""
    return {qid: found for qid, text, names in _keyword_searches(ctx, queries)
            if (found := figure_search(text, names))[0]}


def search_counts(ctx: StageContext, queries: pa.Table) -> dict[str, frozenset[str]]:
    """Keyword search id -> the numbers it states without a currency, scale or unit ("Meridian Retail Holdings 24
    stores 2025" -> {"24"}), when it states one. Too loose to tie another passage to the search, but a passage
    that never writes the number does not answer it."""
    return {qid: bare for qid, text, _ in _keyword_searches(ctx, queries)
            if (bare := frozenset(value_figures(text) - figures(" ".join(written_figures(text)))))}


# A name's closing legal form ("Tidewater Energy Partners, L.P." and "Tidewater Energy Partners" are one entity);
# "Group", "Bank" or "Fund" are part of the name and stay.
_CLOSING_LEGAL_FORM = re.compile(rf",?\s+{LEGAL_FORM}$")


def entity_key(name: str) -> str:
    """An entity's name (``document_context``) as all its documents share it: lower case, without a closing legal
    form; "" for no name."""
    key = " ".join(name.split())
    while _CLOSING_LEGAL_FORM.search(key):
        key = _CLOSING_LEGAL_FORM.sub("", key)
    return key.lower()


def chunk_entity_names(ctx: StageContext) -> dict[str, str]:
    """Chunk id -> the entity its document's title names ("" for none), read once per process; a title is read
    once, not once per chunk."""
    ctx.check_input("chunks")

    def load():
        titles = chunk_titles(ctx)
        name = {t: document_context("", title=t or "").entity for t in set(titles.values())}
        return {cid: name[t] for cid, t in titles.items()}

    return ctx.service("chunks.entity_name", load)


def chunk_entities(ctx: StageContext) -> dict[str, str]:
    """Chunk id -> its document's entity as all that entity's documents share it (``entity_key``; "" for none)."""
    return {cid: entity_key(name) for cid, name in chunk_entity_names(ctx).items()}


def support_refs(ctx: StageContext, sources: list[list[str]], facts: list[str]
                 ) -> list[tuple[str, str, str, tuple[frozenset[str], ...]]]:
    """What the support check reads of each query: its passages with their titles, its fact, the titles (the
    words that name its document), and the word stems (plurals as singulars) of each passage of its entity's
    other documents."""
    texts, titles, siblings = chunk_texts(ctx), chunk_titles(ctx), entity_siblings(ctx)
    refs = []
    for chunk_ids, fact in zip(sources, facts):
        names = naming(titles, chunk_ids)
        others = tuple(s for c in chunk_ids[:1] for s in siblings.get(c, ()))
        refs.append((f"{names} {' '.join(texts[c] for c in chunk_ids)}", fact or "", names, others))
    return refs


def entity_siblings(ctx: StageContext) -> dict[str, tuple[frozenset[str], ...]]:
    """Chunk id -> the word stems (``singular_stems``) of each chunk of the other documents whose title names the
    same entity (a central bank's minutes and statements of one year), read once per process."""
    ctx.check_input("chunks")

    def load():
        documents, texts = chunk_documents(ctx), chunk_texts(ctx)
        # By exact name, not entity_key: grouping without the legal form made this check drop good searches
        # (benchmarks/README.md, seed 26).
        entity = {cid: name.lower() for cid, name in chunk_entity_names(ctx).items()}
        named: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for cid, doc in documents.items():
            if entity[cid]:
                named[entity[cid]].append((doc, cid))
        stems = {c: frozenset(singular_stems(texts[c])) for chunks in named.values() for _, c in chunks}
        out = {}
        for cid, doc in documents.items():
            others = [c for d, c in named.get(entity[cid], ()) if d != doc]
            if others:
                out[cid] = tuple(stems[c] for c in others)
        return out

    return ctx.service("entity_siblings", load)


def passage_texts(ctx: StageContext) -> dict[str, str]:
    """Every corpus passage's text: the chunks and the LLM-written negatives (both declared inputs)."""
    texts = dict(chunk_texts(ctx))
    negatives = ctx.read("negatives")
    texts.update(zip(negatives["id"].to_pylist(), negatives["text"].to_pylist()))
    return texts


def embedding_cache(ctx: StageContext):
    """One embedding cache per run: each text is embedded once per model, whichever stage asks first."""
    from ..engine.embeddings import EmbeddingCache

    return ctx.service("embeddings", lambda: EmbeddingCache(ctx.rundir.cache_dir / "embeddings"))


def positives(queries: pa.Table) -> dict[str, list[str]]:
    """Query id -> the chunks it was written from."""
    return dict(zip(queries["id"].to_pylist(), queries["chunk_ids"].to_pylist()))


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
