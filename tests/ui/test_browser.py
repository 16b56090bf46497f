"""The pages in a real Chromium against the real `runjournal ui` on a filled SQLite file.

Every test's page fixture also checks that nothing logged a console error or opened a dialog.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from urllib.parse import parse_qs, urlparse

from tests.ui.browser_fixtures import (
    PAYLOAD,
    BrowserPage,
    Filled,
    browser,
    chromium_path,
    filled,
    page,
    require_browser,
    server,
    wait_until,
)

__all__ = ["browser", "chromium_path", "filled", "page", "server"]  # fixtures, used by name

require_browser()


def _row_names(page: BrowserPage) -> list[str]:
    return page.page.locator("[data-testid=run-row] td.name").all_inner_texts()


def _drawn(page: BrowserPage, key: str) -> None:
    wait_until(lambda: page.chart_points(key) > 0, what=f"chart {key!r} drawn")


def _api_points(page: BrowserPage, run_ids: list[str], key: str, query: str = "") -> int:
    runs = "&".join(f"run={r}" for r in run_ids)
    body = page.api(f"/api/series?{runs}&key={key}&points=1000{query}")
    return sum(sum(v is not None for v in s["value"]) for s in body["series"])


def test_run_table_renders_and_sorts(page: BrowserPage, filled: Filled) -> None:
    page.open("/")
    rows = page.page.locator("[data-testid=run-row]")
    wait_until(lambda: rows.count() == len(filled.runs), what="a row per run")
    shown = set(rows.evaluate_all("rows => rows.map(r => r.dataset.runId)"))
    assert shown == set(filled.runs.values())

    before = page.page.locator("[data-testid=run-range]").inner_text()
    page.page.locator("th[data-sort=name] button").click()
    page.page.wait_for_selector("th[data-sort=name][aria-sort=ascending]")
    wait_until(lambda: page.page.locator("[data-testid=run-range]").inner_text() == before)
    api = page.api("/api/runs?sort=name&limit=100")["runs"]
    expected = [r["name"] or r["id"] for r in api]
    wait_until(lambda: _row_names(page) == expected, what="rows in the API's name order")
    names = [n for n in expected if n in {"alpha", "beta", "gamma"}]
    assert names == ["alpha", "beta", "gamma"]

    page.page.locator("th[data-sort=name] button").click()
    page.page.wait_for_selector("th[data-sort=name][aria-sort=descending]")
    wait_until(lambda: _row_names(page) == expected[::-1], what="rows in reverse name order")


def test_a_silent_running_run_shows_how_long_it_has_been_silent(
    page: BrowserPage, filled: Filled
) -> None:
    page.open(f"/runs/{filled.runs['stale']}")
    status = page.page.locator("[data-testid=run-status]")
    wait_until(lambda: "no activity for 12 min" in status.inner_text(), what="the stale status")
    assert status.inner_text().startswith("RUNNING")


def test_filter_box_and_experiment_filter(page: BrowserPage, filled: Filled) -> None:
    page.open(f"/?experiment={filled.experiment_id}")
    rows = page.page.locator("[data-testid=run-row]")
    wait_until(lambda: rows.count() == len(filled.runs) - 1, what="the experiment's runs")
    page.page.locator(".filter-input").fill("learning_rate>5e-4")
    page.page.locator(".filter-input").press("Enter")
    wait_until(lambda: sorted(_row_names(page)) == ["alpha", "beta"], what="filtered rows")
    assert page.page.locator("[data-testid=filter-chip]").count() == 1


def test_selected_runs_open_the_compare_page(page: BrowserPage, filled: Filled) -> None:
    page.open(f"/?experiment={filled.experiment_id}")
    for name in ("alpha", "gamma"):
        row = page.page.locator(f'[data-testid=run-row][data-run-id="{filled.runs[name]}"]')
        row.locator("input[type=checkbox]").check()
    page.page.locator(".compare-link").click()
    page.page.wait_for_selector("body[data-ready=true][data-page=compare]")
    assert parse_qs(urlparse(page.page.url).query)["run"] == [
        filled.runs["alpha"],
        filled.runs["gamma"],
    ]
    differs = page.page.locator("[data-testid=diff-table] tr[data-differs=true] th")
    assert "learning_rate" in differs.all_inner_texts()
    same = page.page.locator("[data-testid=diff-table] tr[data-differs=false] th")
    assert "batch_size" in same.all_inner_texts()
    for key in ("accuracy", "loss"):
        chart = page.page.locator(f"[data-testid=chart][data-key={key}]")
        assert (
            chart.get_attribute("data-run-ids") == f"{filled.runs['alpha']},{filled.runs['gamma']}"
        )


def test_run_page_chart_points_match_the_api(page: BrowserPage, filled: Filled) -> None:
    run = filled.runs["alpha"]
    page.open(f"/runs/{run}")
    for key in ("accuracy", "loss"):
        _drawn(page, key)
        assert page.chart_points(key) == _api_points(page, [run], key)
    # 5,000 points are downsampled to at most 1,000 entries; 50 come back exactly.
    assert page.chart_points("accuracy") == 50
    assert page.chart_points("loss") <= 1000
    header = page.page.locator(".run-header")
    assert "SUCCESS" in header.inner_text()
    assert page.page.locator("[data-testid=span-id]").inner_text() == "span-alpha"
    link = page.page.locator(".artifacts a")
    assert link.inner_text() == "weights.bin"
    assert (link.get_attribute("href") or "").startswith("/api/artifacts/")


def test_compare_page_overlays_runs_on_one_chart(page: BrowserPage, filled: Filled) -> None:
    ids = [filled.runs[n] for n in ("alpha", "beta", "gamma")]
    page.open("/compare?" + "&".join(f"run={r}" for r in ids))
    _drawn(page, "loss")
    assert page.chart_points("loss") == _api_points(page, ids, "loss")
    legend = page.page.locator("[data-testid=legend] .swatch")
    header = page.page.locator("[data-testid=diff-table] thead .swatch")
    colours = legend.evaluate_all("els => els.map(e => e.style.backgroundColor)")
    assert len(set(colours)) == 3
    assert header.evaluate_all("els => els.map(e => e.style.backgroundColor)") == colours


def test_charts_load_lazily(page: BrowserPage, filled: Filled) -> None:
    page.open(f"/runs/{filled.runs['wide']}")
    charts = page.page.locator("[data-testid=chart]")
    assert charts.count() == 16
    _drawn(page, "m01")
    fetched = {parse_qs(urlparse(u).query)["key"][0] for u in page.series_requests()}
    assert "m00" in fetched
    assert "m15" not in fetched, "a chart far below the fold was fetched"
    charts.last.scroll_into_view_if_needed()
    _drawn(page, "m15")


def test_a_point_logged_by_another_process_appears(page: BrowserPage, filled: Filled) -> None:
    run = filled.runs["live"]
    page.open(f"/runs/{run}")
    _drawn(page, "loss")
    before = page.chart_points("loss")
    history = len(page.series_requests())
    script = textwrap.dedent(
        f"""
        import asyncio
        from runjournal import Tracker

        async def main():
            async with Tracker.open({str(filled.path)!r}) as tracker:
                await tracker.log_metric({run!r}, "loss", 100, 0.5)

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    wait_until(lambda: page.chart_points("loss") == before + 1, timeout=2.0, what="the new point")
    # Only the new range was read: history is never fetched again.
    later = page.series_requests()[history:]
    assert later
    assert all(parse_qs(urlparse(u).query).get("start") == ["100"] for u in later), later


