"""The query-quality section: computed from a run folder of real Parquet datasets (plan, final queries,
likelihoods, judge calibration, audit, chunks), stored in report.json, rendered in report.html and written into
the retrieval task's card, with model-written text escaped in both."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from buildbench.config import BuildConfig, make_config
from buildbench.engine.rundir import RunDir
from buildbench.generators.likelihood import LIKELIHOOD_SCHEMA
from buildbench.generators.recipes.persona import PLAN_SCHEMA
from buildbench.hub.sanitize import render_markdown
from buildbench.quality.repair import AUDIT_SCHEMA
from buildbench.records import Chunk, Query, to_table
from buildbench.report.query_quality import (
    CARD_SECTION,
    NOT_CALIBRATED,
    SAMPLE_SIZE,
    card_lines,
    entity_words,
    query_quality,
    write_card_section,
)
from buildbench.stages.repair_qrels import CALIBRATION_SCHEMA

ACME, OSTMARK = "Acme Widgets Inc.", "Bank of Ostmark"
# (query text, plan entity, plan period, names the entity, names the period); None: the plan does not know it.
PLANNED = [
    ("What did Acme report as revenue in Q3?", ACME, "Q3 2025", True, True),
    ("widgets segment margin 2025", ACME, "Q3 2025", True, True),
    ("operating margin in the third quarter", ACME, "Q3 2025", False, True),
    ("How much cash did the company hold", ACME, "fiscal 2024", False, False),
    ("Inc. revenue growth in FY24", ACME, "fiscal 2024", False, True),  # "Inc" is a suffix, not a name
    ("Ostmark's capital ratio", OSTMARK, "", True, None),
    ("bank capital ratio in 2019", OSTMARK, "April 2019", False, True),  # "Bank" is not distinctive
    ("acmeco profit in 20250", ACME, "Q3 2025", False, False),  # neither a word of the name nor a year
    ("loan growth last year", "", "", None, None),
    ("loans in 2019", "", "April 2019", None, True),
    ("What did ACME WIDGETS earn", ACME, "", True, None),
]
NOT_PLANNED = ["What does the summary say about liquidity?", "Which two segments grew fastest?"]
# Positive PMI of the planned queries, and specificity (positive minus best candidate) of the first ten.
POSITIVE_PMI = [0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 0.9, 1.1, 4.0]
SPECIFICITY = [-0.5, -0.1, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0]
HOSTILE = "<script>alert(1)</script> see [click here](https://evil.example) | **now** ![x](javascript:alert(2))"
LONG_PASSAGE = "Acme Widgets Inc. reported revenue of 4.2 billion dollars. " * 12


def query_id(slot_id: str) -> str:
    return "q-" + hashlib.sha256(slot_id.encode()).hexdigest()[:12]


def calibration_json(path: Path, threshold: float = 1.0) -> Path:
    path.write_text(json.dumps({
        "reference": "tatqa_dev", "model": "gemma3-270m:gemma-3-270m.gguf:123", "questions": 150,
        "pairs": {"positive": 150, "bm25": 148, "random": 150}, "threshold_pmi_per_token": threshold,
        "out_of_sample": {"balanced_accuracy": 0.8123, "kappa": 0.5567, "fold_thresholds": [0.9, 1.1]},
        "in_sample_at_threshold": {"balanced_accuracy": 0.82}, "hard_pairs_at_threshold": {"balanced_accuracy": 0.71},
        "positive_above_bm25_negative": 0.86, "seconds": 300.0}), encoding="utf-8")
    return path


def write_run(root: Path, planned=PLANNED, not_planned=NOT_PLANNED, shuffle: int | None = None) -> RunDir:
    """A run folder after the qrels repair: plan, final queries (planned ones joined by their slot's hash, two
    YourBench ones without a slot), chunks, likelihoods, judge calibration and the repair's audit."""
    rundir = RunDir(root)
    plan, queries, chunks, scores = [], [], [], []
    for i, (text, entity, period, _, _) in enumerate(planned):
        slot = f"c{i}:0"
        plan.append({"slot_id": slot, "chunk_id": f"c{i}", "persona": f"persona{i % 3}", "style": f"style{i % 2}",
                     "difficulty": "easy", "seed": i, "document": f"{entity} ({period})", "entity": entity,
                     "period": period, "fact": f"Fact number {i}."})
        queries.append(Query(query_id(slot), text, [f"c{i}"], recipe="inpars-persona", persona=f"persona{i % 3}",
                             style=f"style{i % 2}", answer=f"Fact number {i}.", citations=[f"Fact number {i}."]))
        chunks.append(Chunk(f"c{i}", "d0", LONG_PASSAGE if i == 0 else f"Passage {i} about {entity or 'loans'}."))
        pmi = POSITIVE_PMI[i % len(POSITIVE_PMI)]
        scores.append((query_id(slot), f"c{i}", "positive", pmi))
        if i < len(SPECIFICITY):
            scores += [(query_id(slot), "cx", "candidate", pmi - SPECIFICITY[i]),
                       (query_id(slot), "cy", "candidate", pmi - SPECIFICITY[i] - 3.0),
                       (query_id(slot), "cz", "control", -2.0)]
    for j, text in enumerate(not_planned):
        queries.append(Query(f"q-yb{j}", text, [f"y{j}"], recipe="yourbench-single", answer=f"Answer {j}."))
        chunks.append(Chunk(f"y{j}", "d1", f"YourBench passage {j}."))
    # a query the repair dropped: its scores are not about a final query
    scores += [("q-dropped", "c0", "positive", -9.0), ("q-dropped", "c1", "candidate", 9.0)]
    if shuffle is not None:
        random.Random(shuffle).shuffle(queries)
    rundir.write("plan", pa.Table.from_pylist(plan, schema=PLAN_SCHEMA))
    rundir.write("final_queries", to_table(queries, Query))
    rundir.write("chunks", to_table(chunks, Chunk))
    rundir.write("likelihoods", pa.Table.from_pylist(
        [{"query_id": q, "passage_id": p, "kind": k, "logp": -10.0 + v * 5, "null_logp": -10.0, "tokens": 5, "pmi": v}
         for q, p, k, v in scores], schema=LIKELIHOOD_SCHEMA))
    cal = {"positives": 10, "controls": 10, "true_positive_rate": 0.9, "true_negative_rate": 0.9,
           "balanced_accuracy": 0.9, "trusted": True, "why": "balanced accuracy 0.90 on 10 positives and 10 controls"}
    rundir.write("judge_calibration", pa.Table.from_pylist(
        [{"trusted": True, "why": cal["why"], "calibration": json.dumps(cal)}], schema=CALIBRATION_SCHEMA))
    audit = [("q-d1", "drop_query", "positive_not_relevant"), ("q-d2", "drop_query", "positive_not_relevant"),
             ("q-d3", "drop_query", "vague"), (queries[0].id, "add_qrel", "judged_relevant"),
             (queries[1].id, "add_qrel", "duplicate_of_positive"), (queries[2].id, "add_qrel", "duplicate_of_positive"),
             (queries[3].id, "keep_negative", "judged_not_relevant")]
    rundir.write("audit", pa.Table.from_pylist(
        [{"query_id": q, "stage": "repair_qrels", "action": a, "reason": r, "passage_id": "", "detail": ""}
         for q, a, r in audit], schema=AUDIT_SCHEMA))
    return rundir


