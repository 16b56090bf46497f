"""The dashboard's guard, as plain ASGI around the whole app: Host, methods, token, headers.

It runs before routing, so that a 404, a 405 and every static file get the same
checks and headers as the API:

- **Host.** Without a token, a request whose ``Host`` is not the bound host,
  ``localhost``, ``127.0.0.1`` or ``[::1]`` (any port) gets 403: a page of
  another site that rebinds its DNS name to 127.0.0.1 cannot read the API. With a
  token, ``allowed_hosts`` (default: any) decides, so that remote use works.
- **Methods.** Only GET and HEAD; anything else gets 405. The dashboard changes nothing.
  ``runjournal server`` names ``writable`` path prefixes (the MLflow API) where
  every method is let through; the rest of the app stays read-only.
- **Token.** When set, every request must carry it: ``Authorization: Bearer T``,
  the ``runjournal_token`` cookie, or ``?token=T``, which also sets that cookie
  (HttpOnly, SameSite=Strict) so the browser's next requests carry it.
- **Headers.** A strict Content-Security-Policy (no inline script, nothing from
  elsewhere), ``nosniff``, no framing, no referrer, on every response.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from litestar.types import ASGIApp, Message, Receive, Send

__all__ = [
    "CSP",
    "LOOPBACK_HOSTS",
    "SECURITY_HEADERS",
    "TOKEN_COOKIE",
    "Guard",
    "host_name",
    "is_loopback",
]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""The Content-Security-Policy of every response: only this server's own files run."""

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
"""Host names that always reach this machine only."""

TOKEN_COOKIE = "runjournal_token"
_ALLOWED_METHODS = frozenset({"GET", "HEAD"})


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port or IPv6 brackets, lowercased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_loopback(host: str) -> bool:
    """True for an address that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    name = host_name(host) if host.startswith("[") else host.strip().lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware: the checks and headers of this module, around ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        bound_host: str = "127.0.0.1",
        token: str | None = None,
        allowed_hosts: Iterable[str] | None = None,
        position: Callable[[], Awaitable[int]] | None = None,
        writable: Iterable[str] = (),
    ) -> None:
        self.app = app
        self._writable = tuple(writable)
        self._position = position
        self._token = token.encode() if token else None
        if token:
            self._hosts = None if allowed_hosts is None else {host_name(h) for h in allowed_hosts}
        else:
            self._hosts = {*LOOPBACK_HOSTS, host_name(bound_host)}
            self._hosts.update(host_name(h) for h in allowed_hosts or ())

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # nothing here speaks WebSocket
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if self._hosts is not None and host_name(headers.get("host", "")) not in self._hosts:
            await _error(send, 403, "FORBIDDEN_HOST", "this Host is not served here")
            return
        writable = bool(self._writable) and scope["path"].startswith(self._writable)
        if scope["method"] not in _ALLOWED_METHODS and not writable:
            await _error(
                send,
                405,
                "METHOD_NOT_ALLOWED",
                "the dashboard only reads: GET and HEAD",
                extra=[(b"allow", b"GET, HEAD")],
            )
            return
        set_cookie: bytes | None = None
        if self._token is not None:
            given = self._given_token(scope, headers)
            if given is None or not hmac.compare_digest(given[0], self._token):
                await _error(
                    send,
                    401,
                    "UNAUTHORIZED",
                    "a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN once",
                    extra=[(b"www-authenticate", b"Bearer")],
                )
                return
            if given[1]:
                set_cookie = (
                    f"{TOKEN_COOKIE}={self._token.decode()}; HttpOnly; SameSite=Strict; Path=/"
                ).encode()

        # The writable API answers in its own protocol, which has no journal position.
        position = None if writable else self._position
        head = scope["method"] == "HEAD"
        if head:  # answered as GET without its body: the handlers only declare GET
            scope = {**scope, "method": "GET"}
        finished = False

        async def send_with_headers(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body" and head:
                if finished:
                    return
                finished = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            if message["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                if set_cookie is not None:
                    extra.append((b"set-cookie", set_cookie))
                names = {k.lower() for k, _ in message.get("headers", ())}
                if (
                    position is not None
                    and b"x-journal-position" not in names
                    and (b"content-type", b"application/json") in message.get("headers", ())
                ):
                    # A JSON answer that no handler dated (an error before any read).
                    extra.append((b"x-journal-position", str(await position()).encode()))
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _given_token(self, scope: Any, headers: dict[str, str]) -> tuple[bytes, bool] | None:
        """The token the request carries, and whether it came in the query (set the cookie)."""
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip().encode(), False
        cookie_header = headers.get("cookie")
        if cookie_header:
            cookies: SimpleCookie = SimpleCookie()
            try:
                cookies.load(cookie_header)
            except Exception:  # a malformed Cookie header is no token  # noqa: BLE001
                cookies = SimpleCookie()
            if TOKEN_COOKIE in cookies:
                return cookies[TOKEN_COOKIE].value.encode(), False
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name == "token":
                return value.encode(), True
        return None


async def _error(
    send: Send,
    status: int,
    code: str,
    message: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
        *(extra or []),
    ]
    start: Any = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    done: Any = {"type": "http.response.body", "body": body}
    await send(done)
