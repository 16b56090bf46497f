"""Hold an SQLite database's write lock until told to let go.

Usage: hold_lock.py DB

Takes ``BEGIN EXCLUSIVE``, prints ``LOCKED``, waits for a line on stdin (or EOF),
rolls back, prints ``RELEASED`` and exits.
"""

from __future__ import annotations

import sqlite3
import sys


def main(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("BEGIN EXCLUSIVE")
    print("LOCKED", flush=True)
    sys.stdin.readline()
    conn.execute("ROLLBACK")
    conn.close()
    print("RELEASED", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