@pytest.fixture
def config(tmp_path: Path) -> BuildConfig:
    # The threshold is set here: the pack's default moves with each calibration.
    return make_config("finance", out=str(tmp_path / "run"), seed=7,
                       pack_overrides={"likelihood.threshold": 1.0, "likelihood.enabled": True, "recipes.judge": False})


def test_shares_of_queries_naming_their_entity_and_period(tmp_path: Path, config: BuildConfig):
    qq = query_quality(write_run(tmp_path / "run"), config, calibration=tmp_path / "absent.json")

    def expected(col: int) -> dict:
        known = [row for row in PLANNED if row[col] is not None]
        named = sum(bool(row[col]) for row in known)
        return {"named": named, "of": len(known), "share": round(named / len(known), 4)}

    either = [r for r in PLANNED if r[3] is not None or r[4] is not None]
    assert qq["queries"] == len(PLANNED) + len(NOT_PLANNED)
    assert qq["naming"] == {
        "planned": 11, "not_planned": 2,
        "entity": expected(3), "period": expected(4),
        "either": {"named": 8, "of": len(either), "share": 0.8},
    }
    assert expected(3) == {"named": 4, "of": 9, "share": 0.4444} and expected(4) == {"named": 6, "of": 8, "share": 0.75}
    assert entity_words("Federal Reserve Bank of New York") == {"federal", "york"}  # "new" is a stop word
    assert entity_words("AB Holdings plc") == set()


