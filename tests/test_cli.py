"""The ``runjournal`` command line, run as a real subprocess against databases built here."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from runjournal import FilterOp, ParamFilter, RunStatus, Tracker
from runjournal.filter_syntax import parse_filter
from runjournal.journal import state_at
from runjournal.stores import SqliteBackend, store_for
from tests import pg
from tests.snapshot import snapshot

# -- running the command --------------------------------------------------------------------------
_ENV = {**os.environ, "TZ": "UTC", "COLUMNS": "250", "PYTHONIOENCODING": "utf-8"}
_ENV.pop("RUNJOURNAL_DB", None)


def rj(
    *args: str | os.PathLike[str], env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``runjournal ARGS...`` in a child process, output captured (so never on a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "runjournal.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env or _ENV,
        input=stdin,
        timeout=60,
        check=False,
    )


def ok(*args: str | os.PathLike[str]) -> str:
    """Run a command that must succeed and return its stdout."""
    done = rj(*args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def json_of(*args: str | os.PathLike[str]) -> Any:
    """Run a command with ``--format json`` and decode its output."""
    return msgspec.json.decode(ok(*args, "--format", "json"))


def assert_error(done: subprocess.CompletedProcess[str], *fragments: str, code: int = 1) -> None:
    """One clear line on stderr, nothing on stdout, the exit code, and no traceback."""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("runjournal: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert done.stdout == ""


def iso(timestamp: float) -> str:
    """How the tables show a time (the child runs with TZ=UTC)."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds")


# -- the data -------------------------------------------------------------------------------------
@dataclass
class Demo:
    """A database with one experiment of three runs, and what was logged into it."""

    db: Path | str
    """A SQLite file, or a ``postgresql://`` URL (a schema of the test server)."""
    experiment_id: str = ""
    run_ids: list[str] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)
    losses: list[list[float]] = field(default_factory=list)
    other_experiment_id: str = ""


EXPERIMENT_NAME = "gpt2-[red]finetune"
LOSS_STEPS = 300


async def _fill(demo: Demo) -> None:
    async with Tracker.open(demo.db) as t:
        demo.experiment_id = await t.create_experiment(
            EXPERIMENT_NAME, {"model": "gpt2"}, description="demo", tags={"team": "nlp"}
        )
        settings = [(1e-4, "sgd", True), (3e-4, "adamw", False), (1e-3, "adamw", False)]
        for i, (lr, optimizer, warmup) in enumerate(settings):
            run_id = await t.create_run(demo.experiment_id, name=f"run-{i}", tags={"seed": str(i)})
            await t.start_run(run_id)
            params: dict[str, Any] = {
                "learning_rate": lr,
                "batch_size": 32,
                "optimizer": optimizer,
                "warmup": warmup,
                "[red]x": [1, 2],
            }
            if i == 2:
                params["dropout"] = 0.1
            await t.log_params(run_id, params)
            losses = [1.0 / (step + 1) + lr for step in range(LOSS_STEPS)]
            for step, loss in enumerate(losses):
                await t.log_metric(run_id, "loss", step, loss)
            await t.log_metric(run_id, "accuracy", 0, 0.5 + i / 10)
            await t.log_artifact(run_id, "model.bin", b"weights" * (i + 1))
            await t.set_span_id(run_id, f"span-{i}")
            if i < 2:
                await t.complete_run(run_id, RunStatus.SUCCESS)
            demo.run_ids.append(run_id)
            demo.params.append(params)
            demo.losses.append(losses)
        demo.other_experiment_id = await t.create_experiment("empty")


