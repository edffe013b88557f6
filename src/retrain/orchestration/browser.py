"""Headless Chromium with the network refused: how the browser tests and `make screenshots`
see a report or the Prefect UI exactly as a user with no internet would.

Only loopback is reachable: every other host resolves to nothing and every proxied request
goes to a closed port (Chromium never proxies loopback), so a page that still loads a script
from a CDN renders without it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from retrain.errors import RetrainError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
OFFLINE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


class BrowserError(RetrainError):
    """No Chromium, or it failed to load a page."""


def chromium() -> str | None:
    """The Chromium executable on PATH, if any (Debian: `apt-get install chromium`)."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(url: str, extra: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    exe = chromium()
    if exe is None:
        raise BrowserError("no chromium on PATH: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="retrain-chromium-") as profile:
        proc = subprocess.run(
            [exe, *OFFLINE_FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if proc.returncode != 0:
        raise BrowserError(f"chromium failed on {url}: {proc.stderr.strip()[-500:]}")
    return proc


def _url(target: str | Path) -> str:
    return target.resolve().as_uri() if isinstance(target, Path) else target


def dump_dom(target: str | Path, budget_ms: int = 8000, timeout: float = 120.0) -> str:
    """The page's DOM after its scripts ran (`budget_ms` of virtual time), offline."""
    proc = _run(_url(target), [f"--virtual-time-budget={budget_ms}", "--dump-dom"], timeout)
    return proc.stdout


def screenshot(
    target: str | Path,
    out: Path,
    size: tuple[int, int] = (1400, 1000),
    budget_ms: int = 10000,
    timeout: float = 120.0,
) -> Path:
    """A PNG of the page after `budget_ms` of virtual time, offline."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(
        _url(target),
        [
            f"--virtual-time-budget={budget_ms}",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={out.resolve()}",
        ],
        timeout,
    )
    if not out.exists():
        raise BrowserError(f"chromium wrote no screenshot of {target}")
    return out
