"""The run handle: one run, created and started on entering a block, ended on leaving it.

``async with tracker.run("gpt2-finetune", params={...}) as run:`` gets or creates
the experiment by name, creates the run with its context tags (:mod:`runjournal.context`),
starts it, and logs its params. Inside, ``await run.log({...})`` logs every key at
the handle's next step. Leaving the block ends the run: SUCCESS; FAILED on an
exception (with ``error.type`` and ``error.message`` tags; the exception goes on);
CANCELLED on a cancellation, ``KeyboardInterrupt`` or SIGTERM. Everything logged
through the handle is queued before the ending, so it is written first.

The handle is a thin layer over the tracker's own core (``_metric_event``,
``_offer``, ``_put``): no second copy of validation or queueing. The synchronous
face (:class:`runjournal.sync.SyncRun`) wraps a handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import operator
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from runjournal import _exit
from runjournal.context import capture as capture_context
from runjournal.errors import InvalidStateError
from runjournal.events import MetricLogged
from runjournal.model import RunStatus, check_final_status

if TYPE_CHECKING:
    from runjournal.tracker import Tracker

__all__ = [
    "ERROR_MESSAGE_LIMIT",
    "HEARTBEAT_INTERVAL",
    "SYSTEM_METRICS_INTERVAL",
    "ArtifactData",
    "RunHandle",
    "as_metric_value",
    "as_step",
    "ending_status",
]

HEARTBEAT_INTERVAL = 30.0
"""Seconds of silence after which an open handle records a heartbeat."""

SYSTEM_METRICS_INTERVAL = 10.0
"""Seconds between system samples when ``system_metrics=True``."""

ERROR_MESSAGE_LIMIT = 1000
"""The ``error.message`` tag keeps at most this many characters of the exception's message."""

ArtifactData = bytes | bytearray | memoryview | str | os.PathLike[str]
"""What ``log_artifact`` takes: the content, or the path of a file or a directory."""

_STEP_MAX = 2**63 - 1
_time = time.time


def as_step(step: object) -> int:
    """An explicit step as an int: ints and integer-like values (numpy integers), not bools."""
    if type(step) is int:
        result: int = step
    elif isinstance(step, bool):
        raise TypeError("step must be an int, not bool")
    else:
        try:
            result = operator.index(step)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(f"step must be an int, not {type(step).__name__}") from None
    if not 0 <= result <= _STEP_MAX:
        raise ValueError(f"step must be an int in [0, 2**63), got {result}")
    return result


def as_metric_value(key: str, value: object) -> object:
    """A metric value as people have it (a numpy scalar, a 0-d tensor), as the core takes it.

    Called only for values whose type is not ``float``. An ``int`` goes on as it is
    (the core converts it); anything else with ``__float__`` and one element is
    converted once. A tensor or array of several elements is a ``TypeError`` that
    names the key.
    """
    kind = type(value)
    if kind is int:
        return value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bool) or not hasattr(kind, "__float__"):
        raise TypeError(
            f"metric {key!r}: the value must be a number (anything with __float__), "
            f"not {kind.__name__}"
        )
    numel = getattr(value, "numel", None)  # torch
    count = numel() if callable(numel) else getattr(value, "size", 1)  # numpy
    if callable(count) or count is None:
        count = 1
    if count != 1:
        raise TypeError(
            f"metric {key!r}: a {kind.__name__} of {count} elements is not one value; "
            "log .item(), a reduction such as .mean(), or one key per element"
        )
    item = getattr(value, "item", None)
    try:
        # .item() first: float() of a 1-element array of rank > 0 is deprecated in numpy.
        return float(item() if callable(item) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metric {key!r}: {kind.__name__} is not a real number ({exc})") from None


def ending_status(exc: BaseException | None) -> RunStatus:
    """How leaving a run's block with ``exc`` ends the run.

    Nothing: SUCCESS. A cancellation or ``KeyboardInterrupt``: CANCELLED.
    ``SystemExit`` with code 0 or None: SUCCESS, with another code: FAILED. Any
    other exception: FAILED.
    """
    if exc is None:
        return RunStatus.SUCCESS
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError | GeneratorExit):
        return RunStatus.CANCELLED
    if isinstance(exc, SystemExit):
        return RunStatus.SUCCESS if exc.code in (None, 0) else RunStatus.FAILED
    if _is_cancellation(exc):
        return RunStatus.CANCELLED
    return RunStatus.FAILED


