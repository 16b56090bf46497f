"""Stores: where the journal and its projections live.

``base`` is the contract every store keeps; ``memory`` keeps it in memory, and
each storage engine is a package of its own (``sqlite``). A new engine is a new
package beside ``sqlite``, with the same seams, and joins the contract tests.
"""

from runjournal.stores.base import AppendResult, JournalEntry, NewEntry, Store
from runjournal.stores.memory import InMemoryStorage
from runjournal.stores.sqlite import SqliteBackend

__all__ = ["AppendResult", "InMemoryStorage", "JournalEntry", "NewEntry", "SqliteBackend", "Store"]
