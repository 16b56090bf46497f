"""The bounded event queue and the batching writer thread that empties it into the store.

Producers (``Tracker.log_*`` from any thread) only offer items to an
:class:`EventQueue`; when it is full they wait for room there. The writer is a
thread of its own, not a task on the caller's event loop, so it keeps committing
while the caller's thread is blocked, whether that thread is the event loop's,
another one, or a forked child's. Each batch it takes becomes one store
transaction, grouped into journal entries by :func:`runjournal.batching.to_entries`.

A flush is a marker in the queue: once the writer has committed everything in
front of it, it releases the marker. FIFO order makes that exact for any number
of producer threads.
"""

from __future__ import annotations

import collections
import itertools
import logging
import sys
import threading
import time
import typing
import warnings
from collections.abc import Callable
from typing import Any, Literal, TypeAlias

import anyio.to_thread
import msgspec

from runjournal import _exit, _forks
from runjournal.batching import to_entries
from runjournal.errors import DrainTimeout, RejectedWrites, RunJournalError, StoreError
from runjournal.events import ArtifactLogged, Event, MetricChunkLogged, MetricsLogged, describe
from runjournal.ids import new_id
from runjournal.stores.base import NewEntry, Store
from runjournal.uploads import StreamedContent, Upload, UploadAbandoned

__all__ = [
    "DroppedEventsWarning",
    "EventQueue",
    "OnFull",
    "QueueItem",
    "Ticket",
    "Writer",
    "WriterStats",
]

_logger = logging.getLogger("runjournal")

OnFull = Literal["block", "drop"]

_CLOSED = "the tracker is closed; nothing more can be logged"

QueueItem: TypeAlias = Event | Upload
"""What producers put on the queue: events, and artifacts with their content."""


class DroppedEventsWarning(RuntimeWarning):
    """Events were dropped because the queue was full and ``on_full="drop"``."""


class WriterStats(msgspec.Struct, frozen=True):
    """A snapshot of how logging keeps up. Counts are events (one per metric point)."""

    accepted: int
    committed: int
    dropped: int
    rejected: int
    pending: int
    last_commit_events: int
    last_commit_seconds: float


class _Marker:
    """A flush barrier travelling the queue."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Ticket(_Marker):
    """A flush marker that owns the events queued between its opening and itself.

    The writer hands the rejections of those events to the ticket instead of the
    tracker-wide report, so that a server answering many requests from one
    tracker tells each request about its own events only. Events that another
    producer queues in the same stretch count as the ticket's too: queue a
    ticket's events without yielding to other producers in between.
    """

    __slots__ = ("failures", "rejections", "wake")

    def __init__(self) -> None:
        super().__init__()
        self.rejections: list[tuple[str, str]] = []
        self.failures = 0  # the writer's failed writes when the ticket closed
        self.wake: Callable[[], object] | None = None
        """Called from the writer's thread once the ticket is released, and at each failed
        write while it waits: lets an event loop wait without a thread of its own."""


class _Open:
    """Where a ticket's events begin in the queue."""

    __slots__ = ("ticket",)

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket


