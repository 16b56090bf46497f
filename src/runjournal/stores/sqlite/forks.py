"""Fork safety: the two locks that keep our threads out of SQLite while the process forks.

SQLite keeps each process's lock bookkeeping and mutexes in memory, so a child
forked while one of our threads is inside SQLite (a write transaction, a read, an
open or a close) inherits a lock that nobody will release, and hangs. Every call
into SQLite therefore holds one of two locks: the write lock (the writer thread's
connection) or the read lock (the read connection, used by one worker thread at a
time). Before a fork, :meth:`Locks.before_fork` takes both, letting what is in
flight finish for a few seconds at most. A forked child takes fresh locks and
abandons the parent's connections (:func:`abandon`).

No thread of ours is dedicated to a connection, so there is none to park for a
fork and none that could keep the interpreter from exiting.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from runjournal import _forks

__all__ = ["Locks", "abandon"]

# Connections inherited through fork() must never be used or closed by the child:
# closing them could release the parent's locks or remove its WAL. Keep them alive.
_ABANDONED: list[sqlite3.Connection] = []


def abandon(*conns: sqlite3.Connection | None) -> None:
    """Keep a forked child's inherited connections alive and unused, forever."""
    _ABANDONED.extend(conn for conn in conns if conn is not None)


class Locks:
    """The write lock and the read lock of one store, and the process they belong to."""

    def __init__(self) -> None:
        self.write = threading.RLock()
        """Held by the thread that uses the write connection (re-entrant: a transaction
        opens the connection under it)."""
        self.read = threading.Lock()
        """Held by the worker thread that uses the read connection."""
        self._held: list[threading.RLock | threading.Lock] = []
        self._pid = os.getpid()

    @property
    def forked(self) -> bool:
        """True in a forked child that has not taken fresh locks yet."""
        return self._pid != os.getpid()

    def before_fork(self) -> None:
        """Wait (up to ``_forks.WAIT_LIMIT`` each) for both locks, and hold them."""
        for lock in (self.write, self.read):
            if lock.acquire(timeout=_forks.WAIT_LIMIT):
                self._held.append(lock)

    def after_fork_in_parent(self) -> None:
        """Release what :meth:`before_fork` took."""
        held, self._held = self._held, []
        for lock in reversed(held):
            lock.release()

    def renew(self) -> None:
        """Fresh locks for a forked child: the parent's may be held by threads it lacks."""
        self.write = threading.RLock()
        self.read = threading.Lock()
        self._held = []
        self._pid = os.getpid()
