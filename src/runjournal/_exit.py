"""Process exit: drain every live writer before the process ends.

One place handles every way a process ends (``fork()`` is ``runjournal._forks``'s):

- normal interpreter exit, and the end of a ``multiprocessing`` child (fork or
  spawn; such children leave through ``os._exit``, which skips ``atexit``, but
  ``multiprocessing`` runs ``threading._shutdown`` first): a threading-atexit hook,
  which also runs before non-daemon threads are joined;
- SIGTERM, whose default action would end the process on the spot: a handler,
  installed only where none was set, drains and then re-raises the signal;
- Ctrl-C raises ``KeyboardInterrupt``, which unwinds to the exit hooks above.

Callbacks registered with :func:`before_drain` (the run handles' "end the runs still
open") run first, on every one of these paths, so that what they write is drained too.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Drainable", "before_drain", "drain_all", "register"]


class Drainable(Protocol):
    """What the exit hooks need from a writer."""

    def drain_at_exit(self) -> None:
        """Write everything pending (within the writer's drain timeout) and stop."""


_live: weakref.WeakSet[Any] = weakref.WeakSet()
# Copying a WeakSet while another thread adds to it can fail. Reentrant, because the
# SIGTERM handler may run in the middle of a register() on the same thread.
_live_lock = threading.RLock()
_hooks_installed = False
_previous_sigterm: Any = None
_before: list[Callable[[bool], None]] = []


def register(writer: Drainable) -> None:
    """Drain ``writer`` at process end, for as long as it lives."""
    _install_hooks()
    with _live_lock:
        _live.add(writer)


def before_drain(callback: Callable[[bool], None]) -> None:
    """Call ``callback(terminated)`` before the writers drain at exit (once per process end).

    ``terminated`` is True when SIGTERM ends the process. A callback that raises is
    reported on stderr and does not stop the drain.
    """
    _install_hooks()
    with _live_lock:
        if callback not in _before:
            _before.append(callback)


def drain_all(terminated: bool = False) -> None:
    """Drain every live writer of this process; used by the exit and signal hooks."""
    with _live_lock:
        callbacks = list(_before)
    for callback in callbacks:
        try:
            callback(terminated)
        except Exception as exc:  # noqa: BLE001 - the drain must still happen
            print(f"runjournal: ending open runs failed: {exc!r}", file=sys.stderr)
    with _live_lock:
        writers = list(_live)
    for writer in writers:
        try:
            writer.drain_at_exit()
        except Exception as exc:  # noqa: BLE001 - one writer must not stop the others
            print(f"runjournal: draining failed: {exc!r}", file=sys.stderr)


def _on_sigterm(signum: int, frame: Any) -> None:
    drain_all(terminated=True)
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    # Die the way SIGTERM would have killed us, so the parent sees the real cause.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm() -> None:
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current is _on_sigterm or current is signal.SIG_IGN:
        return
    if current not in (signal.SIG_DFL, None):
        return  # the application handles SIGTERM itself; it will unwind to our exit hooks
    _previous_sigterm = current
    signal.signal(signal.SIGTERM, _on_sigterm)


def _install_hooks() -> None:
    global _hooks_installed
    _install_sigterm()
    if _hooks_installed:
        return
    _hooks_installed = True
    register_threading_atexit = getattr(threading, "_register_atexit", None)
    if register_threading_atexit is not None:
        register_threading_atexit(drain_all)
    atexit.register(drain_all)