def make_demo(db: Path | str) -> Demo:
    """Build the demo database at ``db`` through the Tracker API."""
    demo = Demo(db)
    asyncio.run(_fill(demo))
    return demo


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo database, shared by the tests that only read it: a SQLite file, then the same
    data in PostgreSQL (``--db postgresql://...``), where every such test runs again."""
    if request.param == "postgres":
        return make_demo(pg.fresh_dsn())
    return make_demo(tmp_path_factory.mktemp("cli") / "demo.db")


@pytest.fixture
def scratch(tmp_path: Path) -> Demo:
    """A demo database of this test's own, for the commands that change it."""
    return make_demo(tmp_path / "scratch.db")


# -- experiments ----------------------------------------------------------------------------------
def test_experiments_list_table_shows_names_literally(demo: Demo) -> None:
    out = ok("--db", demo.db, "experiments")
    assert demo.experiment_id in out
    assert EXPERIMENT_NAME in out  # markup in user data is printed, not interpreted
    assert out == ok("experiments", "list", "--db", demo.db)


def test_experiments_list_json(demo: Demo) -> None:
    listed = json_of("--db", demo.db, "experiments", "list")
    assert [(e["id"], e["name"], e["runs"]) for e in listed] == [
        (demo.experiment_id, EXPERIMENT_NAME, 3),
        (demo.other_experiment_id, "empty", 0),
    ]
    assert listed[0]["tags"] == {"team": "nlp"}
    assert listed[0]["description"] == "demo"


def test_experiments_show(demo: Demo) -> None:
    shown = json_of("--db", demo.db, "experiments", "show", demo.experiment_id)
    assert shown["experiment"]["config"] == {"model": "gpt2"}
    assert [r["id"] for r in shown["runs"]] == demo.run_ids
    out = ok("--db", demo.db, "experiments", "show", demo.experiment_id)
    assert all(run_id in out for run_id in demo.run_ids)
    assert '{"model":"gpt2"}' in out


# -- runs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("lr=0.1", ParamFilter("lr", FilterOp.EQ, 0.1)),
        ("lr==1e-3", ParamFilter("lr", FilterOp.EQ, 1e-3)),
        ("lr!=1", ParamFilter("lr", FilterOp.NE, 1)),
        ("lr<1e-3", ParamFilter("lr", FilterOp.LT, 1e-3)),
        ("lr <= 3", ParamFilter("lr", FilterOp.LTE, 3)),
        ("lr>-2.5", ParamFilter("lr", FilterOp.GT, -2.5)),
        ("lr>=0", ParamFilter("lr", FilterOp.GTE, 0)),
        ("name~adam", ParamFilter("name", FilterOp.CONTAINS, "adam")),
        ("layers~3", ParamFilter("layers", FilterOp.CONTAINS, 3)),
        ("name^=ad", ParamFilter("name", FilterOp.STARTS_WITH, "ad")),
        ("name^=3", ParamFilter("name", FilterOp.STARTS_WITH, "3")),
        ("name=adam", ParamFilter("name", FilterOp.EQ, "adam")),
        ('name="3"', ParamFilter("name", FilterOp.EQ, "3")),
        ("name=", ParamFilter("name", FilterOp.EQ, "")),
        ("flag=true", ParamFilter("flag", FilterOp.EQ, True)),
        ("x=null", ParamFilter("x", FilterOp.EQ, None)),
        ("x=[1, 2]", ParamFilter("x", FilterOp.EQ, [1, 2])),
        ('x={"a": 1}', ParamFilter("x", FilterOp.EQ, {"a": 1})),
        ("a.b/c=x=y", ParamFilter("a.b/c", FilterOp.EQ, "x=y")),
        ("[red]x~2", ParamFilter("[red]x", FilterOp.CONTAINS, 2)),
    ],
)
def test_parse_filter(expression: str, expected: ParamFilter) -> None:
    got = parse_filter(expression)
    assert (got.key, got.op, got.value) == (expected.key, expected.op, expected.value)
    assert type(got.value) is type(expected.value)


@pytest.mark.parametrize(
    "expression", ["learning_rate", "=1", "lr<[1]", "lr>null", "lr=99999999999999999999999"]
)
def test_parse_filter_refuses(expression: str) -> None:
    with pytest.raises(ValueError, match="bad filter expression"):
        parse_filter(expression)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], [0, 1, 2]),
        (["learning_rate<1e-3"], [0, 1]),
        (["learning_rate>=3e-4", "optimizer=adamw"], [1, 2]),
        (["optimizer^=ad", "warmup=false"], [1, 2]),
        (["[red]x~2", "dropout=0.1"], [2]),
        (["missing=1"], []),
    ],
)
def test_runs_filter(demo: Demo, filters: list[str], expected: list[int]) -> None:
    args = [arg for f in filters for arg in ("--filter", f)]
    found = json_of("--db", demo.db, "runs", demo.experiment_id, *args)
    assert [r["id"] for r in found] == [demo.run_ids[i] for i in expected]


