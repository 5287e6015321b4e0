"""Quality filters: each filter is a small class with a ``name`` and
``apply(ids, texts, refs=None) -> FilterResult`` (a keep mask aligned with the input plus one ``Drop`` per
removed item).

- ``ExactDedup``, ``MinHashDedup``, ``dedup_texts``: duplicate and near-duplicate removal (``dedup``)
- ``LanguageFilter`` with ``FastLangDetector`` / ``LangDetectDetector`` (``language``)
- ``LengthFilter``: word-count bounds (``length``)
- ``FormFilter``: queries without their style's form (a request that asks for nothing) (``form``)
- ``CopyFilter``: queries that copy their chunk or mention "the passage" (``copy``)
- ``PromptEchoFilter``: queries that repeat their prompt's instructions (``copy``)
- ``RoundTripFilter``: queries whose own chunk no cheap retriever finds (``consistency``)
- ``CitationFilter``, ``citation_support``: queries whose citations are not in their chunks (``grounding``)
- ``EasinessFilter``: queries that lexical, BM25 and embedding signals agree are trivially easy (``easiness``)
- ``SemanticDedup``: clusters of queries with near-identical embeddings, one kept per cluster
  (``semantic_dedup``)

This package exports the filters and what builds them. Their parts (shingles and MinHash signatures in
``minhash``, the number rule in ``numbers``, text normalisation in ``base``) are imported from their modules;
``chain`` runs filters in order with typed stats, and ``mining`` / ``repair`` hold hard-negative mining and
qrels repair.
"""

from .base import Filter, FilterResult
from .consistency import RoundTripFilter
from .copy import CopyFilter, PromptEchoFilter
from .dedup import ExactDedup, MinHashDedup, dedup_texts
from .easiness import EasinessFilter
from .form import FormFilter
from .grounding import CitationFilter, citation_support
from .language import FastLangDetector, LangDetectDetector, LanguageDetector, LanguageFilter, make_detector
from .length import LengthFilter
from .semantic_dedup import SemanticDedup

__all__ = [
    "CitationFilter",
    "CopyFilter",
    "EasinessFilter",
    "ExactDedup",
    "FastLangDetector",
    "FormFilter",
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
    "make_detector",
]