class EventQueue:
    """The bounded, thread-safe queue between the producers and the writer thread.

    One object holds the shared state, as anyio's memory streams do: the items,
    the capacity, the *room* signal that producers wait on while the queue is
    full, and the *work* signal that wakes the writer. Every way to enqueue is
    :meth:`offer`, the non-blocking core and the whole hot path, followed, only
    when it fails, by waiting for room and offering again.
    """

    __slots__ = (
        "_items",
        "_room",
        "_work",
        "batch_size",
        "capacity",
        "closed",
        "max_pending",
        "yield_due",
    )

    def __init__(self, max_pending: int, batch_size: int) -> None:
        self.max_pending = max_pending
        self.capacity = max_pending  # 0 once closed: every offer then takes the slow path
        self.batch_size = batch_size
        self.closed = False
        self._items: collections.deque[QueueItem | _Marker | _Open] = collections.deque()
        self._room = threading.Condition(threading.Lock())
        self._work = threading.Event()
        # Set at every tick of the writer thread, cleared by the async producer that then
        # yields to its event loop: a cancellation point that costs the hot path one load.
        self.yield_due = True

    def __len__(self) -> int:
        return len(self._items)

    # -- producers -------------------------------------------------------------------------
    def offer(self, item: QueueItem) -> bool:
        """Enqueue ``item`` if there is room; False means the queue is full (or closed)."""
        items = self._items
        if len(items) < self.capacity:
            items.append(item)
            # Wake the writer once per batch, as the queue reaches it; the writer keeps
            # draining while anything is left, and wakes itself every flush_interval.
            if len(items) == self.batch_size:
                self._work.set()
            return True
        return False

    def put_blocking(self, item: QueueItem) -> None:
        """Enqueue ``item``, blocking this thread while the queue is full."""
        while not self.offer(item):
            self.wait_for_room()

    async def put(self, item: QueueItem) -> None:
        """Enqueue ``item``, waiting without blocking the event loop while the queue is full."""
        while not self.offer(item):
            # The wait runs in a worker thread; if the task is cancelled meanwhile, that
            # thread ends at the next room or at close, whichever comes first.
            await anyio.to_thread.run_sync(self.wait_for_room, abandon_on_cancel=True)

    def wait_for_room(self) -> None:
        """Block until the queue has room; raise :class:`RunJournalError` once it is closed."""
        with self._room:
            while len(self._items) >= self.capacity:
                if self.closed:
                    raise RunJournalError(_CLOSED)
                self._work.set()  # a full queue is a full batch: commit it now, not at the tick
                self._room.wait()

    def push(self, marker: _Marker | _Open) -> None:
        """Enqueue a marker whatever the capacity; a flush marker wakes the writer."""
        self._items.append(marker)
        if type(marker) is not _Open:
            self._work.set()

    def close(self) -> None:
        """Refuse every later item, and wake every producer waiting for room (they raise)."""
        with self._room:
            self.closed = True
            self.capacity = 0
            self._room.notify_all()
        self._work.set()

    # -- the writer thread -----------------------------------------------------------------
    def wake(self) -> None:
        """Ask the writer to commit now rather than at the end of the flush interval."""
        if not self._work.is_set():
            self._work.set()

    def wait_for_work(self, timeout: float) -> bool:
        """Sleep until :meth:`wake` is called (True) or ``timeout`` passes (False)."""
        woken = self._work.wait(timeout)
        self._work.clear()
        self.yield_due = True
        return woken

    def take(self, into: list[QueueItem | _Marker | _Open], limit: int) -> None:
        """Move up to ``limit`` items from the front of the queue to ``into``; signal room."""
        # popleft called n times from C: one item at a time as before (each pop is atomic
        # against producers appending meanwhile), without a bytecode loop per item.
        count = min(len(self._items), limit)
        into.extend(itertools.starmap(self._items.popleft, itertools.repeat((), count)))
        with self._room:
            self._room.notify_all()

    def snapshot(self) -> list[QueueItem | _Marker | _Open]:
        """The items waiting right now, front first."""
        return list(self._items)

    def after_fork_in_child(self) -> None:
        """Start empty, with fresh signals: a parent's thread may have held them at the fork."""
        self._items.clear()
        self._room = threading.Condition(threading.Lock())
        self._work = threading.Event()
        if not self.closed:
            self.capacity = self.max_pending


