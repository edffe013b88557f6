"""Headless Chromium with the network refused: how the browser tests and `make screenshots`
see a report or the Prefect UI exactly as a user with no internet would.

Only loopback is reachable: every other host resolves to nothing and every proxied request
goes to a closed port (Chromium never proxies loopback), so a page that still loads a script
from a CDN renders without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


# The page's own document, loaded (not the about:blank Chromium opens first).
LOADED = "location.href !== 'about:blank' && document.readyState === 'complete'"


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


def evaluate(
    target: str | Path,
    script: str,
    ready: str = "true",
    size: tuple[int, int] = (1400, 1000),
    timeout: float = 120.0,
) -> Any:
    """The JSON value of the JavaScript expression `script` in the page at window `size`,
    evaluated once the expression `ready` is true, offline.

    Where `dump_dom` gives the markup, this gives what the browser laid out (an element's
    position against the window), through Chromium's DevTools protocol on loopback.

    Raises:
        BrowserError: no Chromium, or `ready` still false after `timeout` seconds.
    """
    exe = chromium()
    if exe is None:
        raise BrowserError("no chromium on PATH: apt-get install -y chromium")
    deadline = time.monotonic() + timeout
    # Chromium's helper processes may still write to the profile as it closes.
    with tempfile.TemporaryDirectory(
        prefix="retrain-chromium-", ignore_cleanup_errors=True
    ) as profile:
        flags = [f"--user-data-dir={profile}", "--remote-debugging-port=0"]
        proc = subprocess.Popen(
            [exe, *OFFLINE_FLAGS, *flags, f"--window-size={size[0]},{size[1]}", _url(target)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with _devtools(Path(profile), proc, deadline) as page:
                loaded = f"{LOADED} && ({ready})"
                while not page.value(loaded):
                    if time.monotonic() > deadline:
                        raise BrowserError(f"{target}: still not ready ({ready}) after {timeout}s")
                    time.sleep(0.5)
                return page.value(script)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


class _Page:
    """One page's DevTools connection: evaluate expressions, read back their values."""

    def __init__(self, socket: Any) -> None:
        self.socket, self.next_id = socket, 0

    def value(self, expression: str) -> Any:
        self.next_id += 1
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        self.socket.send(
            json.dumps({"id": self.next_id, "method": "Runtime.evaluate", "params": params})
        )
        while True:  # events (console messages, ...) come on the same socket
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.next_id:
                break
        result = reply.get("result", {})
        if "exceptionDetails" in result or "error" in reply:
            raise BrowserError(f"{expression[:80]!r} failed: {reply}")
        return result.get("result", {}).get("value")


@contextmanager
def _devtools(profile: Path, proc: subprocess.Popen[bytes], deadline: float) -> Iterator[_Page]:
    """The DevTools connection to the one page of the Chromium started with `profile`."""
    from websockets.sync.client import connect

    active = profile / "DevToolsActivePort"  # Chromium writes its chosen port here
    while not (active.exists() and active.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BrowserError("chromium did not open its DevTools port")
        time.sleep(0.2)
    port = active.read_text().split()[0]
    # No proxy for loopback, whatever the environment says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
        pages = [t for t in json.load(resp) if t.get("type") == "page"]
    if not pages:
        raise BrowserError("chromium has no page open")
    with connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
        yield _Page(socket)
