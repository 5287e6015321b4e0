"""Qrels repair after mining and judging, with AIR-Bench's rules and a per-query audit log.

AIR-Bench's rules, applied with the judge's labels (0-3; ``relevant_label`` and up is relevant):

- a query whose labelled positive is judged not relevant is dropped (the query drifted off its passage);
- a generated (LLM-written) hard negative judged relevant is removed from the corpus;
- a pooled corpus document judged relevant is added to the qrels (a false negative caught);
- a query that more pooled documents are judged relevant to than ``max_added_positives`` is dropped as vague
  (it fits many passages, so any single qrel is a guess).

And one of this project's: a question or request its positive explains only weakly (the likelihood judge's score,
under its threshold plus ``RepairConfig.request_margin``) is dropped (``weakly_explained``). A small writer's
garbled or generic questions ("What was the impact of the 14.6% CET1 ratio on the Company's financial
position?") are still about their passage, but less so. Read on the 107 labelled questions and requests of the
sample and tatqa_dev builds of seeds 0-3 (benchmarks/query_labels/), the 8 under threshold + 0.4 were 6 wrong or
vague; then on the 36 of seeds 4 and 5, not read for it: 6 under it, all 6 wrong or vague. A keyword search copies
its passage's names and figures, so its score alone says little (AUC 0.55 on 361 labelled). Where its document
names no one, a figure is all that ties it to its passage: one another paragraph explains within 0.4 nats/token
of its positive (``weakly_specific``) says of its figure what another passage says ("net sales to $1.7 million" of
an increase in net sales). Of the 138 labelled searches of four such tatqa_dev builds (72% good), the 26 under that
lead were 16 wrong, 1 vague, 9 good; on two fresh draws not read for it, 5 good and 4 wrong. Searches of named
documents, whose closest passages are their own other chunks, were as good under it as above (57 of 71).

A judge is only as good as its model. A 135M model asked "does this passage answer the query?" may say yes
to everything, and acting on that would corrupt the qrels it is meant to repair. So the judge is calibrated
first on control pairs: each query's own positive (expected relevant) and a random passage from another
document (expected not relevant). The balanced accuracy on those decides whether its verdicts are acted on
(``RepairConfig.trust_judge="auto"``). Whatever the judge, a pooled document that nearly duplicates the
positive (same words, same numbers) is added to the qrels: FOMC statements repeat paragraphs across meetings,
and a query answered by one copy is answered by the other. So is one that holds the query's cited fact word for
word: overlapping chunks repeat sentences, and a query written to ask for a sentence is answered wherever it is.
And so is a chunk of the positive's own document that scores too close to the positive to be a safe negative and
holds every word of a keyword search naming no figure, month or quarter (``quality.support.topic_stems``): "Ostmark
Bank Group RWA 2025" asks for a measure both chunks of that Pillar 3 disclosure give, so a single qrel would be a
guess between them. And so is a passage of any document of the positive's entity that writes a keyword search's
figures as it does and holds every word it asks with (``quality.support.figure_search``): "Tidewater Energy
Partners $0.765 per unit" is answered by the earnings call and by the risk factors, which both give the
distribution.

Every decision, including "kept" and "not acted on because the judge is not trusted", goes to the audit log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Collection, Mapping, Optional, Sequence

import pyarrow as pa

from ..builders.chunking import split_sentences
from ..domain_pack import RepairConfig
from ..labels.decide import Decision
from ..labels.store import ANSWERS, MISSED_POSITIVE, VAGUE, WRONG
from .base import words
from .form import SENTENCE_FORMS
from .numbers import figures as number_figures, numbers, numbers_differ
from .mining import NEGATIVE, POOL, SYNTHETIC, TOO_CLOSE, SKIPPED_TOP, Candidate
from .support import singular_stems, written_figures

# Kinds of judged pairs.
POSITIVE, CANDIDATE, CONTROL = "positive", "candidate", "control"
# Why a candidate joins the qrels whatever the judge says.
DUPLICATE_OF_POSITIVE, HOLDS_CITED_FACT = "duplicate_of_positive", "holds_cited_fact"
SAME_DOCUMENT_TOPIC, SAME_ENTITY_FIGURE = "same_document_topic", "same_entity_figure"
# A cited fact shorter than this (a heading, a fragment) says too little to make a passage that holds it relevant.
MIN_CITED_WORDS = 6


@dataclass(frozen=True)
class Verdict:
    """One judged (query, passage) pair."""

    query_id: str
    passage_id: str
    kind: str  # positive / candidate / control
    label: int


@dataclass(frozen=True)
class Answerability:
    query_id: str
    self_contained: bool
    clear_intent: bool
    reason: str = ""


@dataclass
class AuditEntry:
    query_id: str
    action: str  # drop_query / add_qrel / remove_negative / exclude_candidate / keep_negative / keep_query
    reason: str
    passage_id: str = ""
    detail: str = ""
    decided_by: str = "build"  # build (rules and the judge) or human (people's labels)


AUDIT_SCHEMA = pa.schema([("query_id", pa.string()), ("stage", pa.string()), ("action", pa.string()),
                          ("reason", pa.string()), ("passage_id", pa.string()), ("detail", pa.string()),
                          ("decided_by", pa.string())])
HUMAN = "human"


@dataclass
class Calibration:
    positives: int = 0
    controls: int = 0
    true_positive_rate: Optional[float] = None  # positives labelled relevant
    true_negative_rate: Optional[float] = None  # controls labelled not relevant
    balanced_accuracy: Optional[float] = None
    trusted: bool = False
    why: str = ""
    on: str = "controls"  # what the rates were measured on: controls, or human labels
    labelled: int = 0  # human-labelled queries the judge also labelled (calibration on human labels)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# Human labels replace the controls ("auto") once this many labelled queries say the positive answers and this
# many say it does not: fewer would make either rate a guess.
MIN_HUMAN_ANSWERS, MIN_HUMAN_WRONG = 10, 3


def calibrate(verdicts: Sequence[Verdict], cfg: RepairConfig,
              human: Optional[Mapping[str, Decision]] = None) -> Calibration:
    pos = [v.label >= cfg.relevant_label for v in verdicts if v.kind == POSITIVE]
    ctl = [v.label < cfg.relevant_label for v in verdicts if v.kind == CONTROL]
    cal = Calibration(positives=len(pos), controls=len(ctl))
    judged: dict[str, int] = {}
    for v in verdicts:
        if v.kind == POSITIVE:
            judged[v.query_id] = max(v.label, judged.get(v.query_id, v.label))
    people = [(judged[q] >= cfg.relevant_label, d.label in ANSWERS) for q, d in (human or {}).items() if q in judged]
    yes = [j for j, answers in people if answers]
    no = [not j for j, answers in people if not answers]
    enough = len(yes) >= MIN_HUMAN_ANSWERS and len(no) >= MIN_HUMAN_WRONG
    if cfg.calibrate_on == "labels" and yes and no or cfg.calibrate_on == "auto" and enough:
        cal.on, cal.labelled = "human labels", len(people)
        pos, ctl = yes, no
    if pos and ctl:
        cal.true_positive_rate = round(sum(pos) / len(pos), 4)
        cal.true_negative_rate = round(sum(ctl) / len(ctl), 4)
        cal.balanced_accuracy = round((cal.true_positive_rate + cal.true_negative_rate) / 2, 4)
    what = (f"{len(yes)} queries people say their positive answers and {len(no)} it does not"
            if cal.on != "controls" else f"{len(pos)} positives and {len(ctl)} controls")
    if cfg.trust_judge != "auto":
        cal.trusted = cfg.trust_judge == "always"
        cal.why = f"trust_judge={cfg.trust_judge}"
    elif cal.balanced_accuracy is None:
        cal.why = "no judged positives and controls to calibrate on"
    else:
        cal.trusted = cal.balanced_accuracy >= cfg.min_judge_accuracy
        cal.why = (f"balanced accuracy {cal.balanced_accuracy:.2f} on {what} "
                   f"{'>=' if cal.trusted else '<'} {cfg.min_judge_accuracy:.2f}")
    return cal


def containment(part: str, whole: str, n: int = 3) -> float:
    """Share of ``part``'s word n-grams found in ``whole``."""
    gp, gw = _grams(part, n), _grams(whole, n)
    return len(gp & gw) / len(gp) if gp else 0.0


