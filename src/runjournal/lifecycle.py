"""Process lifecycle: drain every live writer before the process ends, and after fork.

One place handles every way a process ends or splits:

- normal interpreter exit, and the end of a ``multiprocessing`` child (fork or
  spawn; such children leave through ``os._exit``, which skips ``atexit``, but
  ``multiprocessing`` runs ``threading._shutdown`` first): a threading-atexit hook,
  which also runs before non-daemon threads are joined;
- SIGTERM, whose default action would end the process on the spot: a handler,
  installed only where none was set, drains and then re-raises the signal;
- Ctrl-C raises ``KeyboardInterrupt``, which unwinds to the exit hooks above;
- ``fork()``: first each writer commits what is pending (briefly), so that the
  child finds the runs its parent created in the store; then, in the child, each
  writer forgets the parent's queue, lets its store drop the parent's connections
  and locks, and starts afresh.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from typing import Any, Protocol

__all__ = ["Drainable", "drain_all", "register"]


class Drainable(Protocol):
    """What the lifecycle hooks need from a writer."""

    def drain_at_exit(self) -> None:
        """Write everything pending (within the writer's drain timeout) and stop."""

    def before_fork(self) -> None:
        """Commit what is pending, within a short bound, before the process forks."""

    def after_fork_in_parent(self) -> None:
        """Undo what :meth:`before_fork` held during the fork."""

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child, without the parent's pending events."""


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_hooks_installed = False
_previous_sigterm: Any = None


def register(writer: Drainable) -> None:
    """Drain ``writer`` at process end and reset it after fork, for as long as it lives."""
    _install_hooks()
    _live.add(writer)


def _each_writer(method: str, failure: str) -> None:
    for writer in list(_live):
        try:
            getattr(writer, method)()
        except Exception as exc:  # noqa: BLE001 - one writer must not stop the others, nor a fork
            print(f"runjournal: {failure} failed: {exc!r}", file=sys.stderr)


def drain_all() -> None:
    """Drain every live writer of this process; used by the exit and signal hooks."""
    _each_writer("drain_at_exit", "draining")


def _before_fork() -> None:
    _each_writer("before_fork", "committing before fork")


def _after_fork_in_parent() -> None:
    _each_writer("after_fork_in_parent", "resuming after fork")


def _after_fork_in_child() -> None:
    for writer in list(_live):
        writer.after_fork_in_child()


def _on_sigterm(signum: int, frame: Any) -> None:
    drain_all()
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
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
