"""The home page's run table over more runs than one page holds, in a real Chromium.

The table pages by 100 runs. Each page it shows is the API's page that its range names, even
when the reader clicks faster than pages load, and the next page is fetched before it is asked
for, so that "next" draws from memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from runjournal import Tracker
from tests.ui.browser_fixtures import (
    BrowserPage,
    UiServer,
    browser,
    chromium_path,
    page,
    require_browser,
    wait_until,
)

__all__ = ["browser", "chromium_path", "page", "server"]  # fixtures, used by name

require_browser()

RUNS = 250


async def _fill(path: Path) -> None:
    async with Tracker.open(path) as tracker:
        experiment = await tracker.create_experiment("sweep")
        for i in range(RUNS):
            run = await tracker.create_run(experiment, name=f"trial-{i:03d}")
            tracker.log_params_nowait(run, {"seed": i})
            tracker.log_metric_nowait(run, "loss", 0, 1.0 / (i + 1))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[UiServer]:
    """The real command serving 250 runs (the `page` fixture opens pages on it)."""
    del chromium_path
    db = tmp_path_factory.mktemp("paging") / "runs.db"
    # In a thread of its own: sync Playwright keeps an event loop running in the main thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(_fill(db))).result()
    ui = UiServer(db)
    yield ui
    ui.stop()


def _range(page: BrowserPage) -> str:
    return page.page.locator("[data-testid=run-range]").inner_text()


def _shown(page: BrowserPage) -> list[str]:
    rows = page.page.locator("[data-testid=run-row]")
    ids: list[str] = rows.evaluate_all("rows => rows.map(r => r.dataset.runId)")
    return ids


def _cursor(page: BrowserPage, offset: int) -> str:
    """The API's cursor of the page that starts at ``offset`` (cursors are opaque: follow them)."""
    cursor = ""
    for _ in range(offset // 100):
        body = page.api(f"/api/runs?sort=created_at&desc=true&limit=100{cursor}")
        cursor = f"&cursor={quote(body['next'])}"
    return cursor


def _api_page(page: BrowserPage, offset: int) -> list[str]:
    body = page.api(f"/api/runs?sort=created_at&desc=true&limit=100{_cursor(page, offset)}")
    return [run["id"] for run in body["runs"]]


def _wait_for_page(page: BrowserPage, offset: int, last: int) -> None:
    want = f"runs {offset + 1}–{last} of {RUNS}"
    wait_until(lambda: _range(page) == want, what=want)
    assert _shown(page) == _api_page(page, offset)


def test_pages_forward_and_back_show_the_apis_pages(page: BrowserPage) -> None:
    page.open("/")
    _wait_for_page(page, 0, 100)
    nav = page.page.locator("nav.pager")
    nav.get_by_role("button", name="next ›").click()
    _wait_for_page(page, 100, 200)
    nav.get_by_role("button", name="next ›").click()
    _wait_for_page(page, 200, RUNS)
    assert nav.get_by_role("button", name="next ›").is_disabled()
    nav.get_by_role("button", name="‹ previous").click()
    _wait_for_page(page, 100, 200)
    nav.get_by_role("button", name="‹ previous").click()
    _wait_for_page(page, 0, 100)


def test_the_next_page_is_fetched_before_it_is_asked_for(page: BrowserPage) -> None:
    page.open("/")
    _wait_for_page(page, 0, 100)
    second = _cursor(page, 100).lstrip("&")
    wait_until(lambda: any(second in u for u in page.requests), what="the next page prefetched")
    before = len([u for u in page.requests if "/api/runs" in u])
    page.page.locator("nav.pager").get_by_role("button", name="next ›").click()
    _wait_for_page(page, 100, 200)
    fetched = [u for u in page.requests if "/api/runs" in u][before:]
    assert not any(second in u for u in fetched), fetched


def test_clicks_faster_than_pages_load_never_mix_pages(page: BrowserPage) -> None:
    page.open("/")
    _wait_for_page(page, 0, 100)
    # Two clicks in one task: the second finds the pager waiting for the first page.
    page.page.evaluate(
        """() => {
            const next = [...document.querySelectorAll("nav.pager button")].at(-1);
            next.click();
            next.click();
        }"""
    )
    _wait_for_page(page, 100, 200)
    page.page.wait_for_timeout(300)
    assert _range(page) == f"runs 101–200 of {RUNS}"
    assert _shown(page) == _api_page(page, 100)
