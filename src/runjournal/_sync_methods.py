"""The synchronous faces' methods, generated from the async ones: do not edit.

Written by ``python scripts/gen_sync.py`` from :class:`~runjournal.tracker.Tracker` and
:class:`~runjournal.run.RunHandle`; ``tests/test_sync.py`` fails when it is out of date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, overload

from runjournal._portal import SyncFace

if TYPE_CHECKING:
    import os
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
    from pathlib import Path
    from typing import Any

    from runjournal.filtering import RunPage
    from runjournal.model import (
        ArtifactRef,
        Experiment,
        MetricArrays,
        MetricBucket,
        MetricPoint,
        ParamFilter,
        Run,
        RunStatus,
        RunView,
    )
    from runjournal.run import ArtifactData, RunHandle
    from runjournal.tracker import Tracker
    from runjournal.writer import WriterStats

__all__ = ["SyncRunMethods", "SyncTrackerMethods"]


class SyncTrackerMethods(SyncFace):
    """The methods of :class:`runjournal.tracker.Tracker`, synchronous."""

    _tracker: Tracker

    def flush(self) -> None:
        """Return once every event accepted before this call is committed.

        Raises the store's error while it cannot write (the events are kept and
        retried), and :class:`RejectedWrites` for events refused at commit. Once
        begun, it runs to its end even if the caller is cancelled meanwhile (see
        :meth:`complete_run`).
        """
        return self._call("flush", self._tracker.flush)

    def committed(self, work: Callable[[], Awaitable[object]]) -> None:
        """Run ``work``, which logs through this tracker, and return once its events are committed.

        Unlike :meth:`flush`, it raises :class:`RejectedWrites` only for the
        events that ``work`` queued, never for those of other callers sharing the
        tracker (a server answering concurrent requests), and it leaves theirs
        for their own report. Events that others queue while ``work`` awaits
        count as its own too, so a ``work`` that queues everything between two
        awaits (the ``*_nowait`` methods) owns exactly its events. Raises the
        store's error while it cannot write, as :meth:`flush` does; the events
        are kept and retried.
        """
        return self._call("committed", self._tracker.committed, work)

    def flush_blocking(self) -> None:
        """Blocking :meth:`flush`, for synchronous code (never from the event loop's thread)."""
        return self._tracker.flush_blocking()

    def close(self) -> None:
        """Write everything pending (within ``drain_timeout``), then release the store.

        Once begun, it runs to its end even if the caller is cancelled meanwhile.
        """
        return self._call("close", self._tracker.close)

    def stats(self) -> WriterStats:
        """Counters that show whether logging keeps up: accepted, committed, dropped, ..."""
        return self._tracker.stats()

    def create_experiment(
        self,
        name: str,
        config: Mapping[str, Any] | None = None,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Create an experiment and return its id."""
        return self._call(
            "create_experiment",
            self._tracker.create_experiment,
            name,
            config,
            description=description,
            tags=tags,
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id; raises :class:`ExperimentNotFound`."""
        return self._call("get_experiment", self._tracker.get_experiment, experiment_id)

    def list_experiments(self) -> list[Experiment]:
        """Every experiment, oldest first."""
        return self._call("list_experiments", self._tracker.list_experiments)

    def find_experiment(self, name: str) -> Experiment | None:
        """The oldest live experiment called ``name``, or None if there is none."""
        return self._call("find_experiment", self._tracker.find_experiment, name)

    def ensure_experiment(
        self,
        name: str,
        config: Mapping[str, Any] | None = None,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """The id of the oldest live experiment called ``name``, created if there is none.

        ``config``, ``description`` and ``tags`` are checked as by
        :meth:`create_experiment`, and used only when the experiment is created
        here: an existing experiment is returned as it is.

        Get-or-create, race-free across processes: an experiment created here gets
        an id derived from its name (``ids.name_id``), so processes that find none
        and create it at the same moment all create the same experiment, and the
        journal keeps the first creation (the others are no-ops). After that
        experiment is deleted, the next one of that name gets a new id (the next
        generation), so an id is never reused.
        """
        return self._call(
            "ensure_experiment",
            self._tracker.ensure_experiment,
            name,
            config,
            description=description,
            tags=tags,
        )

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> None:
        """Rename a live experiment (``name``) and/or set tags on it (merged: a later value wins).

        The id stays. Raises :class:`ExperimentNotFound` for an unknown or deleted one.
        """
        return self._call(
            "update_experiment",
            self._tracker.update_experiment,
            experiment_id,
            name=name,
            tags=tags,
        )

    def delete_experiment(self, experiment_id: str) -> None:
        """Delete an experiment and all its runs (a tombstone in the journal)."""
        return self._call("delete_experiment", self._tracker.delete_experiment, experiment_id)

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        at: float | None = None,
    ) -> str:
        """Create a PENDING run in an experiment and return its id.

        ``at`` (Unix seconds, default now) is when it was created: for importers
        and the MLflow face, which bring runs with their own times.
        """
        return self._call(
            "create_run", self._tracker.create_run, experiment_id, name=name, tags=tags, at=at
        )

    def start_run(self, run_id: str, *, at: float | None = None) -> None:
        """PENDING to RUNNING; raises :class:`InvalidStateError` otherwise.

        ``at`` (Unix seconds, default now) is the start time, for importers.
        """
        return self._call("start_run", self._tracker.start_run, run_id, at=at)

    def resume_run(self, run_id: str) -> None:
        """An ended run (SUCCESS, FAILED or CANCELLED) becomes RUNNING again.

        For a run picked up after a preemption or a crash, or reopened to log
        more. Its ``end_time`` is cleared and its ``start_time`` kept (that of its
        first start); the next :meth:`complete_run` sets a new end time and
        status. The journal keeps every earlier completion. A PENDING or RUNNING
        run raises :class:`InvalidStateError`.
        """
        return self._call("resume_run", self._tracker.resume_run, run_id)

    def complete_run(
        self, run_id: str, status: RunStatus | str, *, at: float | None = None
    ) -> None:
        """End a run: RUNNING to SUCCESS, FAILED or CANCELLED (PENDING to CANCELLED).

        Meant to work where a run most often ends, in an ``except`` block after
        Ctrl-C or a cancellation: it is not a cancellation point. Its waits run to
        their end even if the task is cancelled (or its cancellation is still
        pending); a cancellation that arrives meanwhile stays pending for the
        caller's next ``await``. ``at`` (Unix seconds, default now) is the end
        time, for importers.
        """
        return self._call("complete_run", self._tracker.complete_run, run_id, status, at=at)

    def get_run(self, run_id: str) -> Run:
        """The run with this id; raises :class:`RunNotFound`."""
        return self._call("get_run", self._tracker.get_run, run_id)

    def get_run_status(self, run_id: str) -> RunStatus:
        """The run's current status."""
        return self._call("get_run_status", self._tracker.get_run_status, run_id)

    def list_runs(self, experiment_id: str, *, view: RunView | str = "ACTIVE") -> list[Run]:
        """The runs of an experiment, by creation time.

        Hidden runs (:meth:`hide_run`) are left out unless ``view`` says otherwise:
        ``"HIDDEN"`` lists only them, ``"ALL"`` every run.
        """
        return self._call("list_runs", self._tracker.list_runs, experiment_id, view=view)

    def delete_run(self, run_id: str) -> None:
        """Delete a run (a tombstone in the journal); its id is unknown afterwards."""
        return self._call("delete_run", self._tracker.delete_run, run_id)

    def hide_run(self, run_id: str) -> None:
        """Hide a run (a soft delete, MLflow's ``delete_run``); :meth:`restore_run` undoes it.

        A hidden run keeps everything and takes logging as before; it is left out
        of :meth:`list_runs`, :meth:`filter_runs`, the CLI's and the dashboard's
        listings unless they ask for hidden runs (``view="HIDDEN"`` or ``"ALL"``),
        and :meth:`get_run` still returns it, with ``hidden=True``. Hiding a
        hidden run changes nothing. :meth:`delete_run` is a tombstone instead: the
        run is gone from every query and cannot come back.
        """
        return self._call("hide_run", self._tracker.hide_run, run_id)

    def restore_run(self, run_id: str) -> None:
        """Show a hidden run in the listings again (MLflow's ``restore_run``); else no change."""
        return self._call("restore_run", self._tracker.restore_run, run_id)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        """Set a string tag on a run (setting it again overwrites).

        Synchronous, bound to ``Tracker.set_tag_nowait``: no thread hop.
        """
        return self._tracker.set_tag_nowait(run_id, key, value)

    def set_tag_nowait(self, run_id: str, key: str, value: str) -> None:
        """:meth:`set_tag` for synchronous code on any thread; follows ``on_full``."""
        return self._tracker.set_tag_nowait(run_id, key, value)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run; a key the run does not have changes nothing."""
        return self._call("delete_tag", self._tracker.delete_tag, run_id, key)

    def rename_run(self, run_id: str, name: str) -> None:
        """Give a run another name."""
        return self._call("rename_run", self._tracker.rename_run, run_id, name)

    def filter_runs(
        self,
        experiment_id: str | None,
        filters: Sequence[ParamFilter],
        *,
        view: RunView | str = "ACTIVE",
    ) -> list[Run]:
        """Runs whose params match every filter (of one experiment, or all if None).

        Hidden runs are left out unless ``view`` is ``"HIDDEN"`` or ``"ALL"``.
        """
        return self._call(
            "filter_runs", self._tracker.filter_runs, experiment_id, filters, view=view
        )

    def search_runs(
        self,
        experiment_id: str | None = None,
        filters: Sequence[ParamFilter] = (),
        *,
        order_by: str = "created_at",
        desc: bool = False,
        limit: int = 100,
        after: str | None = None,
        view: RunView | str = "ACTIVE",
    ) -> RunPage:
        """One page of the runs that :meth:`filter_runs` finds, sorted; see ``RunPage``.

        ``order_by`` is ``created_at``, ``name``, ``status``, ``param:KEY`` or
        ``metric:KEY`` (by last value); runs without it come last, ties go by run
        id. Pass a page's ``next`` as ``after`` for the page that follows. Hidden
        runs are left out unless ``view`` is ``"HIDDEN"`` or ``"ALL"``.
        """
        return self._call(
            "search_runs",
            self._tracker.search_runs,
            experiment_id,
            filters,
            order_by=order_by,
            desc=desc,
            limit=limit,
            after=after,
            view=view,
        )

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Set one parameter (last write wins; the journal keeps the history).

        Synchronous, bound to ``Tracker.log_param_nowait``: no thread hop.
        """
        return self._tracker.log_param_nowait(run_id, key, value)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Set several parameters at once.

        Synchronous, bound to ``Tracker.log_params_nowait``: no thread hop.
        """
        return self._tracker.log_params_nowait(run_id, params)

    def log_param_nowait(self, run_id: str, key: str, value: Any) -> None:
        """:meth:`log_param` for synchronous code on any thread."""
        return self._tracker.log_param_nowait(run_id, key, value)

    def log_params_nowait(self, run_id: str, params: Mapping[str, Any]) -> None:
        """:meth:`log_params` for synchronous code on any thread."""
        return self._tracker.log_params_nowait(run_id, params)

    def get_params(self, run_id: str) -> dict[str, Any]:
        """The run's parameters as they were logged."""
        return self._call("get_params", self._tracker.get_params, run_id)

    def log_metric(
        self, run_id: str, key: str, step: int, value: float, *, timestamp: float | None = None
    ) -> None:
        """Record one point of a metric series; returns once it is queued.

        Synchronous, bound to ``Tracker.log_metric_nowait``: no thread hop.
        """
        return self._tracker.log_metric_nowait(run_id, key, step, value, timestamp=timestamp)

    def log_metric_nowait(
        self, run_id: str, key: str, step: int, value: float, *, timestamp: float | None = None
    ) -> None:
        """:meth:`log_metric` for synchronous code on any thread; follows ``on_full``."""
        return self._tracker.log_metric_nowait(run_id, key, step, value, timestamp=timestamp)

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int,
        *,
        timestamp: float | None = None,
    ) -> None:
        """Record one point of several metrics at the same step.

        Synchronous, bound to ``Tracker.log_metrics_nowait``: no thread hop.
        """
        return self._tracker.log_metrics_nowait(run_id, metrics, step, timestamp=timestamp)

    def log_metrics_nowait(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int,
        *,
        timestamp: float | None = None,
    ) -> None:
        """:meth:`log_metrics` for synchronous code on any thread; follows ``on_full``."""
        return self._tracker.log_metrics_nowait(run_id, metrics, step, timestamp=timestamp)

    def get_metrics(
        self, run_id: str, key: str, *, start: int | None = None, end: int | None = None
    ) -> list[MetricPoint]:
        """The series, ordered by step (equal steps keep their logging order).

        ``start`` and ``end`` (both inclusive, both optional) keep only the points
        with a step in that range; only the stored batches that reach it are read.
        """
        return self._call(
            "get_metrics", self._tracker.get_metrics, run_id, key, start=start, end=end
        )

    def get_metric_arrays(self, run_id: str, key: str) -> MetricArrays:
        """The series as three columns: ``MetricArrays(step, value, timestamp)``.

        ``array.array`` columns of typecodes ``'q'``, ``'d'`` and ``'d'``, in
        :meth:`get_metrics` order (by step; equal steps keep their logging order), built
        without a Python object per point: the fast path for notebooks, pandas and
        charts (``numpy.frombuffer(arrays.value)`` takes a column without a copy).
        Each call returns new arrays. Raises :class:`RunNotFound` for an unknown run; a
        key the run never logged gives three empty columns.
        """
        return self._call("get_metric_arrays", self._tracker.get_metric_arrays, run_id, key)

    def get_metrics_downsampled(
        self,
        run_id: str,
        key: str,
        *,
        points: int = 1000,
        start: int | None = None,
        end: int | None = None,
    ) -> list[MetricBucket]:
        """At most ``points`` buckets summarising the series' points with step in ``[start, end]``.

        Read from the rollup projection, so a million-point series costs a few
        thousand rows. The buckets follow ``get_metrics``' order and cover every
        point of the range exactly once: the first holds the range's first step
        alone, the last ends at the range's last point, and their steps strictly
        increase, so the true min and max of the range always appear. ``min``
        and ``max`` are over finite values (None for a bucket of only NaN or
        ±inf, which ``nonfinite`` counts). A run without that key gives ``[]``.

        Raises :class:`RunNotFound`, and ``ValueError`` if ``points`` < 2.
        """
        return self._call(
            "get_metrics_downsampled",
            self._tracker.get_metrics_downsampled,
            run_id,
            key,
            points=points,
            start=start,
            end=end,
        )

    def metric_summaries(
        self, run_ids: Sequence[str], keys: Sequence[str] | None = None
    ) -> dict[str, dict[str, MetricBucket]]:
        """For each live run of ``run_ids``, the whole-series summary of each metric key.

        One bucket per key (first and last step and value, min, max, count), for
        a table of many runs in one read; limited to ``keys`` if given. Unknown
        or deleted runs are left out.
        """
        return self._call("metric_summaries", self._tracker.metric_summaries, run_ids, keys)

    def list_metric_keys(self, run_id: str) -> list[str]:
        """The names of the run's metrics, sorted."""
        return self._call("list_metric_keys", self._tracker.list_metric_keys, run_id)

    @overload
    def log_artifact(self, run_id: str, name: str, data: bytes | bytearray | memoryview) -> str: ...
    @overload
    def log_artifact(
        self, run_id: str, name: str, data: str | os.PathLike[str]
    ) -> str | dict[str, str]: ...
    def log_artifact(
        self, run_id: str, name: str, data: bytes | bytearray | memoryview | str | os.PathLike[str]
    ) -> str | dict[str, str]:
        """Store ``data`` as a named artifact of the run; returns its SHA-256 (hex).

        ``data`` is bytes, or the path of a file or a directory. A file is streamed
        into the store in chunks of at most 4 MiB on a worker thread, never read
        whole into memory, and the call returns once it is committed (raising if
        it could not be). A directory becomes one artifact per file, named
        ``name/relative/path``, and the call returns ``{name: sha256}``. Bytes are
        enqueued like any event. Identical chunks are stored once; names are
        labels, never paths.
        """
        return self._call("log_artifact", self._tracker.log_artifact, run_id, name, data)

    def open_artifact(self, sha256: str) -> AsyncIterator[bytes]:
        """The content with this SHA-256 as an async iterator of chunks (at most 4 MiB each).

        Used without ``await``: ``async for chunk in tracker.open_artifact(sha): ...``.
        Raises :class:`ArtifactNotFound` when iterated, if no content has this digest.
        """
        return self._tracker.open_artifact(sha256)

    def download_artifact(
        self, sha256: str, dest: str | os.PathLike[str], *, overwrite: bool = True
    ) -> Path:
        """Stream the content with this SHA-256 into the file ``dest``, checking its hash.

        If ``dest`` is an existing directory, the file inside it is named after the
        artifact (its last ``/`` part, never a path; the digest if it has no usable
        name). The file appears only once complete and verified. Returns its path.

        Raises:
            ArtifactNotFound: no content has this digest.
            RunJournalError: the content read back does not match its digest.
            FileExistsError: ``dest`` exists and ``overwrite`` is false.
        """
        return self._call(
            "download_artifact", self._tracker.download_artifact, sha256, dest, overwrite=overwrite
        )

    def get_artifact_data(self, sha256: str) -> bytes:
        """The whole content with this SHA-256, in memory (for small ones; see
        :meth:`open_artifact` and :meth:`download_artifact`); raises :class:`ArtifactNotFound`.
        """
        return self._call("get_artifact_data", self._tracker.get_artifact_data, sha256)

    def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        """The run's artifacts, in logging order."""
        return self._call("list_artifacts", self._tracker.list_artifacts, run_id)

    def heartbeat(self, run_id: str) -> None:
        """Record that the run's process is alive, though it logged nothing lately.

        Synchronous, bound to ``Tracker.heartbeat_nowait``: no thread hop.
        """
        return self._tracker.heartbeat_nowait(run_id)

    def heartbeat_nowait(self, run_id: str) -> None:
        """:meth:`heartbeat` for synchronous code on any thread; follows ``on_full``."""
        return self._tracker.heartbeat_nowait(run_id)

    def set_span_id(self, run_id: str, span_id: str) -> None:
        """Link the run to a distributed trace (setting again overwrites)."""
        return self._call("set_span_id", self._tracker.set_span_id, run_id, span_id)

    def get_span_id(self, run_id: str) -> str | None:
        """The run's span id, or None."""
        return self._call("get_span_id", self._tracker.get_span_id, run_id)

    _DIRECT: ClassVar[tuple[tuple[str, str], ...]] = (
        ("flush_blocking", "flush_blocking"),
        ("stats", "stats"),
        ("set_tag", "set_tag_nowait"),
        ("set_tag_nowait", "set_tag_nowait"),
        ("log_param", "log_param_nowait"),
        ("log_params", "log_params_nowait"),
        ("log_param_nowait", "log_param_nowait"),
        ("log_params_nowait", "log_params_nowait"),
        ("log_metric", "log_metric_nowait"),
        ("log_metric_nowait", "log_metric_nowait"),
        ("log_metrics", "log_metrics_nowait"),
        ("log_metrics_nowait", "log_metrics_nowait"),
        ("open_artifact", "open_artifact"),
        ("heartbeat", "heartbeat_nowait"),
        ("heartbeat_nowait", "heartbeat_nowait"),
    )
    """Names bound on each instance straight to the async object's sync methods."""


class SyncRunMethods(SyncFace):
    """The methods of :class:`runjournal.run.RunHandle`, synchronous."""

    _handle: RunHandle

    def finish(self, status: RunStatus | str = "SUCCESS") -> None:
        """End the run now (SUCCESS, FAILED or CANCELLED); leaving the block then does nothing.

        Like :meth:`Tracker.complete_run`, it is not a cancellation point.
        """
        return self._call("finish", self._handle.finish, status)

    def log(self, metrics: Mapping[str, object], step: int | None = None) -> None:
        """Log every metric of ``metrics`` at one step (the handle's next, or ``step``).

        Synchronous, bound to ``RunHandle.log_nowait``: no thread hop.
        """
        return self._handle.log_nowait(metrics, step)

    def log_nowait(self, metrics: Mapping[str, object], step: int | None = None) -> None:
        """:meth:`log` for synchronous code on any thread; follows the tracker's ``on_full``."""
        return self._handle.log_nowait(metrics, step)

    def log_metric(self, key: str, value: object, step: int | None = None) -> None:
        """Log one metric point; the same step counter as :meth:`log`.

        Synchronous, bound to ``RunHandle.log_metric_nowait``: no thread hop.
        """
        return self._handle.log_metric_nowait(key, value, step)

    def log_metric_nowait(self, key: str, value: object, step: int | None = None) -> None:
        """:meth:`log_metric` for synchronous code on any thread."""
        return self._handle.log_metric_nowait(key, value, step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Set several parameters of the run.

        Synchronous, bound to ``RunHandle.log_params_nowait``: no thread hop.
        """
        return self._handle.log_params_nowait(params)

    def log_params_nowait(self, params: Mapping[str, Any]) -> None:
        """:meth:`log_params` for synchronous code on any thread."""
        return self._handle.log_params_nowait(params)

    def log_param(self, key: str, value: Any) -> None:
        """Set one parameter of the run.

        Synchronous, bound to ``RunHandle.log_param_nowait``: no thread hop.
        """
        return self._handle.log_param_nowait(key, value)

    def log_param_nowait(self, key: str, value: Any) -> None:
        """:meth:`log_param` for synchronous code on any thread."""
        return self._handle.log_param_nowait(key, value)

    def set_tag(self, key: str, value: str) -> None:
        """Set a string tag on the run.

        Synchronous, bound to ``RunHandle.set_tag_nowait``: no thread hop.
        """
        return self._handle.set_tag_nowait(key, value)

    def set_tag_nowait(self, key: str, value: str) -> None:
        """:meth:`set_tag` for synchronous code on any thread."""
        return self._handle.set_tag_nowait(key, value)

    def set_span_id(self, span_id: str) -> None:
        """Link the run to a distributed trace."""
        return self._call("set_span_id", self._handle.set_span_id, span_id)

    def log_artifact(self, name: str, data: ArtifactData) -> str | dict[str, str]:
        """Store an artifact of the run: bytes, or the path of a file or a directory.

        Returns its SHA-256, or ``{name: sha256}`` for a directory (as
        :meth:`Tracker.log_artifact`).
        """
        return self._call("log_artifact", self._handle.log_artifact, name, data)

    _DIRECT: ClassVar[tuple[tuple[str, str], ...]] = (
        ("log", "log_nowait"),
        ("log_nowait", "log_nowait"),
        ("log_metric", "log_metric_nowait"),
        ("log_metric_nowait", "log_metric_nowait"),
        ("log_params", "log_params_nowait"),
        ("log_params_nowait", "log_params_nowait"),
        ("log_param", "log_param_nowait"),
        ("log_param_nowait", "log_param_nowait"),
        ("set_tag", "set_tag_nowait"),
        ("set_tag_nowait", "set_tag_nowait"),
    )
    """Names bound on each instance straight to the async object's sync methods."""
