"""What the user typed for an experiment or a run, turned into the object it names.

- An experiment is given by its id or by its name. An exact id wins over a name;
  a name that several experiments share means the oldest of them.
- A run is given by its id or by a unique, case-insensitive prefix of at least
  :data:`MIN_PREFIX` characters. An ambiguous prefix is an error that lists the
  candidates.

Only the public query API of :class:`~runjournal.tracker.Tracker` is used.
"""

from __future__ import annotations

from typing import Final

from runjournal.errors import ExperimentNotFound, RunNotFound
from runjournal.model import Experiment, Run
from runjournal.tracker import Tracker

__all__ = ["MIN_PREFIX", "AmbiguousId", "resolve_experiment", "resolve_run"]

MIN_PREFIX: Final = 6
"""The shortest run-id prefix taken."""

_CANDIDATES_SHOWN = 5


class AmbiguousId(ValueError):
    """A run-id prefix that more than one run starts with."""


async def resolve_experiment(tracker: Tracker, given: str) -> Experiment:
    """The experiment whose id is ``given``, else the oldest one named ``given``."""
    try:
        return await tracker.get_experiment(given)
    except ExperimentNotFound:
        pass
    named = [e for e in await tracker.list_experiments() if e.name == given]
    if not named:
        raise ExperimentNotFound(given)
    return min(named, key=lambda e: (e.created_at, e.id))


async def resolve_run(tracker: Tracker, given: str) -> Run:
    """The run whose id is ``given``, else the one run whose id starts with it (any case)."""
    try:
        return await tracker.get_run(given)
    except RunNotFound:
        if len(given) < MIN_PREFIX:
            raise
    prefix = given.upper()
    every = await tracker.filter_runs(None, [], view="ALL")  # a hidden run is restored by its id
    found = [r for r in every if r.id.upper().startswith(prefix)]
    if not found:
        raise RunNotFound(given)
    if len(found) > 1:
        shown = ", ".join(r.id for r in found[:_CANDIDATES_SHOWN])
        more = len(found) - _CANDIDATES_SHOWN
        rest = f" and {more} more" if more > 0 else ""
        raise AmbiguousId(f"run id prefix {given!r} is ambiguous: {shown}{rest}")
    return found[0]
