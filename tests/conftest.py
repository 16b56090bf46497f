"""Shared fixtures: one contract suite, run against every store."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runjournal import Tracker
from runjournal.stores import InMemoryStorage, SqliteBackend, Store

STORE_KINDS = ["sqlite-file", "sqlite-memory", "memory"]


def make_store(kind: str, tmp_path: Path) -> Store:
    """A fresh, empty store of the given kind."""
    if kind == "sqlite-file":
        return SqliteBackend(tmp_path / "experiments.db")
    if kind == "sqlite-memory":
        return SqliteBackend(":memory:")
    if kind == "memory":
        return InMemoryStorage()
    raise ValueError(kind)


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
async def tracker(store_kind: str, tmp_path: Path) -> AsyncIterator[Tracker]:
    """A tracker on each kind of store in turn."""
    async with Tracker(make_store(store_kind, tmp_path)) as t:
        yield t


def assert_identical(got: Any, want: Any, path: str = "value") -> None:
    """Equal with the same type at every level: True is not 1, 1 is not 1.0; NaN equals NaN."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), f"{path}: {got!r} is not NaN"
    elif isinstance(want, list):
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_identical(g, w, f"{path}[{i}]")
    elif isinstance(want, dict):
        assert list(got) == list(want) or set(got) == set(want), f"{path}: keys differ"
        for k in want:
            assert_identical(got[k], want[k], f"{path}[{k!r}]")
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"