def test_zoom_fetches_the_window_and_double_click_resets(page: BrowserPage, filled: Filled) -> None:
    run = filled.runs["beta"]
    page.open(f"/runs/{run}")
    _drawn(page, "loss")
    full = page.chart_points("loss")
    chart = page.page.locator("[data-testid=chart][data-key=loss]")
    box = chart.locator(".u-over").bounding_box()
    assert box is not None
    seen = len(page.series_requests())
    y = box["y"] + box["height"] / 2
    page.page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.page.mouse.down()
    page.page.mouse.move(box["x"] + box["width"] * 0.3, y, steps=5)
    page.page.mouse.up()
    page.page.wait_for_selector("[data-testid=chart][data-key=loss][data-zoomed=true]")
    windows = [parse_qs(urlparse(u).query) for u in page.series_requests()[seen:]]
    assert len(windows) == 1
    start, end = int(windows[0]["start"][0]), int(windows[0]["end"][0])
    # A tenth of 5,000 steps, beginning about a fifth of the way in.
    assert 700 <= start <= 1300
    assert 300 <= end - start <= 700
    expected = _api_points(page, [run], "loss", f"&start={start}&end={end}")
    assert expected == end - start + 1  # few enough for full resolution
    wait_until(lambda: page.chart_points("loss") == expected, what="the window drawn")

    chart.locator(".u-over").dblclick()
    page.page.wait_for_selector("[data-testid=chart][data-key=loss][data-zoomed=false]")
    wait_until(lambda: page.chart_points("loss") == full, what="the full range again")
    assert "start" not in parse_qs(urlparse(page.series_requests()[-1]).query)


