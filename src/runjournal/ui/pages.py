"""The dashboard's HTML pages: server-rendered shells for ``/``, ``/runs/{id}`` and ``/compare``.

Each shell is static markup that names its page and loads ``/static/app.js``; the ES modules
read everything through the JSON API, so the pages carry no user data and no inline script.
``page_routes`` and ``static_files_router()`` are what the app mounts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Final, NamedTuple

from litestar import MediaType, Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

__all__ = ["STATIC_DIR", "page_routes", "render_shell", "static_files_router"]

STATIC_DIR: Final = Path(__file__).parent / "static"
"""The static files: app.js and its modules, style.css, the favicon, vendor/uplot/."""

_TITLES: Final = {
    "home": "runjournal",
    "run": "run · runjournal",
    "compare": "compare · runjournal",
}

_SHELL: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/vendor/uplot/uPlot.min.css">
<link rel="stylesheet" href="/static/style.css">
<script type="module" src="/static/app.js"></script>
{preload}
</head>
<body data-page="{page}">
<header class="top"><a class="brand" href="/">runjournal</a></header>
<main id="app"><noscript>This dashboard needs JavaScript; the same data is at /api/.</noscript></main>
</body>
</html>
"""


# Every module the pages import, so the browser fetches them all at once instead of one level
# of imports at a time.
_PRELOAD: Final = "\n".join(
    f'<link rel="modulepreload" href="/static/{path.relative_to(STATIC_DIR).as_posix()}">'
    for path in sorted([*STATIC_DIR.glob("*.js"), STATIC_DIR / "vendor/uplot/uPlot.esm.js"])
    if path.name != "app.js"
)


def render_shell(page: str) -> str:
    """The HTML shell of ``page`` ("home", "run" or "compare"): fixed markup, no user data."""
    return _SHELL.format(title=_TITLES[page], page=page, preload=_PRELOAD)


def _html(page: str) -> Response[str]:
    return Response(render_shell(page), media_type=MediaType.HTML)


@get("/", include_in_schema=False, sync_to_thread=False)
def _home_page() -> Response[str]:
    """Experiments and the run table over all of them."""
    return _html("home")


@get("/runs/{run_id:str}", include_in_schema=False, sync_to_thread=False)
def _run_page(run_id: FromPath[str]) -> Response[str]:
    """One run; the page reads the id from its own address, so it never enters the markup."""
    del run_id
    return _html("run")


@get("/compare", include_in_schema=False, sync_to_thread=False)
def _compare_page() -> Response[str]:
    """Runs side by side; the ``run`` query parameters are read by the page."""
    return _html("compare")


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False)
def _favicon() -> Response[bytes]:
    """Browsers ask for /favicon.ico whatever the page links; a 404 would be a console error."""
    return Response(
        (STATIC_DIR / "favicon.svg").read_bytes(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "max-age=86400"},
    )


page_routes: Final = Router(
    path="/",
    route_handlers=[_home_page, _run_page, _compare_page, _favicon],
    include_in_schema=False,
)
"""The page handlers, mounted at the root by the app."""


_MEDIA_TYPES: Final = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".md": "text/plain",
}


class _StaticFile(NamedTuple):
    body: bytes
    media_type: str
    etag: str


def _load_static_files() -> dict[str, _StaticFile]:
    """Every file under ``STATIC_DIR`` by its URL path, read once: they are few and small."""
    files: dict[str, _StaticFile] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            body = path.read_bytes()
            media_type = _MEDIA_TYPES.get(path.suffix, "text/plain")
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            files[path.relative_to(STATIC_DIR).as_posix()] = _StaticFile(body, media_type, etag)
    return files


def static_files_router() -> Router:
    """``/static/...``: the files under ``STATIC_DIR``, served as they ship in the wheel.

    They are read into memory when the app is made, so a page's dozen modules cost no file
    system work per request (the compare page waits for all of them before its first fetch),
    and a URL only ever names one of them: no request path reaches the file system.
    """
    files = _load_static_files()

    @get("/{path:path}", include_in_schema=False, sync_to_thread=False)
    def static_file(request: Request[Any, Any, Any], path: FromPath[str]) -> Response[bytes]:
        found = files.get(path.lstrip("/"))
        if found is None:
            raise NotFoundException(f"no static file {path!r}")
        headers = {"ETag": found.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == found.etag:
            return Response(b"", status_code=304, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)

    return Router(path="/static", route_handlers=[static_file], include_in_schema=False)
