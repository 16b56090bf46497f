"""Codec for runjournal's portable event-log file.

This module moves opaque record payloads (``bytes``) in and out of a single
file. It knows nothing about events, SQLite or asyncio: callers encode their
events into payloads and hand them to :class:`LogWriter`, and get them back,
in order, from :func:`read_log`.

File layout
-----------
All integers are unsigned big-endian.

``magic`` (8 bytes)
    ``b"RJLOG\\x00\\x01\\n"``. Byte 6 is the container version.

``header`` (one frame, see below)
    The payload is a msgpack map (encoded with ``msgspec.msgpack``) with
    string keys. It always holds ``format`` (``"runjournal-eventlog"``),
    ``format_version`` (int, ``1`` or ``2``, see below) and ``runjournal_version``
    (str, the version of the runjournal that wrote the file), plus any extra
    string-keyed metadata the writer was given.

``records`` (zero or more frames)
    One frame per record, in write order.

``trailer`` (44 bytes)
    ``0xFFFFFFFF`` (4 bytes, the sentinel that no frame length can take), the
    record count (8 bytes), then the SHA-256 (32 bytes) of every byte of the
    file before the sentinel: magic, header frame and all record frames.
    Nothing may follow the trailer.

A frame is the payload length (4 bytes, at most ``0xFFFFFFFE``), the CRC-32
(``zlib.crc32``, 4 bytes) of the payload, then the payload bytes.

Format versions
---------------
The container is the same in both versions; ``format_version`` says which
record kinds the caller may have put in it, so that a reader that does not
know a kind refuses the whole file with a clear message instead of failing on
its first unknown record. ``2`` added ``runjournal.journal``'s blocks of
entries (one record for many journal entries, naming each source once). A
writer picks the version (``LogWriter(format_version=...)``); every version in
:data:`READABLE_VERSIONS` is read.

Validation
----------
:func:`read_log` checks the whole file before it returns anything, so an
import either gets every record or nothing. The parser walks the frames from
the start and finds the trailer only at a frame boundary; the trailer must end
exactly at the end of the file and its digest must match everything before it.
Hence truncation at any offset, trailing bytes, and any change to the bytes
before the trailer (short of a SHA-256 collision) are caught, as are a bad
magic, an unsupported ``format_version``, a bad CRC and a record count that
does not match. A length field larger than the bytes that remain is rejected
by comparison, without allocating anything for it.

Writing is atomic: :class:`LogWriter` writes to a temporary file in the
destination's directory, and only :meth:`LogWriter.close` fsyncs it and
renames it onto the destination. A crash or an exception never leaves a
partial file under the destination name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import os
import secrets
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

import msgspec

from runjournal.errors import CorruptLogFile

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_PAYLOAD_SIZE",
    "READABLE_VERSIONS",
    "LogContents",
    "LogWriter",
    "read_log",
    "read_payload",
    "scan_log",
]

MAGIC: Final = b"RJLOG\x00\x01\n"
"""The 8 bytes every event-log file starts with."""

FORMAT: Final = "runjournal-eventlog"
"""The value of the ``format`` key in the header."""

FORMAT_VERSION: Final = 2
"""The newest ``format_version``, and the one :class:`LogWriter` writes unless told otherwise.

