"""The SQLite store (being split along its seams)."""

from runjournal.stores.sqlite.backend import Durability, SqliteBackend, translate_error

__all__ = ["Durability", "SqliteBackend", "translate_error"]
