"""Query likelihood under a llama.cpp model: log P(query | passage), as in UPR and InPars.

How much better a passage explains a query than no passage at all (pointwise mutual information, per query
token) measures relevance without any retriever in the loop, so it favours none of the evaluated models. It
costs prompt evaluation only: each passage is read once, whatever the number of queries scored against it
(its KV cache is kept and cut back to the passage before each query), and only the query's tokens produce
logits. With Gemma 3 270M a 250-token passage takes about 0.8 s and each query after it about 0.1 s on 2 cores.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pyarrow as pa

from ..errors import GenerationError
from .local import load_llama_cpp, resolve_model

log = logging.getLogger(__name__)

# The scoring prompts. The threshold of the likelihood judge is calibrated for exactly these
# (benchmarks/calibrate_likelihood.py); change them and recalibrate.
PASSAGE_PROMPT = "Passage: {passage}\nQuery:"
NULL_PROMPT = "Query:"


@dataclass(frozen=True)
class Likelihood:
    logp: float  # sum of the query tokens' log-probabilities
    tokens: int  # query tokens scored

    def per_token(self) -> float:
        return self.logp / max(self.tokens, 1)


def pmi(conditional: Likelihood, null: Likelihood) -> float:
    """How much the passage raises the query's log-probability, per query token."""
    return (conditional.logp - null.logp) / max(conditional.tokens, 1)


def passage_text(text: str, title: str = "") -> str:
    """What the scorer reads of a passage: its document's title (queries name the entity) and its words."""
    body = " ".join(text.split())
    return f"{title}. {body}" if title and title.lower() not in body[: len(title) + 20].lower() else body


class QueryLikelihood:
    """Scores queries against passages with a GGUF model run by llama-cpp-python."""

    def __init__(self, model: str = "gemma3-270m", n_ctx: int = 1024, threads: Optional[int] = None,
                 max_passage_tokens: int = 384, max_query_tokens: int = 96):
        llama_cpp = load_llama_cpp("The query-likelihood scorer")
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        self.model_name = model
        self.path, _ = resolve_model(model)
        self.max_passage_tokens = max_passage_tokens
        self.max_query_tokens = max_query_tokens
        self.llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=n_ctx, n_batch=512,
                                   n_threads=threads or os.cpu_count() or 2, seed=0, verbose=False)
        if max_passage_tokens + max_query_tokens + 16 > n_ctx:
            raise GenerationError(f"query-likelihood context {n_ctx} is too small for {max_passage_tokens} passage "
                                  f"and {max_query_tokens} query tokens")
        self.n_vocab = self.llm.n_vocab()
        self.passages_read = 0
        self.queries_scored = 0

    @property
    def model_id(self) -> str:
        return f"{self.model_name}:{self.path.name}:{self.path.stat().st_size}"

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[Likelihood]:
        """log P(query | passage) for (passage, query) pairs; each distinct passage is read once."""
        by_passage: dict[str, list[int]] = defaultdict(list)
        for i, (passage, _) in enumerate(pairs):
            by_passage[passage].append(i)
        out: list[Optional[Likelihood]] = [None] * len(pairs)
        for passage, idx in by_passage.items():
            prefix = self._prefix(PASSAGE_PROMPT.format(passage=passage))
            for i in idx:
                out[i] = self._query(prefix, pairs[i][1])
        return out  # type: ignore[return-value]

    def null(self, queries: Sequence[str]) -> list[Likelihood]:
        """log P(query) with no passage: the baseline a passage must beat."""
        prefix = self._prefix(NULL_PROMPT)
        return [self._query(prefix, q) for q in queries]

    def _prefix(self, text: str) -> tuple[int, np.ndarray]:
        """Evaluate a prompt from an empty cache; its length in tokens and the next-token logits after it."""
        head, tail = text.rsplit("\n", 1) if "\n" in text else ("", text)
        tokens = self.llm.tokenize(head.encode("utf-8"), add_bos=True, special=False) if head else [
            self.llm.token_bos()]
        if len(tokens) > self.max_passage_tokens:  # a long passage is cut, not skipped
            tokens = tokens[: self.max_passage_tokens]
        tokens += self.llm.tokenize((("\n" if head else "") + tail).encode("utf-8"), add_bos=False, special=False)
        self.llm._ctx.kv_cache_clear()
        logits = self._decode(tokens, n_past=0, all_logits=False)
        self.passages_read += 1
        return len(tokens), logits[-1].copy()

    def _query(self, prefix: tuple[int, np.ndarray], query: str) -> Likelihood:
        n_past, first = prefix
        tokens = self.llm.tokenize((" " + " ".join(query.split())).encode("utf-8"), add_bos=False,
                                   special=False)[: self.max_query_tokens]
        if not tokens:
            return Likelihood(0.0, 0)
        # Forget the previous query: the cache is cut back to the prefix.
        self.llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        logits = self._decode(tokens, n_past=n_past, all_logits=True)
        rows = np.vstack([first[None, :], logits[:-1]]).astype(np.float64)
        top = rows.max(axis=1)
        lse = top + np.log(np.exp(rows - top[:, None]).sum(axis=1))
        self.queries_scored += 1
        return Likelihood(float((rows[np.arange(len(tokens)), tokens] - lse).sum()), len(tokens))

    def _decode(self, tokens: list[int], n_past: int, all_logits: bool) -> np.ndarray:
        """Run tokens through the model in batches; the logits of every token, or of the last one only."""
        # llama-cpp-python's Llama.eval would compute logits for every prompt token (the 262k-word output
        # layer is most of Gemma 270M's cost), so the batch is filled here with logits only where needed.
        llm, n_batch = self.llm, self.llm.n_batch
        rows = []
        for start in range(0, len(tokens), n_batch):
            batch = tokens[start : start + n_batch]
            llm._batch.set_batch(batch=batch, n_past=n_past + start, logits_all=all_logits)
            llm._ctx.decode(llm._batch)
            n_out = len(batch) if all_logits else 1
            rows.append(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_out * self.n_vocab,))
                        .reshape(n_out, self.n_vocab).copy())
        return np.vstack(rows) if all_logits else rows[-1]

    def close(self) -> None:
        self.llm.close()


