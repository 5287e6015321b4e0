"""Fixtures for scoring models on written tasks (the tests run offline: see tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildbench.tasks import write_retrieval_task
from tests.tasks.taskdata import easy_tables, make_info


@pytest.fixture
def easy_task(tmp_path: Path) -> Path:
    corpus, queries, qrels = easy_tables()
    return write_retrieval_task(tmp_path / "easy", corpus, queries, qrels, make_info())
