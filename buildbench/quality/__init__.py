"""Quality filters: each filter is a small class with a ``name`` and
``apply(ids, texts, refs=None) -> FilterResult`` (a keep mask aligned with the input plus one ``Drop`` per
removed item).

- ``ExactDedup``, ``MinHashDedup``, ``dedup_texts``: duplicate and near-duplicate removal (``dedup``)
- ``LanguageFilter`` with ``FastLangDetector`` / ``LangDetectDetector`` (``language``)
- ``LengthFilter``: word-count bounds (``length``)
- ``CopyFilter``: queries that copy their chunk or mention "the passage" (``copy``)
- ``PromptEchoFilter``: queries that repeat their prompt's instructions (``copy``)
- ``RoundTripFilter``: queries whose own chunk no cheap retriever finds (``consistency``)
- ``CitationFilter``, ``citation_support``: queries whose citations are not in their chunks (``grounding``)
- ``EasinessFilter``: queries that lexical, BM25 and embedding signals agree are trivially easy (``easiness``)
- ``SemanticDedup``: clusters of queries with near-identical embeddings, one kept per cluster
  (``semantic_dedup``)
"""

from .base import Filter, FilterResult, normalize_text, words
from .consistency import RoundTripFilter
from .copy import CopyFilter, PromptEchoFilter
from .dedup import (
    ExactDedup,
    MinHashDedup,
    dedup_texts,
    jaccard,
    lsh_params,
    minhash_signatures,
    numbers,
    numbers_differ,
    shingle_hashes,
    shingles,
)
from .easiness import EasinessFilter
from .grounding import CitationFilter, citation_support
from .language import (
    FastLangDetector,
    LangDetectDetector,
    LanguageDetector,
    LanguageFilter,
    language_counts,
    make_detector,
)
from .length import LengthFilter
from .semantic_dedup import SemanticDedup

__all__ = [
    "CitationFilter",
    "CopyFilter",
    "EasinessFilter",
    "ExactDedup",
    "FastLangDetector",
    "Filter",
    "FilterResult",
    "LangDetectDetector",
    "LanguageDetector",
    "LanguageFilter",
    "LengthFilter",
    "MinHashDedup",
    "PromptEchoFilter",
    "RoundTripFilter",
    "SemanticDedup",
    "citation_support",
    "dedup_texts",
    "jaccard",
    "language_counts",
    "lsh_params",
    "make_detector",
    "minhash_signatures",
    "normalize_text",
    "numbers",
    "numbers_differ",
    "shingle_hashes",
    "shingles",
    "words",
]
