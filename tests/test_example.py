"""The example in examples/ is the Quick Start as a real program; it must run and tell the truth."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parent.parent / "examples" / "experiment_tracking.py"


def test_the_quick_start_example_runs_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "experiments.db"
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--db", str(db), "--verbose"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "experiment  gpt2-finetune" in out
    assert "status=SUCCESS" in out
    assert "learning_rate=0.0001, batch_size=32, optimizer='adamw'" in out
    assert "step  9  0.1000" in out
    assert "sha256=4ce51505466e0d779b151335ddf0de85a03d2ccb24580b2c988f9d42bc3c2af8" in out
    assert "filtered    1 run(s)" in out
    assert "span id     trace-abc-123" in out
    assert ". epoch 3: loss=0.2500" in out  # --verbose prints every step
    assert result.stderr == ""
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("SUCCESS",)]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_example_defaults_to_experiments_db_in_the_working_directory(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "experiments.db").exists()
    assert ". epoch" not in result.stdout  # quiet without --verbose


def test_running_the_example_twice_adds_a_run_to_the_same_experiment(tmp_path: Path) -> None:
    """``make demo`` twice: one experiment ``gpt2-finetune`` with two runs, not two experiments."""
    db = tmp_path / "experiments.db"
    outputs = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, str(EXAMPLE), "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert "runs        1 in this experiment" in outputs[0]
    assert "runs        2 in this experiment" in outputs[1]
    assert "filtered    2 run(s)" in outputs[1]
    with sqlite3.connect(db) as conn:
        experiments = conn.execute("SELECT id, name FROM experiments").fetchall()
        assert [name for _, name in experiments] == ["gpt2-finetune"]
        runs = conn.execute("SELECT experiment_id, status FROM runs").fetchall()
        assert runs == [(experiments[0][0], "SUCCESS")] * 2
    conn.close()
