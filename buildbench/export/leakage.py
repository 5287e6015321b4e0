"""The leakage guard of an export: no text of a published test task, nor a near-duplicate of one, goes into
training data.

What is guarded against: test task folders in the MTEB v2 layout (``--test-task``: their corpus and queries, read
with ``evaluation.evaluate.load_task``) and the tasks of a buildbench registry (``--registry``: the MinHash
fingerprints it keeps of each task's queries and a sample of its documents, ``hub.fingerprints``). Ids differ
from build to build, so texts are compared, three ways:

- exact: the SHA-256 of the normalised text (``quality.base.normalize_text``: casefolded, punctuation and
  extra spaces gone) of every export text against every test text, queries and documents alike;
- near-duplicate: export passages against test documents under the run's document dedup settings
  (``filters.doc_dedup``: character 5-grams, Jaccard 0.7 by default), export queries against test queries under
  its query dedup settings (``filters.query_dedup``, 0.8), found as the build's own dedup finds them
  (``quality.dedup_bands.dedup_by_bands``: MinHash LSH proposes, the exact Jaccard of the shingle sets decides,
  and with ``distinct_numbers`` a pair whose numbers differ is two facts, not a copy);
- registry fingerprints: the MinHash estimate of Jaccard at the same thresholds (``near_duplicate_mask``);
  the registry keeps no texts, so the matched text is named by its task only.

Known limits: a registry fingerprints at most 5,000 documents of a task (a seeded sample), so copies of the
others are not seen through it (pass the task folder itself with ``--test-task``); LSH pairs a text with at
most ``bucket_reps`` texts of each band bucket, so in a bucket shared by hundreds of templated test documents a
copy is found only through another band.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..domain_pack import DedupConfig
from ..errors import ConfigError, InputError
from ..quality.base import normalize_text
from ..quality.dedup import MinHashDedup
from ..quality.dedup_bands import TEXT_BATCH, ArrowTexts, dedup_by_bands

log = logging.getLogger(__name__)

DOCUMENT, QUERY = "document", "query"
EXACT, NEAR_DUPLICATE, FINGERPRINT = "exact", "near_duplicate", "fingerprint"


@dataclass(frozen=True)
class Match:
    """The test text an export text leaks: its task, kind (document or query), id, and how it matched."""

    task: str
    kind: str
    id: str
    how: str
    jaccard: float | None = None

    def as_dict(self) -> dict:
        out = asdict(self)
        if self.jaccard is not None:
            out["jaccard"] = round(self.jaccard, 4)
        return out


@dataclass
class GuardedTask:
    """One test task guarded against, as the export report lists it."""

    source: str  # "task" (a task folder) or "registry"
    path: str
    name: str
    documents: int
    queries: int
    note: str = ""


@dataclass
class TestTexts:
    """The texts (task folders) and fingerprints (registry) an export is checked against."""

    tasks: list[GuardedTask] = field(default_factory=list)
    documents: list[tuple[str, str, str]] = field(default_factory=list)  # (task, id, text)
    queries: list[tuple[str, str, str]] = field(default_factory=list)
    fingerprints: list[tuple[str, object]] = field(default_factory=list)  # (task label, hub Fingerprints)

    def __bool__(self) -> bool:
        return bool(self.tasks)


def text_key(text: str) -> str:
    """What two copies of a text share: the SHA-256 of its normalised form ("" for a text without words)."""
    norm = normalize_text(text or "")
    return hashlib.sha256(norm.encode("utf-8")).hexdigest() if norm else ""


# ---------------------------------------------------------------------------------------------- loading


def add_task_folder(test: TestTexts, path: str | Path) -> None:
    """Add an MTEB v2 task folder's corpus and queries (InputError, one line, for anything else)."""
    from ..evaluation.evaluate import load_task
    from ..tasks.layout import read_task_record

    folder = Path(path)
    label = str(path)
    if not folder.is_dir():
        raise InputError(f"--test-task {label}: no such folder")
    if any(t.source == "task" and Path(t.path).resolve() == folder.resolve() for t in test.tasks):
        return
    try:
        corpus, queries, _ = load_task(folder)
    except InputError:
        from ..engine.rundir import is_build_bench_folder

        if is_build_bench_folder(folder):
            raise InputError(f"--test-task {label} is a run folder, not a task folder: pass {folder / 'task'} "
                             "(and its other task_* folders)") from None
        raise InputError(f"--test-task {label} is not an MTEB task folder (no corpus/, queries/ and qrels/ "
                         "test-*.parquet); pass a task folder such as RUN_DIR/task") from None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"--test-task {label}: its Parquet files cannot be read ({' '.join(str(exc).split())})"
                         ) from None
    try:
        name = str(read_task_record(folder).get("name") or folder.name)
    except (InputError, ValueError):
        name = folder.name  # a bare MTEB folder without task.json
    test.documents += [(label, str(i), t) for i, t in zip(corpus["id"].to_pylist(), corpus["text"].to_pylist()) if t]
    test.queries += [(label, str(i), t) for i, t in zip(queries["id"].to_pylist(), queries["text"].to_pylist()) if t]
    test.tasks.append(GuardedTask("task", label, name, corpus.num_rows, queries.num_rows))