# One scored pair a row: the judge stage's ``likelihoods`` output (the report reads its distribution).
LIKELIHOOD_SCHEMA = pa.schema([("query_id", pa.string()), ("passage_id", pa.string()), ("kind", pa.string()),
                               ("logp", pa.float64()), ("null_logp", pa.float64()), ("tokens", pa.int32()),
                               ("pmi", pa.float64())])


@dataclass(frozen=True)
class ScoredPair:
    """One (query, passage) pair under the likelihood judge."""

    query_id: str
    passage_id: str
    kind: str  # positive / candidate / control (quality.repair)
    logp: float
    null_logp: float
    tokens: int
    pmi: float

    def label(self, threshold: float, strong_margin: float) -> int:
        """The judge's verdict on the 0-3 scale of the LLM judge: 3 clearly, 2 relevant, 0 not."""
        return 3 if self.pmi >= threshold + strong_margin else 2 if self.pmi >= threshold else 0


def score_pairs(scorer: QueryLikelihood, pairs: Sequence[tuple[str, str, str, str, str]]) -> list[ScoredPair]:
    """Score (query id, query, passage id, passage text, kind) tuples; each query's null score once."""
    cond = scorer.score([(passage, query) for _, query, _, passage, _ in pairs])
    queries = sorted({(qid, query) for qid, query, _, _, _ in pairs})
    null = dict(zip([qid for qid, _ in queries], scorer.null([query for _, query in queries])))
    return [ScoredPair(qid, pid, kind, c.logp, null[qid].logp, c.tokens, pmi(c, null[qid]))
            for (qid, _, pid, _, kind), c in zip(pairs, cond)]


def read_scored(table: pa.Table) -> list[ScoredPair]:
    """The judge stage's ``likelihoods`` output (``LIKELIHOOD_SCHEMA``), one scored pair a row."""
    return [ScoredPair(**row) for row in table.to_pylist()]


def best_pmi(scored: Sequence[ScoredPair], kind: str = "positive") -> dict[str, float]:
    """Per query: the best PMI among its scored pairs of ``kind`` (a query may have several positives)."""
    best: dict[str, float] = {}
    for s in scored:
        if s.kind == kind:
            best[s.query_id] = max(best.get(s.query_id, float("-inf")), s.pmi)
    return best


def specificity(scored: Sequence[ScoredPair], positive: str = "positive", candidate: str = "candidate"
                ) -> dict[str, float]:
    """Per query: its positive's PMI minus the best PMI among its scored candidates (how much better its own
    passage explains it than the closest others). Queries without a scored candidate are left out."""
    best_pos, best_cand = best_pmi(scored, positive), best_pmi(scored, candidate)
    return {q: round(best_pos[q] - best_cand[q], 4) for q in best_pos if q in best_cand}