The container has not changed since 1; the record kinds inside it are the
caller's (``runjournal.journal`` added chunked artifact records, and still
reads the whole-content records of older files; format 2 added its blocks of
entries)."""

READABLE_VERSIONS: Final = (1, 2)
"""Every ``format_version`` that :func:`read_log` and :func:`scan_log` accept."""

_SENTINEL: Final = 0xFFFFFFFF

MAX_PAYLOAD_SIZE: Final = _SENTINEL - 1
"""The largest payload, in bytes, that one record can hold."""

_RESERVED_KEYS: Final = frozenset({"format", "format_version", "runjournal_version"})

_FRAME: Final = struct.Struct(">II")  # payload length, CRC-32 of the payload
_U32: Final = struct.Struct(">I")
_TRAILER_TAIL: Final = struct.Struct(">Q32s")  # record count, SHA-256

# LogWriter collects small frames in memory and hands them to the file (and the
# running hash) in chunks of about this size; payloads at least _DIRECT bytes
# long skip the copy and go to the file as they are.
_CHUNK: Final = 1 << 20
_DIRECT: Final = 1 << 16


@functools.cache
def _runjournal_version() -> str:
    try:
        return importlib.metadata.version("runjournal")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable, where the platform allows it."""
    if os.name == "nt":  # pragma: no cover - directories cannot be opened there
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LogWriter:
    """Write an event-log file atomically.

    Records go to a temporary file (``<path>.tmp-<random>``) in the
    destination's directory. :meth:`close` writes the trailer, fsyncs the file
    and renames it onto ``path``, replacing any file already there. Used as a
    context manager, the writer closes on a normal exit and calls
    :meth:`abort` if the block raises, so the destination is then untouched.

    A writer that is neither closed nor aborted leaves its temporary file
    behind, so always use it in a ``with`` block or call one of the two.

    Args:
        path: the destination file.
        metadata: extra string keys and values for the header. The keys
            ``format``, ``format_version`` and ``runjournal_version`` are
            reserved.
        format_version: the header's ``format_version``, one of
            :data:`READABLE_VERSIONS`: the oldest whose record kinds cover
            what will be written keeps the file readable by older readers.

    Raises:
        TypeError: a metadata key or value is not a ``str``.
        ValueError: a metadata key is reserved, or ``format_version`` is unknown.
        OSError: the temporary file cannot be created.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        metadata: Mapping[str, str] | None = None,
        format_version: int = FORMAT_VERSION,
    ) -> None:
        if type(format_version) is not int or format_version not in READABLE_VERSIONS:
            raise ValueError(
                f"format_version must be one of {READABLE_VERSIONS}, got {format_version!r}"
            )
        header: dict[str, object] = {
            "format": FORMAT,
            "format_version": format_version,
            "runjournal_version": _runjournal_version(),
        }
        for key, value in (metadata or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"metadata keys and values must be str, got {key!r}: {value!r}")
            if key in _RESERVED_KEYS:
                raise ValueError(f"metadata key {key!r} is reserved")
            header[key] = value
        header_payload = msgspec.msgpack.encode(header)

        self._path = os.fspath(path)
        self._tmp_path = f"{self._path}.tmp-{secrets.token_hex(8)}"
        self._file = open(self._tmp_path, "xb")  # noqa: SIM115 - closed by close()/abort()
        self._closed = False
        self._count = 0
        self._sha = hashlib.sha256()
        self._buf = bytearray(MAGIC)
        self._buf += _FRAME.pack(len(header_payload), zlib.crc32(header_payload))
        self._buf += header_payload

    @property
    def path(self) -> str:
        """The destination path."""
        return self._path

    @property
    def record_count(self) -> int:
        """How many records have been written so far."""
        return self._count

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` or :meth:`abort` has been called."""
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _flush_buffer(self) -> None:
        buf = self._buf
        if buf:
            self._file.write(buf)
            self._sha.update(buf)
            buf.clear()

    def write(self, payload: bytes) -> None:
        """Append one record.

        Args:
            payload: the record's bytes (any bytes-like object is accepted
                and copied as its raw bytes); at most :data:`MAX_PAYLOAD_SIZE`
                bytes.

        Raises:
            ValueError: the writer is closed, or the payload is too large.
            TypeError: the payload is not bytes-like.
        """
        if self._closed:
            raise ValueError(f"LogWriter for {self._path!r} is closed")
        if type(payload) is not bytes:
            payload = bytes(memoryview(payload))
        size = len(payload)
        if size > MAX_PAYLOAD_SIZE:
            raise ValueError(f"record payload of {size} bytes exceeds {MAX_PAYLOAD_SIZE}")
        buf = self._buf
        buf += _FRAME.pack(size, zlib.crc32(payload))
        if size >= _DIRECT:
            self._flush_buffer()
            self._file.write(payload)
            self._sha.update(payload)
        else:
            buf += payload
            if len(buf) >= _CHUNK:
                self._flush_buffer()
        self._count += 1

    def write_many(self, payloads: Iterable[bytes]) -> None:
        """Append one record per payload, in order; see :meth:`write`.

        If a payload is rejected, the ones before it stay written.
        """
        if self._closed:
            raise ValueError(f"LogWriter for {self._path!r} is closed")
        # The loop of write(), with the lookups hoisted, for small payloads.
        buf = self._buf
        pack = _FRAME.pack
        crc32 = zlib.crc32
        count = 0
        try:
            for item in payloads:
                payload = item if type(item) is bytes else bytes(memoryview(item))
                size = len(payload)
                if size >= _DIRECT:
                    self.write(payload)
                    continue
                buf += pack(size, crc32(payload))
                buf += payload
                count += 1
                if len(buf) >= _CHUNK:
                    self._flush_buffer()
        finally:
            self._count += count

    def close(self) -> None:
        """Write the trailer, fsync, and rename the file onto the destination.

        Closing a closed writer does nothing. If closing fails, the temporary
        file is removed, the destination is untouched and the error is raised.
        """
        if self._closed:
            return
        try:
            self._flush_buffer()
            trailer = _U32.pack(_SENTINEL) + _TRAILER_TAIL.pack(self._count, self._sha.digest())
            self._file.write(trailer)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp_path, self._path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        with contextlib.suppress(OSError):
            _fsync_directory(os.path.dirname(os.path.abspath(self._path)))

    def abort(self) -> None:
        """Discard everything: close and remove the temporary file.

        The destination is left as it was. Aborting a closed writer does
        nothing.
        """
        if self._closed:
            return
        self._closed = True
        self._buf.clear()
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp_path)


