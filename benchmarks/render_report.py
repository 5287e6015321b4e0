"""Render a run's HTML report and screenshot it in headless Chromium.

    python benchmarks/render_report.py RUN_DIR [--png OUT.png] [--width 1280] [--height 2400]

Writes RUN_DIR/report.html (from RUN_DIR/report.json) and RUN_DIR/report.png (the top WIDTH x HEIGHT pixels
of the page), then prints both paths, the HTML size and number of embedded plots, and the PNG's pixel size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from buildbench.errors import BuildBenchError
from buildbench.report.html import render_report
from buildbench.report.screenshot import png_size, screenshot


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--png", type=Path, default=None, help="screenshot path (default RUN_DIR/report.png)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2400)
    args = ap.parse_args(argv)
    try:
        t0 = time.perf_counter()
        html_path = render_report(args.run_dir)
        t1 = time.perf_counter()
        n_plots = html_path.read_text(encoding="utf-8").count('src="data:image/png;base64,')
        print(f"html: {html_path} ({html_path.stat().st_size / 1024:.0f} kB, {n_plots} plots, {t1 - t0:.1f} s)")
        png = screenshot(html_path, args.png or args.run_dir / "report.png", width=args.width, height=args.height)
        w, h = png_size(png)
        print(f"png:  {png} ({w}x{h} px, {png.stat().st_size / 1024:.0f} kB, {time.perf_counter() - t1:.1f} s)")
    except BuildBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
