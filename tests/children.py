"""Child processes for the tests: watched so that a bug fails a test instead of hanging it."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def watched_child(args: list[str], timeout: float) -> Iterator[subprocess.Popen[str]]:
    """``python ARGS`` with piped stdio, read as it comes; killed if it outlives ``timeout``."""
    process = subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def get_context(
    name: str,
) -> multiprocessing.context.ForkContext | multiprocessing.context.SpawnContext:
    """The ``multiprocessing`` context for ``"fork"`` or ``"spawn"``."""
    if name == "fork":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")
