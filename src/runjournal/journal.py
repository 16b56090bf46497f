"""Replaying the journal: export, import and merge, rebuild and verify, time travel, follow.

Everything here works on a store (any object of the :class:`~runjournal.stores.base.Store`
protocol) or on the path of a runjournal SQLite database, which is opened for
the call and closed afterwards. Pass ``tracker.store`` after ``await
tracker.flush()`` to work on a live tracker's data.

The event-log file
------------------
:func:`export_events` writes, and :func:`import_events` reads, the container of
:mod:`runjournal.eventlog` (framed, checksummed records behind a header and a
trailer). Each record is one msgspec-msgpack encoded :data:`LogRecord`, a map
whose ``type`` key says which:

``journal.entries`` (:class:`EntriesRecord`, format 2)
    Consecutive journal entries, column by column: the block's table of
    ``sources`` (each named once) and, per entry, the index of its source, its
    ``seq``, ``recorded_at``, event ``version`` and encoded event ``body``,
    copied byte for byte. A batch of metric points is one entry.

``journal.entry`` (:class:`EntryRecord`, format 1)
    One journal entry, with its source spelled out. Still read, no longer written.

``artifact.chunk`` (:class:`ChunkRecord`)
    One chunk (at most 4 MiB) of artifact content, under its raw SHA-256
    ``digest``; a chunk shared by several contents is written once.

``artifact.content`` (:class:`ContentRecord`)
    The content of an artifact that an exported entry refers to: its
    ``sha256``, ``size_bytes`` and the digests of its ``chunks`` in order
    (each written before it).

``artifact.blob`` (:class:`BlobRecord`)
    Files written before chunks: a whole content (``data``) under its
    ``sha256``. Still read, never written.

Entries appear in journal order; contents follow them. Export and import stream
artifact content: neither holds more than a chunk (or, for an old file, one
``artifact.blob``) in memory. Importing decodes every body through
:class:`~runjournal.events.EventCodec` (to validate it and fold it), so entries
written by an older runjournal are upcast on the way in; a body already at the
current event version is stored as the file carries it, not encoded again.

Which format an export writes: format 2 (blocks of entries) whenever it writes
an entry, since a block is smaller and faster to write and read than one record
per entry for every journal (the source id of 26 characters and the field
names are no longer repeated per entry). An export without entries writes
format 1, which older runjournal versions read too. Both are imported.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import math
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Literal, NamedTuple, TypeAlias, get_args

import anyio.from_thread
import anyio.to_thread
import msgspec

from runjournal.chunks import chunk_length
from runjournal.errors import (
    ArtifactNotFound,
    CorruptLogFile,
    ExperimentNotFound,
    RunNotFound,
    StoreError,
)
from runjournal.eventlog import LogWriter, read_payload, scan_log
from runjournal.events import (
    EVENT_VERSION,
    ArtifactLogged,
    Event,
    EventCodec,
    MetricChunkLogged,
    MetricsLogged,
    describe,
)
from runjournal.model import (
    FilterOp,
    MetricPoint,
    ParamFilter,
    RunView,
    same_value,
)
from runjournal.projection import Rejected, State
from runjournal.stores.base import Content, JournalEntry, NewEntry, PurgeResult, RawEntry, Store
from runjournal.stores.memory import StateReader
from runjournal.stores.sqlite import SqliteBackend, is_sqlite_file

__all__ = [
    "BlobRecord",
    "ChunkRecord",
    "ContentRecord",
    "Cutoff",
    "Difference",
    "EntriesRecord",
    "EntryRecord",
    "ExportResult",
    "ImportResult",
    "LogRecord",
    "PurgeResult",
    "Rejection",
    "SourceImport",
    "StateView",
    "StoreOrPath",
    "VerifyReport",
    "entries",
    "export_events",
    "follow",
    "head",
    "import_events",
    "purge",
    "rebuild",
    "state_at",
    "verify",
]

StoreOrPath: TypeAlias = Store | str | os.PathLike[str]
"""A store, or the path of a runjournal SQLite database."""

# Journal entries read per round trip. An entry may hold thousands of metric points.
_PAGE = 1000
# An export writes a page as one block, or as several where its bodies pass this size.
_BLOCK_BYTES = 4 << 20


# -- where reading stops -------------------------------------------------------------------------
class Cutoff(msgspec.Struct, frozen=True):
    """Where a journal is cut: after a position, after a wall-clock time, or both.

    An entry is kept if its position is at most :attr:`position` and it was
    *recorded* at or before :attr:`time`. ``recorded_at`` is when the tracker
    accepted the event, never a timestamp the user gave a metric point. A field
    left ``None`` cuts nothing; with both, an entry must pass both.

    A cut in position keeps a prefix of the journal, so reading stops there. A
    cut in time need not: in a merged journal the machines' clocks differ, so
    reading goes on to the end and leaves out each entry recorded later. An
    entry whose premise was left out (a metric of a run created after the
    cut-off, say) may then be kept here; folding or importing rejects it.

    Raises:
        TypeError, ValueError: ``position`` is not an int >= 0, or ``time`` is
            not a number (or is NaN).
    """

    position: int | None = None
    """The last journal position kept (``None``: no cut in position)."""
    time: float | None = None
    """Unix seconds; entries recorded after it are left out (``None``: no cut in time)."""

    def __post_init__(self) -> None:
        if self.position is not None:
            _check_position(self.position, "Cutoff.position")
        if self.time is not None:
            if type(self.time) not in (int, float):
                raise TypeError(f"Cutoff.time must be Unix seconds, not {type(self.time).__name__}")
            if math.isnan(self.time):
                raise ValueError("Cutoff.time must be a number, not NaN")

    def __str__(self) -> str:
        parts = []
        if self.position is not None:
            parts.append(f"position {self.position}")
        if self.time is not None:
            moment = datetime.datetime.fromtimestamp(self.time).astimezone()
            parts.append(f"time {moment.isoformat()}")
        return " and ".join(parts) or "the end"

    def keeps(self, position: int, recorded_at: float) -> bool:
        """Whether the entry at ``position``, recorded at ``recorded_at``, is within the cut-off."""
        return (self.position is None or position <= self.position) and (
            self.time is None or recorded_at <= self.time
        )

    def passed(self, position: int) -> bool:
        """Whether no entry after ``position`` can be kept, so that reading can stop there."""
        return self.position is not None and position >= self.position


# -- the records of an event-log file ----------------------------------------------------------
class EntriesRecord(msgspec.Struct, frozen=True, tag="journal.entries"):
    """Consecutive journal entries in an event-log file (format 2), column by column.

    Entry ``i`` is ``(sources[source[i]], seq[i], recorded_at[i], version[i], body[i])``;
    every column has one item per entry, and each source is named once per block.
    """

    sources: list[str]
    source: list[int]
    seq: list[int]
    recorded_at: list[float]
    version: list[int]
    body: list[bytes]


class EntryRecord(msgspec.Struct, frozen=True, tag="journal.entry"):
    """One journal entry in an event-log file (format 1), its event still encoded."""

    source: str
    seq: int
    recorded_at: float
    version: int
    body: bytes


class BlobRecord(msgspec.Struct, frozen=True, tag="artifact.blob"):
    """The content of an artifact referred to by an exported entry."""

    sha256: str
    data: bytes


class ChunkRecord(msgspec.Struct, frozen=True, tag="artifact.chunk"):
    """One chunk of artifact content, under its raw SHA-256."""

    digest: bytes
    data: bytes


class ContentRecord(msgspec.Struct, frozen=True, tag="artifact.content"):
    """An artifact's content: its SHA-256, size and chunks (written before it), in order."""

    sha256: str
    size_bytes: int
    chunks: list[bytes]


