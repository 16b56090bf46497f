"""The PostgreSQL store: the journal and its projections in a schema of the user's database.

Where each concern lives (the same seams as ``runjournal.stores.sqlite``):

- ``backend``: :class:`PostgresBackend`, the store itself, a thin class over the rest;
- ``connection``: the writer's connection, the pooled readers, the listener, forks;
- ``errors``: the one place where psycopg errors become runjournal's errors;
- ``writes``: the write transaction (the advisory lock, append a batch, refold);
- ``overlay``: the projection state of one write transaction, written back at its end;
- ``queries``: every read, as SQL;
- ``purge``: erasing deleted runs' entries, and the schema's size;
- ``schema``: the tables, and the checks that a schema is runjournal's.

It needs the ``postgres`` extra (psycopg 3).
"""

from runjournal.stores.postgres.backend import PostgresBackend
from runjournal.stores.postgres.connection import describe

__all__ = ["PostgresBackend", "describe"]
