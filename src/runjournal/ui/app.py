"""The Litestar app: the JSON API, the event stream, the pages, wrapped in the guard.

:func:`create_app` builds it over a tracker or a store. The OpenAPI document is
at ``/api/openapi.json``. Errors of every kind (ours, Litestar's validation and
routing) are answered as ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ASGIApp

from runjournal.stores.base import Store
from runjournal.tracker import Tracker
from runjournal.ui.api import POSITION_HEADER, ApiError, api_routes
from runjournal.ui.live import Streams, events
from runjournal.ui.security import Guard

__all__ = ["UiApp", "create_app"]

_FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<rect width="16" height="16" rx="3" fill="#2563eb"/>'
    b'<path d="M3 12 L7 7 L10 9 L13 4" stroke="#fff" stroke-width="1.6" fill="none"/></svg>'
)
_FALLBACK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>runjournal</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml"></head>
<body><h1>runjournal</h1><p>The JSON API is at <a href="/api/openapi.json">/api/</a>.</p></body>
</html>
"""


@get("/", include_in_schema=False, sync_to_thread=False)
def _fallback_home() -> Response[str]:
    return Response(_FALLBACK_PAGE, media_type=MediaType.HTML)


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False)
def _fallback_favicon() -> Response[bytes]:
    return Response(
        _FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
    )


@get("/api/openapi.json", include_in_schema=False, sync_to_thread=False)
def _openapi_document(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    return Response(request.app.openapi_schema.to_schema(), media_type=MediaType.JSON)


def _page_handlers() -> list[Any]:
    """The pages and static files of ``runjournal.ui.pages``, or a minimal page without them."""
    if importlib.util.find_spec("runjournal.ui.pages") is None:
        return [_fallback_home, _fallback_favicon]
    pages: Any = importlib.import_module("runjournal.ui.pages")
    return [pages.page_routes, pages.static_files_router()]


def _error_response(status: int, code: str, message: str, position: int | None) -> Response[Any]:
    headers = {} if position is None else {POSITION_HEADER: str(position)}
    return Response(
        {"error": {"code": code, "message": message}},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return _error_response(exc.status, exc.code, exc.message, exc.position)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, NotFoundException):
        return _error_response(404, "NOT_FOUND", "nothing here", None)
    if isinstance(exc, ValidationException):
        detail = exc.detail
        extra = exc.extra
        if isinstance(extra, list) and extra:
            detail = "; ".join(
                f"{e.get('key', '?')}: {e.get('message', '')}" for e in extra if isinstance(e, dict)
            )
        return _error_response(400, "BAD_REQUEST", str(detail), None)
    code = "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR"
    return _error_response(exc.status_code, code, str(exc.detail), None)


def _server_error(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _error_response(500, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}", None)


class UiApp:
    """The dashboard as an ASGI app: the guard around the Litestar app.

    ``litestar`` is the inner app (routes, OpenAPI); ``streams`` ends every open
    event stream (the server calls it when it shuts down).
    """

    def __init__(self, litestar: Litestar, guard: ASGIApp, streams: Streams) -> None:
        self.litestar = litestar
        self.streams = streams
        self._guard = guard

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._guard(scope, receive, send)


def create_app(
    source: Tracker | Store,
    *,
    token: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    bound_host: str = "127.0.0.1",
    debug: bool = False,
) -> UiApp:
    """The read-only dashboard over ``source`` (a tracker, or any store), as an ASGI app.

    ``token``: if given, every request must carry it (see ``security``), and
    ``allowed_hosts`` (default: any) limits the ``Host`` header; without one,
    only ``bound_host`` and the loopback names are served.
    """
    store = source.store if isinstance(source, Tracker) else source
    streams = Streams()
    app = Litestar(
        route_handlers=[*api_routes, events, _openapi_document, *_page_handlers()],
        state=_state(store, streams),
        # Served by _openapi_document: Litestar's own schema router would answer every
        # /api/... path it does not know with an HTML 404.
        openapi_config=OpenAPIConfig(
            title="runjournal",
            version="1",
            path="/_openapi",
            render_plugins=[JsonRenderPlugin()],
        ),
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        debug=debug,
    )
    guard = Guard(
        app,
        bound_host=bound_host,
        token=token,
        allowed_hosts=allowed_hosts,
        position=store.head,
    )
    return UiApp(app, guard, streams)


def _state(store: Store, streams: Streams) -> Any:
    from litestar.datastructures import State

    return State({"store": store, "streams": streams})