def test_runs_table(demo: Demo) -> None:
    out = ok("--db", demo.db, "runs", demo.experiment_id)
    for i, run_id in enumerate(demo.run_ids):
        assert run_id in out
        assert f"run-{i}" in out
    header = next(line for line in out.splitlines() if " id " in line)
    assert "learning_rate" in header  # params that differ are columns
    assert "batch_size" not in header  # the same in every run: left out
    assert "0.0003" in out
    assert "RUNNING" in out
    assert "SUCCESS" in out


def test_runs_json_has_the_runs(demo: Demo) -> None:
    (run,) = json_of("--db", demo.db, "runs", demo.experiment_id, "--filter", "dropout=0.1")
    assert run["params"] == demo.params[2]
    assert run["tags"] == {"seed": "2"}
    assert run["status"] == "RUNNING"
    assert run["end_time"] is None


@pytest.mark.parametrize("expression", ["learning_rate", "lr<[1]"])
def test_runs_bad_filter(demo: Demo, expression: str) -> None:
    done = rj("--db", demo.db, "runs", demo.experiment_id, "--filter", expression)
    assert_error(done, "bad filter expression", repr(expression), code=2)


# -- one run --------------------------------------------------------------------------------------
def test_show_json(demo: Demo) -> None:
    shown = json_of("--db", demo.db, "show", demo.run_ids[0])
    assert shown["run"]["id"] == demo.run_ids[0]
    assert shown["run"]["status"] == "SUCCESS"
    assert shown["run"]["params"] == demo.params[0]
    assert shown["span_id"] == "span-0"
    losses = demo.losses[0]
    assert shown["metrics"] == [
        {"key": "accuracy", "count": 1, "last_step": 0, "last": 0.5, "min": 0.5, "max": 0.5},
        {
            "key": "loss",
            "count": LOSS_STEPS,
            "last_step": LOSS_STEPS - 1,
            "last": losses[-1],
            "min": min(losses),
            "max": max(losses),
        },
    ]
    (artifact,) = shown["artifacts"]
    assert (artifact["name"], artifact["size_bytes"]) == ("model.bin", len(b"weights"))


def test_show_table(demo: Demo) -> None:
    run = json_of("--db", demo.db, "show", demo.run_ids[0])["run"]
    out = ok("--db", demo.db, "show", demo.run_ids[0])
    for expected in (
        "SUCCESS",
        iso(run["created_at"]),
        iso(run["start_time"]),
        iso(run["end_time"]),
        "span-0",
        "[red]x",
        "[1,2]",
        "learning_rate",
        "0.0001",
        "seed",
        "model.bin",
        repr(demo.losses[0][-1]),
        repr(max(demo.losses[0])),
    ):
        assert expected in out, expected


# -- metrics --------------------------------------------------------------------------------------
def test_metrics_csv(demo: Demo) -> None:
    rows = list(
        csv.reader(
            io.StringIO(ok("--db", demo.db, "metrics", demo.run_ids[1], "loss", "--format", "csv"))
        )
    )
    assert rows[0] == ["step", "value", "timestamp"]
    assert [(int(s), float(v)) for s, v, _ in rows[1:]] == list(enumerate(demo.losses[1]))


def test_metrics_json(demo: Demo) -> None:
    points = json_of("--db", demo.db, "metrics", demo.run_ids[1], "loss")
    assert [(p["step"], p["value"]) for p in points] == list(enumerate(demo.losses[1]))
    assert all(isinstance(p["timestamp"], float) for p in points)


def test_metrics_table(demo: Demo) -> None:
    done = rj("--db", demo.db, "metrics", demo.run_ids[1], "accuracy")
    assert done.returncode == 0
    assert "0.6" in done.stdout
    assert done.stderr == ""
    long = rj("--db", demo.db, "metrics", demo.run_ids[1], "loss")
    assert repr(demo.losses[1][0]) in long.stdout
    assert repr(demo.losses[1][-1]) in long.stdout
    assert "--format csv" in long.stderr  # the table is cut; the note says how to get it all


