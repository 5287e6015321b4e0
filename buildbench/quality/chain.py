"""The filter chain: filters run in order, each over what the earlier ones kept, with typed stats per filter.

``apply_filters`` returns the drops, a keep mask aligned with the input, and one ``FilterStats`` per step in
chain order (as datatrove's ``PipelineStats``): the manifest stores that list as it is, and the report reads
it without parsing names or guessing the order.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from ..domain_pack import DedupConfig
from ..engine.parallel import Parallel
from ..records import Drop
from .base import FilterResult
from .dedup import MinHashDedup, dedup_texts
from .dedup_bands import apply_by_bands


@dataclass
class FilterStats:
    """What one filter did in one chain: items in, kept and dropped, seconds, drops per reason, and the
    filter's own counters (``extra``, e.g. the language filter's ``detected.<code>``)."""

    name: str
    n_in: int = 0
    kept: int = 0
    dropped: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The manifest's form: ``{"name", "in", "kept", "dropped", "seconds", "reasons", "extra"}``."""
        return {"name": self.name, "in": self.n_in, "kept": self.kept, "dropped": self.dropped,
                "seconds": round(self.seconds, 4), "reasons": dict(sorted(self.reasons.items())),
                "extra": dict(sorted(self.extra.items()))}

    @classmethod
    def from_json(cls, data: dict) -> "FilterStats":
        return cls(name=data["name"], n_in=data.get("in", 0), kept=data.get("kept", 0),
                   dropped=data.get("dropped", 0), seconds=data.get("seconds", 0.0),
                   reasons=dict(data.get("reasons") or {}), extra=dict(data.get("extra") or {}))

    def add(self, other: "FilterStats") -> None:
        """Sum another run of the same filter into this one (the shards of a map stage)."""
        self.n_in += other.n_in
        self.kept += other.kept
        self.dropped += other.dropped
        self.seconds += other.seconds
        self.reasons = dict(Counter(self.reasons) + Counter(other.reasons))
        for k, v in other.extra.items():  # counters add up; anything else is the latest shard's
            mine = self.extra.get(k)
            numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (mine, v))
            self.extra[k] = mine + v if numbers else v


def merge_filter_stats(runs: Iterable[Sequence[FilterStats]]) -> list[FilterStats]:
    """Several chains' stats (one per shard) summed by filter name, in the order the names first appear."""
    out: dict[str, FilterStats] = {}
    for run in runs:
        for st in run:
            if st.name in out:
                out[st.name].add(st)
            else:
                out[st.name] = FilterStats.from_json(st.to_json())
    return list(out.values())


class Dedup:
    """Exact then MinHash near-duplicate removal as one filter step (``dedup_texts``). With ``cfg.method``
    "bands" the near duplicates come from ``apply_by_bands``, its pieces run by ``parallel`` (a stage's
    ``ctx.parallel``: Ray tasks on the ray engine, this process otherwise)."""

    def __init__(self, cfg: DedupConfig, name: str, parallel: Optional[Parallel] = None):
        self.cfg, self.name, self.parallel = cfg, name, parallel

    def apply(self, ids: Sequence[str], texts: Sequence[str], refs: Optional[Sequence] = None) -> FilterResult:
        near = self._by_bands if self.cfg.method == "bands" else None
        return dedup_texts(ids, texts, self.cfg, self.name, near=near)

    def _by_bands(self, dedup: MinHashDedup, ids: list[str], texts: list[str]) -> FilterResult:
        return apply_by_bands(dedup, ids, texts, parallel=self.parallel)


def apply_filters(steps, ids: Sequence[str], texts: Sequence[str]
                  ) -> tuple[list[Drop], list[bool], list[FilterStats]]:
    """Run filters in order, each over the items the earlier ones kept.

    ``steps`` holds (filter, refs) pairs: refs is the per-item reference list that filter needs (aligned with
    ids), or None. Returns every drop, the keep mask over the input, and one ``FilterStats`` per step.
    """
    keep = [True] * len(ids)
    drops: list[Drop] = []
    stats: list[FilterStats] = []
    for flt, refs in steps:
        live = [i for i, k in enumerate(keep) if k]
        t0 = time.perf_counter()
        res = flt.apply([ids[i] for i in live], [texts[i] for i in live],
                        [refs[i] for i in live] if refs is not None else None)
        seconds = time.perf_counter() - t0
        kept = sum(res.keep)
        stats.append(FilterStats(name=flt.name, n_in=len(live), kept=kept, dropped=len(live) - kept,
                                 seconds=seconds, reasons=res.reasons(),
                                 extra=dict(res.stats)))
        for i, k in zip(live, res.keep):
            keep[i] = k
        drops.extend(res.drops)
    return drops, keep, stats