def _grams(text: str, n: int) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


@dataclass
class RepairResult:
    kept_queries: list[str]
    qrels: list[tuple[str, str, int]]  # (query id, corpus id, score)
    hard_negatives: dict[str, list[str]]  # query id -> negatives, closest first (synthetic ones included)
    removed_synthetic: list[str]
    audit: list[AuditEntry]
    calibration: Calibration
    stats: Counter = field(default_factory=Counter)


def repair(
    query_ids: Sequence[str],
    positives: Mapping[str, Sequence[str]],
    candidates: Sequence[Candidate],
    texts: Mapping[str, str],
    verdicts: Sequence[Verdict] = (),
    answerability: Sequence[Answerability] = (),
    cfg: Optional[RepairConfig] = None,
    human: Optional[Mapping[str, Decision]] = None,
    citations: Optional[Mapping[str, Sequence[str]]] = None,
    weak: Optional[Mapping[str, tuple[str, str]]] = None,
    topics: Optional[Mapping[str, frozenset[str]]] = None,
    documents: Optional[Mapping[str, str]] = None,
    figures: Optional[Mapping[str, tuple[frozenset[str], frozenset[str]]]] = None,
    entities: Optional[Mapping[str, str]] = None,
    counts: Optional[Mapping[str, frozenset[str]]] = None,
) -> RepairResult:
    """Apply the rules. ``texts`` maps corpus ids (positives and candidates) to their text.

    ``human``: people's decisions by query (``buildbench.labels``). They come first: a query people called
    wrong or vague leaves, one they called good or a missed positive stays whatever the judge said, and the
    passage a missed positive names joins the qrels. Every such decision is audited as a human one.

    ``citations``: query id -> the sentences it was written to ask for (answer-first); a candidate that holds one
    word for word answers the query too.

    ``weak``: query id -> (reason, why) the judge finds its positive explains it too weakly for its form
    (``weakly_explained``) or hardly better than another passage (``weakly_specific``); acted on as the judge's
    other verdicts are.

    ``topics``: query id -> the words it asks with when it names no figure, month or quarter (``topic_stems``);
    with ``documents`` (passage id -> its document), a chunk of a positive's document that holds them all and scores
    too close to the positive to be a safe negative answers the query too.

    ``figures``: query id -> the figures a keyword search writes and the words it asks with (``figure_search``);
    with ``entities`` (passage id -> its document's entity, ``entity_key``), a passage of the positive's entity that
    writes those figures and holds those words in one sentence answers the query too.

    ``counts``: query id -> the numbers a keyword search states without a unit ("24 stores"); like its written
    figures, a passage that never writes them does not answer it, whatever the judge says."""
    cfg = cfg or RepairConfig()
    human, weak = human or {}, weak or {}
    cited = {q: [c for c in map(_phrase, cs) if c.count(" ") + 1 >= MIN_CITED_WORDS]
             for q, cs in (citations or {}).items()}
    topics, documents = topics or {}, documents or {}
    figures, entities, counts = figures or {}, entities or {}, counts or {}
    phrases: dict[str, str] = {}  # a passage pooled for many queries is normalised once
    stems: dict[str, set[str]] = {}
    written: dict[str, frozenset[str]] = {}
    stated: dict[str, set[str]] = {}

    def phrase(pid: str) -> str:
        if pid not in phrases:
            phrases[pid] = _phrase(texts[pid])
        return phrases[pid]

    def holds_topic(pid: str, topic: frozenset[str]) -> bool:
        if pid not in stems:
            stems[pid] = singular_stems(texts[pid])
        return topic <= stems[pid]

    def writes(pid: str, wanted: frozenset[str]) -> bool:
        if pid not in written:
            written[pid] = written_figures(texts[pid])
        return wanted <= written[pid]

    def states(pid: str, wanted: frozenset[str]) -> bool:
        if pid not in stated:
            stated[pid] = number_figures(texts[pid])
        return wanted <= stated[pid]

    def holds_figures(pid: str, wanted: tuple[frozenset[str], frozenset[str]]) -> bool:
        # In one sentence: the February statement's "4.6 percent" (the unemployment rate) and its "inflation" two
        # sentences on do not answer "Central Bank of Veloria 4.6 percent inflation 2025" (seed 28).
        if not (writes(pid, wanted[0]) and holds_topic(pid, wanted[1])):
            return False
        text = texts[pid]
        return any(wanted[0] <= written_figures(text[a:b]) and wanted[1] <= singular_stems(text[a:b])
                   for a, b in split_sentences(text))

    cal = calibrate(verdicts, cfg, human)
    act = cfg.enabled and cal.trusted
    label = {(v.query_id, v.passage_id): v.label for v in verdicts if v.kind in (POSITIVE, CANDIDATE)}
    fit = {a.query_id: a for a in answerability}
    audit: list[AuditEntry] = []
    stats: Counter = Counter()
    by_query: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_query.setdefault(c.query_id, []).append(c)

    kept, qrels, negatives, removed = [], [], {}, []
    for q in query_ids:
        pos = list(positives.get(q, ()))
        person = human.get(q)
        if person is not None and person.label in (WRONG, VAGUE):
            audit.append(AuditEntry(q, "drop_query", f"human_{person.label}", pos[0] if pos else "",
                                    person.detail, HUMAN))
            stats[f"queries_dropped.human_{person.label}"] += 1
            continue
        drop = _drop_reason(q, pos, label, fit.get(q), cfg) if cfg.enabled else None
        if drop is None and cfg.enabled and q in weak:
            drop = weak[q]
        # Why each pooled candidate answers the query as its positive does (None: it does not), once per pair:
        # the vague rule and the qrels below both read it.
        own = {documents[p] for p in pos if p in documents} if topics.get(q) else set()
        kin = {entities[p] for p in pos if entities.get(p)} if figures.get(q) else set()
        same = {c.passage_id: _same_answer(c, pos, texts, cfg, cited.get(q, ()), phrase)
                or _same_topic(c, own, topics.get(q), documents, holds_topic)
                or _same_figure(c, kin, figures.get(q), entities, holds_figures)
                for c in by_query.get(q, []) if c.decision != SYNTHETIC} if cfg.enabled else {}
        # A search that writes a figure ("... 250 million cubic feet per day capacity") is not answered by a
        # passage that does not, whatever the judge says: it read the risk factors' 420 million cubic feet per day
        # of expiring commitments as relevant to a search for a plant's 250 million (seed 27). Nor by one that never
        # states a number the search gives without a unit: "Meridian Retail Holdings 24 stores 2025" of a risk-factor
        # chunk on its 512 stores (seeds 0 and 22).
        wanted, bare = figures[q][0] if q in figures else frozenset(), counts.get(q, frozenset())
        other_figure = {c.passage_id for c in by_query.get(q, [])
                        if (wanted and not writes(c.passage_id, wanted)) or (bare and not states(c.passage_id, bare))}
        if drop is None and cfg.enabled:
            drop = _vague(q, by_query.get(q, []), label, cfg, same, other_figure)
        if person is not None:
            overrides = f"; overrides the build's {drop[0]} ({drop[1]})" if drop is not None else ""
            audit.append(AuditEntry(q, "keep_query", f"human_{person.label}", pos[0] if pos else "",
                                    person.detail + overrides, HUMAN))
            stats["queries_kept.human"] += 1
            drop = None
        if drop is not None:
            reason, detail = drop
            if act:
                audit.append(AuditEntry(q, "drop_query", reason, pos[0] if pos else "", detail))
                stats[f"queries_dropped.{reason}"] += 1
                continue
            audit.append(AuditEntry(q, "keep_query", "judge_not_trusted", pos[0] if pos else "",
                                    f"judge says {reason} ({detail}); not acted on: {cal.why}"))
            stats[f"not_acted.{reason}"] += 1
        kept.append(q)
        qrels += [(q, p, 1) for p in pos]
        negs: list[str] = []
        named = set(person.passages) if person is not None and person.label == MISSED_POSITIVE else set()
        for p in sorted(named - set(pos)):
            qrels.append((q, p, 1))
            audit.append(AuditEntry(q, "add_qrel", "human_missed_positive", p, person.detail, HUMAN))
            stats["false_negatives.human_missed_positive"] += 1
        for c in sorted(by_query.get(q, []), key=lambda c: c.rank):
            if c.passage_id in named:
                continue
            verdict = label.get((q, c.passage_id))
            judged_relevant = verdict is not None and verdict >= cfg.relevant_label
            if c.decision == SYNTHETIC:
                if judged_relevant and act:
                    removed.append(c.passage_id)
                    audit.append(AuditEntry(q, "remove_negative", "synthetic_negative_relevant", c.passage_id,
                                            f"judge label {verdict}: the LLM-written negative answers the query"))
                    stats["synthetic_removed"] += 1
                else:
                    negs.append(c.passage_id)
                continue
            answers = same.get(c.passage_id)
            if answers is not None:
                qrels.append((q, c.passage_id, 1))
                audit.append(AuditEntry(q, "add_qrel", answers[0], c.passage_id, answers[1]))
                stats[f"false_negatives.{answers[0]}"] += 1
                continue
            if judged_relevant and act and c.passage_id in other_figure:
                audit.append(AuditEntry(q, "exclude_candidate", "judged_relevant_other_figure", c.passage_id,
                                        f"judge label {verdict}, but it does not write "
                                        f"{', '.join(sorted(wanted | bare))}, which the search names"))
                stats["excluded.judged_relevant_other_figure"] += 1
                continue
            if judged_relevant and act:
                qrels.append((q, c.passage_id, 1))
                audit.append(AuditEntry(q, "add_qrel", "judged_relevant", c.passage_id,
                                        f"judge label {verdict}; score ratio {c.ratio:.2f} to the positive "
                                        f"({', '.join(c.found_by)})"))
                stats["false_negatives.judged_relevant"] += 1
                continue
            if c.decision in (TOO_CLOSE, SKIPPED_TOP):
                why = (f"score {c.score:.3f} is {c.ratio:.2f} of the positive's {c.positive_score:.3f}"
                       if c.decision == TOO_CLOSE else f"rank {c.rank} is within skip_top")
                if verdict is not None:
                    why += f"; judge label {verdict}" + ("" if act else " (judge not trusted)")
                audit.append(AuditEntry(q, "exclude_candidate", c.decision, c.passage_id, why))
                stats[f"excluded.{c.decision}"] += 1
                continue
            if judged_relevant:  # relevant by an untrusted judge: not a label, but not a safe negative either
                audit.append(AuditEntry(q, "exclude_candidate", "judged_relevant_untrusted", c.passage_id,
                                        f"judge label {verdict}; {cal.why}"))
                stats["excluded.judged_relevant_untrusted"] += 1
                continue
            if c.decision == NEGATIVE:
                negs.append(c.passage_id)
                if verdict is not None:
                    audit.append(AuditEntry(q, "keep_negative", "judged_not_relevant", c.passage_id,
                                            f"judge label {verdict}; score ratio {c.ratio:.2f}"))
            elif c.decision == POOL:
                pass
        negatives[q] = negs
        stats["hard_negatives"] += len(negs)
    stats["false_negatives_added"] = sum(v for k, v in stats.items() if k.startswith("false_negatives."))
    return RepairResult(kept, qrels, negatives, removed, audit, cal, stats)