def test_metrics_unknown_key(demo: Demo) -> None:
    assert_error(rj("--db", demo.db, "metrics", demo.run_ids[0], "nope"), "no metric 'nope'")


# -- compare --------------------------------------------------------------------------------------
def test_compare_json(demo: Demo) -> None:
    compared = json_of("--db", demo.db, "compare", *demo.run_ids)
    assert [r["id"] for r in compared["runs"]] == demo.run_ids
    params = {row["key"]: (row["values"], row["differs"]) for row in compared["params"]}
    assert params == {
        "[red]x": ([[1, 2]] * 3, False),
        "batch_size": ([32, 32, 32], False),
        "dropout": ([None, None, 0.1], True),
        "learning_rate": ([1e-4, 3e-4, 1e-3], True),
        "optimizer": (["sgd", "adamw", "adamw"], True),
        "warmup": ([True, False, False], True),
    }
    metrics = {row["key"]: (row["values"], row["differs"]) for row in compared["metrics"]}
    assert metrics == {
        "accuracy": ([0.5, 0.6, 0.7], True),
        "loss": ([losses[-1] for losses in demo.losses], True),
    }
    same = json_of("--db", demo.db, "compare", demo.run_ids[1], demo.run_ids[1])
    assert not any(row["differs"] for row in same["params"] + same["metrics"])


def test_compare_table_marks_differences(demo: Demo) -> None:
    out = ok("--db", demo.db, "compare", *demo.run_ids)
    lines = out.splitlines()

    def row(key: str) -> str:
        (line,) = [line for line in lines if f" {key} " in line]
        return line

    assert "*" in row("learning_rate")
    assert "*" in row("dropout")
    assert "*" not in row("batch_size")
    assert " - " in row("dropout")  # runs without the param
    assert all(run_id in out for run_id in demo.run_ids)


# -- deleting -------------------------------------------------------------------------------------
def test_delete_run(scratch: Demo) -> None:
    victim = scratch.run_ids[0]
    done = rj("--db", scratch.db, "delete", victim)
    assert done.returncode == 0, done.stderr
    assert victim in done.stderr
    assert_error(rj("--db", scratch.db, "show", victim), "run not found", victim)
    left = json_of("--db", scratch.db, "runs", scratch.experiment_id)
    assert [r["id"] for r in left] == scratch.run_ids[1:]
    assert_error(rj("--db", scratch.db, "delete", victim), "run not found")


def test_delete_experiment(scratch: Demo) -> None:
    done = rj("--db", scratch.db, "experiments", "delete", scratch.experiment_id, "--yes")
    assert done.returncode == 0, done.stderr
    listed = json_of("--db", scratch.db, "experiments")
    assert [e["id"] for e in listed] == [scratch.other_experiment_id]
    assert_error(rj("--db", scratch.db, "show", scratch.run_ids[2]), "run not found")


# -- the database option --------------------------------------------------------------------------
def test_db_from_environment_and_after_the_command(demo: Demo, tmp_path: Path) -> None:
    from_env = subprocess.run(
        [sys.executable, "-m", "runjournal.cli", "experiments", "--format", "json"],
        capture_output=True,
        text=True,
        env={**_ENV, "RUNJOURNAL_DB": str(demo.db)},
        check=True,
    )
    assert demo.experiment_id in from_env.stdout
    assert demo.experiment_id in ok("experiments", "--db", demo.db)
    assert demo.experiment_id in ok("--db", tmp_path / "other.db", "experiments", "--db", demo.db)


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["show", "NOPE"], "run not found: 'NOPE'"),
        (["metrics", "NOPE", "loss"], "run not found"),
        (["delete", "NOPE"], "run not found"),
        (["runs", "NOPE"], "experiment not found: 'NOPE'"),
        (["experiments", "show", "NOPE"], "experiment not found"),
        (["experiments", "delete", "NOPE"], "experiment not found"),
    ],
)
def test_unknown_ids(demo: Demo, args: list[str], fragment: str) -> None:
    assert_error(rj("--db", demo.db, *args), fragment)


def test_compare_unknown_id(demo: Demo) -> None:
    assert_error(rj("--db", demo.db, "compare", demo.run_ids[0], "NOPE"), "run not found")


