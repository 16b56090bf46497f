"""Run context: where, by whom and from what code a run was started, as ``rj.*`` tags.

:func:`capture` reads the host, user, process id, Python version, command line and
working directory, the git commit, branch and whether tracked files changed (one
``git status`` with a 1 s timeout; nothing when git is missing or this is no work
tree), and the versions of the frameworks the program has already imported. It
never raises: whatever cannot be read is left out, with a
:class:`ContextCaptureWarning`.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import warnings
from collections.abc import Callable

__all__ = ["GIT_TIMEOUT", "PACKAGES", "ContextCaptureWarning", "capture", "git_tags"]

GIT_TIMEOUT = 1.0
"""Seconds ``git status`` may take before the git tags are given up."""

PACKAGES = ("torch", "numpy", "transformers", "lightning")
"""Frameworks whose version is recorded (``rj.version.<package>``) when already imported."""


class ContextCaptureWarning(RuntimeWarning):
    """A part of the run context could not be read; the run goes on without it."""


def capture() -> dict[str, str]:
    """The ``rj.*`` tags of this process, now."""
    tags: dict[str, str] = {}
    readers: list[tuple[str, Callable[[], str | None]]] = [
        ("rj.host", socket.gethostname),
        ("rj.user", _user),
        ("rj.pid", lambda: str(os.getpid())),
        ("rj.python", platform.python_version),
        ("rj.argv", lambda: json.dumps(sys.argv)),
        ("rj.cwd", os.getcwd),
    ]
    for key, read in readers:
        try:
            value = read()
        except Exception as exc:  # noqa: BLE001 - capturing never fails the run
            _warn(key, exc)
            continue
        if value is not None:
            tags[key] = value
    try:
        tags.update(git_tags())
    except Exception as exc:  # noqa: BLE001
        _warn("rj.git", exc)
    for package in PACKAGES:
        module = sys.modules.get(package)
        version = getattr(module, "__version__", None)
        if version is not None:
            tags[f"rj.version.{package}"] = str(version)
    return tags


def git_tags(cwd: str | None = None) -> dict[str, str]:
    """``rj.git.commit``, ``rj.git.branch`` and ``rj.git.dirty`` of the work tree at ``cwd``.

    Empty when git is missing or ``cwd`` is in no work tree. ``rj.git.dirty`` is
    ``"true"`` when a tracked file differs from ``HEAD`` (untracked files do not
    count); a detached ``HEAD`` has no branch tag.
    """
    import subprocess  # only runs start processes: importing runjournal stays light

    try:
        result = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
            # A status must not take the index lock that the user's own git may need.
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return {}
    except subprocess.TimeoutExpired:
        _warn("rj.git", TimeoutError(f"git status took more than {GIT_TIMEOUT} s"))
        return {}
    if result.returncode != 0:
        return {}
    tags: dict[str, str] = {}
    dirty = False
    for line in result.stdout.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.removeprefix("# branch.oid ")
            if commit != "(initial)":
                tags["rj.git.commit"] = commit
        elif line.startswith("# branch.head "):
            branch = line.removeprefix("# branch.head ")
            if branch != "(detached)":
                tags["rj.git.branch"] = branch
        elif line and not line.startswith("#"):
            dirty = True
    tags["rj.git.dirty"] = "true" if dirty else "false"
    return tags


def _user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): leave it out quietly
        return None


def _warn(what: str, exc: BaseException) -> None:
    warnings.warn(
        f"runjournal: could not capture {what}: {exc!r}", ContextCaptureWarning, stacklevel=3
    )
