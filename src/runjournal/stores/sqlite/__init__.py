"""The SQLite store: one file holding the append-only journal and its projection tables.

Where each concern lives:

- ``backend``: :class:`SqliteBackend`, the store itself, a thin class over the rest;
- ``connection``: opening the write and the read connection, pragmas, using them;
- ``forks``: the locks that keep our threads out of SQLite while the process forks;
- ``errors``: the one place where ``sqlite3`` errors become runjournal's errors;
- ``writes``: the write transaction (append a batch, refold the projections);
- ``overlay``: the projection state of one write transaction, written back at its end;
- ``queries``: every read, as SQL;
- ``filters``: which param filters SQL answers alone, and the rest in Python;
- ``schema``: the tables, and the checks that a file is a runjournal database.

Another engine (PostgreSQL, say) gets a package of the same shape beside this one.
"""

from runjournal.stores.sqlite.backend import SqliteBackend
from runjournal.stores.sqlite.connection import Durability
from runjournal.stores.sqlite.errors import translate_error
from runjournal.stores.sqlite.schema import is_sqlite_file

__all__ = ["Durability", "SqliteBackend", "is_sqlite_file", "translate_error"]
