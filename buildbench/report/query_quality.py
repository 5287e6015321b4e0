"""Query quality of a build, on its final queries: whether they name their document's entity and period, how many
of each style the plan asked for and the task kept, how specific they are to their passage under the likelihood
judge, what the judge is and how far it is calibrated, what the qrels repair dropped and added, and a seeded sample
of queries with the fact each asks for.

``query_quality(rundir, config)`` computes it (``report.json``'s ``query_quality``); ``card_lines`` writes it as
the "Query quality" section of the retrieval task's dataset card (``write_card_section``). Query texts, facts and
passages are model-written or document text, so every one of them is escaped for Markdown and HTML in the card
(``hub.sanitize.escape_markdown``); the HTML report escapes them through its templates.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow.parquet as pq
from pydantic import ValidationError

from ..builders.context import GENERIC_WORDS, YEAR
from ..config import BuildConfig
from ..engine.rundir import RunDir
from ..generators.likelihood import read_scored, specificity
from ..generators.recipes.persona import keyword_only, keyword_style
from ..generators.recipes.facts import STOP_WORDS
from ..hub.sanitize import escape_markdown
from ..quality.repair import CANDIDATE, POSITIVE
from ..stages.common import short_hash
from ..tasks.assemble import set_card_section
from ..tasks.layout import shard_path

log = logging.getLogger("buildbench")

# The packaged calibration of the likelihood judge on human-labelled pairs (benchmarks/calibrate_likelihood.py).
CALIBRATION_FILE = Path(__file__).resolve().parent.parent / "quality" / "likelihood_calibration.json"
CARD_SECTION = "query_quality"
SAMPLE_SIZE = 10
PASSAGE_CHARS = 300
MIN_WORD_LETTERS = 3
LIKELIHOOD, LLM, NO_JUDGE = "likelihood", "llm", "none"
DROP_QUERY, ADD_QREL = "drop_query", "add_qrel"  # the repair's audit actions (quality.repair)
NOT_CALIBRATED = "not calibrated on human labels"

_WORD = re.compile(r"[^\W_]+")
_QUARTER = re.compile(r"\bQ([1-4])\b", re.IGNORECASE)
_ORDINALS = {"1": "first", "2": "second", "3": "third", "4": "fourth"}


class Slot(NamedTuple):
    """What the plan asked of one query: its persona and style, the fact, and its document's entity and period."""

    persona: str
    style: str
    fact: str
    entity: str
    period: str


# -- naming the document


def entity_words(entity: str) -> set[str]:
    """The distinctive words of an entity, lower-cased: not corporate suffixes ("Inc", "Bank") or stop words,
    at least three letters each. "Federal Reserve Bank of New York" -> {"federal", "york"}."""
    words = {w for w in _WORD.findall(entity.lower()) if sum(c.isalpha() for c in w) >= MIN_WORD_LETTERS}
    return {w for w in words if w not in GENERIC_WORDS and w not in STOP_WORDS}


def names_entity(query: str, words: set[str]) -> bool:
    return bool(words & set(_WORD.findall(query.lower())))


def period_patterns(period: str) -> list[re.Pattern]:
    """How a query can name a year or quarter of ``period``: "2025", "FY25", "'25"; "Q3", "3Q", "third quarter"."""
    out = []
    for year in sorted(set(YEAR.findall(period))):
        out.append(re.compile(rf"(?<!\d){year}(?!\d)|\bFY\s*['’]?{year[2:]}\b|['’]{year[2:]}\b", re.IGNORECASE))
    for q in sorted(set(_QUARTER.findall(period))):
        out.append(re.compile(rf"\bQ{q}\b|\b{q}Q\b|\b{_ORDINALS[q]}[\s-]+(?:fiscal\s+)?quarter\b", re.IGNORECASE))
    return out


def names_period(query: str, patterns: Sequence[re.Pattern]) -> bool:
    return any(p.search(query) for p in patterns)


def _share(named: int, of: int) -> dict[str, Any]:
    return {"named": named, "of": of, "share": round(named / of, 4) if of else None}