def weakly_explained(pmi: Mapping[str, float], forms: Mapping[str, Optional[str]], floor: float
                     ) -> dict[str, tuple[str, str]]:
    """The questions and requests (by ``forms``, query id -> its style's form) whose positive explains them by
    less than ``floor`` nats per token (``pmi``, query id -> its best positive's score), each with why."""
    return {q: ("weakly_explained", f"its positive explains this {forms[q]} by {p:+.2f} nats/token, under the "
                f"{floor:+.2f} a {forms[q]} needs")
            for q, p in sorted(pmi.items()) if forms.get(q) in SENTENCE_FORMS and p < floor}


def weakly_specific(lead: Mapping[str, float], searches: Collection[str], margin: float
                    ) -> dict[str, tuple[str, str]]:
    """The ``searches`` whose positive explains them by under ``margin`` nats per token more than their closest
    scored candidate (``lead``: ``generators.likelihood.specificity``), each with why."""
    return {q: ("weakly_specific", f"its positive explains this search by only {d:+.2f} nats/token more than the "
                f"closest other passage, under the {margin:+.2f} a search of a document naming no one needs")
            for q, d in sorted(lead.items()) if q in searches and d < margin}


def _drop_reason(q: str, pos: list[str], label: Mapping, fit: Optional[Answerability],
                 cfg: RepairConfig) -> Optional[tuple[str, str]]:
    labels = [label[(q, p)] for p in pos if (q, p) in label]
    if labels and max(labels) < cfg.relevant_label:
        return "positive_not_relevant", f"judge label {max(labels)} < {cfg.relevant_label} for its positive"
    if fit is not None and cfg.answerability:
        if not fit.self_contained:
            return "not_self_contained", fit.reason or "judge: needs context it does not give"
        if not fit.clear_intent:
            return "unclear_intent", fit.reason or "judge: what it asks for is unclear"
    return None


