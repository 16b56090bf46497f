"""What both integrations share: the run they log to, its database, and how it ends.

A framework asks for logging before and after its training loop in ways a ``with``
block cannot follow (Lightning's ``finalize`` after every stage, Hugging Face's
``trainer.evaluate()`` after ``on_train_end``). So a :class:`RunSession` opens the
database lazily, starts the run when the framework first needs it, and ends it when
the framework says training ended, but keeps the database open: what is logged after
the end (a test stage, a last evaluation) still lands in that run. The database
closes with :meth:`RunSession.close`, or at interpreter exit like every tracker.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from runjournal._active import DEFAULT_DB
from runjournal.model import RunStatus
from runjournal.sync import SyncRun, SyncTracker

__all__ = ["RunSession", "database_path", "flatten_params", "param_value"]

_INT64 = 2**63


def database_path(db: str | os.PathLike[str] | None) -> str | os.PathLike[str]:
    """``db``, else ``$RUNJOURNAL_DB``, else ``./experiments.db`` (the CLI's and ``rj.init``'s rule)."""
    if db is not None:
        return db
    return os.environ.get("RUNJOURNAL_DB") or DEFAULT_DB


def flatten_params(
    params: Mapping[Any, Any] | argparse.Namespace, sep: str = "/"
) -> dict[str, Any]:
    """Hyperparameters as flat params: nested mappings, namespaces and dataclasses become
    ``outer/inner`` keys, and every leaf a value runjournal stores (:func:`param_value`).

    An empty mapping stays one ``{}`` param, so that its key is not lost.
    """
    flat: dict[str, Any] = {}

    def visit(key: str, value: Any) -> None:
        nested = _as_mapping(value)
        if nested is not None and nested:
            for inner, item in nested.items():
                visit(f"{key}{sep}{inner}", item)
        elif nested is not None:
            flat[key] = {}
        else:
            flat[key] = param_value(value)

    top = _as_mapping(params)
    if top is None:
        raise TypeError(f"params must be a mapping or a Namespace, not {type(params).__name__}")
    for key, value in top.items():
        visit(str(key), value)
    return flat


def _as_mapping(value: Any) -> Mapping[Any, Any] | None:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, argparse.Namespace):
        return vars(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    return None


def param_value(value: Any) -> Any:
    """A value as runjournal stores it: None, bool, int, float and str as they are; an enum
    by its value; a path as a string; a one-element array or tensor as its number; a class
    or function by its qualified name; lists and tuples item by item; anything else as
    ``str(value)``.
    """
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        return int(value) if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, enum.Enum):
        return param_value(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        return [param_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): param_value(v) for k, v in value.items()}
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        return param_value(value.item())  # numpy scalars, 0-d tensors
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
    return str(value)


class RunSession:
    """The database and the one run that an integration logs to (see the module docstring)."""

    def __init__(
        self,
        db: str | os.PathLike[str] | None,
        experiment: str,
        name: str | None,
        *,
        tags: Mapping[str, str] | None = None,
        system_metrics: bool | float = False,
    ) -> None:
        self.db = db
        self.experiment = experiment
        self.name = name
        self.tags = dict(tags) if tags is not None else None
        self.system_metrics = system_metrics
        self._lock = threading.RLock()
        self._tracker: SyncTracker | None = None
        self._run: SyncRun | None = None
        self._ended = False

    def __getstate__(self) -> dict[str, Any]:
        """A copy sent to another process keeps the settings, not the open database or run."""
        state = self.__dict__.copy()
        state.update(_lock=None, _tracker=None, _run=None, _ended=False)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @property
    def run(self) -> SyncRun | None:
        """The run, once started."""
        return self._run

    @property
    def ended(self) -> bool:
        """True once :meth:`end` ended the current run."""
        return self._ended

    @property
    def tracker(self) -> SyncTracker:
        """The tracker on the database, opened on first use."""
        with self._lock:
            if self._tracker is None:
                self._tracker = SyncTracker.open(database_path(self.db))
            return self._tracker

    def start(
        self,
        *,
        experiment: str | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> SyncRun:
        """Create and start a new run (ending the previous one, if still open, as FAILED)."""
        with self._lock:
            if self._run is not None and not self._ended:
                self.end(RunStatus.FAILED)
            run = self.tracker.run(
                experiment if experiment is not None else self.experiment,
                name=name if name is not None else self.name,
                params=params,
                tags=self.tags,
                system_metrics=self.system_metrics,
            )
            run.__enter__()
            self._run = run
            self._ended = False
            return run

    def current(self) -> SyncRun:
        """The run, started now if there is none yet."""
        run = self._run
        return run if run is not None else self.start()

    def end(self, status: RunStatus) -> None:
        """End the run with ``status`` and write everything logged so far; once per run.

        Ending as FAILED while an exception is being handled ends it as that
        exception would end a ``with`` block: CANCELLED for ``KeyboardInterrupt``,
        FAILED with ``error.type`` and ``error.message`` tags otherwise.
        """
        with self._lock:
            run = self._run
            if run is None or self._ended:
                return
            self._ended = True
            exc = sys.exception()
            if status is RunStatus.FAILED and exc is not None:
                run.__exit__(type(exc), exc, exc.__traceback__)
            else:
                run.finish(status)
            self.tracker.flush()

    def close(self) -> None:
        """End a run still open as SUCCESS and close the database."""
        with self._lock:
            self.end(RunStatus.SUCCESS)
            tracker, self._tracker = self._tracker, None
            self._run = None
            self._ended = False
            if tracker is not None:
                tracker.close()
