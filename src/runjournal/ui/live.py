"""``/api/events``: Server-Sent Events of the journal as it grows, fed by ``journal.follow``.

Each journal entry becomes one message: ``id:`` its position, ``event:`` its
kind (``metrics``, ``run``, ``experiment``, ``artifact``) and ``data:`` a JSON
object with ``type`` (the event's tag) and ``run_id`` (``experiment_id`` for
experiment events); a metrics message also has ``key``, ``first_step``,
``last_step`` and ``count``, which describe the points of that entry. The
stream starts after ``?after=P`` or the ``Last-Event-ID`` header, else at the
journal's head. A ``: ping`` comment goes out every 15 s of silence, and the
stream ends when the server shuts down (:class:`Streams`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import msgspec
from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.response import Stream

from runjournal import journal
from runjournal.events import (
    ArtifactLogged,
    Event,
    ExperimentCreated,
    ExperimentDeleted,
    MetricChunkLogged,
    MetricLogged,
    MetricsLogged,
)
from runjournal.stores.base import Store
from runjournal.ui.api import bad_request

__all__ = ["PING_INTERVAL", "POLL_INTERVAL", "Streams", "event_message", "events"]

PING_INTERVAL = 15.0
"""Seconds of silence after which a comment keeps the connection (and proxies) alive."""
POLL_INTERVAL = 0.1
"""How often the journal is polled for new entries."""

_encode = msgspec.json.Encoder().encode


class Streams:
    """The open event streams of one app; :meth:`close` ends them all (at shutdown)."""

    def __init__(self) -> None:
        self._closing: asyncio.Event | None = None

    def event(self) -> asyncio.Event:
        """The event that is set when the streams must end (made on the serving loop)."""
        if self._closing is None:
            self._closing = asyncio.Event()
        return self._closing

    def close(self) -> None:
        """End every stream (call on the serving loop)."""
        self.event().set()


def event_message(position: int, event: Event) -> bytes:
    """The SSE message of one journal entry."""
    tag = type(event).__struct_config__.tag
    data: dict[str, Any] = {"type": tag}
    match event:
        case (
            MetricsLogged(run_id=run_id, key=key, points=points)
            | MetricChunkLogged(run_id=run_id, key=key, points=points)
        ):
            kind = "metrics"
            steps = [p.step for p in points]
            data.update(
                run_id=run_id,
                key=key,
                first_step=min(steps) if steps else None,
                last_step=max(steps) if steps else None,
                count=len(points),
            )
        case MetricLogged(run_id=run_id, key=key, step=step):
            kind = "metrics"
            data.update(run_id=run_id, key=key, first_step=step, last_step=step, count=1)
        case ExperimentCreated(experiment_id=exp_id) | ExperimentDeleted(experiment_id=exp_id):
            kind = "experiment"
            data["experiment_id"] = exp_id
        case ArtifactLogged(run_id=run_id):
            kind = "artifact"
            data.update(run_id=run_id, name=event.name, sha256=event.sha256)
        case _:
            kind = "run"
            data["run_id"] = getattr(event, "run_id", None)
            if isinstance(getattr(event, "experiment_id", None), str):
                data["experiment_id"] = event.experiment_id  # type: ignore[union-attr]
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (position, kind.encode(), _encode(data))


def _start(request: Request[Any, Any, Any], after: str | None) -> int | None:
    given = after if after is not None else request.headers.get("last-event-id")
    if given is None or given == "":
        return None
    if not given.isdigit():
        raise bad_request(f"after must be a journal position (an integer >= 0), got {given!r}")
    return int(given)


@get("/api/events", summary="Server-Sent Events of every new journal entry")
async def events(
    state: State, request: Request[Any, Any, Any], after: FromQuery[str | None] = None
) -> Stream:
    """The journal as it grows, from ``after`` (or ``Last-Event-ID``, or the head)."""
    store: Store = state.store
    streams: Streams = state.streams
    start = _start(request, after)
    position = await store.head() if start is None else start
    return Stream(
        _messages(store, position, streams.event()),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "X-Journal-Position": str(position),
        },
    )


async def _messages(
    store: Store, after: int, closing: asyncio.Event
) -> AsyncGenerator[bytes, None]:
    yield b": stream from %d\nretry: 1000\n\n" % after
    async with _following(store, after) as entries:
        closed: asyncio.Future[Any] = asyncio.ensure_future(closing.wait())
        upcoming: asyncio.Future[Any] | None = None
        try:
            while True:
                if upcoming is None:
                    upcoming = asyncio.ensure_future(anext(entries))
                done, _ = await asyncio.wait(
                    {upcoming, closed}, timeout=PING_INTERVAL, return_when=asyncio.FIRST_COMPLETED
                )
                if closed in done:
                    return
                if upcoming not in done:
                    yield b": ping\n\n"
                    continue
                position, event = upcoming.result()
                upcoming = None
                yield event_message(position, event)
        finally:
            closed.cancel()
            if upcoming is not None:
                upcoming.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await upcoming


@contextlib.asynccontextmanager
async def _following(store: Store, after: int) -> AsyncIterator[AsyncGenerator[tuple[int, Event]]]:
    entries = journal.follow(store, after=after, poll_interval=POLL_INTERVAL)
    try:
        yield entries
    finally:
        await entries.aclose()