@dataclass(frozen=True, slots=True)
class LogContents:
    """A validated event-log file.

    Attributes:
        header: the decoded header map, including ``format``,
            ``format_version`` and ``runjournal_version``.
        records: the record payloads, in the order they were written.
    """

    header: dict[str, object]
    records: list[bytes]


def _check_header(path: str, decoded: Any) -> dict[str, object]:
    if not isinstance(decoded, dict):
        raise CorruptLogFile(path, f"header is a {type(decoded).__name__}, not a map")
    header: dict[str, object] = {}
    for key, value in decoded.items():
        if not isinstance(key, str):
            raise CorruptLogFile(path, f"header has a non-string key {key!r}")
        header[key] = value
    if header.get("format") != FORMAT:
        raise CorruptLogFile(path, f"header format is {header.get('format')!r}, not {FORMAT!r}")
    version = header.get("format_version")
    if type(version) is not int:
        raise CorruptLogFile(path, f"header format_version {version!r} is not an integer")
    if version not in READABLE_VERSIONS:
        readable = " and ".join(map(str, READABLE_VERSIONS))
        raise CorruptLogFile(
            path,
            f"unsupported format_version {version} (this runjournal reads {readable}; "
            "a newer runjournal wrote it: upgrade runjournal to read it)",
        )
    if not isinstance(header.get("runjournal_version"), str):
        raise CorruptLogFile(path, "header runjournal_version is missing or not a string")
    return header


