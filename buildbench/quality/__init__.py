"""Quality filters: each filter is a small class with a ``name`` and
``apply(ids, texts, refs=None) -> FilterResult`` (a keep mask aligned with the input plus one ``Drop`` per
removed item).

- ``ExactDedup``, ``MinHashDedup``, ``dedup_texts``: duplicate and near-duplicate removal (``dedup``)
- ``LanguageFilter`` with ``FastLangDetector`` / ``LangDetectDetector`` (``language``)
- ``LengthFilter``: word-count bounds (``length``)
- ``CopyFilter``: queries that copy their chunk or mention "the passage" (``copy``)
- ``PromptEchoFilter``: queries that repeat their prompt's instructions (``copy``)
- ``RoundTripFilter``: queries whose own chunk no cheap retriever finds (``consistency``)
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
from .language import (
    FastLangDetector,
    LangDetectDetector,
    LanguageDetector,
    LanguageFilter,
    language_counts,
    make_detector,
)
from .length import LengthFilter

__all__ = [
    "CopyFilter",
    "PromptEchoFilter",
    "RoundTripFilter",
    "ExactDedup",
    "FastLangDetector",
    "Filter",
    "FilterResult",
    "LangDetectDetector",
    "LanguageDetector",
    "LanguageFilter",
    "LengthFilter",
    "MinHashDedup",
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
