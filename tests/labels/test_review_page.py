"""The review page end to end: the real CLI serves a run folder, headless Chromium drives the page from the
keyboard, the server is killed (SIGKILL) and restarted, and the labels are all there; untrusted text from the
run shows as text and runs nothing.

Playwright's own browser download needs the internet: the test launches the system's Chromium
(``buildbench.report.screenshot.find_browser``) and is skipped without it or without playwright.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from buildbench.labels.queue import review_items
from buildbench.report.screenshot import find_browser
from tests.labels.rundata import (
    IMG_PASSAGE,
    SCRIPT_QUERY,
    make_run,
    read_labels,
    start_cli,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
BROWSER = find_browser()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="needs Chromium on PATH")
NOTE = "the passage is about another meeting <i>"
# What the page may log while its server is down on purpose (killed, not yet restarted): a request in flight
# is reset or refused. Nothing else is forgiven, and nothing at all outside that window.
DOWN = re.compile(r"^Failed to load resource: net::ERR_CONNECTION_(RESET|REFUSED)$")


class Console(list):
    """Errors the page logs; while ``down`` is set, only a dropped connection is forgiven."""

    down = False

    def add(self, text: str) -> None:
        if not (self.down and DOWN.match(text)):
            self.append(text)


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, url: str, problems: Console):
    page = browser.new_page()
    page.on("console", lambda m: problems.add(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=15000)
    return page


def expect_text(page, selector: str, pattern: str) -> None:
    sync_api.expect(page.locator(selector)).to_have_text(re.compile(pattern), timeout=10000)


def assert_untrusted_text_is_text(page) -> None:
    page.keyboard.press("Home")  # no shortcut: nothing changes
    expect_text(page, "#query-id", "^q0$")
    assert page.inner_text("#query-text") == SCRIPT_QUERY  # literally, tags and all
    assert page.locator("#query-text *").count() == 0  # no element was made from it
    assert IMG_PASSAGE in page.inner_text("#positives")
    assert page.locator("#positives img, main script").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_label_from_the_keyboard_kill_and_resume(tmp_path: Path, browser):
    run = make_run(tmp_path / "run").root
    items = review_items(run)
    missed = items[2].candidates[2].passage.id  # key 3 on the third query
    problems = Console()

    proc, url = start_cli(run, "--no-browser", "--port", "0", "--reviewer", "ana")
    try:
        page = open_page(browser, url, problems)
        expect_text(page, "#progress-text", r"^0/8 done$")
        expect_text(page, "#position", r"^query 1 of 8$")
        expect_text(page, "#reviewer", "^ana$")
        assert_untrusted_text_is_text(page)
        # the provenance, and no judge verdict
        prov = page.inner_text("#provenance")
        for text in ("persona", items[0].persona, "style", items[0].style, "difficulty", items[0].difficulty,
                     "recipe", items[0].recipe, "gemma3-270m", "query_round_trip", "doc_language"):
            assert text in prov
        assert "judge" not in page.inner_text("main").lower()
        assert page.locator("#candidates > li").count() == 8
        assert "too_close" in page.inner_text("#candidates")

        page.keyboard.press("?")
        assert page.is_visible("#help")
        page.keyboard.press("Escape")
        assert not page.is_visible("#help")

        page.keyboard.press("g")  # q0: good
        expect_text(page, "#progress-text", r"^1/8 done$")
        expect_text(page, "#query-id", "^q1$")
        page.keyboard.press("e")  # q1: wrong, with a note
        page.keyboard.type(NOTE)
        page.keyboard.press("Escape")
        page.keyboard.press("w")
        expect_text(page, "#progress-text", r"^2/8 done$")
        expect_text(page, "#query-id", "^q2$")
        page.keyboard.press("3")  # q2: candidate 3 also answers it
        expect_text(page, "#progress-text", r"^3/8 done$")
        expect_text(page, "#position", r"^query 4 of 8$")
        assert page.get_attribute("#progress", "value") == "3"
        assert "saved: missed positive for q2" in page.inner_text("#status")
    finally:
        problems.down = True
        proc.kill()  # SIGKILL: no chance to flush anything
        proc.wait(timeout=10)

    rows = read_labels(run)
    assert [(r["query_id"], r["label"], r["passage_id"], r["note"]) for r in rows] == [
        ("q0", "good", "", ""), ("q1", "wrong", "", NOTE), ("q2", "missed_positive", missed, "")]
    assert all(r["reviewer"] == "ana" and r["source"] == "review" and r["time"] for r in rows)

    proc, url = start_cli(run, "--no-browser", "--port", "0", "--reviewer", "ana")
    try:
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        problems.down = False
        expect_text(page, "#progress-text", r"^3/8 done$")
        expect_text(page, "#position", r"^query 4 of 8$")  # where it stopped: the first unlabelled query
        assert "not labelled yet" in page.inner_text("#current-label")
        page.keyboard.press("p")
        expect_text(page, "#query-id", "^q2$")
        assert page.inner_text("#current-label") == f"your label: missed positive (candidate 3, {missed})"
        assert page.locator("#candidates > li.picked").count() == 1
        assert missed in page.inner_text("#candidates > li.picked")
        page.keyboard.press("ArrowLeft")
        expect_text(page, "#query-id", "^q1$")
        assert page.inner_text("#current-label") == f"your label: wrong — note: {NOTE}"
        assert page.input_value("#note") == NOTE
        page.keyboard.press("p")
        expect_text(page, "#current-label", "^your label: good$")
        assert_untrusted_text_is_text(page)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert len(read_labels(run)) == 3
    assert not problems, problems  # no script error, no CSP violation