READ_COMMANDS: list[Sequence[str]] = [
    ["experiments"],
    ["experiments", "show", "X"],
    ["runs", "X"],
    ["show", "X"],
    ["metrics", "X", "loss"],
    ["compare", "X", "Y"],
    ["delete", "X"],
]


@pytest.mark.parametrize("args", READ_COMMANDS)
def test_missing_database_is_not_created(tmp_path: Path, args: Sequence[str]) -> None:
    missing = tmp_path / "missing.db"
    assert_error(rj("--db", missing, *args), "no database at", str(missing))
    assert not missing.exists()


@pytest.mark.parametrize("content", [b"hello, not a database\n" * 10, b""])
def test_not_a_database(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    assert_error(rj("--db", path, "experiments"), "not a", "runjournal database")
    assert path.read_bytes() == content


def test_foreign_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.close()
    assert_error(rj("--db", path, "show", "X"), "not a runjournal one")


def test_directory_as_database(tmp_path: Path) -> None:
    assert_error(rj("--db", tmp_path, "experiments"), "is a directory")


def test_usage_errors_are_one_line(demo: Demo) -> None:
    assert_error(rj("--db", demo.db, "frobnicate"), "invalid choice", code=2)
    assert_error(rj("--db", demo.db, "show"), "required", code=2)
    assert_error(rj("--db", demo.db, "metrics", "X", "k", "--format", "xml"), "xml", code=2)


def test_without_rich(tmp_path: Path) -> None:
    """Without the optional extra, one line says what to install."""
    code = "import sys; sys.modules['rich'] = None; from runjournal.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "--db", str(tmp_path / "x.db"), "experiments"],
        capture_output=True,
        text=True,
        env=_ENV,
        check=False,
    )
    assert_error(done, "pip install 'runjournal[cli]'", code=2)


# -- export and import ----------------------------------------------------------------------------
def state(db: Path | str) -> Any:
    """Everything the database answers (read in this process: much faster than the CLI)."""

    async def read() -> Any:
        backend = store_for(db)
        try:
            return await snapshot(backend)
        finally:
            await backend.close()

    return asyncio.run(read())


def test_export_import_round_trip(demo: Demo, tmp_path: Path) -> None:
    log, copy = tmp_path / "all.rjlog", tmp_path / "copy.db"
    exported = json_of("--db", demo.db, "export", log)
    assert exported["blobs"] == 3
    points = 3 * (LOSS_STEPS + 1)
    per_run = 5  # created, started, params, artifact, span id
    assert exported["events"] == points + 3 * per_run + 2 + 2  # + 2 completed + 2 experiments
    first = json_of("--db", copy, "import", log)
    run_id = demo.run_ids[2]
    assert json_of("--db", copy, "show", run_id) == json_of("--db", demo.db, "show", run_id)
    (source,) = first["sources"]
    assert (source["appended"], source["duplicates"]) == (exported["entries"], 0)
    assert state(copy) == state(demo.db)
    again = json_of("--db", copy, "import", log, log)  # idempotent
    assert [s["appended"] for s in again["sources"]] == [0, 0]
    assert [s["duplicates"] for s in again["sources"]] == [exported["entries"]] * 2
    assert state(copy) == state(demo.db)


