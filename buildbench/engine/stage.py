"""How a stage is declared, and what it gets and gives back."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Optional, Sequence

import pyarrow as pa

from ..errors import ConfigError
from ..records import Drop
from .parallel import InProcess, Parallel

if TYPE_CHECKING:
    from ..config import BuildConfig
    from ..quality.chain import FilterStats
    from .rundir import RunDir


def drops_dataset(stage: str) -> str:
    """The dataset holding a stage's dropped items with their reasons."""
    return f"_drops/{stage}"


def stage_writing(stages: Sequence["Stage"], dataset: str) -> Optional[str]:
    """The name of the stage (of ``stages``, the build's registry) that writes ``dataset``, or None."""
    return next((st.name for st in stages if dataset in st.outputs), None)


def manifest_filters(manifest: dict, stages: Sequence["Stage"]) -> list[dict]:
    """Every filter of every stage as the runner stored it in the manifest (the JSON form of
    ``quality.chain.FilterStats``), in build order then chain order, each with the stage it ran in."""
    entries = manifest.get("stages") or {}
    return [{"stage": st.name, **f} for st in stages for f in (entries.get(st.name) or {}).get("filters") or []]


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
    # The datasets the stage declares as inputs: the only ones ``read`` gives it.
    inputs: tuple[str, ...] = ()
    # Every stage of the build in order (name and outputs), to find the stage that writes a dataset.
    registry: Sequence["Stage"] = ()
    # Filter stats of a map stage's current shard (a global stage returns them in its StageResult).
    filters: list["FilterStats"] = field(default_factory=list)
    # Where a global stage's data-parallel pieces run: in this process, or as Ray tasks on the ray engine.
    parallel: Parallel = field(default_factory=InProcess)

    def service(self, name: str, factory: Callable[[], Any]) -> Any:
        if name not in self.services:
            self.services[name] = factory()
        return self.services[name]

    def check_input(self, name: str) -> None:
        """Refuse a dataset the stage does not declare as an input: the registry is what the runner hashes."""
        if name not in self.inputs:
            raise ConfigError(f"stage '{self.stage}' reads dataset '{name}', which it does not declare as an input "
                              f"(its inputs: {', '.join(self.inputs) or 'none'})")

    def read(self, name: str) -> pa.Table:
        """A dataset this stage declares as an input, whole."""
        self.check_input(name)
        return self.rundir.read(name)

    def iter_shards(self, name: str) -> Iterator[pa.Table]:
        """A dataset this stage declares as an input, shard by shard."""
        self.check_input(name)
        return self.rundir.iter_shards(name)

    def writer(self, dataset: str) -> Optional[str]:
        """The name of the stage that writes ``dataset``, or None."""
        return stage_writing(self.registry, dataset)

    def filters_so_far(self) -> list[dict]:
        """The filter stats every stage of the build has stored in the manifest (``manifest_filters``)."""
        return manifest_filters(self.rundir.load_manifest(), self.registry)

    def drops_of(self, dataset: str) -> list[dict]:
        """The dropped items (with reasons) of the stage that writes ``dataset``, for a diagnosis; empty when
        that stage has not run."""
        stage = self.writer(dataset)
        if stage is None or not self.rundir.has_dataset(drops_dataset(stage)):
            return []
        return self.rundir.read(drops_dataset(stage)).to_pylist()


@dataclass
class StageResult:
    outputs: dict[str, pa.Table]
    drops: list[Drop] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    # One entry per filter the stage ran, in chain order (stored in the manifest as a list).
    filters: list["FilterStats"] = field(default_factory=list)


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
    # Files of the run folder the stage reads besides datasets (people's labels): their content enters its
    # signature, so editing them reruns the stage and what follows it.
    files: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind == "map" and (len(self.inputs) < 1 or len(self.outputs) != 1):
            raise ValueError(f"map stage {self.name} needs one sharded input first and exactly one output")
