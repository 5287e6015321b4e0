"""Map stages on a Ray cluster: a pool of actors takes the pending shards, and each actor writes its shards'
files into the shared run directory itself.

Why a pool of actors over shard paths and not Ray Data ``map_batches``: a map stage's contract is one output
shard (with its drops, stats and filter stats) per input shard, each written atomically, resumed shard by
shard. ``map_batches`` blocks rows as it likes, so its batches would not line up with the shards on disk and
the files that make a killed run resumable would need a second write path. One task per shard gives the same
bytes as the local engine, and an actor keeps the stage's models (an LLM, an embedding model) loaded across
the shards it runs, built once through ``ctx.service``.

Each actor writes its LLM calls to its own cache segment (``generators.cache``); the driver folds them into
the main cache file after the stage. A worker that dies mid-shard leaves that shard missing: Ray restarts the
actor and runs the shard again (``engine.retries`` times), replaying the dead worker's calls from its segment;
after that the stage fails and rerunning the same command resumes it.

Global stages run in the driver; the data-parallel pieces they hand to ``ctx.parallel`` (``engine.parallel``)
run as Ray tasks (``RayTasks``): MinHash signatures per batch, the LSH groupby per band and the exact checks of
candidate pairs per chunk in the corpus-wide dedup (``quality.dedup_bands``).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence, TypeVar

from ..errors import BuildBenchError, require
from ..generators.cache import checkpoint_main, fold_segments, use_worker_segment, worker_name
from .executor import ShardDone, ShardOutcome, ShardTask, run_shard
from .parallel import Parallel
from .rundir import RunDir
from .stage import Stage, StageContext

if TYPE_CHECKING:
    from ..domain_pack import EngineConfig

log = logging.getLogger("buildbench.engine")
R = TypeVar("R")


def ray_get(ray, ref, running: str, retries: int, advice: str) -> Any:
    """``ray.get(ref)``. The stage's own error, raised in a worker, comes back as the same one line as in a local
    run; anything else it raised keeps Ray's wrapper, which carries the worker's traceback (and is an instance of
    the cause's type). A worker lost more than ``retries`` times becomes one line naming what it was ``running``."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BuildBenchError):
            raise cause from None
        raise
    except ray.exceptions.RayError as exc:
        why = " ".join(str(exc).split())[:200]
        raise BuildBenchError(f"{running} failed after {retries} retries ({type(exc).__name__}: {why}); {advice}") \
            from None


class ShardWorker:
    """The body of one Ray actor: a stage context of its own (services built once per actor) over the shared
    run directory, its LLM calls written to its own cache segment."""

    def __init__(self, config, root: str, st: Stage, registry: Sequence[Stage], log_level: int):
        logging.basicConfig(level=log_level, format="%(name)s: %(message)s")
        logging.getLogger("buildbench").setLevel(log_level)
        self.name = worker_name()
        use_worker_segment(self.name)
        self.stage = st
        self.ctx = StageContext(config=config, rundir=RunDir(root, claim=False), stage=st.name,
                                log=logging.getLogger(f"buildbench.{st.name}"), inputs=st.inputs,
                                registry=registry)

    def run(self, task: ShardTask) -> ShardOutcome:
        return run_shard(self.stage, task, self.ctx, worker=self.name)


class RayExecutor:
    kind = "ray"

    def __init__(self, engine: "EngineConfig"):
        self.ray = require("ray", "ray", "--engine ray")
        self.engine = engine
        self._started = False  # whether this executor started Ray (and so shuts it down)
        self._warned = False

    def gpus(self, st: Stage | None) -> float:
        """GPUs an actor of ``st`` asks for: ``engine.gpus_per_worker`` for an LLM stage, else none."""
        return self.engine.gpus_per_worker if st is not None and st.needs_llm else 0.0

    def pool_size(self, tasks: int, st: Stage | None = None) -> int:
        """Actors for ``tasks`` shards of ``st``: ``engine.workers``, no more than the shards, and no more than
        the cluster's CPUs, nor its GPUs over the GPUs an actor asks for (an actor that can never be placed
        would hold its shard forever)."""
        if not tasks:
            return 0
        gpus = self.gpus(st)
        self._connect()
        resources = self.ray.cluster_resources()
        fit, what = int(resources.get("CPU", 1)), "CPUs"
        if gpus > 0:
            on_gpus = int(resources.get("GPU", 0) // gpus)
            if on_gpus < 1:
                raise BuildBenchError(f"engine.gpus_per_worker is {gpus:g} but the Ray cluster has "
                                      f"{resources.get('GPU', 0):g} GPUs; give a cluster with GPUs or set it to 0")
            fit, what = min(fit, on_gpus), f"{what} or GPUs"
        if self.engine.workers > fit and not self._warned:
            self._warned = True
            log.warning("engine.workers is %d but the Ray cluster's %s fit %d: using %d actors",
                        self.engine.workers, what, fit, max(1, fit))
        return max(1, min(self.engine.workers, tasks, fit))

    def _connect(self) -> None:
        if self.ray.is_initialized():  # a caller's own ray.init (tests, notebooks) is used as it is
            return
        try:
            self.ray.init(address=self.engine.address, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.engine.address or "a new local cluster"
            raise BuildBenchError(f"cannot start Ray on {where}: {str(exc).splitlines()[0]}") from None
        self._started = True

    def run_map(self, st: Stage, tasks: Sequence[ShardTask], ctx: StageContext, done: ShardDone) -> None:
        if not tasks:
            return
        ray = self.ray
        self._connect()
        llm_cache = ctx.rundir.cache_dir / "llm.sqlite"
        # Workers read the main cache file as immutable while they run (no locks across machines): make it whole.
        if not checkpoint_main(llm_cache):
            log.warning("%s: the LLM cache's log could not be folded into %s; its newest calls may be made again",
                        st.name, llm_cache)
        retries = self.engine.retries
        # Actors share the node's cores and llama.cpp's OpenMP threads spin while they wait: with two actors of
        # two threads on two cores, spinning made generation 3-4x slower here. Passive waiting changes no result.
        env = {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        # An LLM stage's actor asks for its GPUs (engine.gpus_per_worker); Ray sets CUDA_VISIBLE_DEVICES for it.
        actor = ray.remote(num_cpus=1, num_gpus=self.gpus(st), max_restarts=retries, max_task_retries=retries,
                           runtime_env={"env_vars": env})(ShardWorker)
        level = logging.getLogger("buildbench").getEffectiveLevel()
        pool = [actor.remote(ctx.config, str(ctx.rundir.root), st, list(ctx.registry), level)
                for _ in range(self.pool_size(len(tasks), st))]
        queue = deque(tasks)
        running: dict[Any, ShardTask] = {}
        owner: dict[Any, Any] = {}

        def submit(a) -> None:
            task = queue.popleft()
            ref = a.run.remote(task)
            running[ref], owner[ref] = task, a

        try:
            for a in pool:
                if queue:
                    submit(a)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                ref = ready[0]
                task, a = running.pop(ref), owner.pop(ref)
                outcome = self._result(ref, st, task)
                ctx.stats.update(outcome.stats)
                done(outcome)
                if queue:
                    submit(a)
        finally:
            for a in pool:
                ray.kill(a, no_restart=True)
        # Every worker is gone: their calls move into the main file, where a local rerun finds them too.
        added = fold_segments(llm_cache)
        log.debug("%s: %d LLM calls of the workers folded into the cache", st.name, added)

    def _result(self, ref, st: Stage, task: ShardTask) -> ShardOutcome:
        return ray_get(self.ray, ref, f"stage {st.name}: the Ray worker running shard {task.index}",
                       self.engine.retries, "finished shards are kept, run the same command again to resume")

    def parallel(self) -> Parallel:
        return RayTasks(self)

    def close(self) -> None:
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False


class RayTasks:
    """``Parallel`` on the executor's Ray cluster: each item a Ray task of one CPU, ``shared`` put in the object
    store once per ``map`` (a task gets the stored object itself; numpy arrays are read in place, without a
    copy, on the same node). Twice as many tasks as the map stages' actors (``pool_size``) are in flight, so
    every worker has the next piece queued while the driver holds only those pieces' items and results. Ray
    retries a task whose worker died ``engine.retries`` times (the functions are pure); after that the stage
    fails in one line and a rerun runs it again. Ray starts on the first ``map``, not before."""

    kind = "ray"

    def __init__(self, executor: RayExecutor):
        self.executor = executor
        self.tasks = 0
        self._remote: dict[Callable, Any] = {}

    @property
    def width(self) -> int:
        """Pieces run at once: as many as a map stage's actors (``engine.workers``, at most the cluster's CPUs)."""
        return self.executor.pool_size(1 << 30)

    def map(self, fn: Callable[..., R], items: Iterable[Any], *shared: Any) -> Iterator[R]:
        ex = self.executor
        ray = ex.ray
        window = 2 * self.width  # pool_size connects to the cluster first
        if fn not in self._remote:
            self._remote[fn] = ray.remote(num_cpus=1, max_retries=ex.engine.retries)(fn)
        task = self._remote[fn]
        refs = [ray.put(s) for s in shared]
        pending: deque = deque()
        try:
            for item in items:
                pending.append(task.remote(item, *refs))
                self.tasks += 1
                if len(pending) >= window:
                    yield self._get(pending.popleft(), fn)
            while pending:
                yield self._get(pending.popleft(), fn)
        finally:
            for ref in pending:  # the caller stopped early, or a task failed: the rest is not wanted
                ray.cancel(ref)

    def _get(self, ref, fn: Callable) -> Any:
        return ray_get(self.executor.ray, ref, f"a Ray task of {fn.__qualname__}", self.executor.engine.retries,
                       "run the same command again")
