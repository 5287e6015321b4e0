"""Where ``eval`` and ``compare`` keep their caches and write their results.

A task folder inside a run (``<run>/task``) shares the run's ``cache/``: the embeddings ``build`` computed are
reused, and converted BEIR references go beside them. A result file is written only over nothing, over an
earlier result, or when the caller says so: ``--out`` must never cost a user a file build-bench did not write.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..engine.embeddings import EmbeddingCache
from ..engine.rundir import RunDir
from ..errors import ConfigError

# Keys every eval and compare result holds: a JSON file with them is one build-bench wrote.
RESULT_KEYS = frozenset({"k", "n_boot", "models"})


@dataclass
class Scoring:
    """The caches and search of one eval or compare: close ``embeddings`` when done (or use ``with``)."""

    embeddings: Optional[EmbeddingCache]  # None: every text is embedded afresh
    reference_cache: Optional[Path]  # where converted BEIR references go; None: compare's default
    via_mteb: bool  # search with mteb itself for sentence-transformers models

    def close(self) -> None:
        if self.embeddings is not None:
            self.embeddings.close()

    def __enter__(self) -> "Scoring":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def scoring_setup(task_dir: str | Path, *, k: int, n_boot: int, cache_dir: str | Path | None = None,
                  always_cache: bool = False, via_mteb: Optional[bool] = None) -> Scoring:
    """Check k and the bootstrap count, then choose the caches of scoring ``task_dir``.

    cache_dir: embeddings go to ``cache_dir/embeddings`` and references to ``cache_dir/reference``. Without
    it, the run's own cache (``<run>/cache`` around ``<run>/task``) is used when ``always_cache`` or when it
    exists. via_mteb: None means "when mteb is installed".
    """
    if n_boot < 1:
        raise ConfigError(f"--bootstrap must be at least 1 (got {n_boot})")
    if k < 1:
        raise ConfigError(f"--k must be at least 1 (got {k})")
    root = Path(cache_dir) if cache_dir else RunDir.from_task_dir(task_dir).cache_dir
    use = bool(cache_dir) or always_cache or root.is_dir()
    return Scoring(embeddings=EmbeddingCache(root / "embeddings") if use else None,
                   reference_cache=root / "reference" if use else None,
                   via_mteb=importlib.util.find_spec("mteb") is not None if via_mteb is None else via_mteb)


def default_compare_path(task_dir: str | Path) -> Path:
    """compare.json of the run around ``task_dir`` (``<run>/compare.json``)."""
    return RunDir.from_task_dir(task_dir).compare_path


def check_result_target(path: Path, overwrite: bool = False) -> None:
    """Refuse, before any work, a result path that is a folder or a file build-bench did not write (unless
    ``overwrite``)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; give the path of a JSON file")
    if overwrite or not path.exists():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if isinstance(data, dict) and RESULT_KEYS <= data.keys():
        return  # an eval or compare result: written by build-bench
    raise ConfigError(f"{path} exists and is not a result build-bench wrote; give another --out or pass "
                      "--overwrite to replace it")
