"""The synchronous face: every :class:`Tracker` method without ``await``, on the same core.

``SyncTracker`` and ``SyncRun`` are the async :class:`~runjournal.tracker.Tracker` and
:class:`~runjournal.run.RunHandle` seen from plain code. Their methods are generated
from the async ones (``scripts/gen_sync.py`` writes ``_sync_methods.py``), so the two
faces cannot drift:

- the logging calls (``log``, ``log_metric``, ``log_params``, ``set_tag``, ...) are
  bound on each instance straight to the ``*_nowait`` core: no thread hop, no extra
  frame, the same cost as ``Tracker.log_metric_nowait``;
- queries and barriers (``get_metrics``, ``flush``, ``close``, ...) run the async
  method on one background event loop per process (a blocking portal,
  :mod:`runjournal._portal`) and wait for it.

Both are safe from several threads. A blocking call from a thread that runs an event
loop raises ``RuntimeError`` and points to :class:`Tracker`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

from runjournal import _portal
from runjournal._sync_methods import SyncRunMethods, SyncTrackerMethods
from runjournal.model import RunStatus
from runjournal.run import RunHandle
from runjournal.stores.base import Store
from runjournal.stores.sqlite import Durability
from runjournal.tracker import Tracker

__all__ = ["SyncRun", "SyncTracker"]


class SyncTracker(SyncTrackerMethods):
    """A :class:`Tracker` for synchronous code: the same methods, without ``await``.

    Open one with :meth:`open` or :meth:`open_in_memory` (the store is opened at
    once), use it as ``with``, or :meth:`close` it. ``tracker.run(...)`` gives a
    :class:`SyncRun`.
    """

    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker
        for name, target in self._DIRECT:
            setattr(self, name, getattr(tracker, target))

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = "experiments.db",
        *,
        durability: Durability = "normal",
        busy_timeout: float = 30.0,
        read_only: bool = False,
        **options: Any,
    ) -> SyncTracker:
        """A tracker on the SQLite database at ``path``, created if missing (see :meth:`Tracker.open`)."""
        tracker = Tracker.open(
            path, durability=durability, busy_timeout=busy_timeout, read_only=read_only, **options
        )
        return cls._opened(tracker)

    @classmethod
    def open_in_memory(cls, **options: Any) -> SyncTracker:
        """A tracker on the in-memory store: nothing outlives the process."""
        return cls._opened(Tracker.open_in_memory(**options))

    @classmethod
    def _opened(cls, tracker: Tracker) -> SyncTracker:
        _portal.call("open", tracker.__aenter__)
        return cls(tracker)

    @property
    def store(self) -> Store:
        """The store this tracker writes to."""
        return self._tracker.store

    @property
    def tracker(self) -> Tracker:
        """The async tracker underneath (for code that mixes both faces)."""
        return self._tracker

    def __repr__(self) -> str:
        return f"SyncTracker({self._tracker.store!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # On an exception: still write everything, but let that error win (as Tracker's).
        _portal.call("close", self._tracker.__aexit__, exc_type, exc, tb)

    def run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        capture: bool = True,
        system_metrics: bool | float = False,
    ) -> SyncRun:
        """A run of the experiment called ``experiment``, as ``with tracker.run(...) as run``.

        Entering the block gets or creates the experiment, creates and starts the
        run (see :meth:`Tracker.run`); leaving it ends the run as
        :class:`~runjournal.run.RunHandle` does.
        """
        handle = self._tracker.run(
            experiment,
            name=name,
            params=params,
            tags=tags,
            capture=capture,
            system_metrics=system_metrics,
        )
        return SyncRun(self, handle)


class SyncRun(SyncRunMethods):
    """A :class:`~runjournal.run.RunHandle` for synchronous code, from ``SyncTracker.run``.

    ``with tracker.run(...) as run:`` creates and starts the run on entering and
    ends it on leaving: SUCCESS, FAILED on an exception (with ``error.type`` and
    ``error.message`` tags), CANCELLED on ``KeyboardInterrupt``. ``run.log({...})``
    goes straight to the queue.
    """

    def __init__(
        self,
        tracker: SyncTracker,
        handle: RunHandle,
        *,
        on_end: Callable[[SyncRun], None] | None = None,
    ) -> None:
        self._sync_tracker = tracker
        self._handle = handle
        self._on_end = on_end
        for name, target in self._DIRECT:
            setattr(self, name, getattr(handle, target))

    def __repr__(self) -> str:
        return f"SyncRun(id={self._handle._run_id!r})"

    @property
    def id(self) -> str:
        """The run's id (once started)."""
        return self._handle.id

    @property
    def experiment_id(self) -> str:
        """The id of the run's experiment (once started)."""
        return self._handle.experiment_id

    @property
    def tracker(self) -> SyncTracker:
        """The tracker this run logs through."""
        return self._sync_tracker

    def _start(self) -> None:
        _portal.call("run", self._handle.__aenter__)

    def __enter__(self) -> Self:
        if self._handle._run_id is None:
            self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            _portal.call("finish", self._handle.__aexit__, exc_type, exc, tb)
        finally:
            self._ended()

    def finish(self, status: RunStatus | str = "SUCCESS") -> None:
        """End the run now (SUCCESS, FAILED or CANCELLED); leaving the block then does nothing."""
        try:
            _portal.call("finish", self._handle.finish, status)
        finally:
            self._ended()

    def _ended(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(self)
