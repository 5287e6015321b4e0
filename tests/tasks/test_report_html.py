"""The HTML report: sections, embedded plots, escaping, optional sections, and the Chromium screenshot."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("matplotlib")

from buildbench.tasks import TaskInfo, write_retrieval_task  # noqa: E402
from buildbench.tasks.report_html import render_report  # noqa: E402
from buildbench.tasks.screenshot import PNG_SIGNATURE, BrowserNotFound, find_browser, png_size, screenshot  # noqa: E402

IMG = '<img class="plot" alt="'
PNG_SRC = 'src="data:image/png;base64,'
EVIL_QUERY = "what does <script>alert('x')</script> & the \"rate\" do to cheese prices in the long run overall"
EVIL_MODEL = "evil<b>model</b>$x$"

# Hand-made passages about cheese making: (id, title, text, a query for it, persona, style, difficulty)
ROWS = [
    ("c0", "Rennet", "Rennet is an enzyme mix that curdles milk by splitting casein proteins.", "what makes milk curdle",
     "cheesemaker", "question", "easy"),
    ("c1", "Brine", "Feta is kept in salty brine, which preserves it and gives it its sharp taste.", "salt bath for feta",
     "chef", "keyword", "medium"),
    ("c2", "Aging", "Hard cheeses age for months in caves where humidity and temperature are controlled.",
     "how long do hard cheeses mature and under what conditions in caves", "cheesemaker", "long_form", "hard"),
    ("c3", "Mould", "Blue veins come from Penicillium roqueforti spores pierced into the young cheese.",
     "blue cheese veins", "student", "keyword", "easy"),
    ("c4", "Rind", "Washed-rind cheeses are rubbed with brine or beer, which feeds orange bacteria on the crust.",
     "why is the crust of some cheeses orange and smelly", "chef", "question", "medium"),
    ("c5", "Pasteurisation", "Raw-milk cheese skips pasteurisation, keeping native bacteria that add flavour.",
     EVIL_QUERY, "student", "long_form", "hard"),
]


def _report(task_dir: Path, validity: bool = True, compare: bool = True) -> dict:
    scores = {
        "bm25": {"ndcg_at_10": 0.61, "recall_at_10": 0.83, "mrr_at_10": 0.55},
        EVIL_MODEL: {"ndcg_at_10": 0.48, "recall_at_10": 0.7, "mrr_at_10": 0.41},
        "random": {"ndcg_at_10": 0.05, "recall_at_10": 0.1, "mrr_at_10": 0.03},
    }

    def ci_block(task: str, shift: float) -> dict:
        return {
            "task": task, "k": 10, "queries": 6, "corpus": 6, "n_boot": 1000,
            "models": {m: {k: {"mean": v + shift, "ci_low": v + shift - 0.08, "ci_high": min(1.0, v + shift + 0.07)}
                           for k, v in s.items()} for m, s in scores.items()},
            "diagnostics": {
                "saturation": {"flag": False, "message": "best model nDCG@10 0.610 < 0.95: not saturated",
                               "best": "bm25", "threshold": 0.95},
                "random_baseline": {"flag": False, "message": "random nDCG@10 0.050", "ndcg": 0.05},
                "lexical_leak": {"flag": True, "message": "bm25 beats every dense model by 0.13 <leak>",
                                 "margin": 0.13, "threshold": 0.05},
                "discriminative_power": {"flag": True, "message": "1 of 3 pairs told apart", "pairs": [],
                                         "significant_fraction": 0.333},
                "ranking_stability": {"flag": False, "message": "mean Kendall tau 0.91", "tau_mean": 0.91},
            },
        }

    report = {
        "buildbench_version": "0.1.0",
        "config_hash": "abc123",
        "task_dir": str(task_dir),
        "wall_seconds": 125.5,
        "stages": {
            "ingest": {"counts": {"in": 0, "out": 9, "dropped": 0}, "seconds": 0.1},
            "filter_documents": {"counts": {"in": 9, "out": 6, "dropped": 3}, "seconds": 0.2},
            "chunk": {"counts": {"in": 6, "out": 6, "dropped": 0}, "seconds": 0.01, "stats": {"chunks": 6}},
            "generate_queries": {"counts": {"in": 6, "out": 8, "dropped": 0}, "seconds": 120.0},
        },
        "filters": {
            "doc_dedup": {"in": 9, "kept": 6, "dropped": 3, "seconds": 0.1},
            "query_length": {"in": 8, "kept": 8, "dropped": 0, "seconds": 0.0},
            "query_round_trip": {"in": 8, "kept": 6, "dropped": 2, "seconds": 1.5},
        },
        "drops": {"filter_documents": {"doc_dedup:near_duplicate": 3},
                  "filter_queries": {"query_round_trip:source_not_retrieved": 2}},
        "languages": {"documents": {"en": 6}, "documents_mixed": 0, "queries": {"en": 6}, "queries_mixed": 0},
        "qrels_repair": {
            "false_negatives_added": 2, "false_negatives_by_rule": {"duplicate_of_positive": 2},
            "hard_negatives": 12, "judge_trusted": False, "synthetic_negatives_removed": 0,
            "judge_calibration": {"balanced_accuracy": 0.5, "controls": 4, "positives": 4, "trusted": 0},
            "mining": {"negative": 12, "pool": 30, "too_close": 5}, "candidates_excluded": {"too_close": 5},
        },
        "queries": {
            "accepted": 6,
            "by_persona": {"cheesemaker": 2, "chef": 2, "student": 2},
            "by_style": {"question": 2, "keyword": 2, "long_form": 2},
            "by_difficulty": {"easy": 2, "medium": 2, "hard": 2},
            "by_recipe": {"inpars-persona": 6},
        },
        "llm": {"calls_total": 14, "tokens_in_total": 5000, "tokens_out_total": 300},
        "task_scores": {
            "retrieval": scores,
            "reranking": {"bm25": {"ndcg_at_10": 0.8, "recall_at_10": 1.0, "mrr_at_10": 0.75}},
            "downsampled": scores,
        },
        "downsample_agreement": {"kendall_tau": 1.0, "spearman_rho": 1.0, "models": 3,
                                 "full.bm25": 0.61, "downsampled.bm25": 0.61},
        "tasks": [{"variant": "retrieval", "path": str(task_dir), "corpus": 6}],
    }
    if validity:
        report["validity"] = ci_block("CheeseRetrieval", 0.0)
    if compare:
        report["compare"] = {
            "models": list(scores),
            "synthetic": ci_block("CheeseRetrieval", 0.0),
            "reference": ci_block("HumanCheese", -0.02),
            "spearman": {"rho": 1.0, "ci_low": 0.5, "ci_high": 1.0},
            "kendall": {"tau": 1.0, "ci_low": 0.33, "ci_high": 1.0},
            "anchors": {"YourBench vs MMLU": 1.0, "AIR-Bench vs human": 0.82},
        }
    return report


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    corpus = pa.table({"id": [r[0] for r in ROWS], "title": [r[1] for r in ROWS], "text": [r[2] for r in ROWS]})
    queries = pa.table({"id": [f"q{i}" for i in range(len(ROWS))], "text": [r[3] for r in ROWS]})
    qrels = pa.table({"query-id": [f"q{i}" for i in range(len(ROWS))], "corpus-id": [r[0] for r in ROWS],
                      "score": pa.array([1] * len(ROWS), pa.int64())})
    info = TaskInfo(name="CheeseRetrieval", description="Cheese-making passages <and> the queries that find them.",
                    domain="food")
    task_dir = write_retrieval_task(run / "task", corpus, queries, qrels, info)
    prov = pa.table({"id": [f"q{i}" for i in range(len(ROWS))], "text": [r[3] for r in ROWS],
                     "persona": [r[4] for r in ROWS], "style": [r[5] for r in ROWS],
                     "difficulty": [r[6] for r in ROWS], "recipe": ["inpars-persona"] * len(ROWS)})
    (task_dir / "provenance").mkdir()
    pq.write_table(prov, task_dir / "provenance" / "queries.parquet")
    return run


ALL_TITLES = ["Query length", "Query mix", "Filter funnel", "Qrels repair", "Languages", "Model scores",
              "Diagnostics", "Task variants", "Ranking agreement"]


def test_full_report_sections_images_and_escaping(run_dir: Path):
    report = _report(run_dir / "task")
    out = render_report(run_dir, report)
    assert out == run_dir / "report.html"
    page = out.read_text(encoding="utf-8")

    assert "<h1>CheeseRetrieval</h1>" in page and "food" in page
    for title in ALL_TITLES:
        assert f"<h2>{title}</h2>" in page, title
    # query length, mix, funnel, scores with CIs, agreement scatter
    assert page.count(PNG_SRC) == 5
    assert page.count(IMG) == 5
    # counts in the header cards
    for label in ("Documents", "Chunks", "Queries", "Qrels", "Wall time", "LLM calls"):
        assert f'<div class="k">{label}</div>' in page

    # untrusted text is escaped, and the page has no script at all
    assert "what does &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; the &quot;rate&quot;" in page
    assert "<script" not in page.lower()
    assert "evil&lt;b&gt;model&lt;/b&gt;$x$" in page and "<b>model</b>" not in page
    assert "&lt;leak&gt;" in page and "&lt;and&gt;" in page
    # self-contained: no remote resources of any kind
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:)""", page)
    assert "url(" not in page

    # flagged diagnostics come first and are highlighted; CI text and correlations are shown
    diag = page[page.index("<h2>Diagnostics</h2>"):page.index("<h2>Task variants</h2>")]
    assert diag.count('<tr class="flag">') == 2
    assert diag.index("lexical leak") < diag.index("saturation")
    assert "0.610 [0.530, 0.680]" in page
    assert "YourBench vs MMLU" in page and "0.82" in page
    assert not list(run_dir.glob(".report.html.*"))  # the atomic write left no temp file