def _vague(q: str, candidates: Sequence[Candidate], label: Mapping, cfg: RepairConfig,
           same: Mapping[str, Optional[tuple[str, str]]], other_figure: frozenset[str] | set[str] = frozenset()
           ) -> Optional[tuple[str, str]]:
    """A query that more pooled passages answer than a repair may add is vague: its qrels would be a guess.
    Copies of the positive, or of the fact it cites (``same``), do not count: a repeated paragraph answers the
    same query; nor do passages that do not write the figure a search names (``other_figure``)."""
    relevant = [c.passage_id for c in candidates
                if c.decision != SYNTHETIC and label.get((q, c.passage_id), -1) >= cfg.relevant_label
                and same.get(c.passage_id) is None and c.passage_id not in other_figure]
    if len(relevant) > cfg.max_added_positives:
        return "vague", (f"{len(relevant)} pooled passages judged relevant besides its positive "
                         f"(more than {cfg.max_added_positives}): {', '.join(relevant[:5])}")
    return None


def _same_answer(c: Candidate, positives: list[str], texts: Mapping[str, str], cfg: RepairConfig,
                 cited: Sequence[str], phrase: Callable[[str], str]) -> Optional[tuple[str, str]]:
    """Why candidate ``c`` answers the query as its positive does (a copy of the positive, or the cited fact
    word for word), as (reason, detail); None when it does not. ``phrase``: a passage id's normalised words."""
    dup = _duplicate_of(c, positives, texts, cfg)
    if dup is not None:
        return DUPLICATE_OF_POSITIVE, dup
    if cited and c.passage_id in texts:
        body = f" {phrase(c.passage_id)} "
        for fact in cited:
            if f" {fact} " in body:
                return HOLDS_CITED_FACT, f"it holds the cited fact word for word: {fact[:80]!r}"
    return None


