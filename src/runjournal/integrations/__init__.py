"""Adapters that let training frameworks log to runjournal, one module per framework.

- :mod:`runjournal.integrations.lightning`: ``RunJournalLogger``, a Lightning ``Logger``
  (the ``lightning`` extra);
- :mod:`runjournal.integrations.transformers`: ``RunJournalCallback``, a Hugging Face
  ``TrainerCallback`` (the ``transformers`` extra).

Each is a thin layer over the synchronous run handle (:class:`runjournal.SyncRun`).
Import the module of the framework you use; this package imports none of them, so
``import runjournal`` never imports torch, lightning or transformers.
"""

__all__: list[str] = []
