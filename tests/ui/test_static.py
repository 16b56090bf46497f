"""The static files as shipped: vendored uPlot matches VENDORED.md, and nothing builds markup.

These need no browser: they read the files in the package.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

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
