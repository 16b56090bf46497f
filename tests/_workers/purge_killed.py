"""Purge a database, but stop inside the purge's transaction and wait to be killed.

Usage: purge_killed.py PATH

The journal rows are deleted and the projections refolded (uncommitted) when
this prints "inside" and sleeps; the test then kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time

from runjournal import journal
from runjournal.events import EventCodec
from runjournal.stores.sqlite import purge, writes


def main(path: str) -> None:
    refold = writes.refold

    def refold_then_wait(conn: sqlite3.Connection, codec: EventCodec, where: str) -> None:
        refold(conn, codec, where)
        print("inside", flush=True)
        time.sleep(60)

    vars(purge)["refold"] = refold_then_wait  # the name the purge module calls
    asyncio.run(journal.purge(path))


if __name__ == "__main__":
    main(sys.argv[1])
