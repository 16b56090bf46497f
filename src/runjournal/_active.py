"""``runjournal.init / log / log_artifact / finish``: one active run per process, as in W&B.

``rj.init(experiment=..., config=...)`` opens the database (``db``, else
``$RUNJOURNAL_DB``, else ``./experiments.db``: the CLI's rule), creates and starts a
run, and makes it the active run; ``rj.log`` and ``rj.log_artifact`` act on it, and
``rj.finish`` ends it and closes the database. ``rj.init`` again finishes the previous
run first. A run still open when the interpreter exits is ended before the writers
drain (:mod:`runjournal.run`'s exit hook): SUCCESS, FAILED if an uncaught exception
ended the program, CANCELLED on ``KeyboardInterrupt`` or SIGTERM.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, NoReturn

from runjournal.model import RunStatus
from runjournal.run import ArtifactData
from runjournal.sync import SyncRun, SyncTracker

__all__ = ["DEFAULT_DB", "active_run", "finish", "init", "log", "log_artifact"]

DEFAULT_DB = "experiments.db"
"""The database when neither ``db`` nor ``$RUNJOURNAL_DB`` names one."""

_lock = threading.RLock()
_active: SyncRun | None = None


def init(
    experiment: str = "default",
    *,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    db: str | os.PathLike[str] | None = None,
    capture: bool = True,
    system_metrics: bool | float = False,
) -> SyncRun:
    """Start a run of ``experiment`` (by name, created if missing) and make it the active run.

    ``config`` becomes the run's params. Returns the :class:`SyncRun`, which also
    works as ``with rj.init(...) as run:`` (leaving the block ends it).
    """
    global _active
    with _lock:
        if _active is not None:
            finish()
        path = db if db is not None else os.environ.get("RUNJOURNAL_DB") or DEFAULT_DB
        tracker = SyncTracker.open(path)
        try:
            run = tracker.run(
                experiment,
                name=name,
                params=config,
                tags=tags,
                capture=capture,
                system_metrics=system_metrics,
            )
            run._on_end = _ended
            run._start()
        except BaseException:
            tracker.close()
            raise
        _active = run
        return run


def active_run() -> SyncRun | None:
    """The run that ``rj.log`` logs to, or None."""
    return _active


def log(metrics: Mapping[str, object], step: int | None = None) -> None:
    """Log to the active run (see :meth:`SyncRun.log`): every key at one step."""
    run = _active
    if run is None:
        _no_run("log")
    run.log(metrics, step)


def log_artifact(name: str, data: ArtifactData) -> str | dict[str, str]:
    """Store an artifact of the active run: bytes, or the path of a file or a directory."""
    run = _active
    if run is None:
        _no_run("log_artifact")
    return run.log_artifact(name, data)


def finish(status: RunStatus | str = "SUCCESS") -> None:
    """End the active run (SUCCESS, FAILED or CANCELLED) and close its database; no run: nothing."""
    with _lock:
        run = _active
        if run is not None:
            run.finish(status)


def _ended(run: SyncRun) -> None:
    """The active run ended (by ``finish`` or its block): forget it and close its database."""
    global _active
    with _lock:
        if _active is run:
            _active = None
    run.tracker.close()


def _no_run(call: str) -> NoReturn:
    raise RuntimeError(f"rj.{call}() needs an active run: call rj.init(experiment=...) first")
