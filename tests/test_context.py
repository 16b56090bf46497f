"""Run context: the ``rj.*`` tags captured when a run starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from runjournal import ContextCaptureWarning
from runjournal.context import capture, git_tags


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_the_process_tags() -> None:
    tags = capture()
    assert tags["rj.host"] == socket.gethostname()
    assert tags["rj.pid"] == str(os.getpid())
    assert tags["rj.python"] == ".".join(map(str, sys.version_info[:3]))
    assert json.loads(tags["rj.argv"]) == sys.argv
    assert tags["rj.cwd"] == os.getcwd()
    assert "rj.user" in tags


def test_versions_of_frameworks_already_imported() -> None:
    import numpy
    import torch

    tags = capture()
    assert tags["rj.version.numpy"] == numpy.__version__
    assert tags["rj.version.torch"] == str(torch.__version__)


def test_git_commit_branch_and_dirty_counting_tracked_files_only(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "train.py").write_text("print(1)\n")
    git(tmp_path, "add", "train.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    (tmp_path / "untracked.txt").write_text("x")
    assert git_tags(str(tmp_path)) == {
        "rj.git.commit": head,
        "rj.git.branch": "main",
        "rj.git.dirty": "false",
    }
    (tmp_path / "train.py").write_text("print(2)\n")
    assert git_tags(str(tmp_path))["rj.git.dirty"] == "true"
    git(tmp_path, "checkout", "-q", "--detach")
    assert "rj.git.branch" not in git_tags(str(tmp_path))


def test_no_git_tags_outside_a_work_tree_or_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_tags(str(tmp_path)) == {}
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert git_tags(str(tmp_path)) == {}


def test_a_failure_to_capture_is_a_warning_never_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> str:
        raise OSError("no hostname here")

    monkeypatch.setattr(socket, "gethostname", broken)
    with pytest.warns(ContextCaptureWarning, match="rj.host"):
        tags = capture()
    assert "rj.host" not in tags
    assert "rj.pid" in tags
