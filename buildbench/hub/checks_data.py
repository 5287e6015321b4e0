"""The checks of a submission's data: bounded Parquet metadata first, then the tables, then their value. Each
check is a function of what it reads that returns a ``Check``; ``hub.validate`` runs them in order.

- ``declared_sizes``: sizes the card declares (``dataset_info`` ``num_bytes``, ``download_size``,
  ``dataset_size``), and what the Parquet metadata declares (rows, column values, encodings, uncompressed
  bytes) stay under the caps; only then is the decoded size measured, in bounded batches of dictionary
  indices, against ``Limits.max_decoded_bytes`` (a few KB of dictionary-encoded Parquet can decode into
  gigabytes). Nothing reads a whole table before this passed;
- ``schema``: the corpus, queries and qrels configs (and top_ranked for reranking tasks) exist, are listed in
  the card, and have the MTEB columns with string ids/texts and integer scores; then the tables are read;
- ``ids``: ids are non-empty and unique, and no (query, document) pair is judged twice;
- the quality rules of ``buildbench.tasks.rules`` (empty splits, text lengths, duplicate texts, a relevant
  document per query, dangling qrels), one check each under the rule's own name (``check_rules``);
- ``language``: at least ``Limits.min_language_match`` of a seeded sample of queries and of documents are
  detected (FastLangDetector) as the declared language;
- ``overlap``: at most ``Limits.max_overlap_fraction`` of the queries (and of sampled documents) are
  near-identical (MinHash) to those of a task already in the registry, compared on the registry's stored
  fingerprints; other versions of the same task (same repo) are not compared, and a task name registered from
  another repo is refused;
- ``baselines``: random nDCG@10 <= ``Limits.max_random_ndcg`` (else the corpus is too small to rank) and
  BM25 nDCG@10 < ``Limits.max_bm25_ndcg`` (else the task is saturated by lexical matching).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import InputError
from ..tasks.layout import BASE_CONFIGS, CONFIGS, RERANKING, SPLIT, TASK_JSON, TOP_RANKED, duplicates, first_few
from .checks import Check, error_reason
from .checks_card import CARD, card_configs, declared_byte_sizes, declared_languages
from .fingerprints import compute_fingerprints, near_duplicate_mask
from .safety import Limits, human_size, open_no_follow

# The rules ``tasks.rules.check_quality_rules`` reports on every task, in its order; a reranking task's
# "top_ranked_ids" comes after them. They are the ids the rules are reported under when they do not run.
RULE_IDS = ("empty_splits", "min_text_length", "duplicate_corpus_texts", "duplicate_query_texts",
            "relevant_document", "dangling_qrels")


class Tables(NamedTuple):
    """A submission's tables as ``evaluation.evaluate.load_task`` reads them."""

    corpus: pa.Table
    queries: pa.Table
    qrels: pa.Table


