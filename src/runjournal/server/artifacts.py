"""MLflow's artifact proxy, ``/api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>``.

- **PUT** stores the body as the run's artifact named ``<path>``. The body is
  spooled to a temporary file as it arrives, then streamed into the store by
  ``tracker.log_artifact`` in chunks: neither step holds the whole file in
  memory. The answer comes once the artifact is committed.
- **GET** of a path answers the newest artifact of the run with that name,
  streamed chunk by chunk.
- **GET** ``?path=<exp>/<run>/artifacts[/dir]`` lists one level of that
  directory, as MLflow does: ``{"files": [{"path", "is_dir", "file_size"}]}``,
  or ``{}`` when it is empty, missing, or a file.

Names are labels, never filesystem paths: a path with ``..``, an empty part or a
leading ``/`` is refused with 400.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any
from urllib.parse import parse_qs

import anyio

from runjournal.errors import RunNotFound
from runjournal.model import ArtifactRef, Run
from runjournal.server.rest import MlflowError, send_json
from runjournal.tracker import Tracker

__all__ = ["ARTIFACTS_PREFIX", "ArtifactProxy", "listing", "newest", "split_path"]

ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts/artifacts"
_SPOOL_CHUNK = 1024 * 1024


def _invalid(message: str) -> MlflowError:
    return MlflowError(400, "INVALID_PARAMETER_VALUE", message)


def split_path(path: str) -> tuple[str, str, str]:
    """``<exp>/<run>/artifacts[/<name>]`` as ``(exp, run, name)``; refuses ``..`` and ``/x``."""
    if path.startswith("/") or "\\" in path:
        raise _invalid(f"an artifact path must be relative, got {path!r}")
    parts = path.split("/")
    if len(parts) < 3 or parts[2] != "artifacts":
        raise _invalid(f"an artifact path is <experiment>/<run>/artifacts/..., got {path!r}")
    rest = parts[3:]
    while rest and rest[-1] == "":
        rest.pop()  # a listing of "dir/" is a listing of "dir"
    if any(p in ("", ".", "..") for p in rest):
        raise _invalid(f"an artifact path may not hold '..', '.' or empty parts: {path!r}")
    return parts[0], parts[1], "/".join(rest)


def newest(artifacts: list[ArtifactRef], name: str) -> ArtifactRef | None:
    """The newest artifact called ``name`` (the last logged of equal times)."""
    found = None
    for ref in artifacts:
        if ref.name == name and (found is None or ref.created_at >= found.created_at):
            found = ref
    return found


def listing(artifacts: list[ArtifactRef], directory: str) -> list[dict[str, Any]]:
    """One level of ``directory`` (``""``: the top): files with their size, then subdirectories."""
    prefix = f"{directory}/" if directory else ""
    files: dict[str, int] = {}
    dirs: set[str] = set()
    for ref in artifacts:
        if not ref.name.startswith(prefix):
            continue
        head, sep, _ = ref.name[len(prefix) :].partition("/")
        if sep:
            dirs.add(head)
        else:
            files[head] = ref.size_bytes  # the newest wins: artifacts come in logging order
    out: list[dict[str, Any]] = [
        {"path": name, "is_dir": False, "file_size": size} for name, size in sorted(files.items())
    ]
    out.extend({"path": name, "is_dir": True} for name in sorted(dirs - files.keys()))
    return out


class ArtifactProxy:
    """The ASGI app of the artifact proxy; writes go through ``tracker``."""

    def __init__(self, tracker: Tracker, spool_dir: str | None = None) -> None:
        self.tracker = tracker
        self.spool_dir = spool_dir

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        method = scope["method"]
        raw = scope["path"][len(ARTIFACTS_PREFIX) :]
        try:
            if method == "PUT":
                await self._put(_decoded(raw), receive, send)
            elif method == "GET" and raw in ("", "/"):
                await self._list(scope, send)
            elif method == "GET":
                await self._get(_decoded(raw), send)
            else:
                raise MlflowError(405, "BAD_REQUEST", f"{method} is not served on artifacts")
        except MlflowError as exc:
            await send_json(send, exc.status, {"error_code": exc.code, "message": exc.message})
        except RunNotFound as exc:
            await send_json(
                send, 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": str(exc)}
            )
        except (ValueError, TypeError) as exc:
            await send_json(
                send, 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": str(exc)}
            )

    async def _run(self, path: str) -> tuple[Run, str]:
        experiment_id, run_id, name = split_path(path)
        try:
            run = await self.tracker.get_run(run_id)
        except RunNotFound:
            raise MlflowError(404, "RESOURCE_DOES_NOT_EXIST", f"Run '{run_id}' not found") from None
        if run.experiment_id != experiment_id:
            raise MlflowError(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"run {run_id} is not in experiment {experiment_id}",
            )
        return run, name

    async def _put(self, path: str, receive: Any, send: Any) -> None:
        run, name = await self._run(path)
        if not name:
            raise _invalid("a PUT needs a file name after .../artifacts/")
        fd, spool = await anyio.to_thread.run_sync(
            lambda: tempfile.mkstemp(prefix=".runjournal-upload-", dir=self.spool_dir)
        )
        try:
            with os.fdopen(fd, "wb") as file:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise MlflowError(400, "BAD_REQUEST", "the client went away mid-upload")
                    piece = message.get("body", b"")
                    if piece:
                        await anyio.to_thread.run_sync(file.write, piece)
                    if not message.get("more_body", False):
                        break
            await self.tracker.log_artifact(run.id, name, spool)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spool)
        await send_json(send, 200, {})

    async def _get(self, path: str, send: Any) -> None:
        run, name = await self._run(path)
        ref = newest(await self.tracker.list_artifacts(run.id), name)
        if ref is None:
            raise MlflowError(
                404, "RESOURCE_DOES_NOT_EXIST", f"run {run.id} has no artifact {name!r}"
            )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(ref.size_bytes).encode()),
                ],
            }
        )
        async for piece in self.tracker.open_artifact(ref.sha256):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _list(self, scope: Any, send: Any) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        path = query.get("path", [""])[0]
        run, directory = await self._run(path)
        files = listing(await self.tracker.list_artifacts(run.id), directory)
        await send_json(send, 200, {"files": files} if files else {})


def _decoded(raw: str) -> str:
    if not raw.startswith("/"):
        raise _invalid("an artifact path follows /artifacts/")
    # The ASGI path is percent-decoded already (UTF-8): decoding again would misread "%41".
    return raw[1:]
