"""Fixtures for the browser tests: a filled database, the real `runjournal ui`, Debian's Chromium.

Imported by ``test_browser.py`` (and the browser benchmark reuses ``launch_chromium`` and
``UiServer``), kept apart from ui-api's conftest. Without a ``chromium`` on PATH the tests skip
with one line, unless ``RUNJOURNAL_REQUIRE_BROWSER=1`` (set in CI), which makes that a failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import runjournal.tracker as tracker_module
from runjournal import RunStatus, Tracker

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Playwright

__all__ = [
    "PAYLOAD",
    "BrowserPage",
    "Filled",
    "UiServer",
    "browser",
    "chromium_path",
    "fill_database",
    "filled",
    "launch_chromium",
    "page",
    "require_browser",
    "server",
    "wait_until",
]

PAYLOAD = '<script>window.__xss=1;alert(1)</script>"><img src=x onerror="window.__xss=2;alert(2)">'
"""Goes into every user-supplied field: it must show as text, and never run."""

CHROMIUM_FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def find_chromium() -> str | None:
    """Debian's Chromium (never a browser downloaded by ``playwright install``)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch_chromium(playwright: Playwright, executable: str) -> Browser:
    """Headless Chromium with the flags that keep it off the network; no sandbox as root."""
    args = list(CHROMIUM_FLAGS)
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    return playwright.chromium.launch(executable_path=executable, headless=True, args=args)