def _naming(queries: list[dict], slots: Mapping[str, Slot]) -> dict[str, Any]:
    """Shares of the planned queries that name their document's entity, its period, either; each share is over
    the queries whose plan knows that field (a document without a readable entity cannot be named)."""
    ent = per = either = n_ent = n_per = n_either = planned = 0
    for q in queries:
        slot = slots.get(q["id"])
        if slot is None:
            continue
        planned += 1
        words, patterns = entity_words(slot.entity), period_patterns(slot.period)
        e, p = names_entity(q["text"], words), names_period(q["text"], patterns)
        n_ent, n_per, n_either = n_ent + bool(words), n_per + bool(patterns), n_either + bool(words or patterns)
        ent, per, either = ent + e, per + p, either + (e or p)
    return {"planned": planned, "not_planned": len(queries) - planned, "entity": _share(ent, n_ent),
            "period": _share(per, n_per), "either": _share(either, n_either)}


# -- styles: what the plan asked for, what survived


def _styles(queries: list[dict], slots: Mapping[str, Slot]) -> list[dict[str, Any]]:
    """Plan slots and final queries per style, most planned first. The plan deals styles evenly; a style whose
    drafts fail their checks more often ends with fewer queries (on tatqa_dev, questions keep none), so a task's
    mix of styles is its own and shown as such. A question or request slot that kept no query of its style was
    written again as a keyword search (stages.generate_queries): ``restyled`` under its planned style, ``final``
    under the style it ended as. A query without a slot (YourBench) counts under its own style."""
    planned = Counter(s.style for s in slots.values())
    kept, restyled, final = Counter(), Counter(), Counter()
    for q in queries:
        own = q.get("style") or ""
        plan = slots[q["id"]].style if q["id"] in slots else own
        final[own] += 1
        (kept if plan == own else restyled)[plan] += 1
    return [{"style": st, "planned": planned[st], "kept": kept[st], "restyled": restyled[st], "final": final[st],
             "share_kept": round(kept[st] / planned[st], 4) if planned[st] else None}
            for st in sorted(planned.keys() | final.keys(), key=lambda st: (-planned[st], st))]


