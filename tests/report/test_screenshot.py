"""The Chromium screenshot of the HTML report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from buildbench.report.screenshot import PNG_SIGNATURE, BrowserNotFound, find_browser, png_size, screenshot

from .sample import sample_report


@pytest.mark.skipif(find_browser() is None, reason="no chromium/chrome binary on PATH")
def test_screenshot_of_the_report(run_dir: Path):
    pytest.importorskip("matplotlib")
    from buildbench.report.html import render_report

    html_path = render_report(run_dir, sample_report(run_dir / "task"))
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
