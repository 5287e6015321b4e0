"""Planted cases through the real quality stages (filters, mining, LLM judge, qrels repair, task writing).

The build starts at filter_queries from chunks and queries written here (the team's own text about a
fictional company), with SmolLM2 as the judge in process. Each planted case must be handled and appear in
audit.jsonl with its reason:

- a near-duplicate query, a German query in an English task, a query copying its chunk verbatim and a
  YourBench query with a fabricated citation are dropped by the filters;
- a corpus passage that repeats the positive of a query (a hard-negative candidate that answers it) is not
  used as a negative, and is added to the qrels.
"""

import json

import pyarrow as pa
import pytest

from buildbench.config import BuildConfig, load_domain_pack
from buildbench.domain_pack import DomainPack
from buildbench.engine.rundir import RunDir
from buildbench.pipeline import build
from buildbench.records import Chunk, Document, Query, to_table

pytestmark = pytest.mark.llm

CHUNKS = {
    "c-div": "Northwind Shipping raised its quarterly dividend by 8 percent to 27 cents per share. The board cited "
             "strong container volumes on the Baltic routes and a lower fuel bill after the fleet renewal.",
    # Another document repeats the dividend paragraph word for word inside a longer investor newsletter.
    "c-news": "Investor newsletter, spring edition. Northwind Shipping raised its quarterly dividend by 8 percent "
              "to 27 cents per share. The board cited strong container volumes on the Baltic routes and a lower "
              "fuel bill after the fleet renewal. The next results call is planned for late April.",
    "c-fleet": "The fleet renewal programme replaced eleven older feeder vessels with six larger dual-fuel ships, "
               "cutting fuel consumption per container by roughly a fifth.",
    "c-debt": "Net debt fell to 1.9 billion euros at year end as operating cash flow covered both capital spending "
              "and the dividend, leaving leverage at 1.6 times EBITDA.",
    "c-port": "Congestion at the Gdansk terminal added two days to average turnaround times in the fourth quarter, "
              "and the company rerouted three services through Klaipeda.",
    "c-hedge": "About 60 percent of next year's bunker fuel purchases are hedged through swaps at an average price "
               "below the current forward curve.",
    "c-staff": "Headcount rose to 4,300 employees after the acquisition of a freight forwarding business in "
               "Rotterdam, which added customs brokerage to the service range.",
    "c-rates": "Spot freight rates on the North Sea lanes eased in the second half, while contract rates, which "
               "cover most of the volume, were renewed about 3 percent higher.",
    "c-esg": "Carbon intensity per container kilometre declined 14 percent, and the company signed a supply "
             "agreement for biomethane to run two of the new dual-fuel ships.",
    "c-risk": "The main risks named in the annual report are a downturn in European manufacturing, cyber attacks "
              "on booking systems and stricter emission rules for short-sea shipping.",
}
DOC = {"c-news": "d-news"}


def chunks_table():
    return to_table([Chunk(id=c, doc_id=DOC.get(c, f"d-{c[2:]}"), text=t) for c, t in CHUNKS.items()], Chunk)


PERSONA = dict(recipe="inpars-persona", persona="analyst", difficulty="medium", language="en")


def _styled(q: Query) -> Query:
    """Each planted query in the style whose form it has (quality.form), so only its planted flaw drops it."""
    q.style = "question" if q.text.endswith("?") else "keyword"
    return q


