"""Fixtures for task assembly; offline settings for every test in this folder."""

from __future__ import annotations

import os

# Nothing in these tests may download weights or datasets; set before transformers/datasets are imported.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

from pathlib import Path

import pytest

from buildbench.tasks import write_retrieval_task

from .taskdata import easy_tables, make_info


@pytest.fixture
def easy_task(tmp_path: Path) -> Path:
    corpus, queries, qrels = easy_tables()
    return write_retrieval_task(tmp_path / "easy", corpus, queries, qrels, make_info())
