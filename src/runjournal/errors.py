"""The one exception hierarchy of runjournal.

Every error the library raises on purpose derives from :class:`RunJournalError`.
Bad argument values raise the built-in ``ValueError`` or ``TypeError`` instead,
because that is what Python users expect from a bad call.
"""

from __future__ import annotations

__all__ = [
    "ArtifactNotFound",
    "CorruptLogFile",
    "DrainTimeout",
    "ExperimentNotFound",
    "InvalidStateError",
    "NotARunJournalDatabase",
    "NotFoundError",
    "RejectedWrites",
    "RunJournalError",
    "RunNotFound",
    "StoreError",
    "StoreFull",
    "StoreLocked",
    "StoreReadOnly",
    "StoreUnavailable",
]


class RunJournalError(Exception):
    """Base class of every error that runjournal raises on purpose."""


class NotFoundError(RunJournalError, LookupError):
    """An id that names nothing in the store."""


class ExperimentNotFound(NotFoundError):
    """No experiment has this id (or it was deleted)."""

    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"experiment not found: {experiment_id!r}")
        self.experiment_id = experiment_id


class RunNotFound(NotFoundError):
    """No run has this id (or it was deleted)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run not found: {run_id!r}")
        self.run_id = run_id


class ArtifactNotFound(NotFoundError):
    """No artifact content has this SHA-256."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"artifact not found: {sha256!r}")
        self.sha256 = sha256


class InvalidStateError(RunJournalError):
    """A run status transition that the run lifecycle does not allow."""


class StoreError(RunJournalError):
    """The store could not do what was asked (I/O, locking, a foreign file, a bad value).

    ``transient`` tells the writer what to do with the events it was writing. True:
    the storage cannot write *now* (locked, full, read-only, an I/O error), so the
    same write may succeed later; the writer keeps the events and retries. False:
    this write can never succeed (a value too big for the store, a constraint), so
    retrying is pointless; the writer isolates the events that cause it and rejects
    those alone. Each store decides in one place (for SQLite,
    ``runjournal.stores.sqlite.errors.translate_error``).
    """

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class StoreFull(StoreError):
    """The disk (or the database's size limit) is full; accepted events are kept and retried."""

    transient = True


class StoreLocked(StoreError):
    """Another process held the database lock for longer than the busy timeout."""

    transient = True


class StoreReadOnly(StoreError):
    """The database cannot be written (read-only file, directory or mount)."""

    transient = True


class StoreUnavailable(StoreError):
    """The database server cannot be reached now (down, restarting, the network); retried."""

    transient = True


class NotARunJournalDatabase(StoreError):
    """The file exists but is not a runjournal database."""


class CorruptLogFile(RunJournalError):
    """An event-log file failed validation; nothing from it was imported."""

    def __init__(self, path: str, reason: str, *, record: int | None = None) -> None:
        where = f" at record {record}" if record is not None else ""
        super().__init__(f"corrupt event-log file {path!r}{where}: {reason}")
        self.path = path
        self.reason = reason
        self.record = record


class RejectedWrites(RunJournalError):
    """Events that were accepted at the call but refused when they were committed.

    This happens when another process changed the store in between (it deleted
    the run, say), or when only the store can tell that an event does not fit
    (a value beyond one of its limits). Every other event of the same batch is
    committed. ``rejections`` lists ``(event description, reason)``, one item per
    rejected journal entry; the message counts repeated ones once, with ``×N``.
    """

    def __init__(self, rejections: list[tuple[str, str]]) -> None:
        counts: dict[tuple[str, str], int] = {}
        for rejection in rejections:
            counts[rejection] = counts.get(rejection, 0) + 1
        items = list(counts.items())
        shown = "; ".join(
            f"{what}: {why}" + (f" (×{n})" if n > 1 else "") for (what, why), n in items[:10]
        )
        more = f" (and {len(items) - 10} more kinds)" if len(items) > 10 else ""
        super().__init__(f"{len(rejections)} write(s) rejected at commit: {shown}{more}")
        self.rejections = rejections


class DrainTimeout(RunJournalError):
    """Closing could not write every pending event within ``drain_timeout``."""

    def __init__(self, unwritten: int, timeout: float) -> None:
        super().__init__(f"{unwritten} event(s) could not be written within {timeout} s")
        self.unwritten = unwritten
        self.timeout = timeout
