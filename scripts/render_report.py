"""Render a report's HTML page to a PNG with headless Chromium, so anyone can look at it.

    python scripts/render_report.py runs/panda/report/report.html --out report.png

Needs a Chromium binary (Debian/Ubuntu: ``apt-get install chromium``).  The page
is self-contained, so the browser runs offline: networking, sync and updates
are switched off.  The window is as tall as the page (a first run measures it)
unless ``--height`` is given.  Prints the PNG's path and size.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flags import parse

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--force-device-scale-factor=1"]


@dataclass
class Args:
    html: Path
    """A report.html."""
    out: Path | None = None
    """PNG to write (default: beside the HTML)."""
    width: int = 1200
    """Window width in pixels."""
    height: int | None = None
    """Window height in pixels (default: the page's full height)."""
    timeout: float = 120
    """Seconds per browser run."""

    def __post_init__(self) -> None:
        if not self.html.is_file():
            raise ValueError(f"{self.html} is not a file; give a report.html")


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    sys.exit(f"no Chromium found (tried {', '.join(BROWSERS)}); install it, e.g. apt-get install chromium")


def chromium(browser: str, profile: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def page_height(browser: str, profile: str, html: Path, width: int, timeout: float) -> int | None:
    """Height of the laid-out page in pixels: a copy of it reports its height in its title."""
    probe = ("<script>window.addEventListener('load', () => "
             "{document.title = 'height=' + document.documentElement.scrollHeight;});</script>")
    text = html.read_text(encoding="utf-8")
    with tempfile.NamedTemporaryFile("w", suffix=".html", dir=html.parent, delete=False, encoding="utf-8") as fh:
        fh.write(text.replace("</body>", probe + "</body>") if "</body>" in text else text + probe)
    try:
        done = chromium(browser, profile, f"--window-size={width},1000", "--virtual-time-budget=10000",
                        "--dump-dom", Path(fh.name).as_uri(), timeout=timeout)
    finally:
        Path(fh.name).unlink()
    match = re.search(r"<title>height=(\d+)</title>", done.stdout)
    return int(match.group(1)) if match else None


def main(argv: list[str] | None = None) -> int:
    args = parse(Args, __doc__, argv)
    out = (args.out or args.html.with_suffix(".png")).resolve()
    url = args.html.resolve().as_uri()
    browser = find_browser()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        height = args.height or page_height(browser, profile, args.html.resolve(), args.width, args.timeout)
        if height is None:
            sys.exit("could not measure the page's height; give --height")
        done = chromium(browser, profile, f"--window-size={args.width},{height}", f"--screenshot={out}", url,
                        timeout=args.timeout)
    if done.returncode != 0 or not out.exists():
        sys.exit(f"chromium failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    print(f"{out}: {args.width} x {height} px, {out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
