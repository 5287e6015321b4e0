"""The HTML report: sections, embedded plots, escaping and optional sections."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from buildbench.report.html import render_report  # noqa: E402

from .sample import sample_report  # noqa: E402

IMG = '<img class="plot" alt="'
PNG_SRC = 'src="data:image/png;base64,'


ALL_TITLES = ["Query length", "Query mix", "Filter funnel", "Qrels repair", "Languages", "Model scores",
              "Diagnostics", "Task variants", "Ranking agreement", "Stages"]


def test_full_report_sections_images_and_escaping(run_dir: Path):
    report = sample_report(run_dir / "task")
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
    # each stage's time and throughput, where it ran, and whether this build ran it
    stages = page[page.index("<h2>Stages</h2>"):]
    assert "2 of 5 stages ran in this build" in stages
    assert re.search(r"generate queries</td><td>this run</td>.*?ray x2</td>", stages, re.S)
    assert re.search(r"mine negatives</td>.*?driver, 4 ray tasks</td>", stages, re.S)
    assert re.search(r"ingest</td><td>earlier run</td>", stages)
    # in pipeline order, whatever order report.json's keys come in (they are sorted there)
    report["stages"] = dict(sorted(report["stages"].items()))
    page = render_report(run_dir, report).read_text(encoding="utf-8")
    names = re.findall(r"<tr[^>]*><td>([a-z ]+)</td><td>(?:this|earlier) run", page[page.index("<h2>Stages</h2>"):])
    assert names == ["ingest", "filter documents", "chunk", "generate queries", "mine negatives"]


def test_optional_sections_are_left_out(run_dir: Path):
    report = sample_report(run_dir / "task", validity=False, compare=False)
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

    report = sample_report(tmp_path / "elsewhere" / "task", validity=False, compare=False)  # stale absolute path
    report["tasks"] = []
    (run_dir / "report.json").write_text(json.dumps(report), encoding="utf-8")
    page = render_report(run_dir).read_text(encoding="utf-8")
    assert "<h2>Query length</h2>" in page and "what makes milk curdle" in page  # run_dir/task is used


def test_compare_without_ci_and_with_undefined_correlation(run_dir: Path):
    report = sample_report(run_dir / "task", validity=False)
    comp = copy.deepcopy(report["compare"])
    for side in ("synthetic", "reference"):
        for stats in comp[side]["models"].values():
            for s in stats.values():
                s.pop("ci_low"), s.pop("ci_high")
    comp["kendall"] = {"tau": None, "ci_low": None, "ci_high": None}
    report["compare"] = comp
    page = render_report(run_dir, report).read_text(encoding="utf-8")
    assert "<h2>Ranking agreement</h2>" in page and page.count(PNG_SRC) == 5


def _funnel_rows(page: str) -> list[str]:
    part = page[page.index("<h2>Filter funnel</h2>"):page.index("<h2>Qrels repair</h2>")]
    return re.findall(r"<tr[^>]*><td>([^<]*)</td><td>([^<]*)</td>", part)


def test_funnel_follows_the_list_order_and_shows_each_filters_reasons(run_dir: Path):
    report = sample_report(run_dir / "task", validity=False, compare=False)
    page = render_report(run_dir, report).read_text(encoding="utf-8")
    assert _funnel_rows(page) == [("filter documents", "doc dedup"), ("filter documents", "doc language"),
                                  ("filter queries", "query length"), ("filter queries", "query round trip")]
    assert "source not retrieved 2" in page and "near duplicate 3" in page
    assert page.count('<tr class="flag"><td>filter') == 2  # the two filters that dropped something

    # The page renders the list as given; it does not sort on "in" to guess the funnel order.
    report["filters"] = report["filters"][::-1]
    page = render_report(run_dir, report).read_text(encoding="utf-8")
    assert _funnel_rows(page) == [("filter queries", "query round trip"), ("filter queries", "query length"),
                                  ("filter documents", "doc language"), ("filter documents", "doc dedup")]