def _is_cancellation(exc: BaseException) -> bool:
    """A trio cancellation (anyio's cancelled class on asyncio is ``CancelledError``)."""
    return type(exc).__module__.startswith("trio") and type(exc).__name__ == "Cancelled"


class RunHandle:
    """One run of an experiment, opened by ``async with tracker.run(...) as run``.

    Obtain it from :meth:`Tracker.run`; the run exists from entering the block.
    ``log`` and ``log_metric`` share one step counter: it starts at 0 and moves to
    the next integer after every call without ``step``; an explicit ``step`` is
    used as given and the counter continues from ``step + 1``. While the handle
    is open and nothing is logged, it records a heartbeat every 30 s.
    """

    def __init__(
        self,
        tracker: Tracker,
        experiment: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        capture: bool = True,
        system_metrics: bool | float = False,
    ) -> None:
        if type(experiment) is not str:
            raise TypeError(f"experiment must be a name (str), not {type(experiment).__name__}")
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"params must be a mapping or None, not {type(params).__name__}")
        if tags is not None and not isinstance(tags, Mapping):
            raise TypeError(f"tags must be a mapping or None, not {type(tags).__name__}")
        self._tracker = tracker
        self._experiment = experiment
        self._name = name
        self._params = params
        self._tags = tags
        self._capture = capture
        self._system_metrics = system_metrics
        self._run_id: str | None = None
        self._experiment_id: str | None = None
        self._steps = itertools.count()
        self._system_steps = itertools.count()
        self._make: Callable[[str, str, int, object, float | None], MetricLogged] = (
            tracker._metric_event  # type: ignore[assignment]
        )
        # The queue's bound offer, looked up once (a read-only tracker's refuses).
        self._offer: Callable[[MetricLogged], bool] = tracker._offer
        self._active = False
        self._ended = False
        self._end_lock = threading.Lock()
        self._stop = threading.Event()
        self._sampler: Any = None
        self._pid = 0

    def __repr__(self) -> str:
        return f"RunHandle(id={self._run_id!r}, experiment={self._experiment!r})"

    @property
    def id(self) -> str:
        """The run's id (once the block is entered)."""
        return self._require_open()

    @property
    def experiment_id(self) -> str:
        """The id of the run's experiment (once the block is entered)."""
        self._require_open()
        assert self._experiment_id is not None
        return self._experiment_id

    @property
    def tracker(self) -> Tracker:
        """The tracker this run logs through."""
        return self._tracker

    def _require_open(self) -> str:
        if self._run_id is None:
            raise RuntimeError(
                "the run is created on entering the block: use `async with tracker.run(...) as run`"
            )
        return self._run_id

    # -- opening and ending ------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        if self._run_id is not None:
            raise RuntimeError("this run handle was entered already; call tracker.run() again")
        tracker = self._tracker
        if self._params is not None:
            tracker._params_event("", self._params)  # a bad param fails before the run exists
        experiment_id = await tracker.ensure_experiment(self._experiment)
        run_id = await tracker.create_run(experiment_id, name=self._name, tags=self._run_tags())
        await tracker.start_run(run_id)
        if self._params:
            await tracker.log_params(run_id, self._params)
        self._opened(run_id, experiment_id)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._end(ending_status(exc), exc)

    async def finish(self, status: RunStatus | str = "SUCCESS") -> None:
        """End the run now (SUCCESS, FAILED or CANCELLED); leaving the block then does nothing.

        Like :meth:`Tracker.complete_run`, it is not a cancellation point.
        """
        await self._end(check_final_status(status, "finish"), None)

    def _run_tags(self) -> dict[str, str] | None:
        captured = capture_context() if self._capture else {}
        if self._tags is None:
            return captured or None
        return {**captured, **self._tags}  # the user's own tags win

    def _opened(self, run_id: str, experiment_id: str) -> None:
        self._run_id = run_id
        self._experiment_id = experiment_id
        self._pid = os.getpid()
        _install_exit_hooks()
        _OPEN.add(self)
        threading.Thread(
            target=self._beat, name=f"runjournal-heartbeat-{run_id}", daemon=True
        ).start()
        if self._system_metrics:
            self._start_sampler()

    def _start_sampler(self) -> None:
        import importlib  # the sampler imports psutil: only when asked

        interval = (
            SYSTEM_METRICS_INTERVAL if self._system_metrics is True else float(self._system_metrics)
        )
        sampler_class = importlib.import_module("runjournal.system_metrics").Sampler
        self._sampler = sampler_class(self._log_system, interval)
        self._sampler.start()

    def _log_system(self, metrics: Mapping[str, float]) -> None:
        step = next(self._system_steps)  # system samples have their own steps
        put = self._tracker._put_nowait
        for item in self._points(metrics, step):
            put(item)

    def _beat(self) -> None:
        run_id = self._run_id
        assert run_id is not None
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            if self._active:
                self._active = False
                continue
            try:
                self._tracker.heartbeat_nowait(run_id)
            except Exception:  # noqa: BLE001 - the tracker was closed under an open handle
                return

    def _claim_end(self) -> bool:
        """True for the one caller that ends the run; stops the handle's threads."""
        with self._end_lock:
            if self._ended or self._run_id is None:
                return False
            self._ended = True
        _OPEN.discard(self)
        self._stop.set()
        if self._sampler is not None:
            self._sampler.stop()
        return True

    async def _end(self, status: RunStatus, exc: BaseException | None) -> None:
        if not self._claim_end():
            return
        assert self._run_id is not None
        if status is RunStatus.FAILED and exc is not None:
            self._error_tags(exc)
        await self._tracker.complete_run(self._run_id, status)

    def _end_blocking(self, status: RunStatus, exc: BaseException | None) -> None:
        """End the run from plain code (an exit hook), without an event loop."""
        if not self._claim_end():
            return
        assert self._run_id is not None
        if status is RunStatus.FAILED and exc is not None:
            self._error_tags(exc)
        self._tracker._complete_blocking(self._run_id, status)

    def _error_tags(self, exc: BaseException) -> None:
        run_id = self._run_id
        assert run_id is not None
        kind = type(exc)
        name = kind.__qualname__ if kind.__module__ == "builtins" else _qualified(kind)
        message = str(exc)[:ERROR_MESSAGE_LIMIT]
        for key, value in (("error.type", name), ("error.message", message)):
            self._tracker._put_nowait(self._tracker._tag_event(run_id, key, value))

    # -- logging -----------------------------------------------------------------------------
    def _points(self, metrics: Mapping[str, object], step: int) -> list[MetricLogged]:
        """The validated points of one call (nothing is queued if any of them is refused)."""
        run_id = self._run_id
        if run_id is None:
            self._require_open()
        if type(metrics) is not dict and not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a mapping, not {type(metrics).__name__}")
        make = self._make
        points = []
        for key, value in metrics.items():
            if type(value) is not float:
                value = as_metric_value(key, value)
            points.append(make(run_id, key, step, value, None))  # type: ignore[arg-type]
        return points

    def _stepped(self, metrics: Mapping[str, object], step: object) -> list[MetricLogged]:
        """The points of one logging call at its step, moving the counter past it."""
        if step is None:
            taken = next(self._steps)
            try:
                points = self._points(metrics, taken)
            except BaseException:
                self._steps = itertools.count(taken)  # a refused call takes no step
                raise
        else:
            taken = as_step(step)
            points = self._points(metrics, taken)
            self._steps = itertools.count(taken + 1)
        self._active = True
        return points

    def _point(self, key: str, value: object, step: object) -> MetricLogged:
        """:meth:`_stepped` for one point: the hot path of ``log_metric``, without a list."""
        run_id = self._run_id
        if run_id is None:
            self._require_open()
        if type(value) is not float:
            value = as_metric_value(key, value)
        if step is None:
            taken = next(self._steps)
            try:
                point = self._make(run_id, key, taken, value, None)  # type: ignore[arg-type]
            except BaseException:
                self._steps = itertools.count(taken)
                raise
        else:
            taken = as_step(step)
            point = self._make(run_id, key, taken, value, None)  # type: ignore[arg-type]
            self._steps = itertools.count(taken + 1)
        self._active = True
        return point

    async def log(self, metrics: Mapping[str, object], step: int | None = None) -> None:
        """Log every metric of ``metrics`` at one step (the handle's next, or ``step``).

        Values are floats, ints, or anything with ``__float__`` of one element
        (numpy scalars, 0-d torch tensors). It suspends only when the queue is full,
        and at a cancellation point once per writer tick, as ``Tracker.log_metric``.
        """
        tracker = self._tracker
        if tracker._queue.yield_due:
            await tracker._checkpoint()
        offer = tracker._offer
        for item in self._stepped(metrics, step):
            if not offer(item):
                await tracker._put(item)

    def log_nowait(self, metrics: Mapping[str, object], step: int | None = None) -> None:
        """:meth:`log` for synchronous code on any thread; follows the tracker's ``on_full``."""
        offer = self._offer
        for item in self._stepped(metrics, step):
            if not offer(item):
                self._tracker._put_nowait(item)

    async def log_metric(self, key: str, value: object, step: int | None = None) -> None:
        """Log one metric point; the same step counter as :meth:`log`."""
        tracker = self._tracker
        if tracker._queue.yield_due:
            await tracker._checkpoint()
        item = self._point(key, value, step)
        if not tracker._offer(item):
            await tracker._put(item)

    def log_metric_nowait(self, key: str, value: object, step: int | None = None) -> None:
        """:meth:`log_metric` for synchronous code on any thread."""
        item = self._point(key, value, step)
        if not self._offer(item):
            self._tracker._put_nowait(item)

    async def log_params(self, params: Mapping[str, Any]) -> None:
        """Set several parameters of the run."""
        await self._tracker.log_params(self._require_open(), params)

    def log_params_nowait(self, params: Mapping[str, Any]) -> None:
        """:meth:`log_params` for synchronous code on any thread."""
        self._tracker.log_params_nowait(self._require_open(), params)

    async def log_param(self, key: str, value: Any) -> None:
        """Set one parameter of the run."""
        await self._tracker.log_param(self._require_open(), key, value)

    def log_param_nowait(self, key: str, value: Any) -> None:
        """:meth:`log_param` for synchronous code on any thread."""
        self._tracker.log_param_nowait(self._require_open(), key, value)

    async def set_tag(self, key: str, value: str) -> None:
        """Set a string tag on the run."""
        await self._tracker.set_tag(self._require_open(), key, value)

    def set_tag_nowait(self, key: str, value: str) -> None:
        """:meth:`set_tag` for synchronous code on any thread."""
        self._tracker.set_tag_nowait(self._require_open(), key, value)

    async def set_span_id(self, span_id: str) -> None:
        """Link the run to a distributed trace."""
        await self._tracker.set_span_id(self._require_open(), span_id)

    async def log_artifact(self, name: str, data: ArtifactData) -> str | dict[str, str]:
        """Store an artifact of the run: bytes, or the path of a file or a directory.

        Returns its SHA-256, or ``{name: sha256}`` for a directory (as
        :meth:`Tracker.log_artifact`).
        """
        run_id = self._require_open()
        self._active = True
        return await self._tracker.log_artifact(run_id, name, data)  # type: ignore[arg-type,unused-ignore]


