"""Tests of the event-log file codec (runjournal.eventlog)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import random
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runjournal import eventlog
from runjournal.errors import CorruptLogFile
from runjournal.eventlog import (
    FORMAT_VERSION,
    READABLE_VERSIONS,
    LogContents,
    LogWriter,
    read_log,
    scan_log,
)

# The format constants as the spec states them, kept apart from the module's own.
SPEC_MAGIC = b"RJLOG\x00\x01\n"
SPEC_SENTINEL = b"\xff\xff\xff\xff"

SMALL_RECORDS = [b"", b"a", b"hello world " * 3, bytes(range(256)), b"\x00" * 5]


# --- helpers ------------------------------------------------------------------------------


def frame(payload: bytes) -> bytes:
    """A frame as the spec describes it, built independently of the module."""
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


def build(
    header: object,
    records: list[bytes],
    *,
    count: int | None = None,
    magic: bytes = SPEC_MAGIC,
) -> bytes:
    """The bytes of a log file, built by hand from the spec."""
    body = magic + frame(msgspec.msgpack.encode(header)) + b"".join(frame(r) for r in records)
    n = len(records) if count is None else count
    return body + SPEC_SENTINEL + n.to_bytes(8, "big") + hashlib.sha256(body).digest()


def good_header(**extra: object) -> dict[str, object]:
    return {
        "format": "runjournal-eventlog",
        "format_version": 1,
        "runjournal_version": "1.2.3",
        **extra,
    }


def write_log(path: Path, records: list[bytes], metadata: dict[str, str] | None = None) -> bytes:
    with LogWriter(path, metadata=metadata) as w:
        for r in records:
            w.write(r)
    return path.read_bytes()


def assert_corrupt(
    path: Path, *, record: int | None = None, match: str | None = None
) -> CorruptLogFile:
    with pytest.raises(CorruptLogFile, match=match) as info:
        read_log(path)
    err = info.value
    assert err.path == str(path)
    assert repr(str(path)) in str(err)
    assert err.record == record
    if record is not None:
        assert f"record {record}" in str(err)
    return err


@pytest.fixture
def small_log(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "small.rjlog"
    data = write_log(path, SMALL_RECORDS, {"source": "test"})
    assert read_log(path).records == SMALL_RECORDS
    return path, data


def record_spans(data: bytes, n_records: int) -> Iterator[tuple[int, int]]:
    """(start, end) byte offsets of each record frame in a valid file."""
    pos = len(SPEC_MAGIC)
    (header_len,) = struct.unpack_from(">I", data, pos)
    pos += 8 + header_len
    for _ in range(n_records):
        (size,) = struct.unpack_from(">I", data, pos)
        yield pos, pos + 8 + size
        pos += 8 + size


# --- round trips --------------------------------------------------------------------------


def test_empty_log_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "empty.rjlog"
    data = write_log(path, [])
    contents = read_log(path)
    assert contents.records == []
    assert contents.header["format"] == "runjournal-eventlog"
    assert contents.header["format_version"] == FORMAT_VERSION == 2
    assert isinstance(contents.header["runjournal_version"], str)
    assert data.startswith(SPEC_MAGIC)
    assert data[-44:-40] == SPEC_SENTINEL
    assert data[-40:-32] == (0).to_bytes(8, "big")


def test_writer_output_matches_the_spec_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "spec.rjlog"
    data = write_log(path, SMALL_RECORDS, {"k": "v"})
    header = read_log(path).header
    assert data == build(header, SMALL_RECORDS)
    assert list(header) == ["format", "format_version", "runjournal_version", "k"]


def test_many_records_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "many.rjlog"
    rng = random.Random(1234)
    small = [rng.randbytes(rng.randrange(0, 64)) for _ in range(20_000)]
    large = [b"", rng.randbytes(70_000), b"", rng.randbytes(3 << 20), b"z"]
    records = small[:10_000] + large + small[10_000:]
    with LogWriter(path) as w:
        for r in records[:5000]:
            w.write(r)
        w.write_many(records[5000:])
        assert w.record_count == len(records)
    contents = read_log(path)
    assert len(contents.records) == len(records)
    assert contents.records == records
    assert all(type(r) is bytes for r in contents.records)


def test_bytes_like_payloads_are_stored_as_their_bytes(tmp_path: Path) -> None:
    path = tmp_path / "like.rjlog"
    ints = memoryview(bytearray(struct.pack("<3i", 1, -2, 3))).cast("i")
    with LogWriter(path) as w:
        w.write(bytearray(b"abc"))  # type: ignore[arg-type]
        w.write(ints)  # type: ignore[arg-type]
        w.write_many([memoryview(b"xyz"), bytearray(b"")])  # type: ignore[list-item]
    assert read_log(path).records == [b"abc", struct.pack("<3i", 1, -2, 3), b"xyz", b""]


def test_non_bytes_payload_is_rejected_and_writer_stays_usable(tmp_path: Path) -> None:
    path = tmp_path / "types.rjlog"
    with LogWriter(path) as w:
        w.write(b"one")
        with pytest.raises(TypeError):
            w.write("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            w.write_many([b"two", 3])  # type: ignore[list-item]
        w.write(b"three")
        assert w.record_count == 3
    assert read_log(path).records == [b"one", b"two", b"three"]


def test_metadata_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "meta.rjlog"
    metadata = {"source": "db.sqlite", "exported_at": "2024-01-01T00:00:00Z", "ünï": "çødé"}
    write_log(path, [b"x"], metadata)
    header = read_log(path).header
    for key, value in metadata.items():
        assert header[key] == value
    assert header["format"] == "runjournal-eventlog"
    assert header["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize("key", ["format", "format_version", "runjournal_version"])
def test_reserved_metadata_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        LogWriter(tmp_path / "x.rjlog", metadata={key: "2"})
    assert list(tmp_path.iterdir()) == []


def test_non_string_metadata_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        LogWriter(tmp_path / "x.rjlog", metadata={"n": 1})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


def test_version_falls_back_when_not_installed(tmp_path: Path) -> None:
    path = tmp_path / "v.rjlog"
    write_log(path, [])
    try:
        expected = importlib.metadata.version("runjournal")
    except importlib.metadata.PackageNotFoundError:
        expected = "0+unknown"
    assert read_log(path).header["runjournal_version"] == expected


def test_contents_is_frozen(small_log: tuple[Path, bytes]) -> None:
    contents = read_log(small_log[0])
    assert isinstance(contents, LogContents)
    with pytest.raises(AttributeError):
        contents.records = []  # type: ignore[misc]


# --- corruption ---------------------------------------------------------------------------


def test_truncation_at_every_length_is_detected(
    tmp_path: Path, small_log: tuple[Path, bytes]
) -> None:
    _, data = small_log
    spans = list(record_spans(data, len(SMALL_RECORDS)))
    first_record = spans[0][0]
    trailer = len(data) - 44
    cut = tmp_path / "cut.rjlog"
    for length in range(len(data)):
        cut.write_bytes(data[:length])
        if length <= first_record:
            expected: int | None = None if length < first_record else 0
        elif length >= trailer:
            # Until the 4-byte sentinel is whole, the cut may be in the next frame's header.
            expected = None if length >= trailer + 4 else len(SMALL_RECORDS)
        else:
            expected = next(i for i, (s, e) in enumerate(spans) if s < length < e or length == s)
        try:
            assert_corrupt(cut, record=expected)
        except BaseException as e:
            raise AssertionError(f"truncation to {length} of {len(data)} bytes") from e


def test_truncation_at_a_record_boundary_reports_the_missing_trailer(
    tmp_path: Path, small_log: tuple[Path, bytes]
) -> None:
    _, data = small_log
    cut = tmp_path / "cut.rjlog"
    cut.write_bytes(data[:-44])
    assert_corrupt(cut, record=len(SMALL_RECORDS), match="without a trailer")
    spans = list(record_spans(data, len(SMALL_RECORDS)))
    cut.write_bytes(data[: spans[2][0]])
    assert_corrupt(cut, record=2, match="without a trailer")


@pytest.mark.parametrize("mask", [0xFF, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80])
def test_flipping_any_byte_or_bit_is_detected(
    tmp_path: Path, small_log: tuple[Path, bytes], mask: int
) -> None:
    _, data = small_log
    bad = tmp_path / "bad.rjlog"
    for offset in range(len(data)):
        damaged = bytearray(data)
        damaged[offset] ^= mask
        bad.write_bytes(damaged)
        with pytest.raises(CorruptLogFile) as info:
            read_log(bad)
        assert str(bad) in str(info.value), offset


def test_bad_record_crc_names_the_record(tmp_path: Path) -> None:
    path = tmp_path / "crc.rjlog"
    data = bytearray(write_log(path, [b"r0", b"r1", b"r2", b"r3"]))
    _, end = list(record_spans(bytes(data), 4))[2]
    data[end - 1] ^= 0x01  # last payload byte of record 2
    path.write_bytes(data)
    err = assert_corrupt(path, record=2, match="CRC")
    assert "record 2" in str(err)


def test_damage_that_keeps_crcs_valid_is_caught_by_the_digest(tmp_path: Path) -> None:
    path = tmp_path / "swap.rjlog"
    good = build(good_header(), [b"aa", b"bb"])
    # Replace record 1 by a different, well-framed record of the same size.
    path.write_bytes(good.replace(frame(b"bb"), frame(b"cc")))
    assert_corrupt(path, match="SHA-256")


def test_record_count_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "count.rjlog"
    path.write_bytes(build(good_header(), [b"a", b"b"], count=3))
    assert_corrupt(path, match="trailer says 3 records but the file holds 2")


@pytest.mark.parametrize("garbage", [b"\x00", b"junk" * 100, SPEC_SENTINEL + bytes(40)])
def test_trailing_garbage_is_detected(
    tmp_path: Path, small_log: tuple[Path, bytes], garbage: bytes
) -> None:
    path, data = small_log
    path.write_bytes(data + garbage)
    assert_corrupt(path, match=f"{len(garbage)} unexpected bytes after the trailer")


def test_two_concatenated_logs_are_refused(tmp_path: Path, small_log: tuple[Path, bytes]) -> None:
    path, data = small_log
    path.write_bytes(data + data)
    assert_corrupt(path, match="after the trailer")


@pytest.mark.parametrize(
    "magic",
    [b"RJLOG\x00\x01\r", b"rjlog\x00\x01\n", b"SQLite format 3\x00", b"\x00" * 8, b"PK\x03\x04"],
)
def test_wrong_magic(tmp_path: Path, magic: bytes) -> None:
    path = tmp_path / "magic.rjlog"
    path.write_bytes(build(good_header(), [b"x"], magic=magic))
    assert_corrupt(path, match="bad magic")


def test_future_container_version_in_magic(tmp_path: Path) -> None:
    path = tmp_path / "magic2.rjlog"
    path.write_bytes(build(good_header(), [b"x"], magic=b"RJLOG\x00\x02\n"))
    assert_corrupt(path, match="unsupported container version 2")


@pytest.mark.parametrize("version", [0, 3, 99])
def test_unsupported_format_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / "v.rjlog"
    path.write_bytes(build(good_header(format_version=version), [b"x"]))
    err = assert_corrupt(path, match=f"unsupported format_version {version}")
    assert "reads 1 and 2" in str(err)
    assert "upgrade runjournal" in str(err)


@pytest.mark.parametrize("version", READABLE_VERSIONS)
def test_every_readable_format_version_is_read_whole_and_streamed(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "v.rjlog"
    path.write_bytes(build(good_header(format_version=version), [b"x", b"yz"]))
    assert read_log(path).records == [b"x", b"yz"]
    assert [payload for _, payload in scan_log(path)] == [b"x", b"yz"]


@pytest.mark.parametrize("version", READABLE_VERSIONS)
def test_the_writer_writes_the_format_version_it_is_given(tmp_path: Path, version: int) -> None:
    path = tmp_path / "v.rjlog"
    with LogWriter(path, format_version=version) as w:
        w.write(b"x")
    header = read_log(path).header
    assert header["format_version"] == version
    assert path.read_bytes() == build(header, [b"x"])


@pytest.mark.parametrize("version", [0, 3, "2", True])
def test_the_writer_refuses_a_format_version_it_cannot_write(
    tmp_path: Path, version: object
) -> None:
    with pytest.raises(ValueError, match="format_version must be one of"):
        LogWriter(tmp_path / "x.rjlog", format_version=version)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_hand_built_valid_file_is_accepted(tmp_path: Path) -> None:
    """The control for the header tests below: only the header differs there."""
    path = tmp_path / "ok.rjlog"
    path.write_bytes(build(good_header(extra=[1, 2]), [b"x", b""]))
    contents = read_log(path)
    assert contents.records == [b"x", b""]
    assert contents.header == good_header(extra=[1, 2])


INT_KEYED_HEADER: dict[object, object] = {1: "x"}
INT_KEYED_HEADER.update(good_header())


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ([1, 2, 3], "not a map"),
        ("runjournal-eventlog", "not a map"),
        (INT_KEYED_HEADER, "non-string key"),
        (good_header(format="other-format"), "format is 'other-format'"),
        ({k: v for k, v in good_header().items() if k != "format"}, "format is None"),
        ({k: v for k, v in good_header().items() if k != "format_version"}, "format_version"),
        (good_header(format_version="1"), "not an integer"),
        (good_header(format_version=True), "not an integer"),
        (good_header(runjournal_version=1), "runjournal_version"),
    ],
)
def test_bad_header(tmp_path: Path, header: object, match: str) -> None:
    path = tmp_path / "h.rjlog"
    path.write_bytes(build(header, [b"x"]))
    assert_corrupt(path, match=match)


def test_header_that_is_not_msgpack(tmp_path: Path) -> None:
    path = tmp_path / "h.rjlog"
    body = SPEC_MAGIC + frame(b"\xc1")  # 0xc1 is never used in msgpack
    path.write_bytes(body + SPEC_SENTINEL + bytes(8) + hashlib.sha256(body).digest())
    assert_corrupt(path, match="not valid msgpack")


def test_missing_header_frame(tmp_path: Path) -> None:
    path = tmp_path / "h.rjlog"
    path.write_bytes(SPEC_MAGIC + SPEC_SENTINEL + bytes(8) + hashlib.sha256(SPEC_MAGIC).digest())
    assert_corrupt(path, match="header frame is missing")


@pytest.mark.parametrize("length", [0xFFFFFFFE, 0x80000000, 0x10000000])
@pytest.mark.parametrize("where", ["header", "record"])
def test_huge_length_field_does_not_allocate(tmp_path: Path, length: int, where: str) -> None:
    path = tmp_path / "huge.rjlog"
    prefix = SPEC_MAGIC
    if where == "record":
        prefix += frame(msgspec.msgpack.encode(good_header())) + frame(b"fine")
    path.write_bytes(prefix + struct.pack(">II", length, 0) + b"tiny" * 16)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptLogFile, match=f"length {length} exceeds") as info:
            read_log(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.record == (1 if where == "record" else None)
    assert peak < 1 << 20


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_log(tmp_path / "nope.rjlog")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(st.binary(max_size=40), min_size=1, max_size=8),
    data=st.data(),
)
def test_random_truncation_or_extension_is_detected(
    tmp_path: Path, records: list[bytes], data: st.DataObject
) -> None:
    path = tmp_path / "prop-cut.rjlog"
    good = write_log(path, records)
    length = data.draw(st.integers(0, 2 * len(good)).filter(lambda n: n != len(good)))
    path.write_bytes(good[:length] if length < len(good) else good + bytes(length - len(good)))
    with pytest.raises(CorruptLogFile):
        read_log(path)


# --- atomic writing -----------------------------------------------------------------------


class Boom(Exception):
    pass


def test_exception_in_with_block_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out.rjlog"
    during: list[tuple[str, int]] = []
    writers: list[LogWriter] = []

    def fail_while_writing() -> None:
        with LogWriter(dest) as w:
            writers.append(w)
            w.write_many([b"x" * 1000] * 3000)  # enough to reach the temp file on disk
            during.extend((p.name, p.stat().st_size) for p in tmp_path.iterdir())
            raise Boom

    with pytest.raises(Boom):
        fail_while_writing()
    ((name, size),) = during
    assert name.startswith("out.rjlog.tmp-")
    assert size > 0
    assert list(tmp_path.iterdir()) == []
    assert writers[0].closed


def test_exception_in_with_block_keeps_existing_destination(tmp_path: Path) -> None:
    dest = tmp_path / "out.rjlog"
    dest.write_bytes(b"previous content")

    def fail_while_writing() -> None:
        with LogWriter(dest) as w:
            w.write(b"new")
            raise Boom

    with pytest.raises(Boom):
        fail_while_writing()
    assert dest.read_bytes() == b"previous content"
    assert list(tmp_path.iterdir()) == [dest]


def test_destination_appears_only_on_close(tmp_path: Path) -> None:
    dest = tmp_path / "out.rjlog"
    with LogWriter(dest) as w:
        w.write(b"x")
        assert not dest.exists()
        (tmp,) = tmp_path.iterdir()
        assert tmp.name.startswith("out.rjlog.tmp-")
    assert list(tmp_path.iterdir()) == [dest]
    assert read_log(dest).records == [b"x"]


def test_close_replaces_an_existing_destination(tmp_path: Path) -> None:
    dest = tmp_path / "out.rjlog"
    dest.write_bytes(b"old")
    write_log(dest, [b"new"])
    assert read_log(dest).records == [b"new"]


def test_failed_rename_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "out.rjlog"
    dest.write_bytes(b"previous")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", failing_replace)
    w = LogWriter(dest)
    w.write(b"x")
    with pytest.raises(OSError, match="disk on fire"):
        w.close()
    assert w.closed
    assert list(tmp_path.iterdir()) == [dest]
    assert dest.read_bytes() == b"previous"


def test_abort_discards(tmp_path: Path) -> None:
    dest = tmp_path / "out.rjlog"
    w = LogWriter(dest)
    w.write(b"x")
    w.abort()
    w.abort()
    w.close()  # a no-op once aborted
    assert list(tmp_path.iterdir()) == []


def test_writing_after_close_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "out.rjlog"
    w = LogWriter(dest)
    w.close()
    w.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        w.write(b"x")
    with pytest.raises(ValueError, match="closed"):
        w.write_many([b"x"])
    assert read_log(dest).records == []


def test_oversized_payload_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventlog, "MAX_PAYLOAD_SIZE", 10)
    dest = tmp_path / "out.rjlog"
    with LogWriter(dest) as w:
        w.write(b"0123456789")
        with pytest.raises(ValueError, match="exceeds"):
            w.write(b"0123456789A")
    assert read_log(dest).records == [b"0123456789"]


def test_path_accepts_str_and_pathlike(tmp_path: Path) -> None:
    as_str = str(tmp_path / "s.rjlog")
    with LogWriter(as_str) as w:
        w.write(b"s")
        assert w.path == as_str
    assert read_log(as_str).records == [b"s"]
    assert read_log(Path(as_str)).records == [b"s"]


# --- properties ---------------------------------------------------------------------------

metadata_keys = st.text(max_size=10).filter(
    lambda k: k not in {"format", "format_version", "runjournal_version"}
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(st.binary(max_size=300), max_size=60),
    metadata=st.dictionaries(metadata_keys, st.text(max_size=20), max_size=5),
    batched=st.booleans(),
)
def test_any_payloads_round_trip(
    tmp_path: Path, records: list[bytes], metadata: dict[str, str], batched: bool
) -> None:
    path = tmp_path / "prop.rjlog"
    with LogWriter(path, metadata=metadata) as w:
        if batched:
            w.write_many(iter(records))
        else:
            for r in records:
                w.write(r)
    contents = read_log(path)
    assert contents.records == records
    assert {k: contents.header[k] for k in metadata} == metadata
    assert os.listdir(tmp_path) == ["prop.rjlog"]
