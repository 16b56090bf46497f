"""What the integrations share: lazy imports, the examples as real programs, params as people have them."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from runjournal.integrations._session import database_path, flatten_params, param_value

EXAMPLES = Path(__file__).parent.parent / "examples"
HEAVY = ["torch", "lightning", "transformers", "psutil", "pynvml", "accelerate"]


def imported_after(code: str) -> list[str]:
    """The heavy modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.split()


def test_import_runjournal_imports_no_framework() -> None:
    assert imported_after("import runjournal, runjournal.integrations") == []


def test_a_run_without_system_metrics_imports_no_psutil(tmp_path: Path) -> None:
    code = (
        "import runjournal as rj\n"
        f"with rj.init(experiment='light', db={str(tmp_path / 'e.db')!r}) as run:\n"
        "    rj.log({'loss': 1.0})"
    )
    assert imported_after(code) == []


def test_each_integration_imports_its_framework_when_imported() -> None:
    assert "lightning" in imported_after("import runjournal.integrations.lightning")
    hugging_face = imported_after("import runjournal.integrations.transformers")
    assert "transformers" in hugging_face
    assert "lightning" not in hugging_face


def run_example(name: str, cwd: Path, *args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore::FutureWarning"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--db", str(cwd / "e.db"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(cwd / "e.db") as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("SUCCESS",)]
    conn.close()
    return result.stdout


def test_the_lightning_example_runs(tmp_path: Path) -> None:
    out = run_example("lightning_example.py", tmp_path, "--epochs", "2")
    assert " SUCCESS\n" in out
    assert "params      {'lr': 0.05, 'hidden': 16}" in out
    assert "metrics     ['epoch', 'train_loss', 'val_loss']" in out
    assert "(2 epochs)" in out


def test_the_lightning_example_stores_checkpoints(tmp_path: Path) -> None:
    out = run_example("lightning_example.py", tmp_path, "--epochs", "1", "--checkpoints")
    assert "artifacts   ['checkpoints/epoch=0-step=8.ckpt']" in out


def test_the_hugging_face_example_runs(tmp_path: Path) -> None:
    out = run_example("hf_trainer_example.py", tmp_path, "--epochs", "1", "--out", "out")
    assert " SUCCESS\n" in out
    assert "learning_rate=0.001 num_hidden_layers=2" in out
    assert "loss        4 points, steps 2..8" in out
    assert "eval_loss   at steps [8]" in out


# -- params as frameworks hand them over --------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Optim:
    name: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)


def test_flatten_params_nests_with_slashes_and_keeps_stored_kinds() -> None:
    params = argparse.Namespace(
        lr=np.float32(0.5),
        steps=np.int64(10),
        scale=torch.tensor(2.0),
        color=Color.RED,
        path=Path("/data"),
        optim=Optim(),
        layers=[64, np.int64(32)],
        nested={"a": {"b": 1, 2: "two"}, "empty": {}},
        activation=torch.nn.ReLU,
        huge=2**70,
        dtype=torch.float32,
        nothing=None,
        flag=True,
    )
    assert flatten_params(params) == {
        "lr": 0.5,
        "steps": 10,
        "scale": 2.0,
        "color": "red",
        "path": "/data",
        "optim/name": "adamw",
        "optim/betas": [0.9, 0.999],
        "layers": [64, 32],
        "nested/a/b": 1,
        "nested/a/2": "two",
        "nested/empty": {},
        "activation": "torch.nn.modules.activation.ReLU",
        "huge": str(2**70),
        "dtype": "torch.float32",
        "nothing": None,
        "flag": True,
    }


def test_param_value_of_arrays_and_functions() -> None:
    assert param_value(np.arange(3)) == "[0 1 2]"
    assert param_value(len) == "builtins.len"
    assert param_value({"x": (1, 2)}) == {"x": [1, 2]}


def test_flatten_params_refuses_what_is_not_a_mapping() -> None:
    with pytest.raises(TypeError, match="mapping or a Namespace"):
        flatten_params([1, 2])  # type: ignore[arg-type]


def test_the_database_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNJOURNAL_DB", raising=False)
    assert database_path(None) == "experiments.db"
    monkeypatch.setenv("RUNJOURNAL_DB", "/tmp/x.db")
    assert database_path(None) == "/tmp/x.db"
    assert database_path("given.db") == "given.db"