def test_specificity_and_positive_pmi_percentiles(tmp_path: Path, config: BuildConfig):
    qq = query_quality(write_run(tmp_path / "run"), config, calibration=tmp_path / "absent.json")
    spec = qq["specificity"]
    # ten values -0.5 .. 2.0 (linear interpolation); the dropped query's scores and the controls are left out
    assert {k: spec[k] for k in ("n", "p10", "p25", "median", "p75", "p90", "share_at_or_below_zero")} == {
        "n": 10, "p10": -0.14, "p25": 0.05, "median": 0.5, "p75": 0.95, "p90": 1.55, "share_at_or_below_zero": 0.3}
    assert "30.0% of queries are at or below 0" in spec["meaning"]
    pos = qq["positive_pmi"]
    # eleven positives (the one without candidates counts here); 0.5, 0.8, 0.9 are below the threshold 1.0
    assert {k: pos[k] for k in ("n", "p10", "p25", "median", "p75", "p90", "share_below_threshold")} == {
        "n": 11, "p10": 0.8, "p25": 0.95, "median": 1.2, "p75": 2.25, "p90": 3.0, "share_below_threshold": 0.2727}
    assert "relevant from +1.00" in pos["meaning"]


def test_judge_repair_and_missing_human_calibration(tmp_path: Path, config: BuildConfig):
    qq = query_quality(write_run(tmp_path / "run"), config, calibration=tmp_path / "absent.json")
    assert qq["relevance_judge"] == {
        "kind": "likelihood", "model": "gemma3-270m", "threshold": 1.0,
        "in_build": {"trusted": True, "why": "balanced accuracy 0.90 on 10 positives and 10 controls",
                     "positives": 10, "controls": 10, "true_positive_rate": 0.9, "true_negative_rate": 0.9,
                     "balanced_accuracy": 0.9},
        "human_labels": {"calibrated": False, "note": NOT_CALIBRATED},
    }
    assert qq["repair"] == {"queries_dropped": {"positive_not_relevant": 2, "vague": 1},
                            "positives_added": {"duplicate_of_positive": 2, "judged_relevant": 1}}
    card = "\n".join(card_lines(qq))
    assert "- Not calibrated on human labels." in card
    assert "| query dropped | positive\\_not\\_relevant | 2 |" in card
    assert "| positive added | judged\\_relevant | 1 |" in card
    json.dumps(qq)  # stored in report.json as is


def test_packaged_human_calibration_is_reported(tmp_path: Path, config: BuildConfig):
    rundir = write_run(tmp_path / "run")
    qq = query_quality(rundir, config, calibration=calibration_json(tmp_path / "cal.json"))
    human = qq["relevance_judge"]["human_labels"]
    assert human["calibrated"] is True and human["threshold_matches_config"] is True
    assert (human["reference"], human["pairs_total"], human["balanced_accuracy"], human["kappa"]) == (
        "tatqa_dev", 448, 0.8123, 0.5567)
    card = "\n".join(card_lines(query_quality(rundir, config, calibration=calibration_json(tmp_path / "c2.json", 1.5))))
    assert "- On human labels (tatqa\\_dev, 448 pairs of 150 questions): out-of-sample balanced accuracy 0.81, " \
           "kappa 0.56; calibrated threshold +1.50 (this build's threshold differs)." in card
    # values read from the file are escaped in the card like model-written text
    evil = calibration_json(tmp_path / "c3.json")
    evil.write_text(evil.read_text(encoding="utf-8").replace("tatqa_dev", "[x](https://evil.example)"),
                    encoding="utf-8")
    card = "\n".join(card_lines(query_quality(rundir, config, calibration=evil)))
    assert "(\\[x\\]\\(https://evil.example\\), 448 pairs" in card and "<a " not in render_markdown(card)[0]
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    broken = query_quality(rundir, config, calibration=tmp_path / "broken.json")["relevance_judge"]["human_labels"]
    assert broken == {"calibrated": False, "note": f"{NOT_CALIBRATED} (broken.json is unreadable)"}


