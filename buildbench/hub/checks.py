"""``Check``: the outcome of one validation check, as ``hub.validate`` reports it.

It sits below the modules that produce checks (``safety``, ``checks_card``, ``checks_data``) and the one that
runs them in order (``validate``), so none of them has to import another to speak of a result.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    id: str
    passed: bool
    reason: str
    skipped: bool = False  # not run because a check it requires did not pass; counts as not passed


def error_reason(exc: BaseException) -> str:
    """An exception as part of a check's reason: its type and first 300 characters, on one line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


__all__ = ["Check", "error_reason"]
