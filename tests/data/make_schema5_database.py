"""Write ``schema5.db``, a database of SQLite schema version 5, and ``schema5.expected.json``.

    PYTHONPATH=/path/to/runjournal-with-schema-5/src .venv/bin/python tests/data/make_schema5_database.py

Run once, with the runjournal whose SQLite schema is version 5 (the typed params index; before
metric chunks of version 6). It fills the database exactly as ``make_v1_database.py`` fills
``format1.db`` and records every answer through the same ``collect_answers``. The two
files are then committed and never regenerated: ``tests/test_schema5_database.py`` opens
copies with the code of the day, migrated and read-only. It refuses to overwrite them,
and to run with code of another schema version.
"""

from __future__ import annotations

import sys
from pathlib import Path

from runjournal.stores.sqlite.schema import SCHEMA_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.data.make_v1_database import write_fixture

HERE = Path(__file__).resolve().parent
DATABASE = HERE / "schema5.db"
EXPECTED = HERE / "schema5.expected.json"


def main() -> int:
    if SCHEMA_VERSION != 5:
        print(f"this runjournal writes schema {SCHEMA_VERSION}; run it with one of schema 5")
        return 1
    return write_fixture(DATABASE, EXPECTED)


if __name__ == "__main__":
    sys.exit(main())