# Parquet encodings whose decoded size the file's metadata and a dictionary read bound. DELTA_BYTE_ARRAY
# stores each value as a prefix of the one before plus a suffix, so a few bytes can decode into gigabytes.
_PARQUET_ENCODINGS = frozenset({"PLAIN", "PLAIN_DICTIONARY", "RLE_DICTIONARY", "RLE", "BIT_PACKED",
                                "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "BYTE_STREAM_SPLIT"})
_FIXED_WIDTH = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}
_BATCH_ROWS = 65_536  # rows decoded at a time when measuring a file's decoded size


@dataclass
class _ParquetFacts:
    """What a Parquet file's metadata says about it, read before any data page is decoded."""

    size: int  # bytes on disk
    rows: int
    values: int  # leaf values of every column chunk (a list column has several per row)
    declared: int  # uncompressed bytes the footer declares (encoded pages, before decoding)
    fixed_bytes: int  # decoded size of the fixed-width columns: values x width
    variable_columns: list[str]  # paths of the variable-length (BYTE_ARRAY) leaf columns
    encodings: set[str]


def _parquet_facts(path: Path) -> _ParquetFacts:
    with open_no_follow(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(4)
        fh.seek(max(0, size - 8))
        tail = fh.read(8)
        if size < 12 or head != b"PAR1" or tail[4:] != b"PAR1":
            raise InputError(f"{path.name} is not a Parquet file (no PAR1 magic)")
        footer = int.from_bytes(tail[:4], "little")
        if footer > size - 12:
            raise InputError(f"{path.name} declares a {footer}-byte footer in a {size}-byte file")
        fh.seek(0)
        meta = pq.read_metadata(fh)
    schema = meta.schema
    widths: list[int | None] = []
    variable: list[str] = []
    for j in range(meta.num_columns):
        col = schema.column(j)
        kind = col.physical_type
        if kind == "FIXED_LEN_BYTE_ARRAY":
            widths.append(max(0, int(col.length or 0)))
        elif kind == "BYTE_ARRAY":
            widths.append(None)
            variable.append(col.path)
        else:
            widths.append(_FIXED_WIDTH.get(kind, 8))
    declared = values = fixed = 0
    encodings: set[str] = set()
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        declared += max(rg.total_byte_size, sum(rg.column(j).total_uncompressed_size for j in range(rg.num_columns)))
        for j in range(rg.num_columns):
            chunk = rg.column(j)
            values += chunk.num_values
            encodings.update(chunk.encodings)
            if widths[j] is not None:
                fixed += chunk.num_values * widths[j]
    return _ParquetFacts(size=size, rows=meta.num_rows, values=values, declared=declared, fixed_bytes=fixed,
                         variable_columns=variable, encodings=encodings)


def _decoded_bytes(path: Path, columns: list[str], budget: int) -> int:
    """Bytes the variable-length ``columns`` of a Parquet file decode to, counted in batches of
    ``_BATCH_ROWS`` rows read as dictionary arrays (indices plus the distinct values): memory stays near the
    encoded size whatever the decoded size is. Stops as soon as the count passes ``budget``."""
    if not columns:
        return 0
    total = 0
    with open_no_follow(path) as fh:
        reader = pq.ParquetFile(fh, read_dictionary=columns)
        top = sorted({c.split(".")[0] for c in columns})
        for batch in reader.iter_batches(batch_size=_BATCH_ROWS, columns=top, use_threads=False):
            for column in batch.columns:
                total += _array_decoded_bytes(column)
            if total > budget:
                break
    return total


def _array_decoded_bytes(array) -> int:
    t = array.type
    if pa.types.is_dictionary(t):
        lengths = _array_value_lengths(array.dictionary)
        if lengths is None:
            return array.nbytes
        return int(pc.sum(pc.take(lengths, array.indices)).as_py() or 0)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_map(t):
        return _array_decoded_bytes(array.flatten())
    if pa.types.is_struct(t):
        return sum(_array_decoded_bytes(array.field(i)) for i in range(t.num_fields))
    lengths = _array_value_lengths(array)
    return array.nbytes if lengths is None else int(pc.sum(lengths).as_py() or 0)


def _array_value_lengths(array):
    t = array.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pc.binary_length(array)
    return None


def check_declared_sizes(task_dir: Path, header: Mapping[str, Any], files: list[tuple[str, int]],
                          limits: Limits) -> tuple[Check, dict[str, int] | None]:
    """Sizes the card declares, then what the Parquet metadata declares (rows, leaf values, encodings,
    uncompressed bytes), then, only when all of that is within the caps, the decoded size measured in bounded
    batches. Nothing is decoded in full here; ``load_task`` runs only after this passed."""
    problems = []
    declared_total = 0
    for where, value in declared_byte_sizes(header):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{CARD} dataset_info {where} is {value!r}, not a byte count")
            continue
        if where.startswith("num_bytes"):
            declared_total += value
        if value > limits.max_total_bytes:
            problems.append(
                f"{CARD} dataset_info declares {where} = {value} ({human_size(value)}), above the "
                f"{human_size(limits.max_total_bytes)} limit"
            )
    if declared_total > limits.max_total_bytes and not problems:
        problems.append(
            f"{CARD} dataset_info splits declare {human_size(declared_total)} in total, above the "
            f"{human_size(limits.max_total_bytes)} limit"
        )
    facts: dict[str, _ParquetFacts] = {}
    for name, _ in files:
        if not name.lower().endswith(".parquet"):
            continue
        try:
            facts[name] = _parquet_facts(task_dir / name)
        except (InputError, OSError) as exc:
            problems.append(str(exc))
        except Exception as exc:  # pyarrow's footer parser: any failure means an unreadable file
            problems.append(f"{name} has an unreadable Parquet footer ({type(exc).__name__}: {exc})")
    uncompressed = 0
    for name, f in facts.items():
        uncompressed += f.declared
        if f.declared > limits.max_total_bytes:
            problems.append(
                f"{name} declares {f.declared} bytes ({human_size(f.declared)}) of uncompressed data in its footer, "
                f"above the {human_size(limits.max_total_bytes)} limit"
            )
        odd = sorted(f.encodings - _PARQUET_ENCODINGS)
        if odd:
            problems.append(f"{name} uses the Parquet encoding {', '.join(odd)}, whose decoded size cannot be "
                            "bounded before reading (write it with the default dictionary or plain encoding)")
    if uncompressed > limits.max_total_bytes and not any("uncompressed" in p for p in problems):
        problems.append(
            f"the Parquet footers declare {human_size(uncompressed)} of uncompressed data in total, above the "
            f"{human_size(limits.max_total_bytes)} limit"
        )
    for attr, cap, unit in (("rows", limits.max_rows, "rows"), ("values", limits.max_values, "column values")):
        total = sum(getattr(f, attr) for f in facts.values())
        if total <= cap:
            continue
        name, biggest = max(((n, getattr(f, attr)) for n, f in facts.items()), key=lambda x: x[1])
        if biggest > cap:
            problems.append(f"{name} holds {biggest} {unit} (Parquet metadata); a submission may hold at most "
                            f"{cap} {unit} in all")
        else:
            problems.append(f"the Parquet files hold {total} {unit} (Parquet metadata), above the {cap} limit")
    if problems:
        return Check("declared_sizes", False, "; ".join(problems)), None

    decoded = sum(f.fixed_bytes for f in facts.values())
    cap = limits.max_decoded_bytes
    for name, f in facts.items():
        try:
            mine = f.fixed_bytes + _decoded_bytes(task_dir / name, f.variable_columns, cap - decoded)
        except (InputError, OSError) as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:  # a footer that parses over data pages that do not
            problems.append(f"{name} cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
            continue
        decoded += mine - f.fixed_bytes
        if mine > cap:
            problems.append(f"{name} decodes to more than {human_size(mine)} once read ({human_size(f.size)} on disk), "
                            f"above the {human_size(cap)} limit for decoded data")
            break
        if decoded > cap:
            problems.append(f"the Parquet files decode to more than {human_size(decoded)} once read, above the "
                            f"{human_size(cap)} limit for decoded data")
            break
    if problems:
        return Check("declared_sizes", False, "; ".join(problems)), None
    rows = sum(f.rows for f in facts.values())
    return (
        Check("declared_sizes", True, f"declared sizes within limits: {rows} rows, {human_size(uncompressed)} "
                                      f"uncompressed and {human_size(decoded)} decoded Parquet data"),
        {name: f.rows for name, f in facts.items()},
    )


def check_schema(task_dir: Path, header: Mapping[str, Any], record: Mapping[str, Any]) -> tuple[Check, Tables | None]:
    """The MTEB configs, columns and types from the Parquet schemas; then, only when they are right, the data
    is read (``load_task``) for the checks after this one."""
    configs = list(BASE_CONFIGS) + ([TOP_RANKED] if record.get("type") == RERANKING else [])
    card_names = {c.get("config_name") for c in card_configs(header)}
    problems = []
    missing_in_card = [c for c in configs if c not in card_names]
    if missing_in_card:
        problems.append(f"{CARD} configs lack {', '.join(missing_in_card)}")
    text_types = (pa.types.is_string, pa.types.is_large_string)

    def is_text(t: pa.DataType) -> bool:
        return any(f(t) for f in text_types)

    expected = {
        "corpus": {"id": is_text, "text": is_text, "title": is_text},
        "queries": {"id": is_text, "text": is_text},
        "default": {"query-id": is_text, "corpus-id": is_text, "score": pa.types.is_integer},
        TOP_RANKED: {"query-id": is_text, "corpus-ids": lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t))
                     and is_text(t.value_type)},
    }
    optional = {("corpus", "title")}
    for config in configs:
        folder = CONFIGS[config][0]
        paths = sorted((task_dir / folder).glob(f"{SPLIT}-*.parquet"))
        if not paths:
            problems.append(f"config '{config}' has no {folder}/{SPLIT}-*.parquet")
            continue
        for path in paths:
            rel = path.relative_to(task_dir).as_posix()
            try:
                schema = pq.read_schema(path)
            except Exception as exc:  # any footer/schema parse failure
                problems.append(f"{rel} cannot be read ({type(exc).__name__})")
                continue
            for column, ok in expected[config].items():
                if column not in schema.names:
                    if (config, column) not in optional:
                        problems.append(f"{rel} has no '{column}' column")
                    continue
                typ = schema.field(column).type
                if not ok(typ):
                    want = "an integer" if column == "score" else "a list of strings" if column == "corpus-ids" else "a string"
                    problems.append(f"{rel} column '{column}' is {typ}, not {want}")
    if problems:
        return Check("schema", False, "; ".join(problems)), None
    from ..evaluation.evaluate import load_task

    try:
        tables = Tables(*load_task(task_dir))
    except Exception as exc:  # a footer that parses over data pages that do not: refused, never raised
        return Check("schema", False, f"the data cannot be read: {error_reason(exc)}"), None
    return Check("schema", True, f"configs {', '.join(configs)} have the MTEB columns and types"), tables


def check_ids(tables: Tables) -> Check:
    corpus, queries, qrels = tables
    problems = []
    for name, table in (("corpus", corpus), ("queries", queries)):
        ids = table.column("id").to_pylist()
        empty = sum(1 for i in ids if i is None or not str(i).strip())
        if empty:
            problems.append(f"{name}: {empty} rows without an id")
        dup = duplicates([i for i in ids if i])
        if dup:
            problems.append(f"{name}: {len(set(dup))} duplicate ids: {first_few(dup)}")
    pairs = duplicates(list(zip(qrels.column("query-id").to_pylist(), qrels.column("corpus-id").to_pylist())))
    if pairs:
        problems.append(f"qrels: {len(set(pairs))} (query, document) pairs judged twice: "
                        f"{first_few(f'{q}->{c}' for q, c in pairs)}")
    if None in qrels.column("score").to_pylist():
        problems.append("qrels: rows without a score")
    if problems:
        return Check("ids", False, "; ".join(problems))
    return Check("ids", True, f"{corpus.num_rows} document and {queries.num_rows} query ids, unique and non-empty")


def _sample(texts: list[str], n: int, seed: int = 0) -> list[str]:
    texts = [t for t in texts if t and t.strip()]
    if len(texts) <= n:
        return texts
    return random.Random(seed).sample(texts, n)


def check_language(tables: Tables, header: Mapping[str, Any], record: Mapping[str, Any], limits: Limits) -> Check:
    from ..quality.language import FastLangDetector

    languages, conflict = declared_languages(header, record)
    if conflict:
        return Check("language", False, conflict)
    if not languages:
        return Check("language", False, f"no language declared ({TASK_JSON} language or {CARD} language)")
    detector = FastLangDetector()
    problems, summary = [], []
    for name, table in (("queries", tables.queries), ("corpus", tables.corpus)):
        sample = _sample(table.column("text").to_pylist(), limits.language_sample)
        detected = Counter(lang for lang, _ in detector.detect(sample))
        match = sum(n for lang, n in detected.items() if lang in languages)
        share = match / max(1, len(sample))
        summary.append(f"{name} {match}/{len(sample)}")
        if share < limits.min_language_match:
            top = ", ".join(f"{lang} {n}" for lang, n in detected.most_common(3))
            problems.append(
                f"{name}: {match} of {len(sample)} sampled texts ({share:.0%}) are detected as "
                f"{'/'.join(languages)}, below {limits.min_language_match:.0%} (detected: {top})"
            )
    if problems:
        return Check("language", False, "; ".join(problems))
    return Check("language", True, f"declared {'/'.join(languages)}: {', '.join(summary)} sampled texts match")


def check_overlap(task_dir: Path, name: str, registry, limits: Limits, repo: str | None) -> Check:
    """registry: a ``hub.registry.Registry`` (None: not checked); see ``validate_task`` for ``repo``."""
    if registry is None:
        return Check("overlap", True, "no registry given: overlap with registered tasks not checked")
    computed: dict[str, Any] = {}

    def mine_as(folding: str):
        # Compared like with like: a registered task's fingerprints say how its texts were folded.
        key = "none" if folding == "none" else "folded"
        if key not in computed:
            computed[key] = compute_fingerprints(task_dir, **({"folding": "none"} if key == "none" else {}))
        return computed[key]

    problems, compared = [], 0
    for entry in registry.latest("task"):
        if repo is not None and entry.name == name and entry.repo != repo:
            problems.append(f"task name '{name}' is already registered from {entry.repo}")
        # Earlier versions of this very task are not compared: with a repo, those published there; without one
        # (a local check before submitting), those of the same name.
        if (entry.repo == repo) if repo is not None else (entry.name == name):
            continue
        theirs = registry.fingerprints(entry.name, entry.version)
        if theirs is None:
            continue
        compared += 1
        mine = mine_as(theirs.folding)
        for what, a, b in (("queries", mine.queries, theirs.queries), ("documents", mine.corpus, theirs.corpus)):
            if len(a) == 0 or len(b) == 0:
                continue
            hits = int(near_duplicate_mask(a, b, limits.overlap_jaccard).sum())
            if hits / len(a) > limits.max_overlap_fraction:
                problems.append(
                    f"{hits} of {len(a)} {what} ({hits / len(a):.1%}) are near-identical (MinHash Jaccard >= "
                    f"{limits.overlap_jaccard:g}) to {what} of registered task '{entry.name}' {entry.version} "
                    f"(> {limits.max_overlap_fraction:.0%})"
                )
    if problems:
        return Check("overlap", False, "; ".join(problems))
    return Check("overlap", True, f"no overlap above {limits.max_overlap_fraction:.0%} with {compared} registered task(s)")


def check_baselines(task_dir: Path, limits: Limits) -> Check:
    from ..evaluation.evaluate import evaluate_task

    scores = evaluate_task(task_dir, ["random", "bm25"])
    rnd, bm25 = scores["random"]["ndcg_at_10"], scores["bm25"]["ndcg_at_10"]
    problems = []
    if rnd > limits.max_random_ndcg:
        problems.append(
            f"random nDCG@10 is {rnd:.3f} (> {limits.max_random_ndcg:g}): the corpus is too small or too many "
            "documents are relevant for a ranking to mean anything"
        )
    if bm25 >= limits.max_bm25_ndcg:
        problems.append(f"BM25 nDCG@10 is {bm25:.3f} (>= {limits.max_bm25_ndcg:g}): the task is saturated by "
                        "word overlap")
    if problems:
        return Check("baselines", False, "; ".join(problems))
    return Check("baselines", True, f"random nDCG@10 {rnd:.3f}, BM25 nDCG@10 {bm25:.3f}")


def check_rules(task_dir: Path) -> list[Check]:
    """One check per quality rule of ``tasks.rules``, under the rule's own name."""
    from ..tasks.rules import check_quality_rules

    return [Check(r.rule, r.passed, r.message) for r in check_quality_rules(task_dir)]


__all__ = [
    "RULE_IDS",
    "Tables",
    "check_baselines",
    "check_declared_sizes",
    "check_ids",
    "check_language",
    "check_overlap",
    "check_rules",
    "check_schema",
]
