"""Globally unique, time-sortable ids (the ULID shape: 26 Crockford base32 characters).

Journals written on different machines merge without collisions, and ids sort
by creation time to the millisecond.
"""

from __future__ import annotations

import hashlib
import os
import time

__all__ = ["name_id", "new_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id() -> str:
    """Return a new 26-character id: 48 bits of milliseconds, then 80 random bits."""
    return _encode((time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big"))


def name_id(kind: str, name: str, generation: int) -> str:
    """The id that every process derives for the ``generation``-th ``kind`` called ``name``.

    128 bits of a SHA-256 of the three, in the same 26-character shape as
    :func:`new_id` (but not time-sortable): processes that create "the
    experiment called X" at the same moment all pick the same id, so the journal
    keeps one. A later generation (after the first was deleted) gets a new id.
    """
    digest = hashlib.sha256(f"runjournal/{kind}\x00{generation}\x00{name}".encode()).digest()
    return _encode(int.from_bytes(digest[:16], "big"))


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
