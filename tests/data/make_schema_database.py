"""Write ``schema{N}.db``, a database of SQLite schema version N, and ``schema{N}.expected.json``.

    PYTHONPATH=/path/to/runjournal-of-schema-N/src .venv/bin/python tests/data/make_schema_database.py

Run once per schema version, with the runjournal whose SQLite schema is that version, before
the version moves on. It fills the database exactly as ``make_v1_database.py`` fills
``format1.db`` and records every answer through the same ``collect_answers``. The two
files are then committed and never regenerated: the tests open copies with the code of the
day, migrated and read-only. It refuses to overwrite them. (``schema4.db`` and ``schema5.db``
were written by one-version copies of this script, with the same ``write_fixture``.)
"""

from __future__ import annotations

import sys
from pathlib import Path

from runjournal.stores.sqlite.schema import SCHEMA_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.data.make_v1_database import write_fixture

HERE = Path(__file__).resolve().parent


def main() -> int:
    name = f"schema{SCHEMA_VERSION}"
    return write_fixture(HERE / f"{name}.db", HERE / f"{name}.expected.json")


if __name__ == "__main__":
    sys.exit(main())
