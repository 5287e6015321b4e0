"""Offline by construction: these are set before any test imports huggingface_hub, datasets or transformers."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FOMC = SHARED / "data" / "fomc"


@pytest.fixture(scope="session")
def fomc_passages() -> Path:
    path = FOMC / "passages.jsonl"
    if not path.exists():
        pytest.skip("../shared/data/fomc is not beside the repo")
    return path
