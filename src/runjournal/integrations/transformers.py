"""Hugging Face transformers: ``RunJournalCallback``, a ``TrainerCallback``.

    from runjournal.integrations.transformers import RunJournalCallback

    trainer = Trainer(model, args, train_dataset=..., callbacks=[RunJournalCallback()])
    trainer.train()

``on_train_begin`` starts a run of ``experiment`` (default ``"huggingface"``) named
``name`` (default ``args.run_name``) in the database ``db`` (else ``$RUNJOURNAL_DB``,
else ``./experiments.db``), with the model's config and the ``TrainingArguments``
as params (flattened to ``outer/inner`` keys; the arguments win where both have a
key, and secrets are masked as ``TrainingArguments.to_dict`` masks them), plus
``model/num_parameters``. ``on_log`` logs every number of the Trainer's logs at
``state.global_step`` under the Trainer's own names (``loss``, ``learning_rate``,
``eval_loss``, ...). ``on_train_end`` ends the run as SUCCESS; an evaluation after
it (``trainer.evaluate()``) still logs into that run, and the next ``train()``
starts a new one. A ``train()`` that raises never reaches ``on_train_end``: the run
is then ended at interpreter exit, FAILED (CANCELLED on ``KeyboardInterrupt``).
Only the world's process zero logs. Use it with ``report_to=[]`` (or
``"none"``) unless you want the other integrations too.

Needs the ``transformers`` extra: ``pip install 'runjournal[transformers]'``.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from runjournal.integrations._session import RunSession, flatten_params
from runjournal.model import RunStatus
from runjournal.sync import SyncRun

__all__ = ["DEFAULT_EXPERIMENT", "RunJournalCallback"]

DEFAULT_EXPERIMENT = "huggingface"
"""The experiment of a callback given none."""


class RunJournalCallback(TrainerCallback):
    """Log a Hugging Face ``Trainer``'s arguments, model config and logs to runjournal.

    ``db`` is the database path, ``experiment`` the experiment's name (got or
    created; default ``"huggingface"``), ``name`` the run's name (default
    ``args.run_name``). ``tags`` and ``system_metrics`` are passed to the run as in
    :meth:`runjournal.SyncTracker.run`.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | None = None,
        experiment: str | None = None,
        name: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        system_metrics: bool | float = False,
    ) -> None:
        self._session = RunSession(
            db,
            experiment if experiment is not None else DEFAULT_EXPERIMENT,
            name,
            tags=tags,
            system_metrics=system_metrics,
        )

    @property
    def run(self) -> SyncRun | None:
        """The current (or last) run, once training began."""
        return self._session.run

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        """Start a run with the model config and the training arguments as params."""
        if not state.is_world_process_zero:
            return
        params: dict[str, Any] = {}
        model = kwargs.get("model")
        config = getattr(model, "config", None)
        if config is not None and callable(getattr(config, "to_dict", None)):
            params.update(flatten_params(config.to_dict()))
        params.update(flatten_params(args.to_dict()))  # type: ignore[no-untyped-call]
        count = getattr(model, "num_parameters", None)
        if callable(count):
            params["model/num_parameters"] = int(count())
        self._session.start(name=self._session.name or args.run_name or None, params=params)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Log every number in ``logs`` at ``state.global_step``."""
        if not state.is_world_process_zero or not logs:
            return
        metrics = {k: v for k, v in logs.items() if _is_number(v)}
        if metrics:
            self._session.current().log(metrics, step=state.global_step)

    def on_train_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        """End the run as SUCCESS, with everything logged written."""
        if state.is_world_process_zero:
            self._session.end(RunStatus.SUCCESS)

    def close(self) -> None:
        """End a run still open (SUCCESS) and close the database."""
        self._session.close()


def _is_number(value: Any) -> bool:
    """A metric value: a real number (not a bool), or a 0-d array or tensor."""
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Real) or getattr(value, "ndim", None) == 0
