"""PyTorch Lightning: ``RunJournalLogger``, a ``lightning.pytorch.loggers.Logger``.

    from runjournal.integrations.lightning import RunJournalLogger

    trainer = Trainer(max_epochs=10, logger=RunJournalLogger(experiment="mnist"))
    trainer.fit(model, datamodule)

The run is created when Lightning first asks for it (``logger.version``, or the
first log), in the database ``db`` (else ``$RUNJOURNAL_DB``, else
``./experiments.db``). ``self.log(...)`` values arrive through :meth:`log_metrics`
at Lightning's step; ``self.save_hyperparameters()`` arrives through
:meth:`log_hyperparams`, flattened to ``outer/inner`` params. Lightning's
``finalize`` ends the run: ``"success"`` as SUCCESS; ``"failed"`` as FAILED with
the exception's ``error.type`` and ``error.message`` tags, or CANCELLED when the
exception is a ``KeyboardInterrupt``; ``"finished"`` (sent before a SLURM
requeue, when training has not finished) and anything else as CANCELLED. Only the
first ``finalize`` sets the status: a later stage of the same trainer
(``trainer.test`` after ``trainer.fit``) still logs into the run. With
``log_checkpoints=True`` every checkpoint file that ``ModelCheckpoint`` writes is
stored as an artifact ``checkpoints/<file name>``, and the tag
``lightning.best_checkpoint`` names the best one. Only global rank zero logs.

Needs the ``lightning`` extra: ``pip install 'runjournal[lightning]'``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers.logger import Logger

from runjournal.integrations._session import RunSession, flatten_params
from runjournal.model import RunStatus
from runjournal.sync import SyncRun

__all__ = ["FINALIZE_STATUS", "RunJournalLogger"]

FINALIZE_STATUS: Mapping[str, RunStatus] = {
    "success": RunStatus.SUCCESS,
    "failed": RunStatus.FAILED,
    "finished": RunStatus.CANCELLED,
}
"""How the status Lightning passes to ``finalize`` ends the run (anything else: CANCELLED)."""


class RunJournalLogger(Logger):
    """Log a Lightning trainer's metrics, hyperparameters and checkpoints to runjournal.

    ``db`` is the database path (default ``$RUNJOURNAL_DB``, else
    ``./experiments.db``), ``experiment`` the experiment's name (got or created),
    ``name`` the run's name. ``tags`` and ``system_metrics`` are passed to the run as
    in :meth:`runjournal.SyncTracker.run`. See the module docstring for how the run
    starts and ends.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | None = None,
        experiment: str = "default",
        name: str | None = None,
        log_checkpoints: bool = False,
        *,
        tags: Mapping[str, str] | None = None,
        system_metrics: bool | float = False,
    ) -> None:
        super().__init__()
        self._session = RunSession(db, experiment, name, tags=tags, system_metrics=system_metrics)
        self._log_checkpoints = log_checkpoints
        self._logged_checkpoints: dict[str, tuple[int, int]] = {}

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self._session.experiment

    @property
    def version(self) -> str | None:
        """The run's id (the run is created here on rank zero if it does not exist yet).

        Lightning puts checkpoints in ``<default_root_dir>/<name>/<version>/checkpoints``.
        """
        if rank_zero_only.rank != 0:  # type: ignore[attr-defined]
            return None
        return self._session.current().id

    @property
    @rank_zero_experiment
    def experiment(self) -> SyncRun:
        """The run (a :class:`runjournal.SyncRun`), for logging anything else to it."""
        return self._session.current()

    @property
    def run_id(self) -> str | None:
        """The run's id, or None before the run exists (and on other ranks)."""
        run = self._session.run
        return run.id if run is not None else None

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | argparse.Namespace, *args: Any, **kwargs: Any
    ) -> None:
        """Log hyperparameters as params, nested ones flattened to ``outer/inner`` keys."""
        flat = flatten_params(params)
        if flat:
            self._session.current().log_params(flat)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log every metric at ``step`` (the run's own step counter when None)."""
        self._session.current().log(metrics, step)

    @rank_zero_only
    def save(self) -> None:
        """Nothing to do: the writer commits within a moment of every log.

        Lightning calls this after every :meth:`log_metrics`, so it must stay free.
        """

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the run with the status Lightning reports (see :data:`FINALIZE_STATUS`)."""
        if self._session.run is None:
            return  # nothing was logged: no empty run
        self._session.end(FINALIZE_STATUS.get(status, RunStatus.CANCELLED))

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        """Store each new or rewritten checkpoint file as an artifact, if ``log_checkpoints``."""
        if not self._log_checkpoints:
            return
        paths = {
            checkpoint_callback.last_model_path,
            checkpoint_callback.best_model_path,
            *checkpoint_callback.best_k_models,
        }
        run = self._session.current()
        for path in sorted(p for p in paths if p):
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                continue  # a checkpoint ModelCheckpoint already removed
            version = (stat.st_mtime_ns, stat.st_size)
            if self._logged_checkpoints.get(path) == version:
                continue
            run.log_artifact(_artifact_name(path), Path(path))
            self._logged_checkpoints[path] = version
        best = checkpoint_callback.best_model_path
        if best:
            run.set_tag("lightning.best_checkpoint", _artifact_name(best))

    def close(self) -> None:
        """End the run if it is still open (SUCCESS) and close the database."""
        self._session.close()


def _artifact_name(path: str) -> str:
    return f"checkpoints/{os.path.basename(path)}"
