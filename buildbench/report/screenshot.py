"""Screenshot an HTML file with headless Chromium (Debian's ``chromium`` package, or Chrome).

    screenshot(Path("run/report.html"), Path("run/report.png"))

Runs ``chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=W,H
--screenshot=PNG file://HTML`` with a throwaway profile folder, so two screenshots at once (or a desktop
Chromium of the same user) never fight over a profile lock. The PNG is exactly W x H pixels: the top of the
page, cut at H.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import BuildBenchError, MissingDependencyError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BrowserNotFound(MissingDependencyError):
    """No headless Chromium/Chrome on PATH; the message says how to install one."""

    def __init__(self, purpose: str = "Screenshots of the HTML report"):
        BuildBenchError.__init__(
            self,
            f"{purpose} need a Chromium browser (looked for {', '.join(BROWSERS)} on PATH): "
            "apt-get install -y chromium",
        )


class ScreenshotError(BuildBenchError):
    """Chromium ran but did not produce the screenshot."""


def find_browser() -> str | None:
    """The path of the first Chromium-like browser on PATH, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, read from its IHDR chunk; raises ValueError if the file is not a PNG."""
    head = Path(path).read_bytes()[:24]
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: int = 2400, timeout: float = 120.0) -> Path:
    """Render ``html_path`` in headless Chromium at ``width`` x ``height`` and write ``png_path``; returns it."""
    browser = find_browser()
    if browser is None:
        raise BrowserNotFound()
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise ScreenshotError(f"no HTML file at {html_path}")
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    # Chromium writes straight to --screenshot; go through a temp name so a failed run leaves no half file.
    tmp = png_path.with_name(f".{png_path.name}.tmp.png")
    tmp.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="buildbench-chromium-") as profile:
        cmd = [
            browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
            f"--window-size={int(width)},{int(height)}", f"--screenshot={tmp}", html_path.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            tmp.unlink(missing_ok=True)
            raise ScreenshotError(f"{Path(browser).name} did not finish the screenshot within {timeout:g} s") from exc
    if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        tail = " | ".join((proc.stderr or "").strip().splitlines()[-3:])
        raise ScreenshotError(f"{Path(browser).name} exited with {proc.returncode} and wrote no screenshot: {tail}")
    tmp.replace(png_path)
    return png_path