def test_sample_is_seeded_and_carries_plan_and_passage(tmp_path: Path, config: BuildConfig):
    qq = query_quality(write_run(tmp_path / "a"), config, calibration=tmp_path / "absent.json")
    sample = qq["sample"]
    ids = [s["id"] for s in sample]
    assert len(ids) == SAMPLE_SIZE and ids == sorted(ids) and len(set(ids)) == SAMPLE_SIZE
    # the same seed picks the same queries, whatever order the final queries are stored in
    again = query_quality(write_run(tmp_path / "b", shuffle=3), config, calibration=tmp_path / "absent.json")
    assert again["sample"] == sample
    other = query_quality(write_run(tmp_path / "a"), config.model_copy(update={"seed": 8}),
                          calibration=tmp_path / "absent.json")
    assert [s["id"] for s in other["sample"]] != ids
    by_text = {s["text"]: s for s in sample + other["sample"]}
    first = by_text[PLANNED[0][0]]
    assert first == {"id": query_id("c0:0"), "text": PLANNED[0][0], "planned": True, "persona": "persona0",
                     "style": "style0", "fact": "Fact number 0.", "positive_id": "c0",
                     "positive_text": LONG_PASSAGE[:299] + "…", "specificity": -0.5}
    yb = next(s for s in sample + other["sample"] if not s["planned"])
    assert yb["fact"].startswith("Answer ") and yb["specificity"] is None and yb["persona"] == ""


