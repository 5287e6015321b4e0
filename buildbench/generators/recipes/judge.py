"""An LLM relevance judge: a graded label 0-3 and a one-sentence reason for a (query, passage) pair.

3 = answers the query fully, 2 = partly, 1 = on topic but no answer, 0 = unrelated; the scale is in
judge.j2, so the prompt and these docs must change together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pyarrow as pa

from ...records import Drop
from ..base import GenerationRequest
from .schemas import AnswerabilityOut, JudgeOut
from .structured import StructuredRecipe, truncate
from .templates import derive_seed


@dataclass(frozen=True)
class JudgePair:
    query_id: str
    query: str
    passage_id: str
    passage: str
    kind: str = ""


@dataclass
class Judgement:
    query_id: str
    passage_id: str
    label: int  # 0..3
    reason: str
    kind: str = ""  # what the pair is to the query: positive, candidate or control (see quality.repair)
    model: str = ""
    cache_key: str = ""
    backend: str = ""
    prompt_hash: str = ""


@dataclass
class QueryCheck:
    """The answerability verdict on one query (no passage involved)."""

    query_id: str
    self_contained: bool
    clear_intent: bool
    reason: str
    model: str = ""
    cache_key: str = ""


QUERY_CHECK_SCHEMA = pa.schema([("query_id", pa.string()), ("self_contained", pa.bool_()),
                                ("clear_intent", pa.bool_()), ("reason", pa.string()), ("model", pa.string()),
                                ("cache_key", pa.string())])

JUDGEMENT_SCHEMA = pa.schema(
    [
        ("query_id", pa.string()),
        ("passage_id", pa.string()),
        ("kind", pa.string()),
        ("label", pa.int8()),
        ("reason", pa.string()),
        ("model", pa.string()),
        ("cache_key", pa.string()),
        ("backend", pa.string()),
        ("prompt_hash", pa.string()),
    ]
)


class RelevanceJudge(StructuredRecipe):
    """Labels (query, passage) pairs.

    temperature: lower than the writers' by default: a judge should be consistent, yet a re-ask after a
        malformed answer needs some spread for its new seed to matter.
    max_passage_chars: cut applied to the passage in the prompt.
    """

    name = "llm-judge"
    template_name = "judge.j2"

    def __init__(self, llm, *, chat: Optional[bool] = None, seed: int = 0, max_attempts: int = 3,
                 temperature: float = 0.3, top_p: float = 0.95, max_tokens: int = 80,
                 max_passage_chars: int = 1000):
        super().__init__(llm, chat=chat, seed=seed, max_attempts=max_attempts, temperature=temperature,
                         top_p=top_p)
        self.max_tokens = max_tokens
        self.max_passage_chars = max_passage_chars

    @classmethod
    def from_pack(cls, llm, pack, seed: int = 0, **overrides) -> "RelevanceJudge":
        """Sampling from the pack's judge role when it has one; the query writer's sampling is not reused,
        because its temperature suits writing, not judging."""
        kwargs = dict(seed=seed)
        if pack.judge is not None:
            kwargs.update(temperature=pack.judge.temperature, top_p=pack.judge.top_p)
        return cls(llm, **{**kwargs, **overrides})

    def build_request(self, pair: JudgePair) -> GenerationRequest:
        return self._request(self.template_name, JudgeOut, self.max_tokens,
                             derive_seed(self.seed, self.name, pair.query_id, pair.passage_id),
                             query=" ".join(pair.query.split()), passage=truncate(pair.passage, self.max_passage_chars))

    def judge(self, pairs: Sequence[JudgePair]) -> tuple[list[Judgement], list[Drop]]:
        requests = [self.build_request(p) for p in pairs]
        judgements, drops = [], []
        for pair, out in zip(pairs, self._generate(requests, JudgeOut)):
            if not out.ok:
                drops.append(Drop(self.name, f"{pair.query_id}|{pair.passage_id}", out.drop_reason, out.detail))
                continue
            judgements.append(Judgement(pair.query_id, pair.passage_id, out.value.label, out.value.reason,
                                        pair.kind, self.model_id, out.cache_key, self.backend_name,
                                        out.request.prompt_hash))
            self.stats[f"label.{out.value.label}"] += 1
        return judgements, drops

    def check_queries(self, queries: Sequence[tuple[str, str]]) -> tuple[list[QueryCheck], list[Drop]]:
        """Answerability of (query id, text) pairs: self-contained and with a clear intent."""
        requests = [self._request("answerability.j2", AnswerabilityOut, self.max_tokens,
                                  derive_seed(self.seed, "answerability", qid), query=" ".join(text.split()))
                    for qid, text in queries]
        checks, drops = [], []
        for (qid, _), out in zip(queries, self._generate(requests, AnswerabilityOut)):
            if not out.ok:
                drops.append(Drop(self.name, qid, out.drop_reason, out.detail))
                continue
            v = out.value
            checks.append(QueryCheck(qid, v.self_contained, v.clear_intent, v.reason, self.model_id, out.cache_key))
            self.stats["answerable"] += int(v.self_contained and v.clear_intent)
        return checks, drops