def add_registry(test: TestTexts, path: str) -> None:
    """Add the fingerprints of the newest version of every task in a buildbench registry."""
    from ..hub.registry import Registry

    if "://" not in path and not Path(path).exists():
        raise InputError(f"--registry {path}: no such registry folder")
    registry = Registry.load(path)
    found = 0
    for entry in registry.latest("task"):
        fp = registry.fingerprints(entry.name, entry.version)
        label = f"registry:{entry.name}@{entry.version}"
        if fp is None:
            test.tasks.append(GuardedTask("registry", path, label, 0, 0, note="no fingerprints: not checked"))
            continue
        found += 1
        test.fingerprints.append((label, fp))
        test.tasks.append(GuardedTask("registry", path, label, len(fp.corpus), len(fp.queries),
                                      note="fingerprints: all queries and a sample of up to 5,000 documents"))
    if not found:
        raise ConfigError(f"the registry {path} holds no task fingerprints, so there is nothing to guard against; "
                          "pass --test-task, another --registry, or --no-leakage-guard")


# ---------------------------------------------------------------------------------------------- matching


def near_duplicates(reference: Sequence[str], candidates: Sequence[str], cfg: DedupConfig
                    ) -> dict[int, tuple[int, float]]:
    """candidate index -> (reference index, Jaccard) of its most similar near-duplicate among ``reference``,
    found by the build's own corpus dedup (``dedup_by_bands``) over the reference texts followed by the
    candidates; only the pairs across the two lists count."""
    if not reference or not candidates:
        return {}
    texts = list(reference) + list(candidates)
    n = len(reference)
    found = dedup_by_bands(MinHashDedup(cfg), (texts[s : s + TEXT_BATCH] for s in range(0, len(texts), TEXT_BATCH)),
                           ArrowTexts(pa.array(texts, pa.large_string())))
    best: dict[int, tuple[int, float]] = {}
    for (a, b), sim in zip(found.pairs.tolist(), found.pair_similarity.tolist()):
        if a < n <= b and (b - n not in best or sim > best[b - n][1]):
            best[b - n] = (a, sim)
    return best


def _signatures(texts: list[str], folding: str) -> tuple[np.ndarray, list[int]]:
    """Fingerprint signatures of the texts that have any, and their positions in ``texts``."""
    from ..hub.fingerprints import text_signatures

    sigs = text_signatures(texts, folding)
    if len(sigs) == len(texts):
        return sigs, list(range(len(texts)))
    rows, where = [], []
    for i, t in enumerate(texts):
        one = text_signatures([t], folding)
        if len(one):
            rows.append(one[0])
            where.append(i)
    return (np.stack(rows) if rows else sigs[:0]), where


class LeakageGuard:
    """Finds the export texts that leak a test text (see the module docstring for how)."""

    def __init__(self, test: TestTexts, documents: DedupConfig, queries: DedupConfig):
        self.test = test
        self.documents = documents
        self.queries = queries
        self._exact: dict[str, Match] = {}
        for kind, rows in ((DOCUMENT, test.documents), (QUERY, test.queries)):
            for task, tid, text in rows:
                key = text_key(text)
                if key and key not in self._exact:
                    self._exact[key] = Match(task, kind, tid, EXACT, 1.0)

    @property
    def thresholds(self) -> dict[str, float]:
        return {"documents": self.documents.threshold, "queries": self.queries.threshold}

    def find(self, queries: Mapping[str, str], passages: Mapping[str, str]
             ) -> tuple[dict[str, Match], dict[str, Match]]:
        """(query id -> Match, passage id -> Match) for every export query and passage that leaks."""
        return (self._find(queries, self.test.queries, self.queries, QUERY),
                self._find(passages, self.test.documents, self.documents, DOCUMENT))

    def _find(self, items: Mapping[str, str], reference: list[tuple[str, str, str]], cfg: DedupConfig,
              kind: str) -> dict[str, Match]:
        """The leaks of one kind of export text: exact copies of any test text, near-duplicates of the test
        texts of the same ``kind`` (``reference``), then matches in the registry's fingerprints of that kind."""
        from ..hub.fingerprints import near_duplicate_mask

        out: dict[str, Match] = {}
        for item_id, text in items.items():
            hit = self._exact.get(text_key(text))
            if hit is not None:
                out[item_id] = hit
        rest = [(i, t) for i, t in items.items() if i not in out and t]
        near = near_duplicates([t for _, _, t in reference], [t for _, t in rest], cfg)
        for c, (r, sim) in near.items():
            task, tid, _ = reference[r]
            out[rest[c][0]] = Match(task, kind, tid, NEAR_DUPLICATE, sim)
        rest = [(i, t) for i, t in rest if i not in out]
        for label, fp in self.test.fingerprints:
            if not rest:
                break
            sigs, where = _signatures([t for _, t in rest], fp.folding)
            ref = fp.queries if kind == QUERY else fp.corpus
            hits = near_duplicate_mask(sigs, ref, cfg.threshold)
            for row in np.flatnonzero(hits).tolist():
                out[rest[where[row]][0]] = Match(label, kind, "", FINGERPRINT, None)
            rest = [(i, t) for i, t in rest if i not in out]
        return out


def make_guard(test_tasks: Iterable[str | Path], registry: str | None, documents: DedupConfig,
               queries: DedupConfig, threshold: float | None = None) -> LeakageGuard:
    """The guard against the given task folders and registry; ``threshold`` overrides both dedup thresholds."""
    if threshold is not None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"--near-dup-threshold must be in (0, 1], got {threshold}")
        documents = documents.model_copy(update={"threshold": threshold})
        queries = queries.model_copy(update={"threshold": threshold})
    test = TestTexts()
    for path in test_tasks:
        add_task_folder(test, path)
    if registry:
        add_registry(test, registry)
    log.info("leakage guard: %d test tasks, %d documents and %d queries by text, %d fingerprinted tasks",
             len(test.tasks), len(test.documents), len(test.queries), len(test.fingerprints))
    return LeakageGuard(test, documents, queries)
