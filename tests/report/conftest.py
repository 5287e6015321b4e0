"""The sample run every report test starts from."""

from __future__ import annotations

from pathlib import Path

import pytest

from .sample import write_sample_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_sample_run(tmp_path / "run")
