"""The synchronous faces' one background event loop: a blocking portal, shared per process.

Queries and barriers of :class:`~runjournal.sync.SyncTracker` and
:class:`~runjournal.sync.SyncRun` run the async core on this loop (anyio's
``start_blocking_portal``), in a daemon thread started on first use. It is stopped
before the writers drain at exit, so neither it nor anyio's worker threads keep the
interpreter from exiting. A forked child starts its own on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from runjournal import _exit

__all__ = ["SyncFace", "call", "stop"]

T = TypeVar("T")

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_manager: contextlib.AbstractContextManager[BlockingPortal] | None = None
_pid = 0
# A forked child's copies of the parent's portal: kept, never finalized, because closing
# one waits for a loop thread that does not exist in the child.
_orphans: list[object] = []


def _get() -> BlockingPortal:
    portal = _portal
    if portal is not None and _pid == os.getpid():
        return portal
    return _start()


def _start() -> BlockingPortal:
    global _portal, _manager, _pid
    with _lock:
        if _portal is not None and _pid == os.getpid():
            return _portal
        _orphans.append(_manager)
        manager = start_blocking_portal(name="runjournal-portal")
        portal = manager.__enter__()
        _portal, _manager, _pid = portal, manager, os.getpid()
    _exit.before_drain(_stop_at_exit)
    return portal


def stop() -> None:
    """Stop the background loop (cancelling what still runs on it); the next call restarts it."""
    global _portal, _manager
    with _lock:
        portal, manager = _portal, _manager
        if portal is None or manager is None or _pid != os.getpid():
            _orphans.append(manager)
            _portal = _manager = None
            return
        _portal = _manager = None
    with contextlib.suppress(RuntimeError):  # it had stopped already
        portal.call(portal.stop, True)
        manager.__exit__(None, None, None)


def _stop_at_exit(terminated: bool) -> None:
    if not terminated:  # after SIGTERM the process dies at once anyway
        stop()


def call(name: str, func: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
    """Run ``await func(*args, **kwargs)`` on the background loop and return its result.

    Refused from a thread that runs an event loop: blocking it would stall that loop,
    and waiting on the portal's own loop would deadlock.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            f"{name}() blocks, and this thread runs an event loop: in async code use "
            "runjournal.Tracker (`async with Tracker.open(...)`, `await tracker.…`) instead "
            "of SyncTracker"
        )
    if kwargs:
        return _get().call(functools.partial(func, *args, **kwargs))
    return _get().call(func, *args)


class SyncFace:
    """What the generated synchronous methods need: the async object and the portal."""

    __slots__ = ()

    def _call(
        self, name: str, func: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> T:
        return call(name, func, *args, **kwargs)