def test_chart_controls_redraw_without_errors(page: BrowserPage, filled: Filled) -> None:
    page.open(f"/runs/{filled.runs['gamma']}")
    _drawn(page, "loss")
    points = page.chart_points("loss")
    page.page.select_option("[data-testid=x-mode]", "relative")
    page.page.locator("[data-testid=smoothing]").fill("0.8")
    page.page.locator("[data-testid=chart][data-key=loss] .chart-log input").check()
    page.page.select_option("[data-testid=x-mode]", "wall")
    box = page.page.locator("[data-testid=chart][data-key=loss] .u-over").bounding_box()
    assert box is not None
    page.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    hover = page.page.locator("[data-testid=chart][data-key=loss] .chart-hover")
    wait_until(hover.is_visible, what="the hover readout")
    assert "gamma" in hover.inner_text()
    assert page.chart_points("loss") == points  # smoothing and axes add no counted points


def test_user_supplied_text_is_never_markup(page: BrowserPage, filled: Filled) -> None:
    run = filled.runs["xss"]
    for path in ("/", f"/runs/{run}", f"/compare?run={run}&run={filled.runs['alpha']}"):
        page.open(path)
        if path != "/":
            _drawn(page, PAYLOAD)
        content = page.page.locator("#app")
        assert PAYLOAD in content.inner_text(), path
        assert content.locator("img, script, iframe").count() == 0, path
        assert page.page.evaluate("() => window.__xss") is None, path
    page.open(f"/runs/{run}")
    page.page.locator("details").first.wait_for()
    tree = page.page.locator("[data-testid=params]").inner_text()
    assert tree.count(PAYLOAD) >= 3  # key, value, nested key and list item
    assert page.page.locator("[data-testid=tag]").inner_text() == f"{PAYLOAD}={PAYLOAD}"
    assert page.page.locator("[data-testid=span-id]").inner_text() == PAYLOAD
    assert page.page.locator(".artifacts a").inner_text() == PAYLOAD


def test_pages_log_no_console_errors(page: BrowserPage, filled: Filled) -> None:
    """Every page, the favicon included (a 404 there is a console error)."""
    ids = [filled.runs[n] for n in ("alpha", "beta", "gamma")]
    for path in ("/", f"/runs/{ids[0]}", "/compare?" + "&".join(f"run={r}" for r in ids)):
        page.open(path)
        if path != "/":
            _drawn(page, "loss")
    response = page.page.request.get(page.base + "/favicon.ico")
    assert response.ok
    # The fixture asserts page.errors == [] at the end.
