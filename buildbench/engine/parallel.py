"""How a global stage hands data-parallel pieces of its work to the engine: ``ctx.parallel.map(fn, items, *shared)``.

A global stage needs the whole dataset to decide (which near-duplicate goes), but much of its work splits into
independent pieces: MinHash signatures per batch of texts, a groupby per LSH band, exact checks per chunk of
candidate pairs. The stage passes those pieces to ``ctx.parallel`` and keeps the decision in the driver. The
local engine runs them here, one after another (``InProcess``); the Ray engine runs each as a Ray task
(``engine.ray_executor.RayTasks``), with the ``shared`` arguments put in the object store once per call
(``ray.put``) and handed to every task.

Why this seam and not Ray Data inside the stage: the stage stays one function that runs the same pure functions
on either engine, so the two engines' outputs are equal by construction and a stage is testable without Ray;
the pieces are few and coarse (a band per task), over arrays the driver already holds, so a task per piece
costs little. The contract for ``fn``: a module-level function (a Ray worker imports it by name) that is pure,
its result depending only on its arguments (a Ray task may be retried after its worker dies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

R = TypeVar("R")


class Parallel(Protocol):
    """Runs ``fn(item, *shared)`` for each of ``items``; results come back lazily, in the order of ``items``.

    Items are drawn from ``items`` only as pieces are started (a bounded number is in flight at once), so a
    caller that streams items from disk holds a few of them, not all; ``shared`` (a table of texts, arrays
    every piece reads) is sent once per call. ``tasks`` counts the pieces run so far (for the manifest);
    ``width`` is how many pieces run at once, for a caller that cuts its work to keep every worker busy."""

    kind: str
    tasks: int

    @property
    def width(self) -> int: ...

    def map(self, fn: Callable[..., R], items: Iterable[Any], *shared: Any) -> Iterator[R]: ...


class InProcess:
    """``Parallel`` in this process, one piece after another: the local engine, and any context without one."""

    kind = "local"
    width = 1

    def __init__(self) -> None:
        self.tasks = 0

    def map(self, fn: Callable[..., R], items: Iterable[Any], *shared: Any) -> Iterator[R]:
        for item in items:
            self.tasks += 1
            yield fn(item, *shared)


def piece_size(total: int, most: int, width: int, least: int = 1) -> int:
    """Items per piece for ``total`` items: ``most``, or fewer so that each of ``width`` workers gets about two
    pieces (never fewer than ``least`` items a piece, where a piece's fixed cost would dominate)."""
    if width <= 1:
        return most
    return max(1, min(most, max(least, -(-total // (2 * width)))))