def test_import_a_database(demo: Demo, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    out = ok("--db", copy, "import", demo.db)
    assert "database" in out
    assert state(copy) == state(demo.db)


def test_export_one_run(demo: Demo, tmp_path: Path) -> None:
    log, copy = tmp_path / "run.rjlog", tmp_path / "copy.db"
    ok("--db", demo.db, "export", log, "--run", demo.run_ids[1])
    ok("--db", copy, "import", log)
    (experiment,) = json_of("--db", copy, "experiments")
    assert (experiment["id"], experiment["runs"]) == (demo.experiment_id, 1)
    assert json_of("--db", copy, "show", demo.run_ids[1]) == json_of(
        "--db", demo.db, "show", demo.run_ids[1]
    )


def test_export_one_experiment_and_after(demo: Demo, tmp_path: Path) -> None:
    log = tmp_path / "empty-experiment.rjlog"
    exported = json_of("--db", demo.db, "export", log, "--experiment", demo.other_experiment_id)
    assert exported["entries"] == 1
    rest = json_of("--db", demo.db, "export", tmp_path / "rest.rjlog", "--after", "1")
    assert rest["last_position"] == exported["last_position"]
    assert rest["entries"] == exported["last_position"] - 1


def test_export_unknown_ids(demo: Demo, tmp_path: Path) -> None:
    log = tmp_path / "x.rjlog"
    assert_error(rj("--db", demo.db, "export", log, "--run", "NOPE"), "run not found")
    assert_error(rj("--db", demo.db, "export", log, "--experiment", "NOPE"), "experiment not")
    assert not log.exists()
    assert_error(rj("--db", demo.db, "export", log, "--after", "-1"), "position", code=2)


def test_export_never_replaces_a_database(scratch: Demo, tmp_path: Path) -> None:
    assert isinstance(scratch.db, Path)
    before = scratch.db.read_bytes()
    assert_error(rj("--db", scratch.db, "export", scratch.db), "is an SQLite database")
    assert scratch.db.read_bytes() == before


def test_import_progress_is_quiet_when_piped(demo: Demo, tmp_path: Path) -> None:
    log = tmp_path / "all.rjlog"
    for args in (["export", log], ["import", log], ["rebuild"], ["verify"]):
        done = rj("--db", tmp_path / "copy.db" if args[0] != "export" else demo.db, *args)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_bar_on_a_terminal(demo: Demo, tmp_path: Path) -> None:
    import pty

    master, terminal = pty.openpty()
    command = [sys.executable, "-m", "runjournal.cli", "--db", str(demo.db)]
    with subprocess.Popen(
        [*command, "export", str(tmp_path / "all.rjlog")],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=_ENV,
    ) as child:
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert child.wait(timeout=60) == 0
    os.close(master)
    assert b"exporting" in shown


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_import_corrupt_log_file(demo: Demo, tmp_path: Path, damage: str) -> None:
    log, copy = tmp_path / "all.rjlog", tmp_path / "copy.db"
    ok("--db", demo.db, "export", log)
    size = log.stat().st_size
    if damage == "flip":
        _flip_byte(log, size // 2)
    else:
        log.write_bytes(log.read_bytes()[: size - 10])
    assert_error(rj("--db", copy, "import", log), "corrupt event-log file", str(log))
    assert not copy.exists()  # a failed import creates no database


def test_import_into_existing_database_keeps_it_on_failure(scratch: Demo, tmp_path: Path) -> None:
    junk = tmp_path / "junk.rjlog"
    junk.write_bytes(b"not an event log at all")
    before = state(scratch.db)
    assert_error(rj("--db", scratch.db, "import", junk), "corrupt event-log file", str(junk))
    assert state(scratch.db) == before


def test_import_bad_sources(tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.close()
    assert_error(rj("--db", copy, "import", foreign), "not a runjournal")
    assert_error(rj("--db", copy, "import", tmp_path / "missing.rjlog"), "missing.rjlog")
    assert_error(rj("--db", copy, "import", tmp_path), "directory")
    assert not copy.exists()


# -- rebuild and verify ---------------------------------------------------------------------------
def test_verify_finds_and_rebuild_repairs(scratch: Demo) -> None:
    assert json_of("--db", scratch.db, "verify")["differences"] == []
    with sqlite3.connect(scratch.db) as conn:
        conn.execute("UPDATE runs SET status = 'FAILED' WHERE id = ?", (scratch.run_ids[0],))
    conn.close()
    found = rj("--db", scratch.db, "verify", "--format", "json")
    assert found.returncode == 1
    (difference,) = msgspec.json.decode(found.stdout)["differences"]
    assert difference["live"]["status"] == "FAILED"
    assert difference["journal"]["status"] == "SUCCESS"
    table_form = rj("--db", scratch.db, "verify")
    assert table_form.returncode == 1
    assert scratch.run_ids[0] in table_form.stdout
    rebuilt = json_of("--db", scratch.db, "rebuild")
    assert rebuilt["position"] > 0
    assert "match" in ok("--db", scratch.db, "verify")
    assert json_of("--db", scratch.db, "show", scratch.run_ids[0])["run"]["status"] == "SUCCESS"


@pytest.mark.parametrize("command", [["rebuild"], ["verify"], ["export", "x.rjlog"]])
def test_journal_commands_need_a_database(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "missing.db"
    assert_error(rj("--db", missing, *command), "no database at")
    assert not missing.exists()


# -- replay ---------------------------------------------------------------------------------------
async def _snapshots(replayed: Path, source: Path | str, **until: Any) -> tuple[Any, Any]:
    backend = SqliteBackend(replayed)
    try:
        got = await snapshot(backend)
    finally:
        await backend.close()
    view = await state_at(source, **until)
    return got, await snapshot(view)


async def _journal_length(db: Path | str) -> int:
    backend = store_for(db)
    try:
        return await backend.head()
    finally:
        await backend.close()


def test_replay_until_positions(demo: Demo, tmp_path: Path) -> None:
    head = asyncio.run(_journal_length(demo.db))
    for position in (0, 1, 5, head // 2, head, head + 10):
        into = tmp_path / f"at-{position}.db"
        replayed = json_of("--db", demo.db, "replay", "--until", str(position), "--into", into)
        (source,) = replayed["sources"]
        assert source["appended"] == min(position, head)
        assert source["rejections"] == []
        got, want = asyncio.run(_snapshots(into, demo.db, position=position))
        assert got == want, position
    assert state(tmp_path / f"at-{head}.db") == state(demo.db)


@dataclass
class TwoPhases:
    """A database written in two phases, and the moment between them."""

    db: Path
    between: float
    early_run: str
    late_run: str


async def _two_phases(db: Path) -> TwoPhases:
    async with Tracker.open(db) as t:
        experiment = await t.create_experiment("phases")
        early = await t.create_run(experiment, name="early")
        await t.start_run(early)
        await t.log_param(early, "phase", 1)
        for step in range(10):
            await t.log_metric(early, "loss", step, 1.0)
        await t.flush()
        between = time.time()
        await asyncio.sleep(0.05)
        late = await t.create_run(experiment, name="late")
        await t.log_param(early, "phase", 2)
        for step in range(10, 20):
            await t.log_metric(early, "loss", step, 2.0)
        await t.set_tag(early, "phase", "2")  # commits in one batch with the points above
        await t.complete_run(early, RunStatus.SUCCESS)
    return TwoPhases(db, between, early, late)


def test_replay_until_time(tmp_path: Path) -> None:
    phases = asyncio.run(_two_phases(tmp_path / "phases.db"))
    into = tmp_path / "then.db"
    moment = datetime.fromtimestamp(phases.between, tz=UTC).isoformat()
    ok("--db", phases.db, "replay", "--until", moment, "--into", into)
    got, want = asyncio.run(_snapshots(into, phases.db, time=phases.between))
    assert got == want
    then = json_of("--db", into, "show", phases.early_run)
    assert then["run"]["status"] == "RUNNING"
    assert then["run"]["params"] == {"phase": 1}
    assert_error(rj("--db", into, "show", phases.late_run), "run not found")


def test_replay_until_time_leaves_out_later_metric_points(tmp_path: Path) -> None:
    phases = asyncio.run(_two_phases(tmp_path / "phases.db"))
    into = tmp_path / "then.db"
    moment = datetime.fromtimestamp(phases.between, tz=UTC).isoformat()
    ok("--db", phases.db, "replay", "--until", moment, "--into", into)
    points = json_of("--db", into, "metrics", phases.early_run, "loss")
    assert [p["step"] for p in points] == list(range(10))


def test_replay_refuses_to_overwrite(demo: Demo, tmp_path: Path) -> None:
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"precious")
    assert_error(rj("--db", demo.db, "replay", "--until", "3", "--into", existing), "exists")
    assert existing.read_bytes() == b"precious"
    bad = rj("--db", demo.db, "replay", "--until", "yesterday", "--into", tmp_path / "n.db")
    assert_error(bad, "ISO-8601", code=2)
    missing = rj("--db", tmp_path / "nope.db", "replay", "--until", "3", "--into", existing)
    assert_error(missing, "no database at")
