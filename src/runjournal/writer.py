"""The bounded event queue and the batching writer thread that empties it into the store.

Producers (``Tracker.log_*`` from any thread) only append to a ``deque``. The
writer is a thread of its own, not a task on the caller's event loop, so it keeps
committing while the caller's thread is blocked, whether that thread is the event
loop's, another one, or a forked child's. Each batch becomes one store
transaction; consecutive metric points of one ``(run, key)`` become one journal
entry.

A flush is a marker in the queue: once the writer has committed everything in
front of it, it releases the marker. FIFO order makes that exact for any number
of producer threads.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
import warnings
from typing import Literal

import anyio
import msgspec

from runjournal import _exit, _forks
from runjournal.errors import DrainTimeout, RejectedWrites, RunJournalError, StoreError
from runjournal.events import BlobStored, MetricLogged, MetricsLogged, QueueItem, describe
from runjournal.ids import new_id
from runjournal.model import MetricPoint
from runjournal.stores.base import NewEntry, Store, recorded_at

__all__ = ["DroppedEventsWarning", "OnFull", "Writer", "WriterStats"]

log = logging.getLogger("runjournal")

OnFull = Literal["block", "drop"]


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
        # Producers read these two attributes on every call; nothing else is on the hot path.
        self.queue: collections.deque[QueueItem | _Marker] = collections.deque()
        self.capacity = max_pending
        self._fresh_state()
        _exit.register(self)
        _forks.register(self, _forks.Stage.COMMIT)
        _forks.register(store, _forks.Stage.QUIESCE)  # the built-in stores did so already
        self._start()

    def _fresh_state(self) -> None:
        self.source = new_id()
        self._seq = 0
        self._wake = threading.Event()
        self._retry = threading.Event()  # a flush or close wants a failed write retried now
        self._stats_lock = threading.Lock()
        self._taken = 0
        self._committed = 0
        self._dropped = 0
        self._rejected = 0
        self._unwritten = 0
        self._last_events = 0
        self._last_seconds = 0.0
        self._rejections: list[tuple[str, str]] = []
        self._error: StoreError | None = None
        self._failures = 0  # failed store writes so far; a flush reports only fresh failures
        self._batch: list[QueueItem | _Marker] = []  # taken off the queue, not yet written
        self._busy = False
        self._drop_warned = False
        self._closing = False
        self._closed = False
        self._give_up_at: float | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="runjournal-writer", daemon=True)
        self._thread.start()

    # -- producers: the fast path (append while there is room) is inlined by the tracker --
    def put_blocking(self, item: QueueItem) -> None:
        """Append once there is room, sleeping meanwhile (the ``on_full="block"`` policy)."""
        queue = self.queue
        while len(queue) >= self.capacity:
            self.check_open()
            self.wake()  # a full queue is a full batch: commit it now, not at the next tick
            time.sleep(0.0005)
        queue.append(item)

    async def put_waiting(self, item: QueueItem) -> None:
        """Append once there is room, yielding to the event loop meanwhile (backpressure)."""
        queue = self.queue
        while len(queue) >= self.capacity:
            self.check_open()
            self.wake()
            await anyio.sleep(0.0005)
        queue.append(item)

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
            log.warning(message)
            warnings.warn(message, DroppedEventsWarning, stacklevel=4)

    def check_open(self) -> None:
        """Raise if the writer is closed: nothing more can be logged through it."""
        if self._closing:
            raise RunJournalError("the tracker is closed; nothing more can be logged")

    def wake(self) -> None:
        """Ask the writer to commit now rather than at the end of the flush interval."""
        if not self._wake.is_set():
            self._wake.set()

    @property
    def idle(self) -> bool:
        """True if everything accepted so far is committed (or rejected)."""
        return not self.queue and not self._busy

    # -- flush and close ---------------------------------------------------------------------
    def flush_sync(self, *, report: bool = True, timeout: float | None = None) -> bool:
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
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = self._failures
        marker = _Marker()
        self.queue.append(marker)
        self._retry.set()
        self._wake.set()
        while not marker.done.wait(0.01):
            error = self._error
            if error is not None and self._failures != failures:
                raise type(error)(str(error))
            thread = self._thread
            if thread is None or not thread.is_alive():
                raise RunJournalError("the writer thread is not running")
            if deadline is not None and time.monotonic() >= deadline:
                return False
        if report:
            self.raise_rejections()
        return True

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
        self.capacity = 0  # routes every later producer call to the slow path, which raises
        self._retry.set()
        self._wake.set()
        if thread is not threading.current_thread():
            thread.join(limit + 1.0)
        self._closed = True
        leftover = sum(_event_count(item) for item in self.queue)
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
        self.store.release()
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
                self.flush_sync(report=False, timeout=_FORK_FLUSH_TIMEOUT)
            except RunJournalError as exc:  # never stop a fork; the child starts without it
                log.warning("runjournal: could not commit pending events before fork: %s", exc)

    def after_fork_in_parent(self) -> None:
        return None

    def after_fork_in_child(self) -> None:
        # The parent's pending events are the parent's to write; the child starts empty.
        # (The store has already let go of what the parent's threads held.)
        self.queue.clear()
        was_closed = self._closed or self._closing
        self._fresh_state()
        if was_closed:
            self._closing = self._closed = True
            self.capacity = 0
            return
        self.capacity = self.max_pending
        self._start()

    def stats(self) -> WriterStats:
        pending = sum(_event_count(item) for item in list(self.queue))
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
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                while queue:
                    self._busy = True
                    count = min(len(queue), self.batch_size)
                    popleft = queue.popleft
                    batch: list[QueueItem | _Marker] = []
                    self._batch = batch
                    take = batch.append
                    for _ in range(count):
                        take(popleft())
                    self._commit(batch)
                    self._batch = []
            except Exception:  # pragma: no cover - a bug; keep the thread alive and loud
                log.exception("runjournal writer: unexpected failure")
            finally:
                self._busy = False
            if self._closing and not queue:
                return

    def _commit(self, items: list[QueueItem | _Marker]) -> None:
        entries: list[NewEntry] = []
        blobs: list[BlobStored] = []
        markers: list[_Marker] = []
        events = 0
        groups: dict[tuple[str, str], list[MetricPoint]] = {}
        last: MetricLogged | None = None

        def close_groups() -> None:
            nonlocal groups
            if not groups or last is None:
                return
            # Recorded when the newest point of the stretch was accepted: no entry is ever
            # dated before a point it holds (time travel never shows a point too early).
            at = last.timestamp if last.at is None else last.at
            for group_key, points in groups.items():
                self._seq += 1
                batch = MetricsLogged(group_key[0], group_key[1], points, at)
                entries.append(NewEntry(self.source, self._seq, batch, at))
            groups = {}

        for item in items:
            if type(item) is MetricLogged:
                events += 1
                point = MetricPoint(item.step, item.value, item.timestamp)
                group_key = (item.run_id, item.key)
                group = groups.get(group_key)
                if group is None:
                    groups[group_key] = [point]
                else:
                    group.append(point)
                last = item
                continue
            if isinstance(item, _Marker):
                markers.append(item)
                continue
            if isinstance(item, BlobStored):
                blobs.append(item)
                continue
            close_groups()
            events += 1
            self._seq += 1
            entries.append(NewEntry(self.source, self._seq, item, recorded_at(item)))
        close_groups()
        with self._stats_lock:
            self._taken += events
        if entries or blobs:
            self._append(entries, blobs, events)
        if len(self.queue) < self.max_pending // 2:
            self._drop_warned = False  # the burst is over: warn again at the next one
        for marker in markers:
            marker.done.set()

    def _append(self, entries: list[NewEntry], blobs: list[BlobStored], events: int) -> None:
        delay = 0.005
        while True:
            started = time.perf_counter()
            try:
                result = self.store.append(entries, blobs)
            except StoreError as exc:
                if self._error is None:
                    log.error(
                        "runjournal writer: %s; keeping %d event(s) and retrying", exc, events
                    )
                self._error = exc
                self._failures += 1
                give_up_at = self._give_up_at
                if give_up_at is not None and time.monotonic() >= give_up_at:
                    with self._stats_lock:
                        self._unwritten += events
                    return
                # Back off, but retry at once when a flush or close asks for it.
                if self._retry.wait(delay):
                    self._retry.clear()
                delay = min(delay * 2, 0.5)
                continue
            except Exception as exc:
                if len(entries) + len(blobs) > 1:
                    # Not a storage failure but a bad event (or a bug). Write the batch one
                    # entry at a time, so that only the culprit is refused, not its neighbours.
                    log.warning("runjournal writer: %r; writing the batch entry by entry", exc)
                    for blob in blobs:
                        self._append([], [blob], 0)
                    for entry in entries:
                        self._append([entry], [], _event_count(entry.event))
                    return
                # Report every such event, never lose them silently.
                log.exception("runjournal writer: could not write %d event(s)", events)
                self._record_rejections([(i, repr(exc)) for i in range(len(entries))], entries)
                return
            elapsed = time.perf_counter() - started
            if self._error is not None:
                log.warning("runjournal writer: the store accepts writes again")
            self._error = None
            rejected_events = self._record_rejections(result.rejected, entries)
            with self._stats_lock:
                self._committed += events - rejected_events
                self._last_events = events
                self._last_seconds = elapsed
            return

    def _record_rejections(self, rejected: list[tuple[int, str]], entries: list[NewEntry]) -> int:
        if not rejected:
            return 0
        count = 0
        described: list[tuple[str, str]] = []
        for index, reason in rejected:
            event = entries[index].event
            count += _event_count(event)
            described.append((describe(event), reason))
            log.error("runjournal writer: rejected %s: %s", describe(event), reason)
        with self._stats_lock:
            self._rejected += count
            self._rejections.extend(described)
        return count


_FORK_FLUSH_TIMEOUT = 5.0
"""How long a fork may wait for the parent's pending events to be committed."""


def _event_count(item: object) -> int:
    if isinstance(item, MetricsLogged):
        return len(item.points)
    if isinstance(item, _Marker | BlobStored):
        return 0
    return 1