def wait_until(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> float:
    """Poll ``check`` until true; returns the seconds waited. (The pages' CSP forbids eval, so
    Playwright's string predicates cannot run in them; attributes are read from Python.)"""
    start = time.perf_counter()
    while True:
        if check():
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Filled:
    """What ``fill_database`` wrote, for the tests to check pages against."""

    path: Path
    experiment_id: str
    runs: dict[str, str] = field(default_factory=dict)
    """Run name -> id: alpha, beta, gamma (finished), live (RUNNING), wide (16 keys), xss."""


async def _fill(path: Path) -> Filled:
    async with Tracker.open(path) as tracker:
        exp = await tracker.create_experiment(
            "vision", {"model": "resnet"}, description="a sweep", tags={"team": "cv"}
        )
        filled = Filled(path, exp)
        # Created in an order that differs from name order, so sorting by name shows.
        for i, name in enumerate(["gamma", "alpha", "beta"]):
            run = await tracker.create_run(exp, name=name, tags={"sweep": "lr"})
            filled.runs[name] = run
            await tracker.start_run(run)
            await tracker.log_params(
                run,
                {
                    "learning_rate": [3e-4, 1e-3, 3e-3][i],
                    "batch_size": 32,
                    "optimizer": {"name": "adamw", "betas": [0.9, 0.99 + i / 1000]},
                },
            )
            for step in range(5000):
                loss = 2.0 * math.exp(-step / (800.0 * (i + 1))) + 0.01 * ((step * 7919) % 13)
                await tracker.log_metric(run, "loss", step, loss)
            for step in range(50):
                await tracker.log_metric(run, "accuracy", step * 100, 1 - 1 / (step + 2))
            await tracker.log_artifact(run, "weights.bin", bytes([i]) * 100)
            await tracker.set_span_id(run, f"span-{name}")
            await tracker.complete_run(run, RunStatus.SUCCESS)

        live = await tracker.create_run(exp, name="live")
        filled.runs["live"] = live
        await tracker.start_run(live)
        for step in range(100):
            await tracker.log_metric(live, "loss", step, 1.0 / (step + 1))

        # A RUNNING run whose process went silent 12 minutes ago (its events dated then).
        real_time = tracker_module._time
        tracker_module._time = lambda: real_time() - 720
        try:
            stale = await tracker.create_run(exp, name="stale")
            await tracker.start_run(stale)
        finally:
            tracker_module._time = real_time
        filled.runs["stale"] = stale

        wide = await tracker.create_run(exp, name="wide")
        filled.runs["wide"] = wide
        for k in range(16):
            for step in range(10):
                await tracker.log_metric(wide, f"m{k:02d}", step, float(k * step))

        bad = await tracker.create_experiment(
            PAYLOAD, {PAYLOAD: PAYLOAD}, description=PAYLOAD, tags={PAYLOAD: PAYLOAD}
        )
        xss = await tracker.create_run(bad, name=PAYLOAD, tags={PAYLOAD: PAYLOAD})
        filled.runs["xss"] = xss
        await tracker.start_run(xss)
        await tracker.log_params(xss, {PAYLOAD: PAYLOAD, "nested": {PAYLOAD: [PAYLOAD]}})
        await tracker.log_metric(xss, PAYLOAD, 0, 1.0)
        await tracker.log_metric(xss, PAYLOAD, 1, 2.0)
        await tracker.log_artifact(xss, PAYLOAD, b"payload")
        await tracker.set_span_id(xss, PAYLOAD)
        await tracker.complete_run(xss, RunStatus.FAILED)
    return filled


def fill_database(path: Path) -> Filled:
    """Write the browser tests' database at ``path``.

    In a thread of its own: sync Playwright keeps an event loop running in the main thread.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(_fill(path))).result()


class UiServer:
    """``runjournal ui --port 0`` in a child process; ``url`` is the first line it prints."""

    def __init__(self, db: Path, *extra: str) -> None:
        # stderr goes to a file: a pipe nobody reads would stall the server once it filled.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runjournal.cli", "ui", "--db", str(db), "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            err = self.stop()
            raise RuntimeError(f"runjournal ui did not start: {line!r} {err!r}")
        self.url = line.rstrip("/")

    def stop(self) -> str:
        """Ctrl-C, as a user would stop it (killed if it does not leave in 10 s); its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.seek(0)
        err = self.log.read().decode(errors="replace")
        self.log.close()
        return err


def require_browser() -> str:
    """The Chromium executable. Without it (or without playwright), skip the whole calling
    module with one line, or fail when RUNJOURNAL_REQUIRE_BROWSER=1 (as CI sets it)."""
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed (it is in the test group)"
    path = find_chromium()
    if missing is None and path is None:
        missing = "no chromium on PATH (apt-get install chromium)"
    if missing is not None:
        if os.environ.get("RUNJOURNAL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (RUNJOURNAL_REQUIRE_BROWSER=1) but {missing}")
        pytest.skip(f"browser tests skipped: {missing}", allow_module_level=True)
    assert path is not None
    return path


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The Chromium executable (see ``require_browser``)."""
    return require_browser()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    """One headless Chromium per module: sync Playwright runs an event loop in the main thread
    while it lives, and later modules' ``asyncio.run`` must not find it there."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, chromium_path)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Filled:
    """The database every browser test reads (the live test appends to it)."""
    return fill_database(tmp_path_factory.mktemp("browser") / "ui.db")


@pytest.fixture(scope="module")
def server(filled: Filled, chromium_path: str) -> Iterator[UiServer]:
    """The real command serving ``filled``."""
    del chromium_path  # no browser, no server: the skip comes first
    ui = UiServer(filled.path)
    yield ui
    ui.stop()


@dataclass
class BrowserPage:
    """A page, and everything it said: console errors, uncaught errors, dialogs, API requests."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        """Load ``path`` and wait until its module has rendered (``body[data-ready]``)."""
        self.page.goto(self.base + path)
        self.page.wait_for_selector("body[data-ready=true]", timeout=10_000)

    def api(self, path: str) -> Any:
        """A JSON API answer, fetched with the page's own cookies."""
        response = self.page.request.get(self.base + path)
        assert response.ok, (path, response.status, response.text())
        return response.json()

    def chart_points(self, key: str) -> int:
        """``data-points`` of the chart for ``key`` (0 before its first draw)."""
        # Matched in the page, not in a CSS selector: keys may hold any character.
        values = self.page.locator("[data-testid=chart]").evaluate_all(
            "(els, key) => els.filter(e => e.dataset.key === key).map(e => e.dataset.points)", key
        )
        assert len(values) == 1, (key, values)
        return int(values[0] or 0)

    def series_requests(self) -> list[str]:
        return [u for u in self.requests if "/api/series" in u]


@pytest.fixture
def page(browser: Browser, server: UiServer) -> Iterator[BrowserPage]:
    """A fresh page on the server; at the end, no page may have logged a console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    watched = BrowserPage(tab, server.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(f"{message.text} ({message.location.get('url')})")

    def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))
    tab.on("dialog", on_dialog)
    tab.on("request", lambda request: watched.requests.append(request.url))
    yield watched
    context.close()
    assert watched.errors == [], watched.errors
    assert watched.dialogs == [], watched.dialogs
