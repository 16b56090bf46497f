"""Case: the dashboard in headless Chromium (Debian's), against the real `runjournal ui`.

Two numbers from the issue. First, opening the compare page of 10 runs × 100,000 points of one
key until its first chart is drawn: the time is the page's own clock (``performance.now()`` at
the first draw, which counts from the start of navigation), read from the chart's
``data-first-drawn-at``. Second, a point logged (``await log_metric`` in this process, the
server in another) until the open run page has drawn it: polled from here every 10 ms, points
about 1.2 s apart so that each one meets the page's once-a-second redraw limit fresh.
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks._harness import Case, CaseResult, Context, Row, at_most, median, spread
from runjournal import Tracker

__all__ = ["CASE"]

OPEN_TARGET_MS = 1000.0
LIVE_TARGET_MS = 1500.0
FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


async def _fill(path: Path, runs: int, points: int) -> tuple[list[str], str]:
    async with Tracker.open(path) as tracker:
        exp = await tracker.create_experiment("bench-ui")
        ids = []
        for r in range(runs):
            run = await tracker.create_run(exp, name=f"run-{r}")
            ids.append(run)
            for step in range(points):
                tracker.log_metric_nowait(run, "loss", step, 1.0 / (1 + step) + r * 0.01)
        live = await tracker.create_run(exp, name="live")
        await tracker.start_run(live)
        for step in range(1000):
            tracker.log_metric_nowait(live, "loss", step, 1.0 / (1 + step))
    return ids, live


def _start_server(db: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "runjournal.cli", "ui", "--db", str(db), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("http://"):
        process.kill()
        raise RuntimeError(f"runjournal ui did not start: {line!r}")
    return process, line.rstrip("/")


def _poll(check: object, timeout: float = 30.0) -> None:
    end = time.perf_counter() + timeout
    while not check():  # type: ignore[operator]
        if time.perf_counter() > end:
            raise TimeoutError("the page did not draw in time")
        time.sleep(0.01)


def run(context: Context) -> CaseResult:
    runs, points = 10, context.config.n(100_000, 10_000)
    result = CaseResult(
        10,
        "Dashboard in a browser",
        f"headless Chromium on /compare of {runs} runs × {points:,} points (one key, one chart), "
        f"{context.config.repeats} page loads; then a point logged until drawn on an open run "
        f"page, {2 * context.config.repeats} points about 1.2 s apart",
    )
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        note = "no chromium and playwright (apt-get install chromium; the test group)"
        result.rows += [
            Row("open compare page until first chart drawn", None, "ms", None, note),
            Row("point logged until drawn", None, "ms", None, note),
        ]
        return result

    db = context.path("ui_browser.db")
    built = time.perf_counter()
    ids, live = asyncio.run(_fill(db, runs, points))
    result.notes.append(f"database built in {time.perf_counter() - built:.1f} s")
    server, base = _start_server(db)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as playwright:
            args = FLAGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
            browser = playwright.chromium.launch(executable_path=chromium, args=args)
            opened = []
            for _ in range(context.config.repeats):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(base + "/compare?" + "&".join(f"run={r}" for r in ids))
                chart = page.locator("[data-testid=chart]").first
                _poll(lambda chart=chart: chart.get_attribute("data-first-drawn-at"))
                opened.append(float(chart.get_attribute("data-first-drawn-at") or "nan"))
                page.close()
            result.rows.append(
                Row(
                    "open compare page until first chart drawn",
                    median(opened),
                    "ms",
                    at_most(OPEN_TARGET_MS),
                    spread(opened, "ms"),
                )
            )

            tracker = asyncio.run_coroutine_threadsafe(_open(db), loop).result()
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/runs/{live}")
            chart = page.locator("[data-testid=chart]").first
            _poll(lambda: int(chart.get_attribute("data-points") or 0) > 0)
            latencies = []
            for i in range(2 * context.config.repeats):
                time.sleep(1.2)
                before = int(chart.get_attribute("data-points") or 0)
                start = time.perf_counter()
                asyncio.run_coroutine_threadsafe(
                    tracker.log_metric(live, "loss", 1000 + i, 0.5), loop
                ).result()
                _poll(lambda before=before: int(chart.get_attribute("data-points") or 0) > before)
                latencies.append((time.perf_counter() - start) * 1e3)
            asyncio.run_coroutine_threadsafe(tracker.close(), loop).result()
            result.rows.append(
                Row(
                    "point logged until drawn",
                    median(latencies),
                    "ms",
                    at_most(LIVE_TARGET_MS),
                    spread(latencies, "ms"),
                )
            )
            browser.close()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    return result


async def _open(path: Path) -> Tracker:
    tracker = Tracker.open(path)
    await tracker.__aenter__()
    return tracker


CASE = Case("ui-browser", 11, "Dashboard in a browser", run)