def _same_topic(c: Candidate, own: set[str], topic: Optional[frozenset[str]], documents: Mapping[str, str],
                holds_topic: Callable[[str, frozenset[str]], bool]) -> Optional[tuple[str, str]]:
    """(reason, detail) when candidate ``c``, too close to the positive to be a safe negative, is a chunk of a
    positive's document (``own``) holding every word of a query that names no figure, month or quarter (``topic``);
    None otherwise. Read on the 25 distinct chunks six labelled sample builds would add without the first condition:
    14 of the 16 too close to the positive hold what the query asks (2 only mention it), against 2 of the 9 scored
    lower ("Corvid Airlines Group aircraft fuel expense 2025" of the revenue chunk's "CASM excluding fuel")."""
    if (not topic or c.decision != TOO_CLOSE or documents.get(c.passage_id) not in own
            or not holds_topic(c.passage_id, topic)):
        return None
    return SAME_DOCUMENT_TOPIC, (f"a chunk of its positive's document, scored {c.ratio:.2f} of the positive, holding "
                                 f"every word it asks with ({', '.join(sorted(topic))}), and it names no figure, month "
                                 "or quarter that tells the two apart")


def _same_figure(c: Candidate, kin: set[str], wanted: Optional[tuple[frozenset[str], frozenset[str]]],
                 entities: Mapping[str, str],
                 holds: Callable[[str, tuple[frozenset[str], frozenset[str]]], bool]) -> Optional[tuple[str, str]]:
    """(reason, detail) when candidate ``c`` is a passage of a positive's entity (``kin``) with a sentence that writes
    every figure of a keyword search and holds every word it asks with (``wanted``); None otherwise. Read on the five labelled
    sample builds of today's code: it adds 7 passages to 5 searches, each giving the same figure for the same
    measure (the Tidewater distribution in the call and the risk factors; Veloria's 4.5-times loan-to-income limit in
    the stability report and the minutes). Without the entity, a figure and a word are shared by chance: "$9 million
    of expenses" of a seafood company and of a trucker."""
    if not wanted or entities.get(c.passage_id) not in kin or not holds(c.passage_id, wanted):
        return None
    figures, asking = wanted
    return SAME_ENTITY_FIGURE, (f"a passage of its positive's entity ({entities[c.passage_id]}) that writes "
                                f"{', '.join(sorted(figures))} as the search does and holds every word it asks with "
                                f"({', '.join(sorted(asking))})")


def _phrase(text: str) -> str:
    return " ".join(words(text))


def _duplicate_of(c: Candidate, positives: list[str], texts: Mapping[str, str],
                  cfg: RepairConfig) -> Optional[str]:
    cand = texts.get(c.passage_id)
    if not cand:
        return None
    for p in positives:
        pos = texts.get(p)
        if not pos:
            continue
        # The positive's content inside the candidate: whatever in the positive answers the query is there too.
        share = containment(pos, cand)
        if share >= cfg.duplicate_containment and not numbers_differ(numbers(cand), numbers(pos)):
            return f"it holds {share:.2f} of positive {p}'s word 3-grams, and their numbers agree"
    return None


def audit_table(entries: Sequence[AuditEntry], stage: str) -> pa.Table:
    return pa.Table.from_pylist([{"query_id": e.query_id, "stage": stage, "action": e.action, "reason": e.reason,
                                  "passage_id": e.passage_id, "detail": e.detail, "decided_by": e.decided_by}
                                 for e in entries],
                                schema=AUDIT_SCHEMA)
