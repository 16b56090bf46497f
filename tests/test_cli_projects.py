"""The command line for real projects (issue 9): names and prefixes, the runs table, new
commands, safe output of hostile strings and huge values. Each runs ``runjournal`` as a
real subprocess against databases built here through the Tracker API."""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec
import pytest

from runjournal import RunStatus, Tracker
from runjournal.events import MetricsLogged
from runjournal.ids import new_id
from runjournal.model import MetricPoint
from runjournal.stores.base import NewEntry
from tests.test_cli import _ENV, Demo, assert_error, json_of, make_demo, ok, rj

ESC = "\x1b[31m"


async def _project(db: Path) -> dict[str, Any]:
    """Two experiments (one name shared by two), runs with nested params, tags and odd values."""
    ids: dict[str, Any] = {}
    async with Tracker.open(db) as t:
        ids["first"] = await t.create_experiment("shared")
        ids["second"] = await t.create_experiment("shared")
        ids["nlp"] = await t.create_experiment("nlp")
        runs = []
        for i, (opt, team, loss) in enumerate(
            [("adamw", "nlp", 0.3), ("sgd", "vision", 0.7), ("adamw", "nlp", math.nan)]
        ):
            run = await t.create_run(ids["first"], name=f"r{i}", tags={"team": team})
            await t.start_run(run)
            await t.log_params(run, {"optimizer": {"name": opt}, "p2": i, "p10": 10 - i})
            await t.log_metric(run, "loss", 5, loss)
            await t.log_metric(run, "acc", 7, 0.5 + i / 10)
            if i < 2:
                await t.complete_run(run, RunStatus.SUCCESS)
            runs.append(run)
        ids["runs"] = runs
        other = await t.create_run(ids["nlp"], name="lone")
        ids["lone"] = other
        await t.log_metric(other, "inf", 0, math.inf)
        await t.log_metric(other, "inf", 1, -math.inf)
        await t.log_param(other, "nothing", None)
        await t.log_artifact(other, "model.bin", b"weights-v1")
        await t.log_artifact(other, "model.bin", b"weights-v2")
        await t.set_tag(other, "note", f"{ESC}red\nline[bold]x")
        await t.log_param(other, "huge", "a" * 10_485_760)
        await t.flush()
        # A key that runjournal refuses at the call today, as a database written before that
        # rule (or by another tool) may still hold: the CLI must print it escaped.
        now = time.time()
        older = MetricsLogged(other, f"bad{ESC}key\n", [MetricPoint(0, 1.0, now)], now)
        await anyio.to_thread.run_sync(t.store.append, [NewEntry(new_id(), 1, older, now)])
    return ids


@pytest.fixture
def scratch(tmp_path: Path) -> Demo:
    """The demo database of tests/test_cli.py, this test's own."""
    return make_demo(tmp_path / "scratch.db")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    db = tmp_path_factory.mktemp("project") / "project.db"
    return db, asyncio.run(_project(db))


