"""Artifact contents kept in a SQL store's tables, read back as a :class:`Content`.

Shared by the SQLite and PostgreSQL stores: both keep a content as numbered chunks
(``contents``, ``content_chunks``, ``chunks``) and append an artifact's entry in the
transaction that stored its chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from runjournal.stores.base import AppendResult, Content

__all__ = ["ChunkReader", "Refused", "StoredContent"]


class Refused(Exception):
    """Rolls back the transaction of an artifact whose entry was rejected."""

    def __init__(self, result: AppendResult) -> None:
        super().__init__("rejected")
        self.result = result


class ChunkReader(Protocol):
    """A store's blocking reads of a content's chunks."""

    def chunk_ids_blocking(self, sha256: str) -> list[int]: ...

    def chunk_blocking(self, chunk: int) -> tuple[bytes, bytes]: ...


class StoredContent(Content):
    """Content read back from a database, chunk by chunk (replayable: it reads again)."""

    __slots__ = ("_store",)

    def __init__(self, store: ChunkReader, sha256: str, size_bytes: int) -> None:
        super().__init__(None, sha256, size_bytes)
        self._store = store

    @property
    def replayable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        assert self.sha256 is not None
        for chunk in self._store.chunk_ids_blocking(self.sha256):
            yield self._store.chunk_blocking(chunk)