class Writer:
    """One per tracker per process: owns the queue, the writer thread and the counters."""

    def __init__(
        self,
        store: Store,
        *,
        max_pending: int = 100_000,
        batch_size: int = 20_000,
        flush_interval: float = 0.1,
        drain_timeout: float = 30.0,
        on_full: OnFull = "block",
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if flush_interval <= 0:
            raise ValueError("flush_interval must be > 0")
        if drain_timeout < 0:
            raise ValueError("drain_timeout must be >= 0")
        if on_full not in ("block", "drop"):
            raise ValueError(f"on_full must be 'block' or 'drop', got {on_full!r}")
        self.store = store
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.drain_timeout = drain_timeout
        self.on_full: OnFull = on_full
        self.queue = EventQueue(max_pending, batch_size)
        self._fresh_state()
        _exit.register(self)
        _forks.register(self, _forks.Stage.COMMIT)
        _forks.register(store, _forks.Stage.QUIESCE)  # the built-in stores did so already
        self._start()

    def _fresh_state(self) -> None:
        self.source = new_id()
        self._next_seq = 1
        self._retry = threading.Event()  # a flush or close wants a failed write retried now
        self._stats_lock = threading.Lock()
        # Held by the writer from taking a batch off the queue until its events are counted
        # in _taken, so that stats() never sees them in neither place.
        self._take_lock = threading.Lock()
        self._uncounted = False  # the writer holds _take_lock for a batch not yet counted
        self._precounted = False  # the batch being committed was counted whole when taken
        self._taken = 0
        self._committed = 0
        self._dropped = 0
        self._rejected = 0
        self._unwritten = 0
        self._last_events = 0
        self._last_seconds = 0.0
        self._rejections: list[tuple[str, str]] = []
        self._rejected_targets: set[str] = set()  # runs (or experiments) with a rejection logged
        self.upload_lock = threading.Lock()  # one file upload at a time: bounds bytes in flight
        self._error: StoreError | None = None
        self._failures = 0  # failed store writes so far; a flush reports only fresh failures
        self._batch: list[QueueItem | _Marker | _Open] = []  # taken off the queue, not yet written
        self._open_tickets: dict[Ticket, None] = {}  # opened, not yet closed, in queue order
        self._owners: dict[int, tuple[Ticket, ...]] = {}  # id(entry) -> its tickets, one commit
        self._waiting: dict[Ticket, None] = {}  # closed, not yet released
        self._busy = False
        self._drop_warned = False
        self._closing = False
        self._closed = False
        self._give_up_at: float | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="runjournal-writer", daemon=True)
        self._thread.start()

    # -- producers: they offer to the queue, and come here only for the drop policy --------
    def drop(self) -> None:
        """Count one dropped event, warning once per burst (the ``on_full="drop"`` policy)."""
        self.check_open()
        self.wake()
        with self._stats_lock:
            self._dropped += 1
            first = not self._drop_warned
            self._drop_warned = True
        if first:
            message = (
                f"runjournal: the queue is full ({self.max_pending} events) and on_full='drop': "
                "dropping events; see tracker.stats().dropped"
            )
            _logger.warning(message)
            warnings.warn(message, DroppedEventsWarning, stacklevel=4)

    def check_open(self) -> None:
        """Raise if the writer is closed: nothing more can be logged through it."""
        if self._closing:
            raise RunJournalError("the tracker is closed; nothing more can be logged")

    def wake(self) -> None:
        """Ask the writer to commit now rather than at the end of the flush interval."""
        self.queue.wake()

    @property
    def idle(self) -> bool:
        """True if everything accepted so far is committed (or rejected)."""
        return not self.queue and not self._busy

    # -- flush and close ---------------------------------------------------------------------
    def flush_blocking(self, *, report: bool = True, timeout: float | None = None) -> bool:
        """Block until every event accepted before this call is committed.

        Raises the store's error while it cannot write (for example a full disk:
        the events are kept and retried), and :class:`RejectedWrites` for events
        refused at commit since the last report (unless ``report`` is false: the
        read-your-writes barrier of queries leaves those for the next flush).
        Only a write attempted after this call began counts: the writer retries at
        once, so a flush right after the disk got room again succeeds. Returns
        False if ``timeout`` passed first.
        """
        if self._closed:
            if report:
                self.raise_rejections()
            return True
        marker = _Marker()
        failures = self._failures
        self._retry.set()
        self.queue.push(marker)
        if not self._wait(marker, failures, timeout):
            return False
        if report:
            self.raise_rejections()
        return True

    def _wait(self, marker: _Marker, failures: int, timeout: float | None) -> bool:
        """Block until ``marker`` is released (False: ``timeout`` passed first).

        Raises the store's error if a write failed since the writer had ``failures``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not marker.done.wait(0.01):
            error = self._error
            if error is not None and self._failures != failures:
                raise type(error)(str(error))
            thread = self._thread
            if thread is None or not thread.is_alive():
                raise RunJournalError("the writer thread is not running")
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def open_ticket(self) -> Ticket:
        """Begin a ticket: the events queued from now until :meth:`close_ticket` are its own."""
        self.check_open()
        ticket = Ticket()
        self.queue.push(_Open(ticket))
        return ticket

    def close_ticket(self, ticket: Ticket) -> None:
        """End the ticket's events here (without blocking): later events are not its own."""
        ticket.failures = self._failures
        self._waiting[ticket] = None
        self._retry.set()
        self.queue.push(ticket)

    def wait_ticket(self, ticket: Ticket) -> None:
        """Block until a closed ticket's events are committed; raise for its refused ones only.

        Raises :class:`RejectedWrites` with the ticket's own rejections (never
        another producer's, which stay for the next :meth:`flush_blocking`), and
        the store's error while it cannot write, as :meth:`flush_blocking` does.
        """
        if self._closed and not ticket.done.is_set():
            raise RunJournalError(_CLOSED)
        self._wait(ticket, ticket.failures, None)
        self.ticket_settled(ticket)

    def ticket_settled(self, ticket: Ticket) -> bool:
        """:meth:`wait_ticket` without the wait: False while the ticket's events are pending.

        True once they are committed; raises as :meth:`wait_ticket` does.
        """
        if ticket.done.is_set():
            if ticket.rejections:
                raise RejectedWrites(ticket.rejections)
            return True
        error = self._error
        if error is not None and self._failures != ticket.failures:
            raise type(error)(str(error))
        thread = self._thread
        if thread is None or not thread.is_alive():
            raise RunJournalError("the writer thread is not running")
        return False

    def _release(self, marker: _Marker) -> None:
        marker.done.set()
        if type(marker) is Ticket:
            self._waiting.pop(marker, None)
            self._wake(marker)

    def _wake_waiting(self) -> None:
        """A write failed: every waiting ticket's owner checks whether to give up."""
        for ticket in list(self._waiting):
            self._wake(ticket)

    @staticmethod
    def _wake(ticket: Ticket) -> None:
        wake = ticket.wake
        if wake is not None:
            try:
                wake()
            except Exception:
                _logger.debug("runjournal writer: a ticket's waiter is gone", exc_info=True)

    def raise_rejections(self) -> None:
        with self._stats_lock:
            rejections, self._rejections = self._rejections, []
        if rejections:
            raise RejectedWrites(rejections)

    def close(self, timeout: float | None = None) -> int:
        """Drain the queue (for at most ``timeout``, default ``drain_timeout``) and stop.

        Returns the number of events that could not be written, which are also
        reported on stderr. Safe to call more than once.
        """
        thread = self._thread
        if self._closed or thread is None:
            return 0
        limit = self.drain_timeout if timeout is None else timeout
        self._give_up_at = time.monotonic() + limit
        self.store.limit_waits(self._give_up_at)
        self._closing = True
        self._retry.set()
        self.queue.close()
        if thread is not threading.current_thread():
            thread.join(limit + 1.0)
        self._closed = True
        leftover = sum(_event_count(item) for item in self.queue.snapshot())
        if thread.is_alive():
            # Still stuck in a write (a lock held longer than the drain timeout, say):
            # what it holds is not written either, and must be counted as such.
            leftover += sum(_event_count(item) for item in list(self._batch))
        unwritten = self._unwritten + leftover
        if unwritten:
            error = self._error
            why = f" (last error: {error})" if error is not None else ""
            print(
                f"runjournal: {unwritten} event(s) could not be written within {limit} s "
                f"and are lost{why}",
                file=sys.stderr,
            )
        return unwritten

    def close_and_check(self, timeout: float | None = None) -> None:
        """:meth:`close`, then raise for anything unwritten or rejected."""
        unwritten = self.close(timeout)
        if unwritten:
            raise DrainTimeout(unwritten, self.drain_timeout if timeout is None else timeout)
        self.raise_rejections()

    def drain_at_exit(self) -> None:
        self.close()
        # Also stop the store's threads: a reader thread left running would block exit.
        self.store.close_blocking()
        with self._stats_lock:
            rejections, self._rejections = self._rejections, []
        if rejections:
            print(f"runjournal: {RejectedWrites(rejections)}", file=sys.stderr)

    def before_fork(self) -> None:
        """Commit what is pending (briefly) so that a forked child sees it in the store.

        Without this, a child forked right after ``create_run`` (a data-loader
        worker, say) would log to a run that is still in the parent's queue, and
        every one of its points would be rejected at commit.
        """
        thread = self._thread
        if not (
            self._closing or self.idle or thread is None or thread is threading.current_thread()
        ):
            try:
                self.flush_blocking(report=False, timeout=_FORK_FLUSH_TIMEOUT)
            except RunJournalError as exc:  # never stop a fork; the child starts without it
                _logger.warning("runjournal: could not commit pending events before fork: %s", exc)

    def after_fork_in_parent(self) -> None:
        return None

    def after_fork_in_child(self) -> None:
        # The parent's pending events are the parent's to write; the child starts empty.
        # (The store has already let go of what the parent's threads held.)
        self.queue.after_fork_in_child()
        was_closed = self._closed or self._closing
        self._fresh_state()
        if was_closed:
            self._closing = self._closed = True
            return
        self._start()

    def stats(self) -> WriterStats:
        with self._take_lock:
            pending = sum(_event_count(item) for item in self.queue.snapshot())
            return self._stats(pending)

    def _stats(self, pending: int) -> WriterStats:
        with self._stats_lock:
            in_flight = self._taken - self._committed - self._rejected - self._unwritten
            return WriterStats(
                accepted=self._taken + pending,
                committed=self._committed,
                dropped=self._dropped,
                rejected=self._rejected,
                pending=pending + max(in_flight, 0),
                last_commit_events=self._last_events,
                last_commit_seconds=self._last_seconds,
            )

    # -- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        queue = self.queue
        while True:
            queue.wait_for_work(self.flush_interval)
            try:
                while queue:
                    self._busy = True
                    batch: list[QueueItem | _Marker | _Open] = []
                    self._batch = batch
                    self._take_lock.acquire()
                    self._uncounted = True
                    try:
                        queue.take(batch, self.batch_size)
                        self._commit(batch)
                    finally:
                        self._count_taken(0)
                        self._precounted = False
                    self._batch = []
            except Exception:  # pragma: no cover - a bug; keep the thread alive and loud
                _logger.exception("runjournal writer: unexpected failure")
            finally:
                self._busy = False
            if self._closing and not queue:
                return

    def _commit(self, items: list[QueueItem | _Marker | _Open]) -> None:
        # An artifact is a transaction of its own (its content may be streamed), so the
        # items around it are committed before and after it, in queue order.
        start = 0
        if Upload in map(type, items):  # rare: the scan for them runs in C
            # Counted whole now: the batch is committed in several transactions.
            self._count_taken(sum(map(_event_count, items)))
            self._precounted = True
            for index, item in enumerate(items):
                if type(item) is Upload:
                    self._commit_events(items[start:index])
                    self._upload(item)
                    start = index + 1
        self._commit_events(items[start:] if start else items)
        if len(self.queue) < self.max_pending // 2:
            self._drop_warned = False  # the burst is over: warn again at the next one

    def _commit_events(self, items: list[QueueItem | _Marker | _Open]) -> None:
        if not items:
            return
        if self._open_tickets or _Open in map(type, items):  # (a scan in C, as for uploads)
            self._commit_ticketed(items)
            return
        events = typing.cast(list[Event | _Marker], items)  # uploads were split off
        batch = to_entries(events, self.source, self._next_seq)
        self._next_seq = batch.next_seq
        self._count_taken(batch.events)
        if batch.entries:
            self._append(batch.entries, batch.events)
        for marker in batch.markers:
            marker.done.set()

    def _commit_ticketed(self, items: list[QueueItem | _Marker | _Open]) -> None:
        """:meth:`_commit_events` for a batch with tickets: still one transaction.

        The batch is cut where a ticket opens or closes, so that no journal entry
        mixes events inside a ticket with events outside it; each entry remembers
        the tickets open around it, which get its rejection.
        """
        entries: list[NewEntry] = []
        releases: list[_Marker] = []
        owners: dict[int, tuple[Ticket, ...]] = {}
        counted = 0
        seq = self._next_seq
        stretch: list[Event | _Marker] = []

        def cut() -> None:
            nonlocal counted, seq
            if not stretch:
                return
            batch = to_entries(stretch, self.source, seq)
            seq = batch.next_seq
            counted += batch.events
            if self._open_tickets:
                owned = tuple(self._open_tickets)
                for entry in batch.entries:
                    owners[id(entry)] = owned
            entries.extend(batch.entries)
            releases.extend(batch.markers)
            stretch.clear()

        for item in items:
            if type(item) is _Open:
                cut()
                self._open_tickets[item.ticket] = None
            elif type(item) is Ticket:
                cut()
                self._open_tickets.pop(item, None)
                releases.append(item)
            else:
                stretch.append(typing.cast("Event | _Marker", item))  # uploads were split off
        cut()
        self._next_seq = seq
        self._count_taken(counted)
        self._owners = owners
        try:
            if entries:
                self._append(entries, counted)
        finally:
            self._owners = {}
        for marker in releases:
            self._release(marker)

    def _count_taken(self, events: int) -> None:
        """Count ``events`` of the batch as taken (unless it was counted whole), and let
        stats() see the queue again once the batch is counted."""
        if not self._precounted:
            with self._stats_lock:
                self._taken += events
        if self._uncounted:
            self._uncounted = False
            self._take_lock.release()

    def _upload(self, upload: Upload) -> None:
        """Store one artifact and its entry in one transaction; tell its caller the outcome."""
        seq = self._next_seq
        self._next_seq += 1
        self._count_taken(1)

        def entry(sha256: str, size: int) -> NewEntry:
            event = ArtifactLogged(upload.run_id, upload.name, sha256, size, upload.at)
            return NewEntry(self.source, seq, event, upload.at)

        content = upload.content
        delay = 0.005
        while True:
            try:
                result = self.store.append_artifact(content, entry)
            except StoreError as exc:
                # A streamed content cannot be read again once the store began to take it.
                started = isinstance(content, StreamedContent) and content.started
                give_up_at = self._give_up_at
                if (
                    exc.transient
                    and not started
                    and (give_up_at is None or time.monotonic() < give_up_at)
                ):
                    self._error = exc
                    self._failures += 1
                    self._wake_waiting()
                    if self._retry.wait(delay):
                        self._retry.clear()
                    delay = min(delay * 2, 0.5)
                    continue
                self._refuse_upload(upload, exc, entry)
                return
            except Exception as exc:  # noqa: BLE001 - the file failed, or a bug: this one alone
                self._refuse_upload(upload, exc, entry)
                return
            self._error = None
            sha256 = content.sha256 or "?"
            rejected = self._record_rejections(result.rejected, [entry(sha256, 0)])
            with self._stats_lock:
                self._committed += 1 - rejected
            upload.finish(
                RunJournalError(f"artifact {upload.name!r} rejected: {result.rejected[0][1]}")
                if result.rejected
                else None
            )
            return

    def _refuse_upload(self, upload: Upload, error: BaseException, entry: Any) -> None:
        if isinstance(error, UploadAbandoned) and upload.content.replayable is False:
            reason = str(error)
        else:
            reason = str(error) if isinstance(error, RunJournalError) else repr(error)
        self._record_rejections([(0, reason)], [entry(upload.content.sha256 or "?", 0)])
        upload.finish(error)

    def _append(self, entries: list[NewEntry], events: int) -> None:
        """Commit a batch; on a permanent error, bisect it down to the events that cause it.

        Only those are rejected: every other part of the batch commits, in order.
        (Artifacts never come here: each is a transaction of its own, see ``_upload``.)
        """
        error = self._try_append(entries, events)
        if error is not None:
            _logger.warning("runjournal writer: %s; isolating the event(s) that cause it", error)
            self._isolate(entries, error)

    def _isolate(self, entries: list[NewEntry], error: BaseException) -> None:
        """Write the halves of a batch that failed with ``error`` apart, down to single entries."""
        if len(entries) == 1:
            reason = str(error) if isinstance(error, StoreError) else repr(error)
            self._record_rejections([(0, reason)], entries)
            return
        half = len(entries) // 2
        for part in (entries[:half], entries[half:]):
            part_events = sum(_event_count(entry.event) for entry in part)
            part_error = self._try_append(part, part_events)
            if part_error is not None:
                self._isolate(part, part_error)

    def _try_append(self, entries: list[NewEntry], events: int) -> BaseException | None:
        """Commit, retrying transient errors; the permanent error if there is one, else None."""
        delay = 0.005
        while True:
            started = time.perf_counter()
            try:
                result = self.store.append(entries)
            except StoreError as exc:
                if not exc.transient:
                    return exc
                if self._error is None:
                    _logger.error(
                        "runjournal writer: %s; keeping %d event(s) and retrying", exc, events
                    )
                self._error = exc
                self._failures += 1
                self._wake_waiting()
                give_up_at = self._give_up_at
                if give_up_at is not None and time.monotonic() >= give_up_at:
                    with self._stats_lock:
                        self._unwritten += events
                    return None
                # Back off, but retry at once when a flush or close asks for it.
                if self._retry.wait(delay):
                    self._retry.clear()
                delay = min(delay * 2, 0.5)
                continue
            except Exception as exc:  # noqa: BLE001 - a bad value (or a bug): never transient
                return exc
            elapsed = time.perf_counter() - started
            if self._error is not None:
                _logger.warning("runjournal writer: the store accepts writes again")
            self._error = None
            rejected_events = self._record_rejections(result.rejected, entries)
            with self._stats_lock:
                self._committed += events - rejected_events
                self._last_events = events
                self._last_seconds = elapsed
            return None

    def _record_rejections(self, rejected: list[tuple[int, str]], entries: list[NewEntry]) -> int:
        if not rejected:
            return 0
        described: list[tuple[str, str, str]] = []
        count = 0
        owned = 0
        for index, reason in rejected:
            event = entries[index].event
            count += _event_count(event)
            tickets = self._owners.get(id(entries[index])) if self._owners else None
            if tickets:
                # Reported to the requests that queued it, not to the next flush.
                owned += _event_count(event)
                for ticket in tickets:
                    ticket.rejections.append((describe(event), reason))
                continue
            target = str(getattr(event, "run_id", None) or getattr(event, "experiment_id", "?"))
            described.append((describe(event), target, reason))
        if owned:
            with self._stats_lock:
                self._rejected += owned
        self._record(described, count - owned)
        return count

    def _record(self, described: list[tuple[str, str, str]], count: int) -> None:
        """Keep rejections for the next report, logging only the first one per run."""
        with self._stats_lock:
            self._rejected += count
            self._rejections.extend((what, reason) for what, _, reason in described)
            firsts = []
            for what, target, reason in described:
                if target not in self._rejected_targets:
                    self._rejected_targets.add(target)
                    firsts.append((what, target, reason))
        for what, target, reason in firsts:
            # Once per run: a run deleted by another process would otherwise log one
            # line per batch. Every rejection is kept for RejectedWrites and stats().
            _logger.error(
                "runjournal writer: rejected %s: %s (later rejections for %s are counted, "
                "not logged; the next flush or close reports them all)",
                what,
                reason,
                target or "it",
            )


_FORK_FLUSH_TIMEOUT = 5.0
"""How long a fork may wait for the parent's pending events to be committed."""


def _event_count(item: object) -> int:
    if isinstance(item, MetricsLogged):
        return len(item.points)
    if isinstance(item, MetricChunkLogged):
        return item.count
    if isinstance(item, _Marker | _Open):
        return 0
    return 1
