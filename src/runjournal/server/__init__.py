"""``runjournal server``'s web face: the dashboard plus MLflow's tracking REST API and artifact proxy.

:func:`~runjournal.server.app.create_server_app` builds the ASGI app over one
tracker; :mod:`.rest` is the tracking API, :mod:`.artifacts` the artifact proxy.
The MLflow grammar and value mapping they use are pure, in ``runjournal.mlflow``.
"""

from __future__ import annotations

__all__: list[str] = []