def read_log(path: str | os.PathLike[str]) -> LogContents:
    """Read and validate a whole event-log file.

    Nothing is returned unless the entire file is valid. The file is read
    into memory at once, so the peak memory use is about twice its size.

    Args:
        path: the file to read.

    Returns:
        The header and every record payload.

    Raises:
        CorruptLogFile: the file is not a valid event-log file (truncated,
            damaged, extended, of another format or of an unsupported
            version). The message names the file and, where one applies, the
            0-based index of the record at fault.
        FileNotFoundError: the file does not exist.
        OSError: the file cannot be read.
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        data = f.read()
    end = len(data)

    _check_magic(name, data[: len(MAGIC)], end)
    pos = len(MAGIC)

    # Header frame.
    if end - pos < _FRAME.size:
        raise CorruptLogFile(name, "truncated inside the header frame")
    size, crc = _FRAME.unpack_from(data, pos)
    if size == _SENTINEL:
        raise CorruptLogFile(name, "header frame is missing")
    pos += _FRAME.size
    if size > end - pos:
        raise CorruptLogFile(
            name, f"header length {size} exceeds the {end - pos} bytes left (truncated?)"
        )
    header_payload = data[pos : pos + size]
    pos += size
    if zlib.crc32(header_payload) != crc:
        raise CorruptLogFile(name, "header CRC mismatch")
    try:
        decoded = msgspec.msgpack.decode(header_payload)
    except msgspec.DecodeError as e:
        raise CorruptLogFile(name, f"header is not valid msgpack: {e}") from None
    header = _check_header(name, decoded)

    # Record frames, up to the trailer's sentinel.
    records: list[bytes] = []
    append = records.append
    unpack_frame = _FRAME.unpack_from
    crc32 = zlib.crc32
    frame_size = _FRAME.size
    index = 0
    while True:
        left = end - pos
        if left >= frame_size:
            size, crc = unpack_frame(data, pos)
        elif left >= _U32.size and _U32.unpack_from(data, pos)[0] == _SENTINEL:
            break  # the trailer; its own length check reports the truncation
        else:
            if left == 0:
                reason = "truncated: the file ends without a trailer"
            else:
                reason = "truncated inside a frame header or the trailer"
            raise CorruptLogFile(name, reason, record=index)
        if size == _SENTINEL:
            break
        start = pos + frame_size
        stop = start + size
        if stop > end:
            raise CorruptLogFile(
                name,
                f"record length {size} exceeds the {end - start} bytes left (truncated?)",
                record=index,
            )
        payload = data[start:stop]
        if crc32(payload) != crc:
            raise CorruptLogFile(name, "record CRC mismatch", record=index)
        append(payload)
        pos = stop
        index += 1

    # Trailer.
    sentinel_pos = pos
    pos += _U32.size
    if end - pos < _TRAILER_TAIL.size:
        raise CorruptLogFile(name, "truncated inside the trailer")
    count, digest = _TRAILER_TAIL.unpack_from(data, pos)
    pos += _TRAILER_TAIL.size
    with memoryview(data) as view, view[:sentinel_pos] as covered:
        actual = hashlib.sha256(covered).digest()
    if actual != digest:
        raise CorruptLogFile(name, "SHA-256 mismatch: the file was altered or damaged")
    if count != len(records):
        raise CorruptLogFile(
            name, f"trailer says {count} records but the file holds {len(records)}"
        )
    if pos != end:
        raise CorruptLogFile(name, f"{end - pos} unexpected bytes after the trailer")
    return LogContents(header=header, records=records)


def scan_log(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes]]:
    """Validate an event-log file as it is read, yielding ``(offset, payload)`` per record.

    Unlike :func:`read_log`, memory holds one record at a time, whatever the file's
    size; ``offset`` is where the payload starts, for :func:`read_payload`. The
    file is valid only if the iteration ends without raising: the trailer (count
    and SHA-256 of everything before it) is checked at the end, so a caller must
    not act on the records before then.

    Raises:
        CorruptLogFile: as :func:`read_log`, but possibly after some records were yielded.
    """
    name = os.fspath(path)
    digest = hashlib.sha256()
    with open(name, "rb") as f:
        end = os.fstat(f.fileno()).st_size

        def take(n: int) -> bytes:
            data = f.read(n)
            digest.update(data)
            return data

        _check_magic(name, take(len(MAGIC)), end)
        pos = len(MAGIC)
        if end - pos < _FRAME.size:
            raise CorruptLogFile(name, "truncated inside the header frame")
        size, crc = _FRAME.unpack(take(_FRAME.size))
        if size == _SENTINEL:
            raise CorruptLogFile(name, "header frame is missing")
        pos += _FRAME.size
        if size > end - pos:
            raise CorruptLogFile(
                name, f"header length {size} exceeds the {end - pos} bytes left (truncated?)"
            )
        header_payload = take(size)
        pos += size
        if zlib.crc32(header_payload) != crc:
            raise CorruptLogFile(name, "header CRC mismatch")
        try:
            decoded = msgspec.msgpack.decode(header_payload)
        except msgspec.DecodeError as e:
            raise CorruptLogFile(name, f"header is not valid msgpack: {e}") from None
        _check_header(name, decoded)

        index = 0
        while True:
            left = end - pos
            if left >= _FRAME.size:
                head = f.read(_FRAME.size)
                size, crc = _FRAME.unpack(head)
                if size == _SENTINEL:
                    f.seek(pos)
                    break
                digest.update(head)
            elif left >= _U32.size and _U32.unpack(f.read(_U32.size))[0] == _SENTINEL:
                f.seek(pos)
                break
            else:
                if left == 0:
                    reason = "truncated: the file ends without a trailer"
                else:
                    reason = "truncated inside a frame header or the trailer"
                raise CorruptLogFile(name, reason, record=index)
            start = pos + _FRAME.size
            if start + size > end:
                raise CorruptLogFile(
                    name,
                    f"record length {size} exceeds the {end - start} bytes left (truncated?)",
                    record=index,
                )
            payload = take(size)
            if zlib.crc32(payload) != crc:
                raise CorruptLogFile(name, "record CRC mismatch", record=index)
            yield start, payload
            pos = start + size
            index += 1

        f.read(_U32.size)
        pos += _U32.size
        if end - pos < _TRAILER_TAIL.size:
            raise CorruptLogFile(name, "truncated inside the trailer")
        count, expected = _TRAILER_TAIL.unpack(f.read(_TRAILER_TAIL.size))
        pos += _TRAILER_TAIL.size
    if digest.digest() != expected:
        raise CorruptLogFile(name, "SHA-256 mismatch: the file was altered or damaged")
    if count != index:
        raise CorruptLogFile(name, f"trailer says {count} records but the file holds {index}")
    if pos != end:
        raise CorruptLogFile(name, f"{end - pos} unexpected bytes after the trailer")


def read_payload(path: str | os.PathLike[str], offset: int, size: int) -> bytes:
    """The ``size`` bytes of one record's payload at ``offset`` (see :func:`scan_log`)."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    if len(data) != size:
        raise CorruptLogFile(os.fspath(path), "the file changed since it was validated")
    return data


def _check_magic(name: str, magic: bytes, end: int) -> None:
    """Raise :class:`CorruptLogFile` unless ``magic``, the file's first bytes, is :data:`MAGIC`."""
    if magic != MAGIC:
        if MAGIC.startswith(magic):
            raise CorruptLogFile(name, f"truncated: file is only {end} bytes long")
        if magic[:6] == MAGIC[:6] and magic[7:] == MAGIC[7:]:
            raise CorruptLogFile(name, f"unsupported container version {magic[6]}")
        raise CorruptLogFile(name, "bad magic: not a runjournal event-log file")
