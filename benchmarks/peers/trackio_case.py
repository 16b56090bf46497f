"""Trackio (Hugging Face): local SQLite storage under ``TRACKIO_DIR``, no Space, no server."""

from __future__ import annotations

import time
from importlib import metadata

from ._common import (
    METRIC_KEY,
    PROJECT_NAME,
    RUN_NAME,
    CaseDirs,
    PeerResult,
    PeerUnavailableError,
    build_result,
    check_series,
    expected_value,
)

PEER = "trackio"


def environment(dirs: CaseDirs) -> dict[str, str]:
    """Return the variables that keep trackio's data in the case's store dir.

    ``TRACKIO_DIR`` is read once at import, so it must be in the environment before
    ``import trackio``.
    """
    return {"TRACKIO_DIR": str(dirs.store)}


def run(points: int, dirs: CaseDirs) -> PeerResult:
    """Log ``points`` points with one ``Run.log`` call each, finish, and read them back."""
    try:
        import trackio  # type: ignore[import-not-found,unused-ignore]
        from trackio.sqlite_storage import (  # type: ignore[import-not-found,unused-ignore]
            SQLiteStorage,
        )
    except ImportError as exc:
        raise PeerUnavailableError(str(exc)) from exc

    payloads = [{METRIC_KEY: expected_value(i)} for i in range(points)]
    latencies = [0] * points
    # System monitors are off so that the result does not depend on whether psutil happens
    # to be installed (trackio turns CPU logging on when it is).
    tracker = trackio.init(
        project=PROJECT_NAME,
        name=RUN_NAME,
        embed=False,
        auto_log_cpu=False,
        auto_log_gpu=False,
    )
    log = tracker.log
    clock = time.perf_counter_ns
    start = clock()
    for i in range(points):
        payload = payloads[i]
        t0 = clock()
        log(payload, step=i)
        latencies[i] = clock() - t0
    loop = clock() - start
    # finish() joins the background sender thread that writes the queued batches to SQLite.
    trackio.finish()  # type: ignore[no-untyped-call,unused-ignore]
    elapsed = clock() - start

    rows = SQLiteStorage.get_metric_values(PROJECT_NAME, RUN_NAME, METRIC_KEY)
    read_back = check_series(((int(r["step"]), float(r["value"])) for r in rows), points)
    return build_result(
        peer=PEER,
        case="trackio",
        n_points=points,
        points_per_call=1,
        latencies_ns=latencies,
        loop_ns=loop,
        elapsed_ns=elapsed,
        dirs=dirs,
        read_back=read_back,
        version=metadata.version("trackio"),
        notes=[
            (
                "Run.log per point; end-to-end includes trackio.finish() (sender-thread flush"
                " to SQLite, WAL, synchronous=NORMAL); auto CPU/GPU logging off"
            ),
            "read back with SQLiteStorage.get_metric_values (what trackio's CLI/dashboard use)",
        ],
    )
