"""YourBench-style question writing: a document summary as global context, then single-hop questions from
one chunk and multi-hop questions across adjacent chunks of one document, each with an answer and verbatim
citations.

Citations are recorded, not enforced: ``citation_support`` (in ``buildbench.quality.grounding``) measures
how well a quote matches its chunks, and the grounding filter (``CitationFilter``) that acts on it is a later
stage.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

import pyarrow as pa

from ...errors import InputError
from ...quality.grounding import citation_support
from ...records import Chunk, Drop, Query
from ..base import GenerationRequest
from .schemas import MultiHopOut, QAOut, SummaryOut
from .structured import StructuredOutcome, StructuredRecipe, truncate
from .templates import derive_seed, language_name

# --------------------------------------------------------------------------------------------- planning


def plan_multihop(chunks_table: pa.Table, seed: int, max_per_doc: int = 1, min_hops: int = 2,
                  max_hops: int = 3) -> list[tuple[str, list[str]]]:
    """Groups of adjacent chunks of one document for multi-hop questions.

    chunks_table: columns ``id``, ``doc_id`` and ``position`` (the chunks stage's output).
    max_per_doc: groups per document at most; groups of one document never share a chunk.
    min_hops, max_hops: chunks per group, drawn per group; documents with fewer than ``min_hops`` chunks
        get none.

    Each document's draw depends only on ``seed`` and its id, so the plan does not depend on row order.
    Returns ``(doc_id, [chunk_id, ...])`` sorted by document, then by first chunk position.
    """
    if min_hops < 2 or max_hops < min_hops:
        raise ValueError("need 2 <= min_hops <= max_hops")
    by_doc: dict[str, list[tuple[int, str]]] = {}
    for cid, did, pos in zip(chunks_table["id"].to_pylist(), chunks_table["doc_id"].to_pylist(),
                             chunks_table["position"].to_pylist()):
        by_doc.setdefault(did, []).append((pos, cid))
    plan = []
    for doc_id in sorted(by_doc):
        ids = [cid for _, cid in sorted(by_doc[doc_id])]
        if len(ids) < min_hops:
            continue
        rng = random.Random(derive_seed(seed, "multihop", doc_id))
        starts = list(range(len(ids) - min_hops + 1))
        rng.shuffle(starts)
        used: set[int] = set()
        groups = []
        for start in starts:
            size = min(rng.randint(min_hops, max_hops), len(ids) - start)
            window = set(range(start, start + size))
            if used & window:
                continue
            used |= window
            groups.append((start, ids[start : start + size]))
            if len(groups) == max_per_doc:
                break
        plan.extend((doc_id, group) for _, group in sorted(groups))
    return plan


# --------------------------------------------------------------------------------------------- recipe


@dataclass
class DocumentSummary:
    doc_id: str
    summary: str
    model: str = ""
    cache_key: str = ""
    prompt_hash: str = ""
    attempts: int = 0


def _query_id(recipe: str, slot_id: str) -> str:
    return "q-" + hashlib.sha256(f"{recipe}\x1f{slot_id}".encode()).hexdigest()[:12]


class YourBenchRecipe(StructuredRecipe):
    """Summaries, single-hop and multi-hop questions with answers and verbatim citations.

    llm: a backend or CachedLLM; its ``name`` and ``model_id`` go on every record.
    language: ISO 639-1 code of the questions and answers (the documents may be in another language);
        each call can override it.
    chat: messages for instruct models, completion prompts with a worked example for base models; None
        asks the llm (``llm_is_chat``).
    max_attempts: asks per item before it is dropped with its reason.
    *_max_tokens: per output; the schemas' length limits keep valid outputs below them.
    max_document_chars: document text given to the summary (the first N characters of its chunks in order);
        one summary call per document, so longer documents are cut rather than summarised in parts.
    max_chunk_chars, max_summary_chars: cuts applied to each passage and to the summary in question prompts;
        the defaults keep a three-chunk multi-hop prompt near 1000 tokens, inside a 2048 context.
    """

    single_name = "yourbench-single"
    multi_name = "yourbench-multi"

    def __init__(self, llm, *, language: str = "en", chat: Optional[bool] = None, seed: int = 0,
                 max_attempts: int = 3, temperature: float = 0.7, top_p: float = 0.95,
                 summary_max_tokens: int = 160, single_max_tokens: int = 192, multi_max_tokens: int = 256,
                 max_document_chars: int = 2400, max_chunk_chars: int = 900, max_summary_chars: int = 500):
        super().__init__(llm, chat=chat, seed=seed, max_attempts=max_attempts, temperature=temperature,
                         top_p=top_p)
        self.language = language
        self.summary_max_tokens = summary_max_tokens
        self.single_max_tokens = single_max_tokens
        self.multi_max_tokens = multi_max_tokens
        self.max_document_chars = max_document_chars
        self.max_chunk_chars = max_chunk_chars
        self.max_summary_chars = max_summary_chars

    role = "qa_writer"

    @classmethod
    def pack_language(cls, pack) -> str:
        return pack.query_language  # questions may be in another language than the documents

    # -- summaries

    def build_summary_request(self, doc_id: str, chunks: Sequence[Chunk]) -> GenerationRequest:
        ordered = sorted(chunks, key=lambda c: c.position)
        text = truncate(" ".join(c.text for c in ordered), self.max_document_chars)
        title = ordered[0].title if ordered else ""
        return self._request("yourbench_summary.j2", SummaryOut, self.summary_max_tokens,
                             derive_seed(self.seed, "yourbench-summary", doc_id), document=text, title=title)

    def summarize(self, chunks: Iterable[Chunk]) -> tuple[list[DocumentSummary], list[Drop]]:
        """One summary per document, from its chunks in position order."""
        by_doc: dict[str, list[Chunk]] = {}
        for chunk in chunks:
            by_doc.setdefault(chunk.doc_id, []).append(chunk)
        doc_ids = sorted(by_doc)
        requests = [self.build_summary_request(d, by_doc[d]) for d in doc_ids]
        summaries, drops = [], []
        for doc_id, out in zip(doc_ids, self._generate(requests, SummaryOut)):
            if not out.ok:
                drops.append(Drop("yourbench_summary", doc_id, out.drop_reason, out.detail))
                continue
            summaries.append(DocumentSummary(doc_id, out.value.summary, self.model_id, out.cache_key,
                                             out.request.prompt_hash, out.attempts))
        self.stats["summaries"] += len(summaries)
        return summaries, drops

    # -- single-hop

    def build_single_request(self, slot_id: str, passage: str, summary: str,
                             language: Optional[str] = None) -> GenerationRequest:
        return self._request(
            "yourbench_single.j2", QAOut, self.single_max_tokens, derive_seed(self.seed, self.single_name, slot_id),
            language=language_name(language or self.language),
            summary=truncate(summary, self.max_summary_chars) or "(none)",
            passage=truncate(passage, self.max_chunk_chars),
        )

    def single_hop(self, chunks: Sequence[Chunk], summaries: Mapping[str, str], questions_per_chunk: int = 1,
                   language: Optional[str] = None) -> tuple[list[Query], list[Drop]]:
        """``questions_per_chunk`` questions per chunk, each from that chunk plus its document's summary.

        summaries: doc_id -> summary text; a document without one is asked without global context.
        """
        language = language or self.language
        slots = [(f"{c.id}#{k}", c) for c in chunks for k in range(questions_per_chunk)]
        self.stats["no_summary"] += sum(1 for _, c in slots if not summaries.get(c.doc_id))
        requests = [self.build_single_request(slot_id, c.text, summaries.get(c.doc_id, ""), language)
                    for slot_id, c in slots]
        outcomes = self._generate(requests, QAOut)
        return self._records(self.single_name, "yourbench_single",
                             [(slot_id, [c]) for slot_id, c in slots], outcomes, language)

    # -- multi-hop

    def build_multi_request(self, slot_id: str, passages: Sequence[str], summary: str,
                            language: Optional[str] = None) -> GenerationRequest:
        return self._request(
            "yourbench_multi.j2", MultiHopOut, self.multi_max_tokens, derive_seed(self.seed, self.multi_name, slot_id),
            language=language_name(language or self.language),
            summary=truncate(summary, self.max_summary_chars) or "(none)",
            passages=[truncate(p, self.max_chunk_chars) for p in passages],
        )

    def multi_hop(self, groups: Sequence[tuple[str, Sequence[str]]], chunks: Mapping[str, Chunk],
                  summaries: Mapping[str, str], language: Optional[str] = None) -> tuple[list[Query], list[Drop]]:
        """One question per group of chunks (``plan_multihop``'s output) that needs all of them.

        chunks: chunk_id -> Chunk; every chunk of a group must belong to the group's document.
        """
        language = language or self.language
        slots = []
        for doc_id, chunk_ids in groups:
            members = [chunks[c] for c in chunk_ids]
            if len(members) < 2 or any(c.doc_id != doc_id for c in members):
                raise InputError(f"multi-hop group {list(chunk_ids)} needs two or more chunks of document {doc_id}")
            slots.append((f"{doc_id}:{'+'.join(chunk_ids)}", members))
        requests = [self.build_multi_request(slot_id, [c.text for c in members],
                                             summaries.get(members[0].doc_id, ""), language)
                    for slot_id, members in slots]
        outcomes = self._generate(requests, MultiHopOut)
        return self._records(self.multi_name, "yourbench_multi", slots, outcomes, language)

    # -- records

    def _records(self, recipe: str, stage: str, slots: list[tuple[str, list[Chunk]]],
                 outcomes: list[StructuredOutcome], language: str) -> tuple[list[Query], list[Drop]]:
        queries, drops = [], []
        for (slot_id, members), out in zip(slots, outcomes):
            if not out.ok:
                drops.append(Drop(stage, slot_id, out.drop_reason, out.detail))
                continue
            texts = [c.text for c in members]
            for citation in out.value.citations:
                self.stats["citations"] += 1
                self.stats["citations_exact"] += int(citation_support(citation, texts) == 1.0)
            queries.append(Query(
                id=_query_id(recipe, slot_id), text=out.value.question, chunk_ids=[c.id for c in members],
                recipe=recipe, language=language, backend=self.backend_name, model=self.model_id,
                prompt_hash=out.request.prompt_hash, cache_key=out.cache_key,
                answer=out.value.answer, citations=list(out.value.citations),
            ))
        self.stats[f"queries.{recipe}"] += len(queries)
        return queries, drops