def _qualified(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


# -- runs still open when the process ends -------------------------------------------------------
_OPEN: weakref.WeakSet[RunHandle] = weakref.WeakSet()
_uncaught: list[BaseException] = []
_hooks_lock = threading.Lock()
_hooks_installed = False
_previous_excepthook: Callable[..., Any] | None = None


def _end_open_runs_at_exit(terminated: bool) -> None:
    """End every handle still open: CANCELLED on SIGTERM, else as the program ended.

    The program's end is SUCCESS, FAILED when an uncaught exception ended it (with
    the error tags), CANCELLED when that exception was ``KeyboardInterrupt``. Runs
    before the writers' exit drain, so the endings are written too.
    """
    exc = _uncaught[-1] if _uncaught else None
    status = RunStatus.CANCELLED if terminated else ending_status(exc)
    pid = os.getpid()
    for handle in list(_OPEN):
        if handle._pid != pid:
            continue  # a forked worker (a DataLoader's) leaving does not end its parent's run
        # InvalidStateError: another process (a CLI `runs end`) ended it meanwhile.
        with contextlib.suppress(InvalidStateError):
            handle._end_blocking(status, exc)


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _uncaught.append(exc)
    previous = _previous_excepthook
    if previous is not None:
        previous(kind, exc, tb)


def _install_exit_hooks() -> None:
    """End open runs at process end (before the drain), and learn how the program ended."""
    global _hooks_installed, _previous_excepthook
    with _hooks_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        _previous_excepthook = sys.excepthook
        sys.excepthook = _excepthook
    _exit.before_drain(_end_open_runs_at_exit)
