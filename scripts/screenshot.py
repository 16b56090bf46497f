"""Make the README screenshot: the compare page of three runs overlaid, in headless Chromium.

    python scripts/screenshot.py [--out docs/img/compare.png]

It writes a fresh database of three runs of a learning-rate sweep (200,000 points of loss each,
so the chart shows min/max bands, plus accuracy and params), serves it with `runjournal ui
--port 0`, and photographs /compare with Debian's Chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from runjournal import RunStatus, Tracker

ROOT = Path(__file__).resolve().parents[1]
FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


async def fill(path: Path, points: int) -> list[str]:
    """Three runs of a sweep; returns their ids."""
    ids = []
    async with Tracker.open(path) as tracker:
        exp = await tracker.create_experiment(
            "gpt2-finetune", {"model": "gpt2", "dataset": "wikitext"}, description="lr sweep"
        )
        for i, lr in enumerate([1e-4, 3e-4, 1e-3]):
            run = await tracker.create_run(exp, name=f"lr={lr:g}", tags={"sweep": "lr"})
            ids.append(run)
            await tracker.start_run(run)
            await tracker.log_params(
                run,
                {"learning_rate": lr, "batch_size": 32, "optimizer": "adamw", "warmup": 500 * i},
            )
            rng = random.Random(i)
            rate = 1 / (points * (0.5 - 0.12 * i))
            for step in range(points):
                noise = rng.gauss(0, 0.08) * math.exp(-step * rate)
                loss = 0.4 + 0.15 * i + 2.6 * math.exp(-step * rate * 4) + noise
                tracker.log_metric_nowait(run, "train/loss", step, loss)
                if step % 1000 == 0:
                    acc = 0.9 - 0.05 * i - 0.8 * math.exp(-step * rate * 3) + rng.gauss(0, 0.01)
                    tracker.log_metric_nowait(run, "eval/accuracy", step, acc)
            await tracker.complete_run(run, RunStatus.SUCCESS)
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "compare.png")
    parser.add_argument("--points", type=int, default=200_000)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "screenshot.db"
        ids = asyncio.run(fill(db, args.points))
        server = subprocess.Popen(
            [sys.executable, "-m", "runjournal.cli", "ui", "--db", str(db), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            base = server.stdout.readline().strip().rstrip("/")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium,
                    args=FLAGS + (["--no-sandbox"] if os.geteuid() == 0 else []),
                )
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(base + "/compare?" + "&".join(f"run={r}" for r in ids))
                charts = page.locator("[data-testid=chart]")
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    drawn = charts.evaluate_all("els => els.map(e => Number(e.dataset.points))")
                    if drawn and all(drawn):
                        break
                    time.sleep(0.1)
                page.locator("[data-testid=smoothing]").fill("0.6")
                box = charts.last.locator(".u-over").bounding_box()
                assert box is not None
                page.mouse.move(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.5)
                time.sleep(0.3)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=10)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
