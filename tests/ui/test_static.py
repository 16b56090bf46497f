"""The static files as shipped: vendored uPlot matches VENDORED.md, and nothing builds markup.

These need no browser: they read the files in the package, and serve them through the app.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from runjournal import Tracker
from runjournal.ui import create_app
from runjournal.ui.pages import STATIC_DIR, render_shell

UPLOT = STATIC_DIR / "vendor" / "uplot"
MODULES = sorted(p for p in STATIC_DIR.glob("*.js"))


def _vendored_digests() -> dict[str, str]:
    text = (UPLOT / "VENDORED.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\S+) \| \S+ \| ([0-9a-f]{64}) \|$", text, flags=re.MULTILINE)
    return dict(rows)


def test_vendored_uplot_matches_its_recorded_sha256() -> None:
    digests = _vendored_digests()
    assert set(digests) == {"uPlot.esm.js", "uPlot.min.css", "LICENSE"}
    for name, digest in digests.items():
        assert hashlib.sha256((UPLOT / name).read_bytes()).hexdigest() == digest, name
    assert "1.6.32" in (UPLOT / "VENDORED.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", ["home", "run", "compare"])
def test_shells_have_no_inline_script_or_style(page: str) -> None:
    html = render_shell(page)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == ['<script type="module" src="/static/app.js">']
    assert "</script>" in html.split(scripts[0], 1)[1][:9]  # empty element, no body
    assert not re.search(r"\sstyle=|<style|\son\w+=", html)
    assert f'data-page="{page}"' in html


def test_every_file_a_shell_links_exists() -> None:
    for ref in re.findall(r'(?:href|src)="/static/([^"]+)"', render_shell("home")):
        assert (STATIC_DIR / ref).is_file(), ref
    for module in MODULES:
        for ref in re.findall(r'from "\./([^"]+)"', module.read_text(encoding="utf-8")):
            assert (STATIC_DIR / ref).is_file(), (module.name, ref)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_modules_never_parse_strings_as_markup_or_code(module: Path) -> None:
    source = module.read_text(encoding="utf-8")
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                   "new Function", "setAttribute(\"style\"", "cssText"):  # fmt: skip
        assert banned not in source, banned


async def test_every_shipped_file_is_served_as_it_is_on_disk_and_nothing_else() -> None:
    async with (
        Tracker.open_in_memory() as tracker,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(tracker)), base_url="http://127.0.0.1"
        ) as client,
    ):
        for path in sorted(p for p in STATIC_DIR.rglob("*") if p.is_file()):
            url = "/static/" + path.relative_to(STATIC_DIR).as_posix()
            response = await client.get(url)
            assert response.status_code == 200, url
            assert response.content == path.read_bytes(), url
        module = await client.get("/static/app.js")
        assert module.headers["content-type"].startswith("text/javascript")
        assert module.headers["x-content-type-options"] == "nosniff"
        again = await client.get(
            "/static/app.js", headers={"If-None-Match": module.headers["etag"]}
        )
        assert again.status_code == 304
        assert again.content == b""
        for missing in ("/static/nope.js", "/static/../pages.py", "/static/%2e%2e/pages.py",
                        "/static/vendor", "/static//etc/passwd"):  # fmt: skip
            assert (await client.get(missing)).status_code == 404, missing
