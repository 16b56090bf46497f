"""The public face: an async tracker whose logging calls only enqueue events.

Every ``log_*`` call validates its arguments, builds one event and appends it to
the writer's bounded queue; it never touches the disk. Its ``*_nowait`` twin does
the same from plain synchronous code on any thread. Both share one core
(``_metric_event`` and friends to build, ``_offer`` to enqueue). Queries first
wait until everything this tracker accepted is committed (read-your-writes),
then read the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, overload

import anyio
import anyio.lowlevel
import anyio.to_thread

from runjournal.errors import ExperimentNotFound, RunJournalError, RunNotFound, StoreReadOnly
from runjournal.events import (
    ExperimentCreated,
    ExperimentDeleted,
    ExperimentUpdated,
    MetricLogged,
    ParamsLogged,
    RunCompleted,
    RunCreated,
    RunDeleted,
    RunHeartbeat,
    RunHidden,
    RunRenamed,
    RunRestored,
    RunResumed,
    RunStarted,
    SpanIdSet,
    TagDeleted,
    TagSet,
)
from runjournal.filtering import RunPage
from runjournal.ids import name_id, new_id
from runjournal.model import (
    ArtifactRef,
    Experiment,
    MetricArrays,
    MetricBucket,
    MetricPoint,
    ParamFilter,
    Run,
    RunStatus,
    RunView,
    check_final_status,
    check_key,
    check_name,
    check_param_value,
    check_tags,
    check_text,
    check_timestamp,
    check_value,
    check_view,
)
from runjournal.projection import check_resume, check_transition
from runjournal.run import RunHandle
from runjournal.stores.base import Content, Store
from runjournal.stores.memory import InMemoryStorage
from runjournal.stores.sqlite import Durability
from runjournal.stores.urls import store_for
from runjournal.uploads import (
    StreamedContent,
    Upload,
    UploadAbandoned,
    directory_files,
    safe_file_name,
)
from runjournal.writer import OnFull, QueueItem, Ticket, Writer, WriterStats

__all__ = ["Tracker"]

_STEP_MAX = 2**63 - 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
_time = time.time

T = TypeVar("T")


class Tracker:
    """Tracks experiments, runs, params, metrics and artifacts in an event journal.

    Open one with :meth:`open` (SQLite file) or :meth:`open_in_memory`, and use it
    as ``async with``. ``max_pending`` bounds the queue; when it is full,
    ``await log_*`` waits, and ``*_nowait`` follows ``on_full`` (``"block"`` or
    ``"drop"``, which counts and warns). ``drain_timeout`` bounds how long closing
    may take to write what is pending.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_pending: int = 100_000,
        on_full: OnFull = "block",
        drain_timeout: float = 30.0,
        flush_interval: float = 0.1,
        batch_size: int = 20_000,
    ) -> None:
        self._store = store
        self._options: dict[str, Any] = {
            "max_pending": max_pending,
            "on_full": on_full,
            "drain_timeout": drain_timeout,
            "flush_interval": flush_interval,
            "batch_size": batch_size,
        }
        self._writer = Writer(store, **self._options)
        self._queue = self._writer.queue
        # The bound method, looked up once: offering is the whole hot path of log_metric.
        self._offer: Callable[[QueueItem], bool] = self._queue.offer
        self._read_only = bool(getattr(store, "read_only", False))
        if self._read_only:
            self._offer = _refuse  # every logging call takes the slow path, which raises
        self._block = on_full == "block"
        self._known_runs: set[str] = set()
        self._known_experiments: set[str] = set()
        self._metric_keys: set[str] = set()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = "experiments.db",
        *,
        durability: Durability = "normal",
        busy_timeout: float = 30.0,
        read_only: bool = False,
        **options: Any,
    ) -> Tracker:
        """A tracker on the SQLite database at ``path``, created if missing.

        A ``postgresql://`` URL opens the PostgreSQL store instead
        (:class:`~runjournal.stores.PostgresBackend`, the ``postgres`` extra); its
        tables are created in the schema ``runjournal`` (``?schema=NAME`` names another).

        With ``read_only=True`` the database must exist (else ``FileNotFoundError``)
        and is only read: queries work, even on a file in a read-only directory or
        one that other processes are writing, and every logging call raises
        :class:`~runjournal.errors.StoreReadOnly` at the call.
        """
        store = store_for(
            path, durability=durability, busy_timeout=busy_timeout, read_only=read_only
        )
        return cls(store, **options)

    @classmethod
    def open_in_memory(cls, **options: Any) -> Tracker:
        """A tracker on the in-memory store: nothing outlives the process."""
        return cls(InMemoryStorage(), **options)

    @property
    def store(self) -> Store:
        """The store this tracker writes to."""
        return self._store

    def __repr__(self) -> str:
        return f"Tracker({self._store!r})"

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self._store.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.close()
            return
        # The training loop failed: still write everything, but let its error win.
        await _finish(self._close_quietly)

    def _close_quietly(self) -> None:
        try:
            self._writer.close()
        finally:
            self._store.close_blocking()

    async def flush(self) -> None:
        """Return once every event accepted before this call is committed.

        Raises the store's error while it cannot write (the events are kept and
        retried), and :class:`RejectedWrites` for events refused at commit. Once
        begun, it runs to its end even if the caller is cancelled meanwhile (see
        :meth:`complete_run`).
        """
        await _finish(self._writer.flush_blocking)

    async def committed(self, work: Callable[[], Awaitable[object]]) -> None:
        """Run ``work``, which logs through this tracker, and return once its events are committed.

        Unlike :meth:`flush`, it raises :class:`RejectedWrites` only for the
        events that ``work`` queued, never for those of other callers sharing the
        tracker (a server answering concurrent requests), and it leaves theirs
        for their own report. Events that others queue while ``work`` awaits
        count as its own too, so a ``work`` that queues everything between two
        awaits (the ``*_nowait`` methods) owns exactly its events. Raises the
        store's error while it cannot write, as :meth:`flush` does; the events
        are kept and retried.
        """
        writer = self._writer
        ticket = writer.open_ticket()
        try:
            await work()
        except BaseException:
            writer.close_ticket(ticket)
            # Whatever it queued before failing is still committed; its own error wins.
            with contextlib.suppress(RunJournalError):
                await anyio.to_thread.run_sync(writer.wait_ticket, ticket)
            raise
        writer.close_ticket(ticket)  # here, before another task can queue anything
        await self._settled(ticket)

    async def _settled(self, ticket: Ticket) -> None:
        """Wait for a closed ticket; on asyncio the writer wakes this loop, with no thread between.

        A server pays this wait on every request: waking the loop from the writer's
        thread saves a worker thread's hand-offs (and its fight for the GIL with
        the writer) on the path of every acknowledgement.
        """
        writer = self._writer
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio): a pooled thread waits
            await anyio.to_thread.run_sync(writer.wait_ticket, ticket)
            return
        while True:
            woken = loop.create_future()
            ticket.wake = functools.partial(loop.call_soon_threadsafe, _settle, woken)
            if writer.ticket_settled(ticket):
                return
            # The writer wakes us when done or failing; the timer only guards against a
            # writer thread that died without either.
            timer = loop.call_later(0.5, _settle, woken)
            try:
                await woken
            finally:
                timer.cancel()

    def flush_blocking(self) -> None:
        """Blocking :meth:`flush`, for synchronous code (never from the event loop's thread)."""
        self._writer.flush_blocking()

    async def close(self) -> None:
        """Write everything pending (within ``drain_timeout``), then release the store.

        Once begun, it runs to its end even if the caller is cancelled meanwhile.
        """
        await _finish(self._close_and_check)

    def _close_and_check(self) -> None:
        try:
            self._writer.close_and_check()
        finally:
            self._store.close_blocking()

    def stats(self) -> WriterStats:
        """Counters that show whether logging keeps up: accepted, committed, dropped, ..."""
        return self._writer.stats()

    def __reduce__(self) -> tuple[Any, ...]:
        # A tracker travels to a spawned process as a handle to the same storage; a store
        # that lives in this process only raises TypeError here.
        return (_reopen, (self._store.reopener(), self._options))

    # -- the core shared by async calls and their *_nowait twins -------------------------------
    # ``self._offer`` (the queue's, set in __init__) enqueues if there is room.
    async def _put(self, item: QueueItem) -> None:
        if self._queue.yield_due:
            await self._checkpoint()
        if not self._offer(item):
            if self._read_only:
                raise self._read_only_error()
            await self._queue.put(item)

    async def _checkpoint(self) -> None:
        """Let the event loop run, and deliver a pending cancellation (Ctrl-C) here.

        Offering to the queue never suspends, so a loop of ``await log_*`` calls would
        otherwise never notice a cancellation. The writer thread raises the queue's
        ``yield_due`` flag at each of its ticks (every ``flush_interval``, 100 ms by
        default), and the next async logging call yields and lowers it: a tight loop
        yields about every tick, a slow one at every call, and the hot path pays one
        attribute load instead of a clock read. It yields *before* enqueueing, so a
        cancelled call logged nothing.
        """
        self._queue.yield_due = False
        await anyio.lowlevel.checkpoint()

    def _put_nowait(self, item: QueueItem) -> None:
        if self._block:
            self._put_blocking(item)
        elif not self._offer(item):
            if self._read_only:
                raise self._read_only_error()
            self._writer.drop()

    def _put_blocking(self, item: QueueItem) -> None:
        """Enqueue, blocking this thread while the queue is full (never dropped)."""
        if not self._offer(item):
            if self._read_only:
                raise self._read_only_error()
            self._queue.put_blocking(item)

    def _read_only_error(self) -> StoreReadOnly:
        return StoreReadOnly(f"{self._store.spec}: this tracker was opened read-only")

    def _metric_event(
        self, run_id: str, key: str, step: int, value: float, timestamp: float | None
    ) -> MetricLogged:
        if key not in self._metric_keys:
            self._metric_keys.add(check_key(key, "metric key"))
        if type(step) is not int or not 0 <= step <= _STEP_MAX:
            _raise_bad_step(step)
        if type(value) is not float:
            value = check_value(value)
        if timestamp is None:
            return MetricLogged(run_id, key, step, value, _time())
        return MetricLogged(run_id, key, step, value, check_timestamp(timestamp), _time())

    def _params_event(self, run_id: str, params: Mapping[str, Any]) -> ParamsLogged:
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a mapping, not {type(params).__name__}")
        checked = {
            check_key(k, "param key"): check_param_value(v, path=f"param {k!r}")
            for k, v in params.items()
        }
        return ParamsLogged(run_id, checked, _time())

    def _require_run_nowait(self, run_id: str) -> None:
        if run_id not in self._known_runs:
            self._learn_run(self._store.lookup_run(_check_id(run_id, "run id")), run_id)

    async def _require_run(self, run_id: str) -> None:
        if run_id not in self._known_runs:
            checked = _check_id(run_id, "run id")
            await self._read_barrier()
            row = await anyio.to_thread.run_sync(self._store.lookup_run, checked)
            self._learn_run(row, run_id)

    def _learn_run(self, row: object, run_id: str) -> None:
        if row is None:
            raise RunNotFound(run_id)
        self._known_runs.add(run_id)

    async def _read_barrier(self) -> None:
        """Read-your-writes: wait until everything accepted so far is committed."""
        if not self._writer.idle:
            await anyio.to_thread.run_sync(lambda: self._writer.flush_blocking(report=False))

    # -- experiments -----------------------------------------------------------------------------
    async def create_experiment(
        self,
        name: str,
        config: Mapping[str, Any] | None = None,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Create an experiment and return its id."""
        event = self._experiment_event(new_id(), name, config, description, tags, None)
        await self._put(event)
        self._known_experiments.add(event.experiment_id)
        return event.experiment_id

    def _experiment_event(
        self,
        experiment_id: str,
        name: str,
        config: Mapping[str, Any] | None,
        description: str | None,
        tags: Mapping[str, str] | None,
        generation: int | None,
    ) -> ExperimentCreated:
        check_key(name, "experiment name")
        if config is not None and not isinstance(config, Mapping):
            raise TypeError(f"config must be a mapping or None, not {type(config).__name__}")
        checked_config = None if config is None else check_param_value(dict(config), path="config")
        if description is not None:
            if type(description) is not str:
                raise TypeError(
                    f"description must be a str or None, not {type(description).__name__}"
                )
            check_text(description, "description")
        return ExperimentCreated(
            experiment_id=experiment_id,
            name=name,
            at=_time(),
            description=description,
            config=checked_config,
            tags=check_tags(tags),
            generation=generation,
        )

    async def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id; raises :class:`ExperimentNotFound`."""
        await self._read_barrier()
        return await self._store.get_experiment(_check_id(experiment_id, "experiment id"))

    async def list_experiments(self) -> list[Experiment]:
        """Every experiment, oldest first."""
        await self._read_barrier()
        return await self._store.list_experiments()

    async def find_experiment(self, name: str) -> Experiment | None:
        """The oldest live experiment called ``name``, or None if there is none."""
        check_key(name, "experiment name")
        await self._read_barrier()
        return await self._store.find_experiment(name)

    async def ensure_experiment(
        self,
        name: str,
        config: Mapping[str, Any] | None = None,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """The id of the oldest live experiment called ``name``, created if there is none.

        ``config``, ``description`` and ``tags`` are checked as by
        :meth:`create_experiment`, and used only when the experiment is created
        here: an existing experiment is returned as it is.

        Get-or-create, race-free across processes: an experiment created here gets
        an id derived from its name (``ids.name_id``), so processes that find none
        and create it at the same moment all create the same experiment, and the
        journal keeps the first creation (the others are no-ops). After that
        experiment is deleted, the next one of that name gets a new id (the next
        generation), so an id is never reused.
        """
        # Checked before the lookup, so that bad arguments fail whether or not it exists.
        self._experiment_event("", name, config, description, tags, None)
        found = await self.find_experiment(name)
        if found is not None:
            self._known_experiments.add(found.id)
            return found.id
        generation = 0
        while await self._id_taken(name_id("experiment", name, generation), name):
            generation += 1
        experiment_id = name_id("experiment", name, generation)
        event = self._experiment_event(experiment_id, name, config, description, tags, generation)
        await self._put(event)
        self._known_experiments.add(experiment_id)
        return experiment_id

    async def _id_taken(self, experiment_id: str, name: str) -> bool:
        """Deleted, or live under another name (an experiment renamed since its creation).

        Live under ``name`` is not taken: another process has just created it, and
        creating it again is the get-or-create no-op.
        """
        if await self._store.is_deleted(experiment_id):
            return True
        try:
            found = await self._store.get_experiment(experiment_id)
        except ExperimentNotFound:
            return False
        return found.name != name

    async def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Rename a live experiment (``name``) and/or set tags on it (merged: a later value wins).

        The id stays. Raises :class:`ExperimentNotFound` for an unknown or deleted one.
        """
        if name is not None:
            check_key(name, "experiment name")
        checked = check_tags(tags)
        await self.get_experiment(experiment_id)
        await self._put(ExperimentUpdated(experiment_id, _time(), name=name, tags=checked))

    async def delete_experiment(self, experiment_id: str) -> None:
        """Delete an experiment and all its runs (a tombstone in the journal)."""
        await self.get_experiment(experiment_id)
        await self._put(ExperimentDeleted(experiment_id, _time()))
        self._known_experiments.discard(experiment_id)
        self._known_runs.clear()  # some were in this experiment; re-learn on next use

    # -- runs ------------------------------------------------------------------------------------
    async def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        at: float | None = None,
    ) -> str:
        """Create a PENDING run in an experiment and return its id.

        ``at`` (Unix seconds, default now) is when it was created: for importers
        and the MLflow face, which bring runs with their own times.
        """
        when = _when(at)
        if experiment_id not in self._known_experiments:
            await self.get_experiment(experiment_id)
            self._known_experiments.add(experiment_id)
        if name is not None:
            if type(name) is not str:
                raise TypeError(f"run name must be a str or None, not {type(name).__name__}")
            check_name(name, "run name")
        run_id = new_id()
        await self._put(RunCreated(run_id, experiment_id, when, name, check_tags(tags)))
        self._known_runs.add(run_id)
        return run_id

    async def start_run(self, run_id: str, *, at: float | None = None) -> None:
        """PENDING to RUNNING; raises :class:`InvalidStateError` otherwise.

        ``at`` (Unix seconds, default now) is the start time, for importers.
        """
        when = _when(at)
        current = await self.get_run_status(run_id)
        check_transition(run_id, current, RunStatus.RUNNING)
        await self._put(RunStarted(run_id, when))

    async def resume_run(self, run_id: str) -> None:
        """An ended run (SUCCESS, FAILED or CANCELLED) becomes RUNNING again.

        For a run picked up after a preemption or a crash, or reopened to log
        more. Its ``end_time`` is cleared and its ``start_time`` kept (that of its
        first start); the next :meth:`complete_run` sets a new end time and
        status. The journal keeps every earlier completion. A PENDING or RUNNING
        run raises :class:`InvalidStateError`.
        """
        current = await self.get_run_status(run_id)
        check_resume(run_id, current)
        await self._put(RunResumed(run_id, _time()))

    async def complete_run(
        self, run_id: str, status: RunStatus | str, *, at: float | None = None
    ) -> None:
        """End a run: RUNNING to SUCCESS, FAILED or CANCELLED (PENDING to CANCELLED).

        Meant to work where a run most often ends, in an ``except`` block after
        Ctrl-C or a cancellation: it is not a cancellation point. Its waits run to
        their end even if the task is cancelled (or its cancellation is still
        pending); a cancellation that arrives meanwhile stays pending for the
        caller's next ``await``. ``at`` (Unix seconds, default now) is the end
        time, for importers.
        """
        final = check_final_status(status, "complete_run")
        _check_id(run_id, "run id")
        when = None if at is None else _when(at)
        await _finish(lambda: self._complete_blocking(run_id, final, when))

    def _complete_blocking(self, run_id: str, final: RunStatus, at: float | None = None) -> None:
        self._writer.flush_blocking(report=False)  # read-your-writes, as get_run
        row = self._store.lookup_run(run_id)
        if row is None:
            raise RunNotFound(run_id)
        check_transition(run_id, row.status, final)
        self._put_blocking(RunCompleted(run_id, final, _time() if at is None else at))

    async def get_run(self, run_id: str) -> Run:
        """The run with this id; raises :class:`RunNotFound`."""
        await self._read_barrier()
        return await self._store.get_run(_check_id(run_id, "run id"))

    async def get_run_status(self, run_id: str) -> RunStatus:
        """The run's current status."""
        return (await self.get_run(run_id)).status

    async def list_runs(self, experiment_id: str, *, view: RunView | str = "ACTIVE") -> list[Run]:
        """The runs of an experiment, by creation time.

        Hidden runs (:meth:`hide_run`) are left out unless ``view`` says otherwise:
        ``"HIDDEN"`` lists only them, ``"ALL"`` every run.
        """
        checked = check_view(view)
        await self._read_barrier()
        return await self._store.list_runs(_check_id(experiment_id, "experiment id"), checked)

    def run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        capture: bool = True,
        system_metrics: bool | float = False,
    ) -> RunHandle:
        """A run of the experiment called ``experiment``, as ``async with tracker.run(...) as run``.

        Entering the block gets the oldest experiment of that name or creates it
        (:meth:`ensure_experiment`), creates the run with ``name`` and ``tags``
        (plus the ``rj.*`` context tags unless ``capture=False``; the user's tags
        win), starts it and logs ``params``. ``system_metrics`` (True, or seconds
        between samples) samples the machine into ``system/*`` metrics. Leaving
        the block ends the run: see :class:`~runjournal.run.RunHandle`.
        """
        return RunHandle(
            self,
            experiment,
            name=name,
            params=params,
            tags=tags,
            capture=capture,
            system_metrics=system_metrics,
        )

    async def delete_run(self, run_id: str) -> None:
        """Delete a run (a tombstone in the journal); its id is unknown afterwards."""
        await self._require_run(run_id)
        await self._put(RunDeleted(run_id, _time()))
        self._known_runs.discard(run_id)

    async def hide_run(self, run_id: str) -> None:
        """Hide a run (a soft delete, MLflow's ``delete_run``); :meth:`restore_run` undoes it.

        A hidden run keeps everything and takes logging as before; it is left out
        of :meth:`list_runs`, :meth:`filter_runs`, the CLI's and the dashboard's
        listings unless they ask for hidden runs (``view="HIDDEN"`` or ``"ALL"``),
        and :meth:`get_run` still returns it, with ``hidden=True``. Hiding a
        hidden run changes nothing. :meth:`delete_run` is a tombstone instead: the
        run is gone from every query and cannot come back.
        """
        await self._require_run(run_id)
        await self._put(RunHidden(run_id, _time()))

    async def restore_run(self, run_id: str) -> None:
        """Show a hidden run in the listings again (MLflow's ``restore_run``); else no change."""
        await self._require_run(run_id)
        await self._put(RunRestored(run_id, _time()))

    async def set_tag(self, run_id: str, key: str, value: str) -> None:
        """Set a string tag on a run (setting it again overwrites)."""
        await self._require_run(run_id)
        await self._put(self._tag_event(run_id, key, value))

    def set_tag_nowait(self, run_id: str, key: str, value: str) -> None:
        """:meth:`set_tag` for synchronous code on any thread; follows ``on_full``."""
        self._require_run_nowait(run_id)
        self._put_nowait(self._tag_event(run_id, key, value))

    async def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run; a key the run does not have changes nothing."""
        check_key(key, "tag key")
        await self._require_run(run_id)
        await self._put(TagDeleted(run_id, key, _time()))

    async def rename_run(self, run_id: str, name: str) -> None:
        """Give a run another name."""
        if type(name) is not str:
            raise TypeError(f"run name must be a str, not {type(name).__name__}")
        check_name(name, "run name")
        await self._require_run(run_id)
        await self._put(RunRenamed(run_id, name, _time()))

    def _tag_event(self, run_id: str, key: str, value: str) -> TagSet:
        check_key(key, "tag key")
        if type(value) is not str:
            raise TypeError(f"tag value must be a str, not {type(value).__name__}")
        return TagSet(run_id, key, check_text(value, "tag value"), _time())

    async def filter_runs(
        self,
        experiment_id: str | None,
        filters: Sequence[ParamFilter],
        *,
        view: RunView | str = "ACTIVE",
    ) -> list[Run]:
        """Runs whose params match every filter (of one experiment, or all if None).

        Hidden runs are left out unless ``view`` is ``"HIDDEN"`` or ``"ALL"``.
        """
        checked = check_view(view)
        if experiment_id is not None:
            _check_id(experiment_id, "experiment id")
        await self._read_barrier()
        return await self._store.filter_runs(experiment_id, list(filters), checked)

    async def search_runs(
        self,
        experiment_id: str | None = None,
        filters: Sequence[ParamFilter] = (),
        *,
        order_by: str = "created_at",
        desc: bool = False,
        limit: int = 100,
        after: str | None = None,
        view: RunView | str = "ACTIVE",
    ) -> RunPage:
        """One page of the runs that :meth:`filter_runs` finds, sorted; see ``RunPage``.

        ``order_by`` is ``created_at``, ``name``, ``status``, ``param:KEY`` or
        ``metric:KEY`` (by last value); runs without it come last, ties go by run
        id. Pass a page's ``next`` as ``after`` for the page that follows. Hidden
        runs are left out unless ``view`` is ``"HIDDEN"`` or ``"ALL"``.
        """
        checked = check_view(view)
        if experiment_id is not None:
            _check_id(experiment_id, "experiment id")
        await self._read_barrier()
        return await self._store.search_runs(
            experiment_id, list(filters), order_by, desc, limit, after, checked
        )

    # -- params ----------------------------------------------------------------------------------
    async def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Set one parameter (last write wins; the journal keeps the history)."""
        await self._require_run(run_id)
        await self._put(self._params_event(run_id, {key: value}))

    async def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Set several parameters at once."""
        await self._require_run(run_id)
        await self._put(self._params_event(run_id, params))

    def log_param_nowait(self, run_id: str, key: str, value: Any) -> None:
        """:meth:`log_param` for synchronous code on any thread."""
        self._require_run_nowait(run_id)
        self._put_nowait(self._params_event(run_id, {key: value}))

    def log_params_nowait(self, run_id: str, params: Mapping[str, Any]) -> None:
        """:meth:`log_params` for synchronous code on any thread."""
        self._require_run_nowait(run_id)
        self._put_nowait(self._params_event(run_id, params))

    async def get_params(self, run_id: str) -> dict[str, Any]:
        """The run's parameters as they were logged."""
        await self._read_barrier()
        return await self._store.get_params(_check_id(run_id, "run id"))

    # -- metrics ---------------------------------------------------------------------------------
    async def log_metric(
        self, run_id: str, key: str, step: int, value: float, *, timestamp: float | None = None
    ) -> None:
        """Record one point of a metric series; returns once it is queued.

        It suspends only when the queue is full, and at a cancellation point once per
        tick of the writer (100 ms), so that Ctrl-C stops a loop of such calls promptly.
        """
        if self._queue.yield_due:
            await self._checkpoint()
        if run_id not in self._known_runs:
            await self._require_run(run_id)
        # The usual call, checked inline (as _metric_event would check it): one Python call
        # less is 15 % of the caller's cost. Anything else goes through _metric_event.
        if (
            timestamp is None
            and type(value) is float
            and type(step) is int
            and 0 <= step <= _STEP_MAX
            and key in self._metric_keys
        ):
            item = MetricLogged(run_id, key, step, value, _time())
        else:
            item = self._metric_event(run_id, key, step, value, timestamp)
        if not self._offer(item):
            await self._put(item)

    def log_metric_nowait(
        self, run_id: str, key: str, step: int, value: float, *, timestamp: float | None = None
    ) -> None:
        """:meth:`log_metric` for synchronous code on any thread; follows ``on_full``."""
        if run_id not in self._known_runs:
            self._require_run_nowait(run_id)
        if (  # the usual call, checked inline: see log_metric
            timestamp is None
            and type(value) is float
            and type(step) is int
            and 0 <= step <= _STEP_MAX
            and key in self._metric_keys
        ):
            item = MetricLogged(run_id, key, step, value, _time())
        else:
            item = self._metric_event(run_id, key, step, value, timestamp)
        if not self._offer(item):
            self._put_nowait(item)

    async def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int,
        *,
        timestamp: float | None = None,
    ) -> None:
        """Record one point of several metrics at the same step."""
        await self._require_run(run_id)
        for item in self._metric_events(run_id, metrics, step, timestamp):
            if not self._offer(item):
                await self._queue.put(item)
        if self._queue.yield_due:
            await self._checkpoint()

    def log_metrics_nowait(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int,
        *,
        timestamp: float | None = None,
    ) -> None:
        """:meth:`log_metrics` for synchronous code on any thread; follows ``on_full``."""
        self._require_run_nowait(run_id)
        for item in self._metric_events(run_id, metrics, step, timestamp):
            self._put_nowait(item)

    def _metric_events(
        self, run_id: str, metrics: Mapping[str, float], step: int, timestamp: float | None
    ) -> list[MetricLogged]:
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a mapping, not {type(metrics).__name__}")
        stamp = _time() if timestamp is None else timestamp
        # Validate every point before queueing any, so a bad value queues nothing.
        return [self._metric_event(run_id, k, step, v, stamp) for k, v in metrics.items()]

    async def get_metrics(
        self, run_id: str, key: str, *, start: int | None = None, end: int | None = None
    ) -> list[MetricPoint]:
        """The series, ordered by step (equal steps keep their logging order).

        ``start`` and ``end`` (both inclusive, both optional) keep only the points
        with a step in that range; only the stored batches that reach it are read.
        """
        await self._read_barrier()
        run_id, key = _check_id(run_id, "run id"), _check_id(key, "metric key")
        if start is None and end is None:
            return await self._store.get_metrics(run_id, key)
        _check_step_bound(start, "start")
        _check_step_bound(end, "end")
        return await self._store.get_metrics_between(run_id, key, start, end)

    async def get_metric_arrays(self, run_id: str, key: str) -> MetricArrays:
        """The series as three columns: ``MetricArrays(step, value, timestamp)``.

        ``array.array`` columns of typecodes ``'q'``, ``'d'`` and ``'d'``, in
        :meth:`get_metrics` order (by step; equal steps keep their logging order), built
        without a Python object per point: the fast path for notebooks, pandas and
        charts (``numpy.frombuffer(arrays.value)`` takes a column without a copy).
        Each call returns new arrays. Raises :class:`RunNotFound` for an unknown run; a
        key the run never logged gives three empty columns.
        """
        await self._read_barrier()
        run_id, key = _check_id(run_id, "run id"), _check_id(key, "metric key")
        return await self._store.get_metric_arrays(run_id, key)

    async def get_metrics_downsampled(
        self,
        run_id: str,
        key: str,
        *,
        points: int = 1000,
        start: int | None = None,
        end: int | None = None,
    ) -> list[MetricBucket]:
        """At most ``points`` buckets summarising the series' points with step in ``[start, end]``.

        Read from the rollup projection, so a million-point series costs a few
        thousand rows. The buckets follow ``get_metrics``' order and cover every
        point of the range exactly once: the first holds the range's first step
        alone, the last ends at the range's last point, and their steps strictly
        increase, so the true min and max of the range always appear. ``min``
        and ``max`` are over finite values (None for a bucket of only NaN or
        ±inf, which ``nonfinite`` counts). A run without that key gives ``[]``.

        Raises :class:`RunNotFound`, and ``ValueError`` if ``points`` < 2.
        """
        if type(points) is not int or points < 2:
            raise ValueError(f"points must be an int of at least 2, got {points!r}")
        _check_step_bound(start, "start")
        _check_step_bound(end, "end")
        await self._read_barrier()
        return await self._store.get_metrics_downsampled(
            _check_id(run_id, "run id"), _check_id(key, "metric key"), points, start, end
        )

    async def metric_summaries(
        self, run_ids: Sequence[str], keys: Sequence[str] | None = None
    ) -> dict[str, dict[str, MetricBucket]]:
        """For each live run of ``run_ids``, the whole-series summary of each metric key.

        One bucket per key (first and last step and value, min, max, count), for
        a table of many runs in one read; limited to ``keys`` if given. Unknown
        or deleted runs are left out.
        """
        await self._read_barrier()
        return await self._store.metric_summaries(
            list(run_ids), None if keys is None else list(keys)
        )

    async def list_metric_keys(self, run_id: str) -> list[str]:
        """The names of the run's metrics, sorted."""
        await self._read_barrier()
        return await self._store.list_metric_keys(_check_id(run_id, "run id"))

    # -- artifacts -------------------------------------------------------------------------------
    @overload
    async def log_artifact(
        self, run_id: str, name: str, data: bytes | bytearray | memoryview
    ) -> str: ...
    @overload
    async def log_artifact(
        self, run_id: str, name: str, data: str | os.PathLike[str]
    ) -> str | dict[str, str]: ...
    async def log_artifact(
        self,
        run_id: str,
        name: str,
        data: bytes | bytearray | memoryview | str | os.PathLike[str],
    ) -> str | dict[str, str]:
        """Store ``data`` as a named artifact of the run; returns its SHA-256 (hex).

        ``data`` is bytes, or the path of a file or a directory. A file is streamed
        into the store in chunks of at most 4 MiB on a worker thread, never read
        whole into memory, and the call returns once it is committed (raising if
        it could not be). A directory becomes one artifact per file, named
        ``name/relative/path``, and the call returns ``{name: sha256}``. Bytes are
        enqueued like any event. Identical chunks are stored once; names are
        labels, never paths.
        """
        await self._require_run(run_id)
        check_key(name, "artifact name")
        if isinstance(data, bytes | bytearray | memoryview):
            content = bytes(data)
            if len(content) > _HASH_ON_LOOP:
                stored = await anyio.to_thread.run_sync(Content.of_bytes, content)
            else:
                stored = Content.of_bytes(content)
            await self._put(Upload(run_id, name, stored, _time()))
            assert stored.sha256 is not None
            return stored.sha256
        if not isinstance(data, str | os.PathLike):
            raise TypeError(f"artifact data must be bytes or a path, not {type(data).__name__}")
        path = os.fspath(data)
        if await anyio.to_thread.run_sync(os.path.isdir, path):
            files = await anyio.to_thread.run_sync(directory_files, path, name)
            for file_name, _ in files:
                check_key(file_name, "artifact name")
            return {
                file_name: await self._log_file(run_id, file_name, file_path)
                for file_name, file_path in files
            }
        if not await anyio.to_thread.run_sync(os.path.isfile, path):
            raise FileNotFoundError(f"no file or directory at {path!r}")
        return await self._log_file(run_id, name, path)

    async def _log_file(self, run_id: str, name: str, path: str) -> str:
        if self._read_only:
            raise self._read_only_error()
        self._writer.check_open()
        upload = Upload(run_id, name, StreamedContent(), _time())
        await anyio.to_thread.run_sync(self._stream_file, upload, path)
        if upload.error is not None:
            if isinstance(upload.error, OSError):
                raise upload.error
            raise RunJournalError(
                f"artifact {name!r} from {path!r} was not stored: {upload.error}"
            ) from upload.error
        assert upload.content.sha256 is not None
        return upload.content.sha256

    def _stream_file(self, upload: Upload, path: str) -> None:
        """On a worker thread: enqueue the upload, feed it the file, wait until it is committed."""
        content = upload.content
        assert isinstance(content, StreamedContent)
        with self._writer.upload_lock:
            self._queue.put_blocking(upload)
            try:
                content.feed(path)
            except UploadAbandoned:
                pass  # the writer says why, through upload.error
            except OSError:
                upload.done.wait()
                raise
            upload.done.wait()

    def open_artifact(self, sha256: str) -> AsyncIterator[bytes]:
        """The content with this SHA-256 as an async iterator of chunks (at most 4 MiB each).

        Used without ``await``: ``async for chunk in tracker.open_artifact(sha): ...``.
        Raises :class:`ArtifactNotFound` when iterated, if no content has this digest.
        """
        _check_sha256(sha256)
        return self._open_artifact(sha256)

    async def _open_artifact(self, sha256: str) -> AsyncIterator[bytes]:
        await self._read_barrier()
        async for piece in self._store.open_artifact(sha256):
            yield piece

    async def download_artifact(
        self, sha256: str, dest: str | os.PathLike[str], *, overwrite: bool = True
    ) -> Path:
        """Stream the content with this SHA-256 into the file ``dest``, checking its hash.

        If ``dest`` is an existing directory, the file inside it is named after the
        artifact (its last ``/`` part, never a path; the digest if it has no usable
        name). The file appears only once complete and verified. Returns its path.

        Raises:
            ArtifactNotFound: no content has this digest.
            RunJournalError: the content read back does not match its digest.
            FileExistsError: ``dest`` exists and ``overwrite`` is false.
        """
        _check_sha256(sha256)
        target = Path(dest)
        if await anyio.to_thread.run_sync(target.is_dir):
            await self._read_barrier()
            name = await self._store.artifact_name(sha256)
            target = target / safe_file_name(name or sha256, sha256)
        if not overwrite and await anyio.to_thread.run_sync(target.exists):
            raise FileExistsError(f"{target} exists")
        fd, temporary = await anyio.to_thread.run_sync(
            functools.partial(tempfile.mkstemp, dir=target.parent, prefix=".runjournal-artifact-")
        )
        file = os.fdopen(fd, "wb")
        try:
            whole = hashlib.sha256()
            async for piece in self.open_artifact(sha256):
                whole.update(piece)
                await anyio.to_thread.run_sync(file.write, piece)
            await anyio.to_thread.run_sync(file.close)
            if whole.hexdigest() != sha256:
                raise RunJournalError(
                    f"artifact {sha256} read back as {whole.hexdigest()}: the database is damaged"
                )
            await anyio.to_thread.run_sync(os.replace, temporary, target)
        except BaseException:
            file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return target

    async def get_artifact_data(self, sha256: str) -> bytes:
        """The whole content with this SHA-256, in memory (for small ones; see
        :meth:`open_artifact` and :meth:`download_artifact`); raises :class:`ArtifactNotFound`."""
        _check_sha256(sha256)
        await self._read_barrier()
        return await self._store.get_artifact_data(sha256)

    async def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        """The run's artifacts, in logging order."""
        await self._read_barrier()
        return await self._store.list_artifacts(_check_id(run_id, "run id"))

    # -- liveness --------------------------------------------------------------------------------
    async def heartbeat(self, run_id: str) -> None:
        """Record that the run's process is alive, though it logged nothing lately.

        It moves the run's ``last_activity``, as every logging call does, so that a
        RUNNING run whose process died can be told from one that is only quiet
        (:meth:`Run.is_stale`). One small journal entry; a run handle sends one
        every 30 s while idle.
        """
        await self._require_run(run_id)
        await self._put(RunHeartbeat(run_id, _time()))

    def heartbeat_nowait(self, run_id: str) -> None:
        """:meth:`heartbeat` for synchronous code on any thread; follows ``on_full``."""
        self._require_run_nowait(run_id)
        self._put_nowait(RunHeartbeat(run_id, _time()))

    # -- tracing ---------------------------------------------------------------------------------
    async def set_span_id(self, run_id: str, span_id: str) -> None:
        """Link the run to a distributed trace (setting again overwrites)."""
        await self._require_run(run_id)
        check_key(span_id, "span id")
        await self._put(SpanIdSet(run_id, span_id, _time()))

    async def get_span_id(self, run_id: str) -> str | None:
        """The run's span id, or None."""
        await self._read_barrier()
        return await self._store.get_span_id(_check_id(run_id, "run id"))