# -- defect 7: version, bare command ---------------------------------------------------------------
def test_version_goes_to_stdout() -> None:
    done = rj("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("runjournal ")
    assert done.stderr == ""


def test_bare_command_prints_help_and_succeeds() -> None:
    done = rj()
    assert done.returncode == 0
    assert "usage: runjournal" in done.stdout
    assert "COMMAND" in done.stdout
    assert done.stderr == ""


# -- names and prefixes ------------------------------------------------------------------------------
def test_experiment_by_name_takes_the_oldest(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    shown = json_of("--db", db, "experiments", "show", "shared")
    assert shown["experiment"]["id"] == ids["first"]
    listed = json_of("--db", db, "runs", "nlp")
    assert [r["id"] for r in listed] == [ids["lone"]]
    assert_error(rj("--db", db, "runs", "no-such-name"), "experiment not found: 'no-such-name'")


def test_run_by_prefix_any_case(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    run = ids["lone"]
    # ULIDs of runs made together share their first characters: take a prefix that is unique.
    others = list(ids["runs"])
    length = next(n for n in range(6, 27) if not any(o.startswith(run[:n]) for o in others))
    shown = json_of("--db", db, "show", run[:length].lower())
    assert shown["run"]["id"] == run


def test_ambiguous_and_short_prefixes(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    a, b = ids["runs"][:2]
    common = a[: next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)]
    assert len(common) >= 6  # made within the same millisecond range
    done = rj("--db", db, "show", common)
    assert_error(done, "ambiguous", a, b)
    assert_error(rj("--db", db, "show", a[:5]), "run not found")


# -- the runs table ------------------------------------------------------------------------------
def _ids(db: Path, *args: str) -> list[str]:
    return [r["id"] for r in json_of("--db", db, "runs", *args)]


def test_runs_filters_on_metrics_tags_status_and_nested_params(
    project: tuple[Path, dict[str, Any]],
) -> None:
    db, ids = project
    r0, r1, r2 = ids["runs"]
    exp = ids["first"]
    assert _ids(db, exp, "--filter", "metric.loss<0.5") == [r0]
    assert _ids(db, exp, "--filter", "tag.team=nlp") == [r0, r2]
    assert _ids(db, exp, "--filter", "status=success") == [r0, r1]
    assert _ids(db, exp, "--filter", "optimizer.name=adamw") == [r0, r2]
    assert _ids(db, exp, "--filter", "param.p2>=1", "--filter", "status!=RUNNING") == [r1]
    assert _ids(db, exp, "--status", "running") == [r2]
    assert _ids(db, "--status", "RUNNING,PENDING") == [r2, ids["lone"]]


def test_runs_json_carries_last_metric_values(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    (row,) = json_of("--db", db, "runs", ids["first"], "--filter", "p2=2")
    assert row["metrics"] == {"loss": "NaN", "acc": 0.7}


def test_runs_sort_and_limit(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    r0, r1, r2 = ids["runs"]
    exp = ids["first"]
    assert _ids(db, exp, "--sort", "-acc") == [r2, r1, r0]
    assert _ids(db, exp, "--sort", "loss") == [r0, r1, r2]  # NaN counts as missing: last
    assert _ids(db, exp, "--sort", "-loss") == [r1, r0, r2]
    assert _ids(db, exp, "--sort", "p10", "--limit", "2") == [r2, r1]
    assert _ids(db, "--sort", "-p2") == [r2, r1, r0, ids["lone"]]  # runs without it last


def test_runs_filter_on_a_key_no_run_has(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    done = rj("--db", db, "runs", ids["first"], "--filter", "metric.nope<1")
    assert done.returncode == 0
    assert done.stderr.count("\n") == 1
    assert "metric 'nope'" in done.stderr
    assert done.stdout == ""


def test_runs_table_columns_and_ids(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    out = ok("--db", db, "runs", ids["first"])
    header = next(line for line in out.splitlines() if " id " in line)
    assert header.index("p2") < header.index("p10")  # natural order
    assert "loss" in header and "acc" in header
    assert all(run in out for run in ids["runs"])  # whole ids, on one line each
    narrow = rj("--db", db, "runs", ids["first"], env={**_ENV, "COLUMNS": "60"})
    assert all(run in narrow.stdout for run in ids["runs"])
    chosen = ok("--db", db, "runs", ids["first"], "--columns", "acc")
    header = next(line for line in chosen.splitlines() if " id " in line)
    assert "acc" in header and "p2" not in header and "loss" not in header
    everything = ok("--db", db, "runs")
    assert "experiment" in everything and "nlp" in everything and ids["lone"] in everything


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--filter", "status<RUNNING"], "status takes = or != only"),
        (["--filter", "status=DONE"], "status is one of"),
        (["--filter", "metric.loss=abc"], "a metric compares to a number"),
        (["--status", "DONE"], "unknown status"),
        (["--limit", "-1"], "integer >= 0"),
        (["--precision", "0"], "precision"),
    ],
)
def test_runs_bad_options(
    project: tuple[Path, dict[str, Any]], args: list[str], fragment: str
) -> None:
    db, _ = project
    assert_error(rj("--db", db, "runs", *args), fragment, code=2)


# -- compare -------------------------------------------------------------------------------------
def test_compare_status_steps_and_precision(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    r0, _, r2 = ids["runs"]
    compared = json_of("--db", db, "compare", r0, r2)
    assert [r["status"] for r in compared["runs"]] == ["SUCCESS", "RUNNING"]
    metrics = {row["key"]: row for row in compared["metrics"]}
    assert metrics["loss"]["steps"] == [5, 5]
    assert metrics["loss"]["values"] == [0.3, "NaN"]
    assert metrics["acc"]["values"] == [0.5, 0.7]
    out = ok("--db", db, "compare", r0, r2)
    assert "RUNNING" in out and "(step 7)" in out
    precise = ok("--db", db, "compare", r0, ids["lone"], "--precision", "2")
    assert "0.3 (step 5)" in precise


def test_compare_rounds_to_four_digits(scratch: Demo) -> None:
    out = ok("--db", scratch.db, "compare", *scratch.run_ids)
    loss = scratch.losses[0][-1]
    assert f"{loss:.4g} (step 299)" in out
    assert repr(loss) not in out


# -- hostile strings and huge values ---------------------------------------------------------------
def test_control_characters_and_markup_are_escaped(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    for args in (["show", ids["lone"]], ["runs", "nlp"], ["log"], ["compare", ids["lone"]]):
        done = rj("--db", db, *args)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout, args
        assert "\x1b" not in done.stderr
    shown = ok("--db", db, "show", ids["lone"])
    assert "\\x1b[31mred\\nline[bold]x" in shown
    assert "bad\\x1b[31mkey\\n" in shown
    key_error = rj("--db", db, "metrics", ids["lone"], f"x{ESC}")
    assert_error(key_error, "\\x1b")


def test_huge_value_is_cut_in_tables_whole_in_json(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    started = time.monotonic()
    out = ok("--db", db, "show", ids["lone"])
    assert time.monotonic() - started < 30  # was minutes; a generous bound for a loaded machine
    assert "… (10,485,760 chars)" in out
    assert len(out) < 20_000
    shown = json_of("--db", db, "show", ids["lone"])
    assert shown["run"]["params"]["huge"] == "a" * 10_485_760


def test_json_writes_nan_and_infinities_as_strings(project: tuple[Path, dict[str, Any]]) -> None:
    db, ids = project
    points = json_of("--db", db, "metrics", ids["lone"], "inf")
    assert [p["value"] for p in points] == ["Infinity", "-Infinity"]
    shown = json_of("--db", db, "show", ids["lone"])
    assert shown["run"]["params"]["nothing"] is None  # None stays null, unlike NaN
    (nan_run,) = json_of("--db", db, "runs", ids["first"], "--filter", "p2=2")
    assert nan_run["metrics"]["loss"] == "NaN"


# -- metrics -------------------------------------------------------------------------------------
def test_metrics_several_keys_as_columns(scratch: Demo) -> None:
    run = scratch.run_ids[1]
    rows = list(
        csv.reader(
            io.StringIO(
                ok("--db", scratch.db, "metrics", run, "loss", "accuracy", "--format", "csv")
            )
        )
    )
    assert rows[0] == ["step", "loss", "accuracy"]
    assert rows[1] == ["0", repr(scratch.losses[1][0]), "0.6"]
    assert rows[2] == ["1", repr(scratch.losses[1][1]), ""]
    assert len(rows) == 1 + 300
    both = json_of("--db", scratch.db, "metrics", run, "loss", "accuracy")
    assert list(both) == ["loss", "accuracy"]
    assert [p["value"] for p in both["accuracy"]] == [0.6]
    table = rj("--db", scratch.db, "metrics", run, "loss", "accuracy")
    assert "accuracy" in table.stdout and "--all" in table.stderr
    everything = rj("--db", scratch.db, "metrics", run, "loss", "--all")
    assert everything.stderr == ""
    assert all(repr(v) in everything.stdout for v in scratch.losses[1])
    assert_error(rj("--db", scratch.db, "metrics", run, "loss", "nope"), "no metric 'nope'")


async def _long_series(db: Path) -> str:
    """30,000 points every 3 steps, committed in 30 batches (journal entries)."""
    async with Tracker.open(db) as t:
        run = await t.create_run(await t.create_experiment("long"))
        for batch in range(30):
            for i in range(batch * 1000, (batch + 1) * 1000):
                t.log_metric_nowait(run, "loss", 3 * i, float(i))
            await t.flush()
    return run


def test_metrics_table_of_a_long_series_prints_its_head_and_tail(tmp_path: Path) -> None:
    """Read from step windows around both ends (a few batches), not the whole series."""
    db = tmp_path / "long.db"
    run = asyncio.run(_long_series(db))
    table = rj("--db", db, "metrics", run, "loss")
    assert table.returncode == 0, table.stderr
    steps = [int(line.split()[1]) for line in table.stdout.splitlines() if line[:1] == "│"]
    assert steps == [3 * i for i in range(100)] + [3 * i for i in range(29_900, 30_000)]
    assert "200 of 30000 rows shown" in table.stderr


# -- artifacts -----------------------------------------------------------------------------------
def test_artifacts_list_and_get(project: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    db, ids = project
    listed = json_of("--db", db, "artifacts", ids["lone"])
    assert [(a["name"], a["size_bytes"]) for a in listed] == [("model.bin", 10), ("model.bin", 10)]
    v1 = hashlib.sha256(b"weights-v1").hexdigest()
    assert v1 in ok("--db", db, "artifacts", ids["lone"])
    dest = tmp_path / "model.bin"
    ok("--db", db, "artifacts", "get", "model.bin", "--run", ids["lone"], "-o", dest)
    assert dest.read_bytes() == b"weights-v2"  # a name means its newest artifact
    assert_error(
        rj("--db", db, "artifacts", "get", v1, "--run", ids["lone"], "-o", dest),
        "exists",
        "--force",
    )
    assert dest.read_bytes() == b"weights-v2"
    ok("--db", db, "artifacts", "get", v1[:8], "--run", ids["lone"], "-o", dest, "--force")
    assert dest.read_bytes() == b"weights-v1"
    piped = subprocess.run(
        [
            sys.executable,
            "-m",
            "runjournal.cli",
            "--db",
            str(db),
            "artifacts",
            "get",
            v1,
            "--run",
            ids["lone"],
            "-o",
            "-",
        ],
        capture_output=True,
        env=_ENV,
        check=True,
    )
    assert piped.stdout == b"weights-v1"
    missing = rj("--db", db, "artifacts", "get", "nope", "--run", ids["lone"], "-o", tmp_path / "x")
    assert_error(missing, "artifact not found", "nope")
    assert not (tmp_path / "x").exists()
    assert_error(rj("--db", db, "artifacts", "NOPE"), "run not found")
    assert_error(rj("--db", db, "artifacts", "get", "x", "-o", "y"), "--run", code=2)


# -- export refuses to overwrite -------------------------------------------------------------------
def test_export_refuses_to_overwrite_without_force(scratch: Demo, tmp_path: Path) -> None:
    dest = tmp_path / "precious.rjlog"
    dest.write_bytes(b"precious")
    assert_error(rj("--db", scratch.db, "export", dest), "exists", "--force")
    assert dest.read_bytes() == b"precious"
    exported = json_of("--db", scratch.db, "export", dest, "--force")
    assert exported["entries"] > 0
    assert dest.read_bytes() != b"precious"
    by_name = json_of("--db", scratch.db, "export", tmp_path / "e.rjlog", "--experiment", "empty")
    assert by_name["entries"] == 1


# -- runs end ------------------------------------------------------------------------------------
def test_runs_end_closes_a_dead_run(scratch: Demo) -> None:
    running = scratch.run_ids[2]
    ended = json_of("--db", scratch.db, "runs", "end", running[:20])
    assert ended["status"] == "FAILED"
    assert json_of("--db", scratch.db, "show", running)["run"]["status"] == "FAILED"
    assert_error(rj("--db", scratch.db, "runs", "end", running), "already ended (FAILED)")
    assert_error(rj("--db", scratch.db, "runs", "end", "NOPE"), "run not found")
    assert_error(
        rj("--db", scratch.db, "runs", "end", running, "--status", "RUNNING"),
        "invalid choice",
        code=2,
    )


def test_runs_end_with_a_status(scratch: Demo) -> None:
    running = scratch.run_ids[2]
    ok("--db", scratch.db, "runs", "end", running, "--status", "cancelled")
    assert json_of("--db", scratch.db, "show", running)["run"]["status"] == "CANCELLED"


# -- log and follow ------------------------------------------------------------------------------
def test_log_lists_positions_for_replay(scratch: Demo, tmp_path: Path) -> None:
    entries = json_of("--db", scratch.db, "log")
    assert [e["position"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0]["kind"] == "experiment.created"
    assert entries[0]["experiment_id"] == scratch.experiment_id
    created = next(e for e in entries if e["kind"] == "run.created")
    assert created["run_id"] == scratch.run_ids[0]
    page = json_of("--db", scratch.db, "log", "--after", "2", "--limit", "3")
    assert [e["position"] for e in page] == [3, 4, 5]
    text = ok("--db", scratch.db, "log", "--limit", "2").splitlines()
    assert len(text) == 2
    assert text[1].split()[0] == "2" and "run.created" in text[1] and scratch.run_ids[0] in text[1]
    into = tmp_path / "at.db"
    ok("--db", scratch.db, "replay", "--until", str(created["position"]), "--into", into)
    assert [r["id"] for r in json_of("--db", into, "runs")] == [scratch.run_ids[0]]
    assert_error(rj("--db", tmp_path / "missing.db", "log"), "no database at")
    assert_error(rj("--db", scratch.db, "log", "--after", "x"), "position", code=2)


async def _log_later(db: Path | str, run_id: str) -> None:
    async with Tracker.open(db) as t:
        await t.set_tag(run_id, "followed", "yes")


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_follow_tails_and_ctrl_c_exits_quietly(scratch: Demo) -> None:
    command = [sys.executable, "-m", "runjournal.cli", "--db", str(scratch.db), "follow"]
    with subprocess.Popen(
        [*command, "--format", "json", "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_ENV,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        try:
            backlog = [msgspec.json.decode(child.stdout.readline()) for _ in range(10)]
            head = len(json_of("--db", scratch.db, "log"))
            assert [b["position"] for b in backlog] == list(range(head - 9, head + 1))
            asyncio.run(_log_later(scratch.db, scratch.run_ids[2]))
            new = msgspec.json.decode(child.stdout.readline())
            assert (new["position"], new["kind"]) == (head + 1, "tag.set")
            assert new["run_id"] == scratch.run_ids[2]
            child.send_signal(signal.SIGINT)
            assert child.wait(timeout=30) == 0
            assert child.stderr.read() == b""
        finally:
            if child.poll() is None:
                child.kill()


# -- help ----------------------------------------------------------------------------------------
COMMANDS = [
    ["experiments"],
    ["experiments", "list"],
    ["experiments", "show"],
    ["experiments", "delete"],
    ["runs", "list"],
    ["runs", "end"],
    ["show"],
    ["metrics"],
    ["compare"],
    ["delete"],
    ["artifacts", "list"],
    ["artifacts", "get"],
    ["export"],
    ["import"],
    ["rebuild"],
    ["verify"],
    ["replay"],
    ["log"],
    ["follow"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_an_example_and_described_arguments(command: list[str]) -> None:
    from runjournal.cli import build_parser

    done = rj(*command, "--help")
    assert done.returncode == 0
    assert "example:\n  runjournal " in done.stdout
    parser = build_parser()
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    positionals = [
        a
        for a in parser._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    ]
    assert all(a.help for a in positionals), [a.dest for a in positionals]


def test_delete_help_says_when_it_asks() -> None:
    for command in (["delete"], ["experiments", "delete"]):
        text = " ".join(rj(*command, "--help").stdout.split())
        assert "On a terminal it asks for confirmation" in text
        assert "--yes skips" in text
