"""Fork safety: every writer and store of the process steps aside while it forks.

SQLite keeps its mutexes and its lock bookkeeping in process memory. A child forked
while one of our threads is inside SQLite inherits a mutex that nobody will
release, and hangs at its first SQLite call. So around ``fork()``:

1. writers commit what is pending (so that a child finds the runs its parent
   created), then
2. stores hold their own threads out of the storage;

and afterwards the parent resumes, while the child drops what it inherited from
threads it does not have, stores first, and writers start afresh.

Registering takes the lock that a fork holds from its first hook to its last. An
object created by one thread while another forks therefore joins after the fork,
never halfway through it: when the hooks worked from a snapshot of the
participants instead, a store opened during a fork was missed, and 1 fork in
about 40 of the fork-while-busy test left a child hung in ``sqlite3_open``. The
same lock makes two threads' forks take turns.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from enum import IntEnum
from typing import Any, Protocol

__all__ = ["WAIT_LIMIT", "Participant", "Stage", "register"]

WAIT_LIMIT = 5.0
"""How long a participant waits for its threads to step aside; then the fork goes ahead."""


class Participant(Protocol):
    """What the fork hooks call on a writer or a store."""

    def before_fork(self) -> None:
        """Get ready to be copied: called in the parent before it forks."""

    def after_fork_in_parent(self) -> None:
        """Undo :meth:`before_fork` in the parent."""

    def after_fork_in_child(self) -> None:
        """Drop what the child inherited from the parent's threads, and start afresh."""


class Stage(IntEnum):
    """The order of the ``before_fork`` calls; the ``after`` calls run in reverse."""

    COMMIT = 0  # writers: they need their store to commit, so they go first
    QUIESCE = 1  # stores: no thread of theirs inside the storage from here on


_lock = threading.Lock()
_forking = False
_stages: tuple[weakref.WeakSet[Any], ...] = tuple(weakref.WeakSet() for _ in Stage)


def register(participant: Participant, stage: Stage) -> None:
    """Call ``participant``'s fork hooks at ``stage`` for as long as it lives. Idempotent."""
    with _lock:
        _stages[stage].add(participant)


def _each(stages: tuple[weakref.WeakSet[Any], ...], method: str) -> None:
    for stage in stages:
        for participant in list(stage):
            try:
                getattr(participant, method)()
            except Exception as exc:  # noqa: BLE001 - one participant must not stop a fork
                print(f"runjournal: {method} failed: {exc!r}", file=sys.stderr)


def _before() -> None:
    global _forking
    _lock.acquire()
    _forking = True
    _each(_stages, "before_fork")


def _after_in_parent() -> None:
    global _forking
    _each(tuple(reversed(_stages)), "after_fork_in_parent")
    if _forking:
        _forking = False
        _lock.release()


def _after_in_child() -> None:
    global _forking
    _each(tuple(reversed(_stages)), "after_fork_in_child")
    if _forking:
        _forking = False
        _lock.release()


os.register_at_fork(
    before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child
)
