"""``runjournal server``'s app: the dashboard, MLflow's tracking API and its artifact proxy.

One ASGI app over one tracker. The dashboard is the same Litestar app as
``runjournal ui`` and stays read-only; the MLflow paths accept writes. The
dashboard's guard (``runjournal.ui.security``) checks every request first: the
Host header, and the token when one is set (the MLflow client sends
``MLFLOW_TRACKING_TOKEN`` as ``Authorization: Bearer``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runjournal.server.artifacts import ARTIFACTS_PREFIX, ArtifactProxy
from runjournal.server.rest import API_PREFIXES, MlflowApi, send_json
from runjournal.tracker import Tracker
from runjournal.ui.app import UiApp, create_app
from runjournal.ui.security import Guard

__all__ = ["WRITABLE_PREFIXES", "create_server_app"]

_SERVER_INFO = "/api/3.0/mlflow/server-info"
WRITABLE_PREFIXES = (*API_PREFIXES, ARTIFACTS_PREFIX + "/", _SERVER_INFO)
"""The paths where the server takes more than GET and HEAD."""


class _Dispatch:
    """Routes the MLflow paths to their apps, and everything else to the dashboard."""

    def __init__(self, dashboard: Any, api: MlflowApi, artifacts: ArtifactProxy) -> None:
        self.dashboard = dashboard
        self.api = api
        self.artifacts = artifacts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(API_PREFIXES):
                await self.api(scope, receive, send)
                return
            if path == ARTIFACTS_PREFIX or path.startswith(ARTIFACTS_PREFIX + "/"):
                await self.artifacts(scope, receive, send)
                return
            if path == _SERVER_INFO:
                # The client asks before downloads; no multipart, no workspaces here.
                await send_json(
                    send,
                    200,
                    {
                        "multipart_uploads_enabled": False,
                        "multipart_downloads_enabled": False,
                        "workspaces_enabled": False,
                        "store_type": None,
                    },
                )
                return
        await self.dashboard(scope, receive, send)


def create_server_app(
    tracker: Tracker,
    *,
    token: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    bound_host: str = "127.0.0.1",
    spool_dir: str | None = None,
) -> UiApp:
    """The server's ASGI app over ``tracker``, which must be writable.

    ``token``, ``allowed_hosts`` and ``bound_host`` as for the dashboard's
    :func:`~runjournal.ui.create_app`. ``spool_dir`` is where artifact uploads
    wait on disk until they are stored (default: the system's temporary folder).
    """
    dashboard = create_app(tracker, bound_host=bound_host)
    dispatch = _Dispatch(dashboard.litestar, MlflowApi(tracker), ArtifactProxy(tracker, spool_dir))
    guard = Guard(
        dispatch,
        bound_host=bound_host,
        token=token,
        allowed_hosts=allowed_hosts,
        position=tracker.store.head,
        writable=WRITABLE_PREFIXES,
    )
    return UiApp(dashboard.litestar, guard, dashboard.streams)
