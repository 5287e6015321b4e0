"""How a stage is declared, and what it gets and gives back."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional

import pyarrow as pa

from ..records import Drop

if TYPE_CHECKING:
    from ..config import BuildConfig
    from .rundir import RunDir


@dataclass
class StageContext:
    config: "BuildConfig"
    rundir: "RunDir"
    stage: str
    log: logging.Logger
    # Counters a stage keeps (llm calls, tokens, per-filter counts); summed into the manifest.
    stats: Counter = field(default_factory=Counter)
    # Objects shared between stages in one process (an LLM, an embedding model), built once on demand.
    services: dict[str, Any] = field(default_factory=dict)

    def service(self, name: str, factory: Callable[[], Any]) -> Any:
        if name not in self.services:
            self.services[name] = factory()
        return self.services[name]


@dataclass
class StageResult:
    outputs: dict[str, pa.Table]
    drops: list[Drop] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


# A map stage turns one input shard into one output shard; it can run shard by shard on any executor.
MapFn = Callable[[pa.Table, StageContext], tuple[pa.Table, list[Drop]]]
# A global stage needs all of its inputs at once (dedup across the corpus, task assembly).
GlobalFn = Callable[[StageContext], StageResult]


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    config_keys: tuple[str, ...]
    kind: Literal["map", "global"]
    fn: Callable
    needs_llm: bool = False
    # Called before any stage runs, so a bad plan fails before a token is spent.
    check: Optional[Callable[["BuildConfig"], None]] = None

    def __post_init__(self):
        if self.kind == "map" and (len(self.inputs) < 1 or len(self.outputs) != 1):
            raise ValueError(f"map stage {self.name} needs one sharded input first and exactly one output")