def test_optional_sections_are_left_out(run_dir: Path):
    report = _report(run_dir / "task", validity=False, compare=False)
    page = render_report(run_dir, report).read_text(encoding="utf-8")
    assert "<h2>Model scores</h2>" in page  # plain bars from task_scores["retrieval"]
    assert "<h2>Diagnostics</h2>" not in page and "<h2>Ranking agreement</h2>" not in page
    assert page.count(PNG_SRC) == 4

    # a bare report: header only, still a valid page without plots or failures
    bare = {"buildbench_version": "0.1.0"}
    empty_run = run_dir.parent / "bare"
    empty_run.mkdir()
    page = render_report(empty_run, bare).read_text(encoding="utf-8")
    assert page.count(PNG_SRC) == 0 and "<h1>bare</h1>" in page and page.rstrip().endswith("</html>")


def test_reads_report_json_and_finds_a_moved_task(run_dir: Path, tmp_path: Path):
    import json

    report = _report(tmp_path / "elsewhere" / "task", validity=False, compare=False)  # stale absolute path
    report["tasks"] = []
    (run_dir / "report.json").write_text(json.dumps(report), encoding="utf-8")
    page = render_report(run_dir).read_text(encoding="utf-8")
    assert "<h2>Query length</h2>" in page and "what makes milk curdle" in page  # run_dir/task is used


