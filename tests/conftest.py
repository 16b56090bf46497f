"""Shared fixtures: one contract suite, run against every store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest

from runjournal import Tracker
from runjournal.model import same_value
from runjournal.stores import InMemoryStorage, SqliteBackend, Store
from tests import pg

StoreKind = Literal["sqlite-file", "sqlite-memory", "memory", "postgres"]
STORE_KINDS: list[StoreKind] = ["sqlite-file", "sqlite-memory", "memory", "postgres"]
"""Every store the contract suite runs against. ``postgres`` is a schema of its own on the
test server (``tests.pg``); without a server, those tests skip with one reason."""


def make_store(kind: StoreKind, folder: Path) -> Store:
    """A fresh, empty store of the given kind (a SQLite file goes in ``folder``).

    Persistent kinds (``sqlite-file``, ``postgres``) can be reopened through ``reopener()``.
    """
    if kind == "sqlite-file":
        return SqliteBackend(folder / "experiments.db")
    if kind == "sqlite-memory":
        return SqliteBackend(":memory:")
    if kind == "memory":
        return InMemoryStorage()
    if kind == "postgres":
        from runjournal.stores import PostgresBackend

        return PostgresBackend(pg.fresh_dsn())
    raise ValueError(kind)


@contextlib.asynccontextmanager
async def closing(store: Store) -> AsyncIterator[Store]:
    """The store, closed at the end of the block (trackers reopen it lazily)."""
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> StoreKind:
    kind: StoreKind = request.param
    return kind


@pytest.fixture
async def tracker(store_kind: StoreKind, tmp_path: Path) -> AsyncIterator[Tracker]:
    """A tracker on each kind of store in turn."""
    async with Tracker(make_store(store_kind, tmp_path)) as t:
        yield t


def assert_identical(got: Any, want: Any, path: str = "value") -> None:
    """``model.same_value``: True is not 1, 1 is not 1.0; NaN equals NaN. Names where they differ."""
    if same_value(got, want):
        return
    assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
    if type(want) is list:
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_identical(g, w, f"{path}[{i}]")
    elif type(want) is dict:
        assert set(got) == set(want), f"{path}: keys differ"
        for k in want:
            assert_identical(got[k], want[k], f"{path}[{k!r}]")
    raise AssertionError(f"{path}: {got!r} != {want!r}")