LogRecord: TypeAlias = EntriesRecord | EntryRecord | BlobRecord | ChunkRecord | ContentRecord
"""Every kind of record in an event-log file."""


# -- results -------------------------------------------------------------------------------------
class ExportResult(msgspec.Struct, frozen=True):
    """What :func:`export_events` wrote."""

    entries: int
    """Journal entries written (a batch of metric points is one entry)."""
    events: int
    """Logical events in those entries: each metric point counts as one."""
    blobs: int
    """Artifact contents written."""
    last_position: int
    """The journal position the export read up to; pass it as ``after`` to export what follows."""


class Rejection(msgspec.Struct, frozen=True):
    """An imported entry that contradicts the target's state, left out of its journal."""

    source: str
    seq: int
    event: str
    reason: str


class SourceImport(msgspec.Struct, frozen=True):
    """What :func:`import_events` did with one source."""

    source: str
    """The source's path (or ``repr`` of a store), and where it was cut if it was."""
    kind: Literal["eventlog", "database"]
    entries: int
    """Journal entries the source holds."""
    events: int
    """Logical events in those entries (each metric point counts as one)."""
    blobs: int
    """Artifact contents the source carried."""
    appended: int
    """Entries appended to the target's journal."""
    duplicates: int
    """Entries the target already had, by ``(source, seq)``."""
    rejections: list[Rejection]
    """Entries left out because they contradict the target's state."""

    @property
    def rejected(self) -> int:
        """How many entries were left out as contradicting the target's state."""
        return len(self.rejections)


class ImportResult(msgspec.Struct, frozen=True):
    """What :func:`import_events` did, source by source, in the order given."""

    sources: list[SourceImport]

    @property
    def appended(self) -> int:
        """Entries appended, over all sources."""
        return sum(s.appended for s in self.sources)

    @property
    def duplicates(self) -> int:
        """Entries the target already had, over all sources."""
        return sum(s.duplicates for s in self.sources)

    @property
    def rejected(self) -> int:
        """Entries left out as contradicting the target's state, over all sources."""
        return sum(s.rejected for s in self.sources)


class Difference(msgspec.Struct, frozen=True):
    """One answer of the live projections that folding the journal does not give."""

    what: str
    """The query and its subject, e.g. ``"run 01J...: metric 'loss'"``."""
    live: Any
    """What the live projections answer (``None``: nothing)."""
    journal: Any
    """What folding the journal answers (``None``: nothing)."""


class VerifyReport(msgspec.Struct, frozen=True):
    """What :func:`verify` found."""

    position: int
    """The journal position the comparison was made at."""
    differences: list[Difference]
    """Every difference found; empty when the projections agree with the journal."""

    @property
    def ok(self) -> bool:
        """True if the live projections agree with the journal."""
        return not self.differences


# -- opening stores ------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def _using(
    store_or_path: StoreOrPath, *, create: bool = False, read_only: bool = False
) -> AsyncIterator[Store]:
    """The store itself, or the SQLite database at a path, opened and closed around the block.

    ``read_only`` opens a path read-only (``SqliteBackend(read_only=True)``): the
    functions that only read never write to the file, and work on a database in
    a directory they cannot write.
    """
    if not isinstance(store_or_path, str | os.PathLike):
        yield store_or_path
        return
    path = os.fspath(store_or_path)
    exists = await anyio.to_thread.run_sync(os.path.exists, path)
    if not create and path != ":memory:" and not exists:
        raise FileNotFoundError(f"no runjournal database at {path!r}")
    store = SqliteBackend(path, read_only=read_only and path != ":memory:")
    try:
        await store.open()
        yield store
    finally:
        await store.close()


# -- what an entry is about, without decoding it fully -----------------------------------------
class _Facts(NamedTuple):
    tag: str
    run_id: str | None
    experiment_id: str | None
    sha256: str | None
    events: int


class _Probe(msgspec.Struct):
    """The fields of any current event that export needs; the rest is skipped unread."""

    type: str = ""
    run_id: str | None = None
    experiment_id: str | None = None
    sha256: str | None = None
    points: msgspec.Raw = msgspec.Raw()
    chunk: bytes = b""


_probe_decode = msgspec.msgpack.Decoder(_Probe).decode
_METRICS_TAG = "metrics.logged"
_CHUNK_TAG = "metrics.chunk"
_RUN_CREATED_TAG = "run.created"


