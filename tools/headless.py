"""Headless Chromium (Debian package `chromium`) for the web view's test and its screenshot:
the DOM after the page's script ran, and PNG screenshots. Every call uses a fresh profile and
no network beyond the page itself."""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def chromium() -> str | None:
    """The Chromium binary, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(url: str, *args: str, budget_ms: int = 3000, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="sf-chromium-") as profile:
        # the virtual time budget lets the page's fetches and timers run before the dump
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)


def dump_dom(url: str, budget_ms: int = 3000) -> str:
    """The page's DOM once its script has run for `budget_ms` of virtual time."""
    return _run(url, "--dump-dom", budget_ms=budget_ms).stdout


def screenshot(url: str, path: str | Path, width: int = 1400, height: int = 1500, budget_ms: int = 3000) -> Path:
    path = Path(path).resolve()
    _run(url, f"--screenshot={path}", f"--window-size={width},{height}", budget_ms=budget_ms)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description="Screenshot a page (the web view) with headless Chromium.")
    p.add_argument("url")
    p.add_argument("out", help="PNG file")
    p.add_argument("--size", default="1400x1500", help="window WIDTHxHEIGHT (default 1400x1500)")
    args = p.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    print(screenshot(args.url, args.out, w, h))


if __name__ == "__main__":
    main()