def _when(at: float | None) -> float:
    """``at`` checked as a timestamp (Unix seconds), or now."""
    return _time() if at is None else check_timestamp(at)


def _check_step_bound(bound: object, what: str) -> None:
    if bound is not None and (type(bound) is not int or bound < 0):
        raise ValueError(f"{what} must be a step (an int >= 0) or None, got {bound!r}")


def _raise_bad_step(step: object) -> None:
    """Raise the error that explains why ``step`` is not a valid step."""
    if type(step) is not int:
        raise TypeError(f"step must be an int, not {type(step).__name__}")
    raise ValueError(f"step must be an int in [0, 2**63), got {step}")


def _check_id(value: str, what: str) -> str:
    if type(value) is not str:
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def _check_sha256(sha256: object) -> None:
    if type(sha256) is not str or not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest (64 lowercase hex characters): {sha256!r}")


_HASH_ON_LOOP = 1 << 20
"""Bytes up to this size are hashed on the event loop; larger ones on a worker thread."""


def _refuse(item: QueueItem) -> bool:
    """The ``offer`` of a read-only tracker: never room, so that the slow path raises."""
    return False


def _reopen(reopener: Callable[[], Store], options: dict[str, Any]) -> Tracker:
    return Tracker(reopener(), **options)


async def _finish(work: Callable[[], T]) -> T:
    """Run blocking ``work`` on a thread of its own and wait for it, even through cancellation.

    What flush, close and complete_run wait for must happen even in an ``except``
    block after Ctrl-C, where the task's cancellation may still be pending (a second
    Ctrl-C raises KeyboardInterrupt before the first one's cancellation was
    delivered). A shielded scope keeps anyio's cancel scopes out; a native asyncio
    cancellation still interrupts the wait, so it is caught, the wait resumed, and
    the cancellation requested again at the end, pending for the caller's next await.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed back to the awaiting task
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="runjournal-wait", daemon=True).start()
    absorbed = 0
    with anyio.CancelScope(shield=True):
        while not done.is_set():
            try:
                await anyio.to_thread.run_sync(done.wait, abandon_on_cancel=True)
            except asyncio.CancelledError:
                absorbed += 1
    if absorbed:
        _cancel_again()
    if failure:
        raise failure[0]
    return outcome[0]


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _cancel_again() -> None:
    """Request again the asyncio cancellation that :func:`_finish` caught, keeping its count."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # not asyncio (trio): only cancel scopes, which the shield deferred
        return
    if task is not None:
        task.uncancel()
        task.cancel()