RAW = [_styled(q) for q in [
    Query("q-div", "How much did the shipping company lift its quarterly payout to shareholders?", ["c-div"], **PERSONA),
    Query("q-div-dup", "How much did the shipping company lift its quarterly payout to its shareholders?", ["c-div"],
          **PERSONA),
    Query("q-de", "Wie stark hat die Reederei ihre Quartalsdividende erhöht?", ["c-div"], **PERSONA),
    Query("q-copy", "replaced eleven older feeder vessels with six larger dual-fuel ships", ["c-fleet"], **PERSONA),
    Query("q-debt", "what leverage ratio did the carrier report after paying down borrowings", ["c-debt"], **PERSONA),
    Query("q-port", "which terminal delays forced the line to reroute services", ["c-port"], **PERSONA),
    Query("q-hedge", "share of next year's ship fuel locked in with swaps", ["c-hedge"], **PERSONA),
    Query("q-rates", "did contract freight prices go up or down at renewal", ["c-rates"], **PERSONA),
]]
QA = [
    Query("yb-fake", "What special payout did the board approve alongside the quarterly dividend?", ["c-div"],
          recipe="yourbench-single", language="en", answer="A special dividend of 2 euros.",
          citations=["The board approved a special dividend of 2 euros per share"]),
    Query("yb-real", "By how much did carbon intensity per container kilometre fall?", ["c-esg"],
          recipe="yourbench-single", language="en", answer="14 percent.",
          citations=["Carbon intensity per container kilometre declined 14 percent"]),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    out = tmp_path_factory.mktemp("planted")
    pack = load_domain_pack("finance").model_dump(by_alias=True)
    pack["recipes"]["judge"] = True
    pack["judge"] = {"backend": "local", "model": "smollm2-135m-instruct", "threads": 1}
    # The easiness percentile needs more queries than a planted set to mean anything.
    pack["filters"]["easiness"]["percentile"] = None
    # The planted good queries paraphrase their passages with words the passages lack: quality.support, made
    # for a 270M writer's inventions, would drop them too (its cost, measured in benchmarks/README.md).
    pack["filters"]["support"]["enabled"] = False
    pack["downsample"]["agreement_models"] = ["random", "bm25", "static"]
    pack["eval"]["models"] = ["bm25", "static"]
    config = BuildConfig(domain=DomainPack.model_validate(pack), out=str(out))
    rundir = RunDir(out)
    rundir.write("chunks", chunks_table())
    # assemble_task declares the documents (clustering labels come from them): the chunks' documents.
    rundir.write("documents_clean", to_table([Document(id=d, text=" ".join(t for c, t in CHUNKS.items()
                                                                        if DOC.get(c, f"d-{c[2:]}") == d))
                                              for d in dict.fromkeys(DOC.get(c, f"d-{c[2:]}") for c in CHUNKS)],
                                             Document))
    rundir.write("raw_queries", to_table(RAW, Query))
    rundir.write("qa_queries", to_table(QA, Query))
    report = build(config, progress=False, stages=["filter_queries", "write_negatives", "mine_negatives", "judge",
                                                   "repair_qrels", "assemble_task", "evaluate"])
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    return report, rundir, audit


def entries(audit, query_id):
    return [(a["action"], a["reason"], a["passage_id"]) for a in audit if a["query_id"] == query_id]


def test_planted_filter_cases_are_dropped_with_reasons(run):
    report, rundir, audit = run
    kept = set(rundir.read("final_queries")["id"].to_pylist())
    assert {"q-div-dup", "q-de", "q-copy", "yb-fake"}.isdisjoint(kept)
    assert {"q-div", "yb-real"} <= kept
    assert ("drop_query", "near_duplicate", "") in entries(audit, "q-div-dup") or \
        ("drop_query", "semantic_duplicate", "") in entries(audit, "q-div-dup")
    assert ("drop_query", "wrong_language", "") in entries(audit, "q-de")
    assert ("drop_query", "copied_from_chunk", "") in entries(audit, "q-copy")
    assert ("drop_query", "unsupported_citation", "") in entries(audit, "yb-fake")
    fake = [a for a in audit if a["query_id"] == "yb-fake"][0]
    assert "special dividend" in fake["detail"]
    german = [a for a in audit if a["query_id"] == "q-de"][0]
    assert "detected de" in german["detail"]
    assert report["languages"]["queries"]["de"] == 1


def test_candidate_that_answers_the_query_is_added_to_qrels_not_used_as_negative(run):
    report, rundir, audit = run
    candidate = [r for r in rundir.read("candidates").to_pylist()
                 if (r["query_id"], r["passage_id"]) == ("q-div", "c-news")]
    assert candidate and candidate[0]["decision"] in ("too_close", "skipped_top")
    assert ("add_qrel", "duplicate_of_positive", "c-news") in entries(audit, "q-div")
    qrels = rundir.read("qrels").to_pylist()
    assert {"query-id": "q-div", "corpus-id": "c-news", "score": 1} in qrels
    hard = {r["query_id"]: r["passage_ids"] for r in rundir.read("hard_negatives").to_pylist()}
    assert "c-news" not in hard["q-div"] and hard["q-div"]
    assert report["qrels_repair"]["false_negatives_added"] >= 1
    # The task's qrels on disk carry the repair, and the reranking lists hold both positives.
    task_qrels = pa.concat_tables([pa.parquet.read_table(p) for p in (rundir.task_dir / "qrels").glob("*.parquet")])
    assert ("q-div", "c-news") in set(zip(task_qrels["query-id"].to_pylist(), task_qrels["corpus-id"].to_pylist()))


def test_judge_ran_and_its_calibration_is_reported(run):
    report, rundir, audit = run
    judged = rundir.read("judgements").to_pylist()
    kinds = {j["kind"] for j in judged}
    assert {"positive", "control"} <= kinds
    cal = report["qrels_repair"]["judge_calibration"]
    assert cal["positives"] >= 4 and cal["controls"] >= 4 and 0.0 <= cal["balanced_accuracy"] <= 1.0
    # Candidates and answerability are judged only by a judge that passed calibration.
    trusted = report["qrels_repair"]["judge_trusted"]
    assert ("candidate" in kinds) == trusted
    assert (rundir.read("query_checks").num_rows > 0) == trusted
    # Whatever the judge decided, each of its drops or non-actions is in the audit with a reason.
    for a in audit:
        assert a["reason"] and a["stage"]