def test_compare_without_ci_and_with_undefined_correlation(run_dir: Path):
    report = _report(run_dir / "task", validity=False)
    comp = copy.deepcopy(report["compare"])
    for side in ("synthetic", "reference"):
        for stats in comp[side]["models"].values():
            for s in stats.values():
                s.pop("ci_low"), s.pop("ci_high")
    comp["kendall"] = {"tau": None, "ci_low": None, "ci_high": None}
    report["compare"] = comp
    page = render_report(run_dir, report).read_text(encoding="utf-8")
    assert "<h2>Ranking agreement</h2>" in page and page.count(PNG_SRC) == 5


@pytest.mark.skipif(find_browser() is None, reason="no chromium/chrome binary on PATH")
def test_screenshot_of_the_report(run_dir: Path):
    html_path = render_report(run_dir, _report(run_dir / "task"))
    png = screenshot(html_path, run_dir / "shot" / "report.png")
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert png_size(png) == (1280, 2400)
    assert len(data) > 20_000  # a blank page compresses to a few kB
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(png) as im:
        gray = im.convert("L")
        lo, hi = gray.getextrema()
        assert hi - lo > 100  # text and plots, not one flat colour
        colours = im.convert("RGB").resize((320, 600)).getcolors(maxcolors=1_000_000)
        assert len(colours) > 50


def test_screenshot_without_a_browser(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    page = tmp_path / "x.html"
    page.write_text("<p>x</p>", encoding="utf-8")
    with pytest.raises(BrowserNotFound, match="apt-get install -y chromium"):
        screenshot(page, tmp_path / "x.png")
