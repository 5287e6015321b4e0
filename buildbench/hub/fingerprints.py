"""MinHash fingerprints of a task's texts, the registry's record of them and the overlap check's input.

A registered task keeps the signatures of its queries and of a document sample (``compute_fingerprints``), so a
new submission is compared with it (``near_duplicate_mask``) without downloading the task. Signatures use
``buildbench.quality.dedup``'s MinHash (character 5-grams, 128 permutations, seed 1) over texts folded to their
confusable skeleton; these settings are part of the registry's format, so registration and validation must
compute them identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..domain_pack import DedupConfig

# Signatures must be computed identically at registration and at validation; these are part of the format.
FINGERPRINT_CONFIG = DedupConfig(shingle="char", ngram=5, num_perm=128)
FINGERPRINT_SEED = 1
MAX_FINGERPRINT_QUERIES = 5_000
MAX_FINGERPRINT_DOCUMENTS = 5_000
# Texts are folded to their confusable skeleton before hashing; the fingerprint files record it (schema
# metadata) so that files written before, without folding ("none"), are still compared like with like.
FINGERPRINT_FOLDING = "skeleton-v1"
_FOLDING_KEY = "buildbench.folding"

FINGERPRINT_SCHEMA = pa.schema([
    ("task", pa.string()),
    ("version", pa.string()),
    ("kind", pa.string()),  # "query" or "document"
    ("minhash", pa.list_(pa.uint32())),
])


@dataclass
class Fingerprints:
    """MinHash signatures (rows of uint32, ``FINGERPRINT_CONFIG.num_perm`` wide) of queries and documents."""

    queries: np.ndarray
    corpus: np.ndarray
    folding: str = FINGERPRINT_FOLDING  # how texts were normalised before hashing (see ``text_signatures``)

    def to_table(self, task: str, version: str) -> pa.Table:
        rows = [("query", s) for s in self.queries] + [("document", s) for s in self.corpus]
        return pa.table(
            {
                "task": pa.array([task] * len(rows), pa.string()),
                "version": pa.array([version] * len(rows), pa.string()),
                "kind": pa.array([k for k, _ in rows], pa.string()),
                "minhash": pa.array([s.tolist() for _, s in rows], pa.list_(pa.uint32())),
            },
            schema=FINGERPRINT_SCHEMA.with_metadata({_FOLDING_KEY: self.folding}),
        )

    @classmethod
    def from_table(cls, table: pa.Table) -> "Fingerprints":
        width = FINGERPRINT_CONFIG.num_perm
        kinds = table.column("kind").to_pylist()
        sigs = table.column("minhash").to_pylist()

        def stack(kind: str) -> np.ndarray:
            rows = [s for k, s in zip(kinds, sigs) if k == kind and s is not None and len(s) == width]
            return np.array(rows, dtype=np.uint32).reshape(len(rows), width)

        # Files written before folding existed carry no marker: their texts were hashed as they were.
        folding = (table.schema.metadata or {}).get(_FOLDING_KEY.encode(), b"none").decode("utf-8", "replace")
        return cls(queries=stack("query"), corpus=stack("document"), folding=folding)


def text_signatures(texts: list[str], folding: str = FINGERPRINT_FOLDING) -> np.ndarray:
    """MinHash signatures of the texts that have any shingle (texts without one cannot be compared).

    folding: "skeleton-v1" (the default) hashes ``sanitize.skeleton(text)``, so a copy spelled with look-alike
    letters (Cyrillic о for Latin o, fullwidth or mathematical letters, zero-width characters in between)
    gets the signature of the original; "none" hashes the texts as they are, to compare with fingerprints a
    registry stored before folding existed.
    """
    from ..quality.dedup import MinHashDedup
    from .sanitize import skeleton

    if not texts:
        return np.empty((0, FINGERPRINT_CONFIG.num_perm), np.uint32)
    if folding != "none":
        texts = [skeleton(t) for t in texts]
    sigs, nonempty = MinHashDedup(FINGERPRINT_CONFIG, seed=FINGERPRINT_SEED).signatures(texts)
    return sigs[nonempty]


def _sample(texts: list[str], n: int) -> list[str]:
    if len(texts) <= n:
        return texts
    idx = np.random.default_rng(0).choice(len(texts), size=n, replace=False)
    return [texts[i] for i in sorted(idx)]


def compute_fingerprints(task_dir: Path, *, max_queries: int = MAX_FINGERPRINT_QUERIES,
                         max_documents: int = MAX_FINGERPRINT_DOCUMENTS,
                         folding: str = FINGERPRINT_FOLDING) -> Fingerprints:
    """Signatures of up to ``max_queries`` queries and ``max_documents`` document texts (seeded samples)."""
    from ..evaluation.evaluate import load_task

    corpus, queries, _ = load_task(Path(task_dir))
    q = [t for t in queries.column("text").to_pylist() if t]
    d = [t for t in corpus.column("text").to_pylist() if t]
    return Fingerprints(queries=text_signatures(_sample(q, max_queries), folding),
                        corpus=text_signatures(_sample(d, max_documents), folding), folding=folding)


def near_duplicate_mask(candidate: np.ndarray, reference: np.ndarray, threshold: float) -> np.ndarray:
    """For each candidate signature, whether some reference signature estimates Jaccard >= ``threshold``.

    LSH bands (``lsh_params``: 99% recall at the threshold) propose pairs; each proposed pair is kept when the
    share of equal signature positions, the MinHash estimate of Jaccard, reaches the threshold. Only signatures
    are compared: the registered texts are never needed.
    """
    from ..quality.dedup import lsh_params

    out = np.zeros(len(candidate), dtype=bool)
    if len(candidate) == 0 or len(reference) == 0:
        return out
    width = reference.shape[1]
    bands, rows = lsh_params(threshold, width)
    buckets: dict[tuple[int, bytes], list[int]] = {}
    for j, sig in enumerate(reference):
        for b in range(bands):
            buckets.setdefault((b, sig[b * rows:(b + 1) * rows].tobytes()), []).append(j)
    for i, sig in enumerate(candidate):
        cands: set[int] = set()
        for b in range(bands):
            cands.update(buckets.get((b, sig[b * rows:(b + 1) * rows].tobytes()), ()))
        if cands:
            idx = np.fromiter(cands, dtype=np.int64)
            if ((reference[idx] == sig).mean(axis=1) >= threshold).any():
                out[i] = True
    return out


__all__ = [
    "FINGERPRINT_CONFIG",
    "FINGERPRINT_FOLDING",
    "FINGERPRINT_SCHEMA",
    "Fingerprints",
    "compute_fingerprints",
    "near_duplicate_mask",
    "text_signatures",
]
