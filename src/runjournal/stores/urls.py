"""Which store a spec names: a ``postgresql://`` URL, or a path to an SQLite file.

Kept apart from the engines so that telling them apart needs no driver.
"""

from __future__ import annotations

__all__ = ["is_postgres_url"]

_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(spec: object) -> bool:
    """True if ``spec`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(spec, str) and spec.lower().startswith(_SCHEMES)
