"""The embedding cache: each text embedded once per model, persisted, and the packaged models load offline.

(Lives in tests/tasks/ next to its only caller, the dense evaluation.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from buildbench.engine import embeddings
from buildbench.engine.embeddings import EmbeddingCache, embed, register_model, unregister_model
from buildbench.errors import InputError


class CountingEncoder:
    """A fake model: a fixed random vector per text, and a record of every text it was asked to embed."""

    def __init__(self, dims: int = 8):
        self.dims = dims
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str], batch_size: int) -> np.ndarray:
        self.calls.append(list(texts))
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=self.dims) * 3 for t in texts]
        return np.asarray(rows, dtype=np.float32)

    @property
    def embedded(self) -> int:
        return sum(len(c) for c in self.calls)


@pytest.fixture
def fake_model():
    encoder = CountingEncoder()
    loads = []

    def loader():
        loads.append(1)
        return encoder

    register_model("fake-test-model", loader)
    yield encoder, loads
    unregister_model("fake-test-model")


def test_second_call_hits_cache(tmp_path: Path, fake_model):
    encoder, loads = fake_model
    cache = EmbeddingCache(tmp_path / "cache")
    texts = ["alpha", "beta", "gamma"]
    first = embed("fake-test-model", texts, cache)
    assert encoder.embedded == 3
    second = embed("fake-test-model", texts, cache)
    assert encoder.embedded == 3  # no new model calls
    np.testing.assert_array_equal(first, second)
    # A superset embeds only the new text.
    embed("fake-test-model", ["beta", "delta"], cache)
    assert encoder.calls[-1] == ["delta"]
    assert loads == [1]  # the model was loaded once for the whole process


def test_cache_persists_across_instances(tmp_path: Path, fake_model):
    encoder, _ = fake_model
    with EmbeddingCache(tmp_path / "cache") as cache:
        first = embed("fake-test-model", ["one", "two"], cache)
    with EmbeddingCache(tmp_path / "cache") as cache:
        again = embed("fake-test-model", ["two", "one"], cache)
        assert cache.count(embeddings.model_identity("fake-test-model")) == 2
    assert encoder.embedded == 2
    np.testing.assert_array_equal(again, first[::-1])


def test_fully_cached_call_does_not_load_the_model(tmp_path: Path):
    encoder = CountingEncoder()
    register_model("fake-lazy", lambda: encoder)
    try:
        cache = EmbeddingCache(tmp_path / "cache")
        embed("fake-lazy", ["x"], cache)

        def must_not_load():
            raise AssertionError("model loaded although every text was cached")

        register_model("fake-lazy", must_not_load)  # also drops the loaded instance
        assert embed("fake-lazy", ["x"], cache).shape == (1, 8)
    finally:
        unregister_model("fake-lazy")


def test_output_is_normalised_float32_in_input_order(tmp_path: Path, fake_model):
    encoder, _ = fake_model
    out = embed("fake-test-model", ["b", "a", "b", "c"], EmbeddingCache(tmp_path))
    assert out.dtype == np.float32 and out.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(out[0], out[2])
    assert encoder.embedded == 3  # the repeated text is embedded once


def test_models_are_separate_in_the_cache(tmp_path: Path, fake_model):
    encoder, _ = fake_model
    other = CountingEncoder(dims=4)
    register_model("fake-other", lambda: other)
    try:
        cache = EmbeddingCache(tmp_path)
        embed("fake-test-model", ["same text"], cache)
        assert embed("fake-other", ["same text"], cache).shape == (1, 4)
        assert other.embedded == 1
    finally:
        unregister_model("fake-other")


def test_without_cache_embeds_every_time(fake_model):
    encoder, _ = fake_model
    embed("fake-test-model", ["a"], None)
    embed("fake-test-model", ["a"], None)
    assert encoder.embedded == 2
    assert embed("fake-test-model", [], None).shape == (0, 0)


def test_static_model_with_cache(tmp_path: Path, monkeypatch):
    pytest.importorskip("static_model")
    calls = []
    real_get_model = embeddings.get_model
    monkeypatch.setattr(embeddings, "get_model", lambda name: calls.append(name) or real_get_model(name))
    cache = EmbeddingCache(tmp_path)
    texts = ["interest rates rose", "the committee held rates steady", "a recipe for cake"]
    first = embed("static", texts, cache)
    assert first.shape == (3, 64) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    assert float(first[0] @ first[1]) > float(first[0] @ first[2])  # rates are closer to rates than to cake
    np.testing.assert_array_equal(embed("static", texts, cache), first)
    assert calls == ["static"]  # the second call never reached the model
    assert "tokenlearn-static-model==" in embeddings.model_identity("static")


def test_unknown_sentence_transformer_fails_offline(tmp_path: Path):
    pytest.importorskip("sentence_transformers")
    with pytest.raises(InputError, match="offline"):
        embed(str(tmp_path / "no-such-model"), ["text"], None)
    unregister_model(str(tmp_path / "no-such-model"))