def _tag(event: Event) -> str:
    return str(type(event).__struct_config__.tag)


_CURRENT_TAGS = frozenset(str(cls.__struct_config__.tag) for cls in get_args(Event))


def _array_length(raw: msgspec.Raw) -> int:
    """The length of an encoded msgpack array, read from its header."""
    with memoryview(raw) as view:
        if not view:
            return 0
        first = view[0]
        if 0x90 <= first <= 0x9F:
            return first & 0x0F
        if first == 0xDC:
            return int.from_bytes(view[1:3], "big")
        if first == 0xDD:
            return int.from_bytes(view[1:5], "big")
    raise ValueError("the points of a metrics.logged event are not an array")


def _event_count(event: Event) -> int:
    if isinstance(event, MetricChunkLogged):
        return event.count
    return len(event.points) if isinstance(event, MetricsLogged) else 1


def _facts_of_event(event: Event) -> _Facts:
    return _Facts(
        _tag(event),
        getattr(event, "run_id", None),
        getattr(event, "experiment_id", None),
        event.sha256 if isinstance(event, ArtifactLogged) else None,
        _event_count(event),
    )


def _facts(entry: RawEntry, codec: EventCodec) -> _Facts:
    try:
        if entry.version == EVENT_VERSION:
            probe = _probe_decode(entry.body)
            if probe.type in _CURRENT_TAGS:
                if probe.type == _METRICS_TAG:
                    events = _array_length(probe.points)
                elif probe.type == _CHUNK_TAG:
                    events = chunk_length(probe.chunk)
                else:
                    events = 1
                return _Facts(probe.type, probe.run_id, probe.experiment_id, probe.sha256, events)
        return _facts_of_event(codec.decode(entry.body, entry.version))
    except (msgspec.DecodeError, ValueError) as exc:
        raise StoreError(f"journal entry {entry.position} cannot be decoded: {exc}") from exc


# Every current body starts as the encoder writes a tagged event: a small map whose first
# key is "type", then the tag. An export of everything needs nothing else of most entries.
_TYPE_KEY = b"\xa4type"
_ONE_EVENT_TAGS = frozenset(
    tag.encode()
    for tag in _CURRENT_TAGS - {_METRICS_TAG, _CHUNK_TAG, str(ArtifactLogged.__struct_config__.tag)}
)


def _counts(entry: RawEntry, codec: EventCodec) -> tuple[int, str | None]:
    """What an export of everything needs of an entry: its events and its artifact's SHA-256."""
    body = entry.body
    if entry.version == EVENT_VERSION and body[:1] >= b"\x80" and body.startswith(_TYPE_KEY, 1):
        size = body[6] - 0xA0 if len(body) > 6 else -1
        if 0 <= size < 32 and body[7 : 7 + size] in _ONE_EVENT_TAGS:
            return 1, None
    facts = _facts(entry, codec)
    return facts.events, facts.sha256


# -- reading raw entries ------------------------------------------------------------------------
_PageReader: TypeAlias = Callable[[int, int], list[RawEntry]]


def _page_reader(store: Store) -> _PageReader:
    """``read(after, limit)`` of raw entries, for a worker thread of anyio.

    An SQLite store reads on that thread itself; any other store is called on
    the event loop (``anyio.from_thread``). Either way a whole export or import
    runs on one worker thread, with no hop per page.
    """
    if isinstance(store, SqliteBackend):
        return store.read_journal_raw_blocking

    def read(after: int, limit: int) -> list[RawEntry]:
        return anyio.from_thread.run(store.read_journal_raw, after, limit)

    return read


def _raw_pages(
    read: _PageReader, after: int, *, until: Cutoff | None = None, end: int | None = None
) -> Iterator[tuple[int, list[RawEntry]]]:
    """The raw entries after ``after``, page by page, within ``until`` and up to ``end``.

    Yields ``(the position read up to, the entries of the page that the cut-off
    keeps)``; that list may be empty when a cut in time leaves a whole page out.
    """
    cursor = after
    while not (until is not None and until.passed(cursor)) and (end is None or cursor < end):
        bounds = (end, None if until is None else until.position)
        limit = min([_PAGE, *(bound - cursor for bound in bounds if bound is not None)])
        page = read(cursor, limit)
        if not page:
            return
        cursor = page[-1].position
        # A purge leaves gaps in the positions, so a page may run past a bound: cut it there.
        bound = min((b for b in bounds if b is not None), default=None)
        if bound is not None and cursor > bound:
            page = [e for e in page if e.position <= bound]
            cursor = bound
        if until is not None:
            page = [e for e in page if until.keeps(e.position, e.recorded_at)]
        yield cursor, page


