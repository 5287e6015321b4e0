"""LLM-written hard negatives (e5-mistral / AIR-Bench style): for a query and its positive passage, a new
passage on the same topic, with the same entities and style, that does not answer the query.

Each negative is a synthetic corpus row, marked as such in its metadata, so the task assembler and the
card can tell written passages from collected ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pyarrow as pa

from ...records import Drop, Query
from ..base import GenerationRequest
from .schemas import NegativeOut
from .structured import StructuredRecipe, truncate
from .templates import derive_seed, language_name

RECIPE = "llm-hard-negative"


@dataclass
class SyntheticPassage:
    """A corpus row the model wrote: ``id``, ``title``, ``text`` like the corpus, plus provenance."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


# Metadata is JSON text, as in records.Document: the keys are provenance and may grow.
SYNTHETIC_PASSAGE_SCHEMA = pa.schema(
    [("id", pa.string()), ("text", pa.string()), ("title", pa.string()), ("metadata", pa.string())]
)


def negative_id(query_id: str, slot: int) -> str:
    """Stable per query and slot, so a rerun writes the same ids and qrels can point at them."""
    return f"{query_id}-neg{slot}"


class HardNegativeRecipe(StructuredRecipe):
    """Writes ``negatives_per_query`` hard negatives for each query.

    language: ISO 639-1 code the negatives are written in; it should be the corpus's language (the
        negatives join the corpus), which may differ from the queries'.
    max_passage_chars: cut applied to the positive passage in the prompt.
    """

    name = RECIPE
    template_name = "hard_negative.j2"

    def __init__(self, llm, *, language: str = "en", negatives_per_query: int = 1, chat: Optional[bool] = None,
                 seed: int = 0, max_attempts: int = 3, temperature: float = 0.8, top_p: float = 0.95,
                 max_tokens: int = 200, max_passage_chars: int = 900):
        super().__init__(llm, chat=chat, seed=seed, max_attempts=max_attempts, temperature=temperature,
                         top_p=top_p)
        self.language = language
        self.negatives_per_query = negatives_per_query
        self.max_tokens = max_tokens
        self.max_passage_chars = max_passage_chars

    role = "negative_writer"  # negatives are corpus passages, so they keep the documents' language

    def build_request(self, query_id: str, slot: int, query: str, positive: str) -> GenerationRequest:
        return self._request(self.template_name, NegativeOut, self.max_tokens,
                             derive_seed(self.seed, RECIPE, query_id, slot),
                             language=language_name(self.language), query=" ".join(query.split()),
                             passage=truncate(positive, self.max_passage_chars))

    def write(self, queries: Sequence[Query],
              chunk_texts: Mapping[str, str]) -> tuple[list[SyntheticPassage], list[Drop]]:
        """Negatives for each query; its positive is the text of its chunks (all of them, for multi-hop)."""
        slots, requests = [], []
        for q in queries:
            positive = " ".join(chunk_texts[c] for c in q.chunk_ids)
            for slot in range(self.negatives_per_query):
                slots.append((q, slot))
                requests.append(self.build_request(q.id, slot, q.text, positive))
        passages, drops = [], []
        for (q, slot), out in zip(slots, self._generate(requests, NegativeOut)):
            pid = negative_id(q.id, slot)
            if not out.ok:
                drops.append(Drop("hard_negatives", pid, out.drop_reason, out.detail))
                continue
            passages.append(SyntheticPassage(
                id=pid, text=out.value.passage,
                metadata={"synthetic": True, "negative_for": q.id, "recipe": RECIPE, "language": self.language,
                          "backend": self.backend_name, "model": self.model_id, "cache_key": out.cache_key,
                          "prompt_hash": out.request.prompt_hash, "attempts": out.attempts},
            ))
        self.stats["negatives"] += len(passages)
        return passages, drops
