"""The rollup rows that an upgrade adds to a database of the first rollup format, store-neutral.

:func:`add_finer_levels` reads a store's level-1 rollup rows in ``(run_id, key, bucket)``
order, a page at a time, through the store's own query, and writes back the rows of the
levels between the first format's (:func:`runjournal.rollups.finer_levels`) for each series
once all its rows are in. Pure: no database module is imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from runjournal.rollups import FOLDED, LEGACY_LADDER, LEVELS, Aggregate, finer_levels

__all__ = [
    "PAGE",
    "FinerLevels",
    "FinerLevelsSql",
    "add_finer_levels",
    "finer_levels_sql",
    "upgrade_rollups",
]

_NAN = float("nan")
PAGE = 20_000
"""How many level-1 rows :func:`add_finer_levels` asks for at a time."""

_COLUMNS = "first_step, last_step, min_value, max_value, first_value, last_value, count, nonfinite"
_NEW_LEVELS = ", ".join(str(level) for level in LEVELS if level not in (0, *LEGACY_LADDER))


class FinerLevelsSql(NamedTuple):
    """The statements of the upgrade, in one SQL dialect."""

    delete: str
    """Drop whatever rows of the new levels there are: they are all derived again."""
    page: str
    """Level-1 rows after ``(run_id, key, bucket)``, in that order; arguments ``(*after, size)``."""
    insert: str
    """One new row, as :meth:`FinerLevels.feed` gives it."""
    folded: str
    """Copy each series' level 0 as its ``FOLDED`` bucket, once the new levels are written."""


def finer_levels_sql(table: str, mark: str) -> FinerLevelsSql:
    """The upgrade's statements for the rollups ``table``, with ``mark`` as the placeholder."""
    return FinerLevelsSql(
        delete=f"DELETE FROM {table} WHERE level IN ({_NEW_LEVELS})",
        page=(
            f"SELECT run_id, key, bucket, {_COLUMNS} FROM {table} "
            f"WHERE level = 1 AND (run_id, key, bucket) > ({mark}, {mark}, {mark}) "
            f"ORDER BY run_id, key, bucket LIMIT {mark}"
        ),
        insert=(
            f"INSERT INTO {table} (level, run_id, key, bucket, {_COLUMNS}) "
            f"VALUES ({', '.join([mark] * 12)})"
        ),
        folded=(
            f"INSERT INTO {table} (level, run_id, key, bucket, {_COLUMNS}) "
            f"SELECT {FOLDED}, run_id, key, bucket, {_COLUMNS} FROM {table} WHERE level = 0"
        ),
    )


def upgrade_rollups(
    conn: Any, sql: FinerLevelsSql, insert_many: Callable[[str, list[tuple[Any, ...]]], object]
) -> None:
    """The whole upgrade, in the caller's transaction: the new levels and the FOLDED buckets.

    ``conn`` is the store's connection (``execute(sql, args).fetchall()`` is all this reads
    with) and ``insert_many(sql, rows)`` its ``executemany``.
    """
    conn.execute(sql.delete)

    def read_page(after: tuple[str, str, int], size: int) -> Sequence[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = conn.execute(sql.page, (*after, size)).fetchall()
        return rows

    add_finer_levels(read_page, lambda rows: insert_many(sql.insert, rows))
    conn.execute(sql.folded)


def add_finer_levels(
    read_page: Callable[[tuple[str, str, int], int], Sequence[Sequence[Any]]],
    write: Callable[[list[tuple[Any, ...]]], object],
    size: int = PAGE,
) -> None:
    """Write the finer levels' rows of every series, from its level-1 rows.

    ``read_page(after, size)`` gives at most ``size`` level-1 rows (as
    :meth:`FinerLevels.feed` takes them) after the ``(run_id, key, bucket)`` ``after``, in
    that order, each page read whole before anything is written; ``write(rows)`` inserts
    new rows. A series may span pages.
    """
    finer = FinerLevels()
    after: tuple[str, str, int] = ("", "", -1)
    while True:
        page = read_page(after, size)
        write(finer.feed(page))
        if len(page) < size:
            break
        after = (page[-1][0], page[-1][1], page[-1][2])
    write(finer.close())


class FinerLevels:
    """Level-1 rows in, the finer levels' rows out, one series at a time."""

    def __init__(self) -> None:
        self._series: tuple[str, str] | None = None
        self._finest: dict[int, Aggregate] = {}

    def feed(self, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Take level-1 rows ``(run_id, key, bucket, first_step, last_step, min, max, first,
        last, count, nonfinite)``, in order; the new rows of every series they complete.

        A new row is ``(level, run_id, key, bucket, first_step, ..., nonfinite)``.
        """
        out: list[tuple[Any, ...]] = []
        for row in rows:
            series = (row[0], row[1])
            if series != self._series:
                out += self.close()
                self._series = series
            first, last = row[7], row[8]
            self._finest[row[2]] = Aggregate(
                row[3],
                row[4],
                row[5],
                row[6],
                _NAN if first is None else first,  # SQL stores NaN as NULL
                _NAN if last is None else last,
                row[9],
                row[10],
            )
        return out

    def close(self) -> list[tuple[Any, ...]]:
        """The new rows of the series fed last (none if none was fed since)."""
        if self._series is None:
            return []
        run_id, key = self._series
        cells = finer_levels(self._finest)
        self._series, self._finest = None, {}
        return [(level, run_id, key, bucket, *agg) for (level, bucket), agg in cells.items()]