def test_hostile_query_is_escaped_in_card_and_html(tmp_path: Path, config: BuildConfig):
    rows = [(HOSTILE, ACME, "Q3 2025", False, True)] + PLANNED[1:4]
    rundir = write_run(tmp_path / "run", planned=rows, not_planned=[])
    qq = query_quality(rundir, config, calibration=tmp_path / "absent.json")
    assert [s["text"] for s in qq["sample"] if s["text"] == HOSTILE]  # stored as written: it is data

    section = "\n".join(card_lines(qq))
    assert "<script" not in section and "](" not in section and "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in section
    html, _ = render_markdown(section)
    assert "<script" not in html and "<a " not in html and "<img" not in html and "<strong>" not in html
    hostile_row = next(line for line in section.splitlines() if "alert" in line)
    assert hostile_row.count(" | ") == 5  # the query's "|" opens no cell: six cells as in the header

    pytest.importorskip("matplotlib")
    from buildbench.report.html import render_report

    page = render_report(rundir.root, {"query_quality": qq}).read_text(encoding="utf-8")
    part = page[page.index("<h2>Query quality</h2>"):]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; see [click here](https://evil.example) | **now**" in part
    assert "<script" not in page.lower() and "<a " not in part and 'href="' not in part
    assert "Query-likelihood judge (gemma3-270m), relevant from +1.00 nats per query token (PMI)." in part
    assert "Not calibrated on human labels." in part and '<span class="badge ok">trusted</span>' in part
    assert re.search(r'<td class="nw">persona0</td><td class="nw">style0</td><td>Fact number 0\.</td>', part)
    assert "positive not relevant" in part and '<td class="num">-0.50</td>' in part  # a repair reason; specificity


def test_make_report_stores_it_and_writes_the_card_section(tmp_path: Path, config: BuildConfig):
    from buildbench.pipeline import STAGES
    from buildbench.report import make_report

    rundir = write_run(tmp_path / "run")
    task = rundir.task_dir
    (task / "queries").mkdir(parents=True)
    shard = task / "queries" / "test-00000-of-00001.parquet"
    pq.write_table(rundir.read("final_queries").select(["id", "text"]), shard)
    (task / "README.md").write_text("# Task\n\nBody.\n", encoding="utf-8")
    manifest = {"stages": {}, "config": json.loads(config.model_dump_json(by_alias=True))}

    report = make_report(rundir, manifest, {}, 1.0, STAGES)  # the config read back from the manifest
    assert report["query_quality"] == query_quality(rundir, config)
    assert report["query_quality"]["sample"][0]["id"] in {q["id"] for q in rundir.read("final_queries").to_pylist()}
    card = (task / "README.md").read_text(encoding="utf-8")
    assert card.startswith("# Task\n\nBody.\n\n<!-- buildbench:query_quality -->\n## Query quality\n")
    assert "| entity | 44.4% | 4 / 9 |" in card and "| period (a year or quarter) | 75.0% | 6 / 8 |" in card
    assert "| specificity (share ≤ 0) | 10 | -0.14 | +0.05 | +0.50 | +0.95 | +1.55 | 30.0% |" in card
    # rebuilt: the section is replaced, not added again
    make_report(rundir, manifest, {}, 1.0, STAGES, config=config)
    rewritten = (task / "README.md").read_text(encoding="utf-8")
    assert rewritten == card and rewritten.count(f"<!-- buildbench:{CARD_SECTION} -->") == 1

    # a task folder left from a build of other queries keeps its card
    pq.write_table(pa.table({"id": ["q-other"], "text": ["other"]}), shard)
    (task / "README.md").write_text("# Old task\n", encoding="utf-8")
    assert write_card_section(rundir, report["query_quality"]) is False
    assert (task / "README.md").read_text(encoding="utf-8") == "# Old task\n"


def test_no_section_before_the_repair(tmp_path: Path, config: BuildConfig):
    rundir = RunDir(tmp_path / "run")
    assert query_quality(rundir, config) == {}
    assert write_card_section(rundir, {}) is False


def test_which_judge_and_what_of_it_is_shown(tmp_path: Path, config: BuildConfig):
    rundir = write_run(tmp_path / "run")
    absent = tmp_path / "absent.json"
    llm = config.model_copy(update={"domain": config.domain.model_copy(update={
        "recipes": config.domain.recipes.model_copy(update={"judge": True})})})
    judge = query_quality(rundir, llm, calibration=absent)["relevance_judge"]
    assert (judge["kind"], judge["relevant_label"], "human_labels" in judge) == ("llm", 2, False)
    assert card_lines({"relevance_judge": judge})[card_lines({"relevance_judge": judge}).index("### Judge") + 2] == \
        "- LLM judge, relevant from label 2 on a 0-3 scale."
    # a local model file is named, not where it lives
    local = config.model_copy(update={"domain": config.domain.model_copy(update={
        "likelihood": config.domain.likelihood.model_copy(update={"model": "/home/someone/models/tiny.gguf"})})})
    assert query_quality(rundir, local, calibration=absent)["relevance_judge"]["model"] == "tiny.gguf"
    # no config: the judge is read from what the run wrote, the sample seeded with 0
    unknown = query_quality(rundir, None, calibration=absent)
    assert unknown["relevance_judge"]["kind"] == "likelihood" and "threshold" not in unknown["relevance_judge"]
    seed_0 = config.model_copy(update={"seed": 0})
    assert unknown["sample"] == query_quality(rundir, seed_0, calibration=absent)["sample"]


def loans_as_search(plan: list[dict]) -> list[dict]:
    """``plan`` with the slot of "loan growth last year" made a keyword search, as the plan makes it: its document
    names no one and dates no quarter or month ("loans in 2019" is dated April 2019)."""
    next(row for row in plan if row["slot_id"] == "c8:0")["style"] = "keyword"
    return plan


def written_as(rundir: RunDir, slot: str, style: str) -> None:
    """The final query of ``slot`` written in ``style``."""
    rows = rundir.read("final_queries").to_pylist()
    for row in rows:
        row["style"] = style if row["id"] == query_id(slot) else row["style"]
    rundir.write("final_queries", pa.Table.from_pylist(rows, schema=rundir.read("final_queries").schema))


def test_planned_slots_and_final_queries_by_style(tmp_path: Path, config: BuildConfig):
    """The plan deals styles evenly; the task keeps what passed its checks. A style that kept no query is said so
    in the card and flagged in the HTML report."""
    rundir = write_run(tmp_path / "run")
    plan = loans_as_search(rundir.read("plan").to_pylist())
    written_as(rundir, "c8:0", "keyword")
    dropped = [dict(plan[0], slot_id=f"x{i}:0", chunk_id=f"x{i}", style="question") for i in range(4)]
    rundir.write("plan", pa.Table.from_pylist(plan + dropped, schema=PLAN_SCHEMA))
    qq = query_quality(rundir, config, calibration=tmp_path / "absent.json")
    assert qq["styles"] == [
        {"style": "style0", "planned": 5, "kept": 5, "restyled": 0, "final": 5, "share_kept": 1.0},
        {"style": "style1", "planned": 5, "kept": 5, "restyled": 0, "final": 5, "share_kept": 1.0},
        {"style": "question", "planned": 4, "kept": 0, "restyled": 0, "final": 0, "share_kept": 0.0},
        {"style": "keyword", "planned": 1, "kept": 1, "restyled": 0, "final": 1, "share_kept": 1.0},
        # YourBench's, without a slot
        {"style": "", "planned": 0, "kept": len(NOT_PLANNED), "restyled": 0, "final": len(NOT_PLANNED),
         "share_kept": None},
    ]
    card = "\n".join(card_lines(qq))
    assert "| question | 4 | 0 | 0.0% | 0 | 0 |" in card and "| none | 0 | 2 | n/a | 0 | 2 |" in card
    assert "written again as a keyword search" not in card
    assert "No question query passed its checks (4 planned): the task has none of that style." in card
    assert "No style0" not in card and "No none" not in card
    # the card and the HTML note say why the plan made the loans slot a keyword search
    assert qq["keyword_only_slots"] == 1
    assert ("1 of the 15 planned slots are of documents that name no one and date no quarter or month: the plan "
            "makes them keyword searches") in card

    from buildbench.report.sections import query_quality_section

    section = query_quality_section({"query_quality": qq})
    block = next(b for b in section["blocks"] if b["title"].startswith("Styles"))
    assert block["badge"].text == "a style kept no query"
    assert "1 of the 15 planned slots are of documents that name no one" in section["note"]
    qq["styles"] = [s for s in qq["styles"] if s["planned"] != 4]
    block = next(b for b in query_quality_section({"query_quality": qq})["blocks"] if b["title"].startswith("Styles"))
    assert "badge" not in block


def test_a_slot_written_again_as_a_keyword_search_counts_under_both_styles(tmp_path: Path, config: BuildConfig):
    """A question slot whose drafts all failed was written again as a keyword search (stages.generate_queries):
    the card counts it as its planned style's rewrite and as a final keyword search, and says why."""
    rundir = write_run(tmp_path / "run")
    plan = loans_as_search(rundir.read("plan").to_pylist())
    next(row for row in plan if row["slot_id"] == "c8:0")["style"] = "question"  # planned a question, ended a search
    rundir.write("plan", pa.Table.from_pylist(plan, schema=PLAN_SCHEMA))
    written_as(rundir, "c8:0", "keyword")
    qq = query_quality(rundir, config, calibration=tmp_path / "absent.json")
    by = {s["style"]: s for s in qq["styles"]}
    assert by["question"] == {"style": "question", "planned": 1, "kept": 0, "restyled": 1, "final": 0,
                              "share_kept": 0.0}
    assert by["keyword"] == {"style": "keyword", "planned": 0, "kept": 0, "restyled": 0, "final": 1,
                             "share_kept": None}
    card = "\n".join(card_lines(qq))
    assert "| question | 1 | 0 | 0.0% | 1 | 0 |" in card and "| keyword | 0 | 0 | n/a | 0 | 1 |" in card
    assert ("A slot of another style whose drafts all failed their checks was written again as a keyword search "
            "about a fact of its passage that states a figure.") in card

    from buildbench.report.sections import query_quality_section

    block = next(b for b in query_quality_section({"query_quality": qq})["blocks"] if b["title"].startswith("Styles"))
    assert block["table"]["head"][-2:] == ["written as keyword searches", "final"]


def test_no_keyword_searches_claimed_where_the_plan_made_none(tmp_path: Path, config: BuildConfig):
    """A pack without a keyword style keeps its slots' dealt styles, and a slot of a keyword-only document that
    kept another style was not made a search: the card claims neither; with the pack unknown it claims none."""
    rundir = write_run(tmp_path / "run")  # the loans slot kept its dealt style0
    absent = tmp_path / "absent.json"
    assert query_quality(rundir, config, calibration=absent)["keyword_only_slots"] == 0
    rundir.write("plan", pa.Table.from_pylist(loans_as_search(rundir.read("plan").to_pylist()), schema=PLAN_SCHEMA))
    assert query_quality(rundir, config, calibration=absent)["keyword_only_slots"] == 1
    no_keyword = config.model_copy(update={"domain": config.domain.model_copy(update={
        "query_styles": [s for s in config.domain.query_styles if s.id != "keyword"]})})
    qq = query_quality(rundir, no_keyword, calibration=absent)
    assert qq["keyword_only_slots"] == 0 and query_quality(rundir, None, calibration=absent)["keyword_only_slots"] == 0
    assert "makes them keyword searches" not in "\n".join(card_lines(qq))