# -- export --------------------------------------------------------------------------------------
def _check_position(value: object, what: str) -> int:
    if value is None:
        return 0
    if type(value) is not int:
        raise TypeError(f"{what} must be an int journal position, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return value


class _Selection:
    """Which entries an export takes: those of an experiment and its runs, or of one run.

    A run's entries are found through the ``run.created`` entries of the journal;
    selecting a run also takes the entries of its experiment (``experiment.created``,
    ``experiment.deleted``), so that the exported file imports into an empty database.
    """

    def __init__(self, experiment_id: str | None, run_id: str | None) -> None:
        self.experiment_id = experiment_id
        self.run_id = run_id
        self.run_experiment: dict[str, str] = {}
        self.experiments: set[str] = set()

    @property
    def everything(self) -> bool:
        return self.experiment_id is None and self.run_id is None

    def learn(self, facts: _Facts) -> None:
        if facts.experiment_id is None:
            return
        if facts.tag == _RUN_CREATED_TAG and facts.run_id is not None:
            self.run_experiment[facts.run_id] = facts.experiment_id
        elif facts.run_id is None:
            self.experiments.add(facts.experiment_id)

    def check_known(self) -> None:
        if self.experiment_id is not None and self.experiment_id not in self.experiments:
            raise ExperimentNotFound(self.experiment_id)
        if self.run_id is not None and self.run_id not in self.run_experiment:
            raise RunNotFound(self.run_id)

    def takes(self, facts: _Facts) -> bool:
        if self.everything:
            return True
        if facts.run_id is not None:
            return (self.run_id is None or facts.run_id == self.run_id) and (
                self.experiment_id is None
                or self.run_experiment.get(facts.run_id) == self.experiment_id
            )
        if facts.experiment_id is None:
            return False
        if self.experiment_id is not None and facts.experiment_id != self.experiment_id:
            return False
        return self.run_id is None or self.run_experiment.get(self.run_id) == facts.experiment_id


async def export_events(
    store_or_path: StoreOrPath,
    dest: str | os.PathLike[str],
    *,
    experiment_id: str | None = None,
    run_id: str | None = None,
    after: int | None = None,
    until: Cutoff | None = None,
) -> ExportResult:
    """Write the journal (or part of it) to an event-log file, with the artifacts it refers to.

    Entries are copied as stored, without decoding and encoding them again. The
    file appears at ``dest`` only once it is complete (it replaces any file
    there); if the export fails, ``dest`` is left as it was.

    Args:
        store_or_path: the store, or the path of a runjournal database (which must exist).
        dest: the event-log file to write.
        experiment_id: export only this experiment's entries and those of its runs.
        run_id: export only this run's entries, plus its experiment's own entries
            (its creation, and its deletion if any) so that the file imports on its own.
            With ``experiment_id`` too, the run must belong to that experiment.
        after: export only entries after this journal position of the source store
            (``ExportResult.last_position`` of an earlier export continues it).
        until: export only the entries within this cut-off; reading stops at a
            cut in position. A selected id must have been created within it. After a
            cut in time, ``last_position`` is where reading stopped, and an export that
            continues from it never sees the entries the cut left out before it.

    Returns:
        The number of entries, logical events and artifact contents written.

    Raises:
        ExperimentNotFound, RunNotFound: the journal never created that id.
        FileNotFoundError: ``store_or_path`` is a path where no database exists.
        OSError: ``dest`` cannot be written.
    """
    start = _check_position(after, "after")
    selection = _Selection(experiment_id, run_id)
    async with _using(store_or_path, read_only=True) as store:
        metadata = {"exported_from": store.spec, "after": str(start)}
        if experiment_id is not None:
            metadata["experiment_id"] = experiment_id
        if run_id is not None:
            metadata["run_id"] = run_id
        if until is not None:
            metadata["until"] = str(until)
        export = _Export(store, selection)
        return await anyio.to_thread.run_sync(export.run, dest, metadata, start, until)


def _block(entries: list[RawEntry]) -> EntriesRecord:
    """One block of consecutive entries, each source named once."""
    sources: dict[str, int] = {}
    index = [sources.setdefault(e.source, len(sources)) for e in entries]
    return EntriesRecord(
        list(sources),
        index,
        [e.seq for e in entries],
        [e.recorded_at for e in entries],
        [e.version for e in entries],
        [e.body for e in entries],
    )


class _Export:
    """One export, run start to end on one worker thread: its reads, counts and records."""

    def __init__(self, store: Store, selection: _Selection) -> None:
        self.store = store
        self.read = _page_reader(store)
        self.selection = selection
        self.codec = EventCodec()
        self.encode = msgspec.msgpack.Encoder().encode
        self.entries = 0
        self.events = 0
        self.sha256s: dict[str, None] = {}  # an ordered set
        self.chunks: set[bytes] = set()  # written already

    def run(
        self,
        dest: str | os.PathLike[str],
        metadata: dict[str, str],
        start: int,
        until: Cutoff | None,
    ) -> ExportResult:
        selection = self.selection
        # A selection needs to know every run's experiment before it meets their entries.
        end: int | None = None
        if not selection.everything:
            end = 0
            for read_to, page in _raw_pages(self.read, 0, until=until):
                end = read_to
                for entry in page:
                    selection.learn(_facts(entry, self.codec))
            selection.check_known()

        writer: LogWriter | None = None
        cursor = start
        try:
            for read_to, page in _raw_pages(self.read, start, until=until, end=end):
                cursor = read_to
                blocks = self.blocks(page)
                if blocks:
                    if writer is None:
                        writer = LogWriter(dest, metadata=metadata, format_version=2)
                    writer.write_many(blocks)
            if writer is None:
                # No entry, so no block: format 1, which older runjournal versions read too.
                writer = LogWriter(dest, metadata=metadata, format_version=1)
            blobs = sum(self.write_content(writer, sha) for sha in self.sha256s)
            writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        return ExportResult(self.entries, self.events, blobs, max(cursor, start))

    def blocks(self, page: list[RawEntry]) -> list[bytes]:
        """The encoded blocks of the page's selected entries (none if it has none)."""
        codec = self.codec
        if self.selection.everything:
            counts = [_counts(entry, codec) for entry in page]
        else:
            takes = self.selection.takes
            facts = [(entry, _facts(entry, codec)) for entry in page]
            kept = [(entry, f) for entry, f in facts if takes(f)]
            page = [entry for entry, _ in kept]
            counts = [(f.events, f.sha256) for _, f in kept]
        for events, sha256 in counts:
            self.events += events
            if sha256 is not None:
                self.sha256s[sha256] = None
        blocks: list[bytes] = []
        start = size = 0
        for end, entry in enumerate(page, 1):
            size += len(entry.body)
            if size >= _BLOCK_BYTES or end == len(page):
                blocks.append(self.encode(_block(page[start:end])))
                start, size = end, 0
        self.entries += len(page)
        return blocks

    def write_content(self, writer: LogWriter, sha256: str) -> int:
        """Write one content's new chunks, then its record; 0 if the store lacks it."""
        content = self.store.content(sha256)
        if content is None:
            return 0
        digests: list[bytes] = []
        for digest, data in content:
            digests.append(digest)
            if digest not in self.chunks:
                self.chunks.add(digest)
                writer.write(self.encode(ChunkRecord(digest, data)))
        writer.write(self.encode(ContentRecord(sha256, content.size_bytes or 0, digests)))
        return 1


# -- import --------------------------------------------------------------------------------------
class _Source(NamedTuple):
    """A validated source, ready to append in one transaction (its contents read lazily)."""

    name: str
    kind: Literal["eventlog", "database"]
    entries: list[NewEntry]
    contents: list[Content]
    events: int


_record_decode = msgspec.msgpack.Decoder(LogRecord).decode


class _FileContent(Content):
    """Content in a validated event-log file, read from it chunk by chunk when stored."""

    __slots__ = ("_path", "_pieces")

    def __init__(
        self, path: str, sha256: str, size: int, pieces: list[tuple[bytes, int, int]]
    ) -> None:
        super().__init__(None, sha256, size)
        self._path = path
        self._pieces = pieces  # (digest, offset, size) of each chunk's record, or one blob's

    @property
    def replayable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for digest, offset, size in self._pieces:
            record = _record_decode(read_payload(self._path, offset, size))
            if isinstance(record, ChunkRecord):
                yield digest, record.data
            elif isinstance(record, BlobRecord):  # a whole content, from an older file
                yield from Content.of_bytes(record.data, record.sha256)


def _read_eventlog(path: str) -> _Source:
    """Validate a whole event-log file, down to every event and every chunk's digest.

    Entries are kept; artifact content is checked and left in the file, to be
    read again chunk by chunk when it is stored.
    """
    codec = EventCodec()
    entries: list[NewEntry] = []
    chunks: dict[bytes, tuple[bytes, int, int]] = {}
    contents: list[Content] = []
    events = 0
    for index, (offset, payload) in enumerate(scan_log(path)):
        try:
            record = _record_decode(payload)
        except msgspec.DecodeError as exc:
            raise CorruptLogFile(path, f"not a journal record: {exc}", record=index) from None
        if isinstance(record, ChunkRecord):
            if hashlib.sha256(record.data).digest() != record.digest:
                raise CorruptLogFile(
                    path, "artifact chunk does not match its SHA-256", record=index
                )
            chunks[record.digest] = (record.digest, offset, len(payload))
            continue
        if isinstance(record, ContentRecord):
            missing = [d for d in record.chunks if d not in chunks]
            if missing:
                reason = f"artifact content {record.sha256!r} names a chunk the file lacks"
                raise CorruptLogFile(path, reason, record=index)
            pieces = [chunks[d] for d in record.chunks]
            contents.append(_FileContent(path, record.sha256, record.size_bytes, pieces))
            continue
        if isinstance(record, BlobRecord):
            if hashlib.sha256(record.data).hexdigest() != record.sha256:
                reason = f"artifact content does not match its SHA-256 {record.sha256!r}"
                raise CorruptLogFile(path, reason, record=index)
            piece = (b"", offset, len(payload))
            contents.append(_FileContent(path, record.sha256, len(record.data), [piece]))
            continue
        if isinstance(record, EntryRecord):
            rows: Iterable[tuple[str, int, float, int, bytes]] = [
                (record.source, record.seq, record.recorded_at, record.version, record.body)
            ]
        else:
            rows = _block_rows(path, index, record)
        try:
            for new in _new_entries(codec, rows):
                entries.append(new)
                events += _event_count(new.event)
        except _Undecodable as exc:
            where = (
                f"entry {exc.number} of the block: " if isinstance(record, EntriesRecord) else ""
            )
            raise CorruptLogFile(path, f"{where}{exc.reason}", record=index) from None
    return _Source(path, "eventlog", entries, contents, events)


def _block_rows(
    path: str, index: int, block: EntriesRecord
) -> Iterable[tuple[str, int, float, int, bytes]]:
    """The entries of a block as ``(source, seq, recorded_at, version, body)``, checked."""
    size = len(block.body)
    columns = (block.source, block.seq, block.recorded_at, block.version)
    if any(len(column) != size for column in columns):
        raise CorruptLogFile(path, "a block's columns differ in length", record=index)
    sources = block.sources
    if size and not 0 <= min(block.source) <= max(block.source) < len(sources):
        raise CorruptLogFile(path, "a block names a source it lacks", record=index)
    return zip(
        [sources[i] for i in block.source],
        block.seq,
        block.recorded_at,
        block.version,
        block.body,
        strict=True,
    )


class _Undecodable(Exception):
    """The ``number``-th of the entries to import has an event that cannot be decoded."""

    def __init__(self, number: int, reason: str) -> None:
        super().__init__(reason)
        self.number = number
        self.reason = reason


def _new_entries(
    codec: EventCodec, rows: Iterable[tuple[str, int, float, int, bytes]]
) -> Iterator[NewEntry]:
    """The entries to import, each event decoded (validated, upcast) and its body kept.

    A body at the current event version is carried to the store as it is: it
    decodes to the event, so the store need not encode that again.
    """
    decode = codec.decode
    for number, (source, seq, recorded_at, version, body) in enumerate(rows):
        try:
            event = decode(body, version)
        except (msgspec.DecodeError, ValueError, TypeError, KeyError) as exc:
            reason = f"event (version {version}) cannot be decoded: {exc}"
            raise _Undecodable(number, reason) from None
        yield NewEntry(source, seq, event, recorded_at, body if version == EVENT_VERSION else None)


async def _read_store(store: Store, name: str, until: Cutoff | None) -> _Source:
    """The entries of a store's journal within ``until``, decoded, with the artifacts they use.

    The contents are read from ``store`` when they are stored: keep it open until then.
    """
    if until is not None:
        name = f"{name} up to {until}"
    read = _page_reader(store)

    def collect() -> _Source:
        codec = EventCodec()
        entries: list[NewEntry] = []
        events = 0
        shas: dict[str, None] = {}  # an ordered set
        for _, page in _raw_pages(read, 0, until=until):
            for entry in page:
                row = (entry.source, entry.seq, entry.recorded_at, entry.version, entry.body)
                try:
                    (new,) = _new_entries(codec, [row])
                except _Undecodable as exc:
                    raise StoreError(
                        f"{name}: journal entry {entry.position}: {exc.reason}"
                    ) from exc
                entries.append(new)
                events += _event_count(new.event)
                if isinstance(new.event, ArtifactLogged):
                    shas[new.event.sha256] = None
        found = (store.content(sha) for sha in shas)
        contents = [content for content in found if content is not None]
        return _Source(name, "database", entries, contents, events)

    return await anyio.to_thread.run_sync(collect)


@contextlib.asynccontextmanager
async def _load(source: StoreOrPath, until: Cutoff | None) -> AsyncGenerator[_Source, None]:
    """A validated source, its storage kept open (for its contents) inside the block."""
    if not isinstance(source, str | os.PathLike):
        yield await _read_store(source, repr(source), until)
        return
    path = os.fspath(source)
    if await anyio.to_thread.run_sync(is_sqlite_file, path):
        async with _using(path, read_only=True) as store:
            yield await _read_store(store, path, until)
        return
    yield await anyio.to_thread.run_sync(_read_eventlog, path)


async def import_events(
    store_or_path: StoreOrPath, *sources: StoreOrPath, until: Cutoff | None = None
) -> ImportResult:
    """Append the journals of event-log files or runjournal databases to a store.

    Every source is validated entirely before anything is imported: one that
    fails validation imports nothing, and neither does any other source of the
    call. Each source is then appended in one transaction, in the order given.
    Entries keep their identity ``(source, seq)``, so an entry the store already
    has is skipped: importing the same file twice, or files that overlap,
    changes nothing the second time, and the journals of several machines merge
    into one database. Entries that contradict the store's state (a run of an
    experiment that the store does not have, say, or one that was deleted) are
    left out and reported in :attr:`SourceImport.rejections`; a deleted run or
    experiment never comes back.

    With several sources, each file is read twice (once to validate them all,
    once to import it), so that only one source is held in memory at a time.

    Args:
        store_or_path: the target store, or the path of a database (created if missing).
        sources: event-log files (see :func:`export_events`), runjournal
            databases (recognised by their SQLite header), or stores.
        until: import from each database or store only the entries of its
            journal within this cut-off (event-log files are imported whole).
            Imported into an empty store, one database cut this way gives the state
            :func:`state_at` shows at the same cut-off, with the journal that led
            there. An entry kept after a cut in time whose premise was left out is
            rejected like any other contradicting entry. The source's name in the
            result says where it was cut (``"runs.db up to position 42"``).

    Returns:
        What happened to each source.

    Raises:
        CorruptLogFile: a file failed validation (it names the file and, where
            it applies, the record); nothing was imported.
        NotARunJournalDatabase: a source is an SQLite file of another kind.
        FileNotFoundError: a source does not exist.
        ValueError: no sources were given.
    """
    if not sources:
        raise ValueError("import_events needs at least one source")
    # Validate before the target is opened (and perhaps created): a bad source leaves no trace.
    # Several sources are validated first, then read again one at a time.
    reports: list[SourceImport] = []
    if len(sources) == 1:
        async with (
            _load(sources[0], until) as loaded,
            _using(store_or_path, create=True) as store,
        ):
            reports.append(await _import_one(store, loaded))
        return ImportResult(reports)
    for source in sources:
        async with _load(source, until):
            pass
    async with _using(store_or_path, create=True) as store:
        for source in sources:
            async with _load(source, until) as loaded:
                reports.append(await _import_one(store, loaded))
    return ImportResult(reports)


async def _import_one(store: Store, loaded: _Source) -> SourceImport:
    result = await anyio.to_thread.run_sync(store.append, loaded.entries, loaded.contents)
    rejections = []
    for index, reason in result.rejected:
        entry = loaded.entries[index]
        rejections.append(Rejection(entry.source, entry.seq, describe(entry.event), reason))
    return SourceImport(
        source=loaded.name,
        kind=loaded.kind,
        entries=len(loaded.entries),
        events=loaded.events,
        blobs=len(loaded.contents),
        appended=result.appended,
        duplicates=result.duplicates,
        rejections=rejections,
    )


# -- rebuild and verify --------------------------------------------------------------------------
async def rebuild(store_or_path: StoreOrPath) -> int:
    """Drop every projection and fold the journal again; returns the journal's head position.

    Raises:
        StoreError: an entry of the journal no longer applies (the journal is damaged).
        FileNotFoundError: ``store_or_path`` is a path where no database exists.
    """
    async with _using(store_or_path) as store:
        await store.rebuild()
        return await store.head()


async def purge(store_or_path: StoreOrPath) -> PurgeResult:
    """Erase deleted runs and experiments for good: delete hides, purge erases.

    Deleting a run or an experiment only hides it: its entries stay in the
    journal, where :func:`state_at`, ``replay`` and a full :func:`export_events`
    still find them, and its artifacts keep their space. A purge rewrites the
    journal without any entry about a deleted id (its creation, params, metrics,
    tags, artifacts, span id and its deletion), drops the artifact contents that
    only those entries referred to, and compacts the file (SQLite ``VACUUM``).

    The rewrite is one transaction: a crash leaves either the old or the new
    journal, and readers in other processes see one or the other. The ids stay
    known as deleted (one ``ids.purged`` entry lists them), so an import never
    brings them back. Positions of the remaining entries do not change.

    Returns:
        What was erased, and the file's size before and after.

    Raises:
        StoreReadOnly: the database cannot be written.
        FileNotFoundError: ``store_or_path`` is a path where no database exists.
    """
    async with _using(store_or_path) as store:
        return await store.purge()


async def verify(store_or_path: StoreOrPath) -> VerifyReport:
    """Fold the journal into a scratch projection and compare it with the live projections.

    The comparison goes through the query API: experiments, every run (with its
    status, times, params and tags), the params index behind ``filter_runs``,
    metric keys and series, artifacts and span ids. Nothing is changed; run
    :func:`rebuild` to repair what the report lists.

    If other writers commit meanwhile, the comparison is repeated (a few times)
    until the journal stands still while it runs.

    Raises:
        FileNotFoundError: ``store_or_path`` is a path where no database exists.
    """
    scratch = State()
    broken: list[Difference] = []
    position = 0
    async with _using(store_or_path, read_only=True) as store:
        for _ in range(5):
            while page := await store.read_journal(position, _PAGE):
                for entry in page:
                    position = entry.position
                    try:
                        scratch.fold(entry.event)
                    except Rejected as exc:
                        what = f"journal entry {position} ({describe(entry.event)})"
                        broken.append(Difference(what, "committed", f"does not apply: {exc}"))
            differences = await _compare(store, scratch)
            if await store.head() == position:
                break
    return VerifyReport(position, broken + differences)


def _shown(value: Any) -> Any:
    return msgspec.to_builtins(value)


def _first_difference(a: list[MetricPoint], b: list[MetricPoint]) -> int | None:
    if a == b:
        return None
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if not same_value(x, y):
            return index
    return min(len(a), len(b)) if len(a) != len(b) else None


async def _compare(store: Store, scratch: State) -> list[Difference]:
    out: list[Difference] = []

    def check(what: str, live: Any, journal: Any) -> None:
        if not same_value(live, journal):
            out.append(Difference(what, _shown(live), _shown(journal)))

    live_experiments = {e.id: e for e in await store.list_experiments()}
    for experiment in scratch.list_experiments():
        check(f"experiment {experiment.id}", live_experiments.pop(experiment.id, None), experiment)
    for gone in live_experiments.values():
        check(f"experiment {gone.id}", gone, None)

    live_runs = {r.id: r for r in await store.filter_runs(None, [], RunView.ALL)}
    journal_runs = scratch.filter_runs(None, [], RunView.ALL)
    for run in journal_runs:
        live = live_runs.pop(run.id, None)
        check(f"run {run.id}", live, run)
        if live is not None:
            await _compare_run(store, scratch, run.id, check)
    for extra in live_runs.values():
        check(f"run {extra.id}", extra, None)

    # The params index that filter_runs reads: which runs have each key, None or not.
    keys = sorted({k for run in journal_runs for k in run.params})
    for key in keys:
        for op in (FilterOp.EQ, FilterOp.NE):
            flt = [ParamFilter(key, op, None)]
            live_ids = [r.id for r in await store.filter_runs(None, flt, RunView.ALL)]
            journal_ids = [r.id for r in scratch.filter_runs(None, flt, RunView.ALL)]
            check(f"filter_runs({key} {op.value} None)", live_ids, journal_ids)
    return out


async def _compare_run(
    store: Store, scratch: State, run_id: str, check: Callable[[str, Any, Any], None]
) -> None:
    live_keys = await store.list_metric_keys(run_id)
    journal_keys = scratch.list_metric_keys(run_id)
    check(f"run {run_id}: metric keys", live_keys, journal_keys)
    for key in sorted(set(live_keys) & set(journal_keys)):
        live_points = await store.get_metrics(run_id, key)
        journal_points = scratch.get_metrics(run_id, key)
        index = _first_difference(live_points, journal_points)
        if index is not None:
            check(
                f"run {run_id}: metric {key!r} ({len(live_points)} points live, "
                f"{len(journal_points)} in the journal), first difference at index {index}",
                live_points[index] if index < len(live_points) else None,
                journal_points[index] if index < len(journal_points) else None,
            )
        live_rollups = await store.metric_rollups(run_id, key)
        journal_rollups = {(lv, b): agg for lv, b, agg in scratch.metric_rollups(run_id, key)}
        for level, bucket, agg in live_rollups:
            want = journal_rollups.pop((level, bucket), None)
            if want is None or not same_value(list(agg), list(want)):
                check(f"run {run_id}: metric {key!r} rollup {level}/{bucket}", agg, want)
        for (level, bucket), want in sorted(journal_rollups.items()):
            check(f"run {run_id}: metric {key!r} rollup {level}/{bucket}", None, want)
    check(
        f"run {run_id}: artifacts",
        await store.list_artifacts(run_id),
        scratch.list_artifacts(run_id),
    )
    check(f"run {run_id}: span id", await store.get_span_id(run_id), scratch.get_span_id(run_id))


# -- time travel ---------------------------------------------------------------------------------
class StateView(StateReader):
    """Everything as it stood at one moment of the journal; read-only.

    It answers the tracker's queries from a :class:`~runjournal.projection.State`
    folded in memory by :func:`state_at`. Artifact contents are read from the
    store when asked for (and only for artifacts the view holds).
    """

    position: int
    """The newest journal position whose entry the view holds (0 for none)."""
    time: float | None
    """The wall-clock cut-off (Unix seconds) the view was made for, if one was given."""

    def __init__(
        self,
        state: State,
        *,
        position: int,
        time: float | None,
        artifacts: set[str],
        blob_source: StoreOrPath,
    ) -> None:
        super().__init__(state, lock=None)
        self._artifacts = artifacts
        self._blob_source = blob_source
        self.position = position
        self.time = time

    def __repr__(self) -> str:
        at = f", time={self.time}" if self.time is not None else ""
        return f"StateView(position={self.position}{at})"

    async def get_artifact_data(self, sha256: str) -> bytes:
        """The content of an artifact the view holds; raises :class:`ArtifactNotFound`."""
        if sha256 not in self._artifacts:
            raise ArtifactNotFound(sha256)
        async with _using(self._blob_source, read_only=True) as store:
            return await store.get_artifact_data(sha256)

    async def open_artifact(self, sha256: str) -> AsyncIterator[bytes]:
        """The content of an artifact the view holds, chunk by chunk."""
        if sha256 not in self._artifacts:
            raise ArtifactNotFound(sha256)
        async with _using(self._blob_source, read_only=True) as store:
            async for piece in store.open_artifact(sha256):
                yield piece


async def state_at(
    store_or_path: StoreOrPath,
    *,
    position: int | None = None,
    time: float | datetime.datetime | None = None,
) -> StateView:
    """A read-only view of everything as it stood at a journal position or a wall-clock time.

    With ``position``, the view holds the entries up to and including that
    position (all of them if the journal is shorter). With ``time`` (Unix
    seconds, or an aware ``datetime``), it holds the entries *recorded* at or
    before it: ``recorded_at`` is when the tracker accepted the event, never a
    timestamp the user gave a metric point. Entries are taken in journal order,
    and in a merged journal, whose machines' clocks differ, an entry whose
    premise was recorded after ``time`` (a metric of a run created later, say)
    is left out. With neither, the view holds the whole journal.

    Time granularity: the writer stores the metric points of one run and key
    that it commits together (up to about one flush interval, ~100 ms, of
    logging) as one ``metrics.logged`` entry with one ``recorded_at`` for the
    whole batch, no earlier than the acceptance of its newest point. A cut-off
    in time therefore takes or leaves whole batches: a point logged just before
    ``time`` is missing if its batch's newest point came after. Every other
    event is recorded at the moment of its call.

    The view is built by folding the journal in memory, so it costs a read of
    the journal up to the cut-off.

    Raises:
        ValueError: both ``position`` and ``time`` were given, or a negative position.
        FileNotFoundError: ``store_or_path`` is a path where no database exists.
    """
    if position is not None and time is not None:
        raise ValueError("give state_at a position or a time, not both")
    moment = time.timestamp() if isinstance(time, datetime.datetime) else time
    cutoff = Cutoff(position=position, time=None if moment is None else float(moment))
    state = State()
    artifacts: set[str] = set()
    last = 0
    async with _using(store_or_path, read_only=True) as store:
        after = 0
        while not cutoff.passed(after):
            limit = _PAGE if cutoff.position is None else min(_PAGE, cutoff.position - after)
            page = await store.read_journal(after, limit)
            if not page or (cutoff.position is not None and page[0].position > cutoff.position):
                break
            for entry in page:
                if cutoff.position is not None and entry.position > cutoff.position:
                    break  # past a gap that a purge left
                after = entry.position
                if not cutoff.keeps(entry.position, entry.recorded_at):
                    continue
                try:
                    state.fold(entry.event)
                except Rejected as exc:
                    if cutoff.time is not None:
                        continue  # its premise was recorded after the cut-off
                    raise StoreError(
                        f"journal entry {entry.position} no longer applies: {exc}"
                    ) from exc
                last = entry.position
                if isinstance(entry.event, ArtifactLogged):
                    artifacts.add(entry.event.sha256)
    if cutoff.time is None:
        last = after
    blob_source: StoreOrPath = store
    if isinstance(store_or_path, str | os.PathLike):
        blob_source = os.fspath(store_or_path)
    return StateView(
        state, position=last, time=cutoff.time, artifacts=artifacts, blob_source=blob_source
    )


# -- reading the journal -------------------------------------------------------------------------
async def head(store_or_path: StoreOrPath) -> int:
    """The position of the newest journal entry (0 for an empty journal).

    Raises:
        FileNotFoundError: ``store_or_path`` is a path where no database exists.
    """
    async with _using(store_or_path) as store:
        return await store.head()


def entries(
    store_or_path: StoreOrPath, *, after: int = 0, limit: int | None = None
) -> AsyncGenerator[JournalEntry, None]:
    """Yield the committed journal entries after position ``after``, in order, at most ``limit``.

    Each :class:`~runjournal.stores.base.JournalEntry` carries its ``position``
    (what ``Cutoff(position=...)`` and ``state_at(position=...)`` take), its
    ``recorded_at`` time, its source and the decoded event. The journal is read
    page by page, so a long one never sits in memory. Close the generator
    (``contextlib.aclosing``) when stopping early, to release a database opened
    from a path at once.

    Raises:
        ValueError: ``after`` or ``limit`` is negative.
        FileNotFoundError: ``store_or_path`` is a path where no database exists.
    """
    cursor = _check_position(after, "after")
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError(f"limit must be an int >= 0 or None, got {limit!r}")
    return _entries(store_or_path, cursor, limit)


async def _entries(
    store_or_path: StoreOrPath, cursor: int, limit: int | None
) -> AsyncGenerator[JournalEntry, None]:
    left = limit
    async with _using(store_or_path) as store:
        while left is None or left > 0:
            page = await store.read_journal(cursor, _PAGE if left is None else min(_PAGE, left))
            if not page:
                return
            for entry in page:
                yield entry
            cursor = page[-1].position
            if left is not None:
                left -= len(page)


# -- follow --------------------------------------------------------------------------------------
def follow(
    store_or_path: StoreOrPath, *, after: int = 0, poll_interval: float = 0.1
) -> AsyncGenerator[tuple[int, Event], None]:
    """Yield ``(position, event)`` for every journal entry after ``after``, as it is committed.

    It first catches up with what the journal holds, then polls every
    ``poll_interval`` seconds, so it sees what any process commits within about
    that time. A batch of metric points is one entry (a ``MetricChunkLogged``
    event; ``MetricsLogged`` in journals written before chunks). The iteration never ends by itself: break out of it, and close it
    (``async with contextlib.aclosing(follow(...)) as entries:``) to release a
    database opened from a path at once.

    Raises:
        ValueError: ``poll_interval`` is not positive, or ``after`` is negative.
        FileNotFoundError: ``store_or_path`` is a path where no database exists.
    """
    cursor = _check_position(after, "after")
    if not poll_interval > 0:
        raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
    return _follow(store_or_path, cursor, poll_interval)


async def _follow(
    store_or_path: StoreOrPath, cursor: int, poll_interval: float
) -> AsyncGenerator[tuple[int, Event], None]:
    async with _using(store_or_path, read_only=True) as store:
        while True:
            page = await store.read_journal(cursor, _PAGE)
            if not page:
                await anyio.sleep(poll_interval)
                continue
            for entry in page:
                cursor = entry.position
                yield entry.position, entry.event
