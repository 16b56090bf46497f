"""Stores: where the journal and its projections live.

``base`` is the contract every store keeps; ``memory`` keeps it in memory, and
each storage engine is a package of its own (``sqlite``, ``postgres``). A new engine is a new
package beside ``sqlite``, with the same seams, and joins the contract tests.
"""

from typing import TYPE_CHECKING, Any

from runjournal.stores.base import AppendResult, JournalEntry, NewEntry, Store
from runjournal.stores.memory import InMemoryStorage
from runjournal.stores.sqlite import SqliteBackend
from runjournal.stores.urls import is_postgres_url, store_for

if TYPE_CHECKING:
    from runjournal.stores.postgres import PostgresBackend

__all__ = [
    "AppendResult",
    "InMemoryStorage",
    "JournalEntry",
    "NewEntry",
    "PostgresBackend",
    "SqliteBackend",
    "Store",
    "is_postgres_url",
    "store_for",
]


def __getattr__(name: str) -> Any:
    # PostgresBackend loads psycopg (the postgres extra) only when it is asked for.
    if name == "PostgresBackend":
        from runjournal.stores.postgres import PostgresBackend

        return PostgresBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