def lost_styles(styles: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The styles the plan asked for that kept no query (``_styles``' rows)."""
    return [s for s in styles if s.get("planned") and not s.get("kept")]


def _keyword_only_slots(slots: Mapping[str, Slot], config: BuildConfig | None) -> int:
    """How many slots the plan made keyword searches (``keyword_only``): only those of the pack's keyword style,
    since a pack without one keeps its dealt styles. Unknown pack: none is claimed."""
    keyword = keyword_style(config.domain) if config is not None else None
    return sum(s.style == keyword and keyword_only(s.entity, s.period) for s in slots.values()) if keyword else 0


def keyword_only_line(qq: Mapping[str, Any]) -> str:
    """Why the plan made some slots keyword searches (``generators.recipes.persona.keyword_only``)."""
    n, of = qq.get("keyword_only_slots") or 0, sum(s.get("planned", 0) for s in qq.get("styles") or [])
    return (f"{n} of the {of} planned slots are of documents that name no one and date no quarter or month: the plan "
            "makes them keyword searches, since a question or request there could single out its passage only by "
            "stating its answer.")


# -- specificity under the likelihood judge


def distribution(values: Sequence[float]) -> dict[str, Any]:
    """n and the 10th, 25th, 50th, 75th and 90th percentiles (linear interpolation), rounded to 4 decimals."""
    if not values:
        return {"n": 0}
    p10, p25, p50, p75, p90 = np.percentile(np.asarray(values, dtype=float), [10, 25, 50, 75, 90])
    return {"n": len(values), "p10": round(float(p10), 4), "p25": round(float(p25), 4),
            "median": round(float(p50), 4), "p75": round(float(p75), 4), "p90": round(float(p90), 4)}


def _likelihood(rundir: RunDir, final: set[str], threshold: float | None) -> tuple[dict, dict, dict[str, float]]:
    """Specificity and positive-PMI distributions over the final queries, and each query's specificity."""
    scored = read_scored(rundir.read("likelihoods")) if rundir.has_dataset("likelihoods") else []
    scored = [s for s in scored if s.query_id in final]
    spec = specificity(scored, POSITIVE, CANDIDATE)
    values = sorted(spec.values())
    spec_dist = distribution(values)
    if values:
        at_or_below = sum(v <= 0 for v in values) / len(values)
        spec_dist["share_at_or_below_zero"] = round(at_or_below, 4)
        spec_dist["meaning"] = (
            "Specificity is how much better, in nats per query token, a query's own passage explains it than the "
            f"best of its closest mined candidates; {at_or_below:.1%} of queries are at or below 0, where another "
            "passage explains the query as well as its own, so their single relevant passage may not be the only one.")
    positives = sorted(s.pmi for s in scored if s.kind == POSITIVE)
    pos_dist = distribution(positives)
    if positives and threshold is not None:
        below = sum(v < threshold for v in positives) / len(positives)
        pos_dist["share_below_threshold"] = round(below, 4)
        pos_dist["meaning"] = (
            "Positive PMI is how much a query's own passage raises its log-likelihood over no passage, per query "
            f"token; the judge calls a pair relevant from {threshold:+.2f}, and {below:.1%} of positives fall below.")
    return spec_dist, pos_dist, spec


# -- the judge


def _judge_kind(config: BuildConfig | None, rundir: RunDir) -> str:
    if config is not None:
        pack = config.domain
        return LLM if pack.recipes.judge else LIKELIHOOD if pack.likelihood.enabled else NO_JUDGE
    if rundir.has_dataset("likelihoods") and rundir.read("likelihoods").num_rows:
        return LIKELIHOOD
    return LLM if rundir.has_dataset("judgements") and rundir.read("judgements").num_rows else NO_JUDGE


def _in_build(rundir: RunDir) -> dict[str, Any]:
    """The judge's calibration on this build's controls (``judge_calibration``), or {} when the judge did not run."""
    if not rundir.has_dataset("judge_calibration"):
        return {}
    rows = rundir.read("judge_calibration").to_pylist()
    if not rows:
        return {}
    cal = json.loads(rows[0]["calibration"] or "{}")
    keep = ("positives", "controls", "true_positive_rate", "true_negative_rate", "balanced_accuracy")
    return {"trusted": bool(rows[0]["trusted"]), "why": rows[0]["why"], **{k: cal.get(k) for k in keep}}


def human_calibration(path: Path = CALIBRATION_FILE) -> dict[str, Any]:
    """The packaged human-label calibration of the likelihood judge, or ``{"calibrated": False, ...}``."""
    if not path.is_file():
        return {"calibrated": False, "note": NOT_CALIBRATED}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        oos = data.get("out_of_sample") or {}
        pairs = data.get("pairs") or {}
        return {"calibrated": True, "reference": str(data.get("reference") or ""),
                "model": str(data.get("model") or ""), "questions": data.get("questions"), "pairs": dict(pairs),
                "pairs_total": sum(pairs.values()),
                "threshold": data.get("threshold_pmi_per_token"), "balanced_accuracy": oos.get("balanced_accuracy"),
                "kappa": oos.get("kappa"), "fold_thresholds": list(oos.get("fold_thresholds") or []),
                "hard_pairs_balanced_accuracy": (data.get("hard_pairs_at_threshold") or {}).get("balanced_accuracy"),
                "positive_above_bm25_negative": data.get("positive_above_bm25_negative")}
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError) as exc:
        # The build is done by now: a broken packaged file costs this one line of the report, not the report.
        log.warning("%s is unreadable (%s): the judge is shown as %s", path, type(exc).__name__, NOT_CALIBRATED)
        return {"calibrated": False, "note": f"{NOT_CALIBRATED} ({path.name} is unreadable)"}


def _judge(kind: str, config: BuildConfig | None, rundir: RunDir, calibration: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, "in_build": _in_build(rundir)}
    if config is not None and kind == LIKELIHOOD:
        model = config.domain.likelihood.model
        # A local .gguf path says where the builder keeps files, not which model: the card shows its name only.
        out.update(model=Path(model).name if model.endswith(".gguf") else model,
                   threshold=config.domain.likelihood.threshold)
    elif config is not None and kind == LLM:
        out["relevant_label"] = config.domain.repair.relevant_label
    if kind == LIKELIHOOD:
        human = human_calibration(calibration)
        if human.get("calibrated") and out.get("threshold") is not None and human.get("threshold") is not None:
            human["threshold_matches_config"] = abs(float(human["threshold"]) - float(out["threshold"])) < 1e-6
        out["human_labels"] = human
    return out


# -- the repair, the sample


def _repair(rundir: RunDir) -> dict[str, dict[str, int]]:
    rows = rundir.read("audit").to_pylist() if rundir.has_dataset("audit") else []
    dropped = Counter(r["reason"] for r in rows if r["action"] == DROP_QUERY)
    added = Counter(r["reason"] for r in rows if r["action"] == ADD_QREL)
    return {"queries_dropped": dict(sorted(dropped.items())), "positives_added": dict(sorted(added.items()))}


def _passages(rundir: RunDir, ids: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if ids and rundir.has_dataset("chunks"):
        for table in rundir.iter_shards("chunks"):
            for pid, text in zip(table["id"].to_pylist(), table["text"].to_pylist()):
                if pid in ids:
                    out[pid] = text
    return out


def _cut(text: str, limit: int = PASSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sample(rundir: RunDir, queries: list[dict], slots: Mapping[str, Slot], spec: Mapping[str, float],
            seed: int) -> list[dict[str, Any]]:
    """``SAMPLE_SIZE`` final queries, the same ones for the same seed and queries, in id order."""
    by_id = {q["id"]: q for q in queries}
    ids = sorted(random.Random(f"query_quality:{seed}").sample(sorted(by_id), min(SAMPLE_SIZE, len(by_id))))
    first = {i: (by_id[i].get("chunk_ids") or [""])[0] for i in ids}
    passages = _passages(rundir, {p for p in first.values() if p})
    out = []
    for i in ids:
        q, slot = by_id[i], slots.get(i)
        out.append({"id": i, "text": q["text"], "planned": slot is not None,
                    "persona": slot.persona if slot else q.get("persona") or "",
                    "style": slot.style if slot else q.get("style") or "",
                    "fact": (slot.fact if slot else "") or q.get("answer") or "",
                    "positive_id": first[i], "positive_text": _cut(passages.get(first[i], "")),
                    "specificity": spec.get(i)})
    return out


# -- entry points


def _plan(rundir: RunDir) -> dict[str, Slot]:
    """Plan slots by the id of the query written for them (``"q-" + short_hash(slot_id)``, generate_queries)."""
    if not rundir.has_dataset("plan"):
        return {}
    slots = {}
    for table in rundir.iter_shards("plan"):
        cols = {c: table[c].to_pylist() if c in table.column_names else [""] * table.num_rows
                for c in ("slot_id", "persona", "style", "fact", "entity", "period")}
        for j, slot_id in enumerate(cols["slot_id"]):
            slots[f"q-{short_hash(slot_id)}"] = Slot(*(cols[c][j] or "" for c in Slot._fields))
    return slots


def config_of(manifest: Mapping[str, Any]) -> BuildConfig | None:
    """The build's config as its manifest stores it (URLs redacted, which the report does not read), or None."""
    try:
        return BuildConfig.model_validate(manifest.get("config"))
    except (ValidationError, TypeError, ValueError):
        return None


def query_quality(rundir: RunDir, config: BuildConfig | None, calibration: Path = CALIBRATION_FILE
                  ) -> dict[str, Any]:
    """The query-quality numbers of a run's final queries (``final_queries``); {} before the qrels repair ran.
    ``config`` None (unknown): the judge is read from the run's datasets and the sample seeded with 0."""
    if not rundir.has_dataset("final_queries"):
        return {}
    table = rundir.read("final_queries")
    keep = [c for c in ("id", "text", "chunk_ids", "persona", "style", "answer") if c in table.column_names]
    queries = table.select(keep).to_pylist()
    slots = _plan(rundir)
    kind = _judge_kind(config, rundir)
    judge = _judge(kind, config, rundir, calibration)
    spec_dist, pos_dist, spec = _likelihood(rundir, {q["id"] for q in queries}, judge.get("threshold"))
    return {
        "queries": len(queries),
        "naming": _naming(queries, slots),
        "styles": _styles(queries, slots),
        "keyword_only_slots": _keyword_only_slots(slots, config),
        "specificity": spec_dist,
        "positive_pmi": pos_dist,
        "relevance_judge": judge,
        "repair": _repair(rundir),
        "sample": _sample(rundir, queries, slots, spec, config.seed if config is not None else 0),
    }


# -- the card section


def _pct(share: Any) -> str:
    return f"{share:.1%}" if isinstance(share, (int, float)) else "n/a"


def _num(value: Any, fmt: str = "{:+.2f}") -> str:
    return fmt.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def judge_lines(judge: Mapping[str, Any], esc: Callable[[Any], str] = str) -> list[str]:
    """The judge in a few sentences, for the card and the HTML report; ``esc`` escapes every value read from
    the run or the calibration file (the card's Markdown escaping; the HTML templates escape whole lines)."""
    kind = judge.get("kind")
    if kind == LIKELIHOOD:
        lines = [(f"Query-likelihood judge ({esc(judge.get('model', 'model not recorded'))}), relevant from "
                  f"{_num(judge.get('threshold'))} nats per query token (PMI).")]
    elif kind == LLM:
        lines = [f"LLM judge, relevant from label {esc(judge.get('relevant_label', 'n/a'))} on a 0-3 scale."]
    else:
        lines = ["No relevance judge ran: qrels were not repaired on judgements."]
    cal = judge.get("in_build") or {}
    if cal:
        lines.append(f"On this build's controls: balanced accuracy {_num(cal.get('balanced_accuracy'), '{:.2f}')} "
                     f"({esc(cal.get('positives'))} positives, {esc(cal.get('controls'))} controls); "
                     f"{'trusted' if cal.get('trusted') else 'not trusted'}: {esc(cal.get('why') or '')}.")
    human = judge.get("human_labels")
    if isinstance(human, Mapping):
        if human.get("calibrated"):
            line = (f"On human labels ({esc(human.get('reference'))}, {esc(human.get('pairs_total'))} pairs of "
                    f"{esc(human.get('questions'))} questions): out-of-sample balanced accuracy "
                    f"{_num(human.get('balanced_accuracy'), '{:.2f}')}, kappa {_num(human.get('kappa'), '{:.2f}')}; "
                    f"calibrated threshold {_num(human.get('threshold'))}")
            if human.get("threshold_matches_config") is False:
                line += " (this build's threshold differs)"
            lines.append(line + ".")
        else:
            lines.append(esc(str(human.get("note") or NOT_CALIBRATED).capitalize()) + ".")
    return lines


def _dist_row(name: str, dist: Mapping[str, Any], extra: str) -> str:
    cells = [name, str(dist.get("n", 0))] + [_num(dist.get(k)) for k in ("p10", "p25", "median", "p75", "p90")]
    return "| " + " | ".join(cells + [_pct(dist.get(extra))]) + " |"


def card_lines(qq: Mapping[str, Any]) -> list[str]:
    """The "Query quality" section of the card; every text that came from a model or a document is escaped."""
    naming, repair = qq.get("naming") or {}, qq.get("repair") or {}
    md = escape_markdown
    lines = ["## Query quality", "",
             (f"Measured on the {qq.get('queries', 0)} final queries ({naming.get('planned', 0)} planned, "
              f"{naming.get('not_planned', 0)} not planned, e.g. YourBench questions)."), "",
             "| Queries that name their document's | Share | Named / known |", "|---|---|---|"]
    for key, name in (("entity", "entity"), ("period", "period (a year or quarter)"), ("either", "entity or period")):
        s = naming.get(key) or {}
        lines.append(f"| {name} | {_pct(s.get('share'))} | {s.get('named', 0)} / {s.get('of', 0)} |")
    styles = qq.get("styles") or []
    if styles:
        lines += ["", "### Styles", "",
                  "| Style | Planned slots | Kept in its style | Kept | Written as keyword searches | Final queries |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {md(s.get('style') or 'none')} | {s.get('planned', 0)} | {s.get('kept', 0)} | "
                  f"{_pct(s.get('share_kept'))} | {s.get('restyled', 0)} | {s.get('final', s.get('kept', 0))} |"
                  for s in styles]
        if any(s.get("restyled") for s in styles):
            lines += ["", "A slot of another style whose drafts all failed their checks was written again as a keyword "
                          "search about a fact of its passage that states a figure."]
        lost = lost_styles(styles)
        lines += [""] * bool(lost) + [f"No {md(s.get('style'))} query passed its checks ({s.get('planned')} planned): "
                                      "the task has none of that style." for s in lost]
        lines += ["", keyword_only_line(qq)] if qq.get("keyword_only_slots") else []
    lines += ["", "### Specificity", ""]
    spec, pos = qq.get("specificity") or {}, qq.get("positive_pmi") or {}
    if spec.get("n") or pos.get("n"):
        lines += ["| Nats per query token | n | p10 | p25 | median | p75 | p90 | share |",
                  "|---|---|---|---|---|---|---|---|",
                  _dist_row("specificity (share ≤ 0)", spec, "share_at_or_below_zero"),
                  _dist_row("positive PMI (share below threshold)", pos, "share_below_threshold"), ""]
        lines += [d["meaning"] for d in (spec, pos) if d.get("meaning")]  # our sentence around numbers
    else:
        lines.append("No likelihood scores: the query-likelihood judge did not run.")
    judge = judge_lines(qq.get("relevance_judge") or {}, md)
    lines += ["", "### Judge", "", *[f"- {line}" for line in judge], "",
              "### Qrels repair", "", "| Action | Reason | Count |", "|---|---|---|"]
    rows = [("query dropped", r, n) for r, n in (repair.get("queries_dropped") or {}).items()]
    rows += [("positive added", r, n) for r, n in (repair.get("positives_added") or {}).items()]
    lines += [f"| {a} | {md(r)} | {n} |" for a, r, n in rows] or ["| none | | 0 |"]
    lines += ["", "### Sample queries", "",
              "| Query | Persona | Style | Fact asked for | Positive passage (start) | Specificity |",
              "|---|---|---|---|---|---|"]
    for s in qq.get("sample") or []:
        cells = [md(s.get(k), None) for k in ("text", "persona", "style", "fact", "positive_text")]
        lines.append("| " + " | ".join([c or "-" for c in cells] + [_num(s.get("specificity"))]) + " |")
    return lines + [""]


def write_card_section(rundir: RunDir, qq: Mapping[str, Any]) -> bool:
    """Add or replace the "Query quality" section of the card of the run's retrieval task; only when that task
    holds exactly the final queries measured (a task left from an earlier build of other queries keeps its card)."""
    queries = shard_path(rundir.task_dir, "queries")
    if not qq or not queries.is_file() or not (rundir.task_dir / "README.md").is_file():
        return False
    in_task = set(pq.read_table(queries, columns=["id"])["id"].to_pylist())
    if in_task != set(rundir.read("final_queries")["id"].to_pylist()):
        log.info("%s holds other queries than this run's final ones: its card keeps no query-quality section",
                 rundir.task_dir)
        return False
    set_card_section(rundir.task_dir, CARD_SECTION, card_lines(qq))
    return True
