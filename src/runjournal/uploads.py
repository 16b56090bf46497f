"""Artifact uploads: content on its way from a caller to the writer, and back out to a file.

A file is never read whole into memory. The caller's worker thread reads it in
chunks of ``CHUNK_SIZE``, hashes each (and the whole), and hands them to the
writer through a :class:`StreamedContent`, a channel that holds at most
``IN_FLIGHT`` chunks: the queue counts events, not bytes, so this is the bound
on the bytes in flight. The writer stores the chunks as they arrive, inside the
one transaction that also writes the content's manifest and its
``ArtifactLogged`` entry (``Store.append_artifact``), so an artifact becomes
visible only together with its entry, and a crash in the middle leaves nothing.
One file upload per writer runs at a time (:attr:`Upload` holders take the
writer's upload lock), which keeps the bound for any number of threads.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Iterator

from runjournal.errors import RunJournalError
from runjournal.stores.base import CHUNK_SIZE, Content

__all__ = [
    "IN_FLIGHT",
    "StreamedContent",
    "Upload",
    "UploadAbandoned",
    "directory_files",
    "safe_file_name",
]

IN_FLIGHT = 2
"""Chunks that may wait between the reading thread and the writer (plus one on each side)."""

_POLL = 0.1


class UploadAbandoned(RunJournalError):
    """The writer gave up on an upload (the tracker closed, or the store failed)."""


class StreamedContent(Content):
    """Content read once, as it is stored: a bounded channel from a reader to the writer."""

    __slots__ = ("_abandoned", "_channel", "started")

    def __init__(self) -> None:
        super().__init__(None, None, None)
        self._channel: queue.Queue[tuple[bytes, bytes] | BaseException | None] = queue.Queue(
            IN_FLIGHT
        )
        self._abandoned: BaseException | None = None
        self.started = False

    # -- the reading side ----------------------------------------------------------------------
    def feed(self, path: str | os.PathLike[str]) -> None:
        """Read the file at ``path`` into the channel, then close it (or pass on the error).

        This thread hashes each chunk; the writer's thread hashes the whole content
        as it stores the chunks, so the two hashes run on two cores at once.
        """
        try:
            with open(path, "rb", buffering=0) as file:
                while piece := file.read(CHUNK_SIZE):
                    self._send((hashlib.sha256(piece).digest(), piece))
        except BaseException as exc:
            self._send(exc)
            raise
        self._send(None)

    def _send(self, item: tuple[bytes, bytes] | BaseException | None) -> None:
        while True:
            if self._abandoned is not None:
                raise UploadAbandoned(f"the upload was abandoned: {self._abandoned}")
            try:
                self._channel.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    # -- the writer's side ---------------------------------------------------------------------
    def abandon(self, why: BaseException) -> None:
        """Stop taking chunks: the reader's next send raises :class:`UploadAbandoned`."""
        self._abandoned = why
        while True:
            try:
                self._channel.get_nowait()
            except queue.Empty:
                return

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        if self.started:
            raise RuntimeError("a streamed content can be read only once")
        self.started = True
        whole = hashlib.sha256()
        size = 0
        while True:
            try:
                item = self._channel.get(timeout=_POLL)
            except queue.Empty:
                if self._abandoned is not None:
                    raise UploadAbandoned(str(self._abandoned)) from None
                continue
            if item is None:
                self.sha256 = whole.hexdigest()
                self.size_bytes = size
                return
            if isinstance(item, BaseException):
                raise UploadAbandoned(f"reading the file failed: {item!r}") from item
            whole.update(item[1])
            size += len(item[1])
            yield item


class Upload:
    """A queue item: one artifact, its content, and the signal its caller waits on."""

    __slots__ = ("at", "content", "done", "error", "name", "run_id")

    def __init__(self, run_id: str, name: str, content: Content, at: float) -> None:
        self.run_id = run_id
        self.name = name
        self.content = content
        self.at = at
        self.done = threading.Event()
        self.error: BaseException | None = None

    def finish(self, error: BaseException | None = None) -> None:
        """Called by the writer once the artifact is committed (or could not be)."""
        self.error = error
        if error is not None and isinstance(self.content, StreamedContent):
            self.content.abandon(error)
        self.done.set()


def directory_files(root: str | os.PathLike[str], name: str) -> list[tuple[str, str]]:
    """``(artifact name, path)`` of every regular file under ``root``, sorted by name.

    Each is named ``name/relative/path`` with ``/`` separators, whatever the OS.
    Symbolic links to directories are not followed (they could loop).
    """
    found: list[tuple[str, str]] = []
    top = os.fspath(root)
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        for file in sorted(files):
            path = os.path.join(folder, file)
            if not os.path.isfile(path):
                continue
            relative = os.path.relpath(path, top).replace(os.sep, "/")
            found.append((f"{name}/{relative}", path))
    found.sort()
    return found


def safe_file_name(name: str, fallback: str) -> str:
    """A file name for an artifact name: its last ``/`` (or ``\\``) part, never a path.

    ``..``, ``.``, an empty part and anything with a NUL fall back to ``fallback``.
    """
    last = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if last in ("", ".", "..") or "\x00" in last:
        return fallback
    return last
