"""Stores: where the journal and its projections live."""

from runjournal.stores.base import AppendResult, JournalEntry, NewEntry, Store
from runjournal.stores.memory import InMemoryStorage
from runjournal.stores.sqlite import SqliteBackend

__all__ = ["AppendResult", "InMemoryStorage", "JournalEntry", "NewEntry", "SqliteBackend", "Store"]
