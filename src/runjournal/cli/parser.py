"""The command line: the parser (argparse) of every command, and which function runs each.

Each command is ``async def handler(args, out) -> exit code``, set as the
parsed arguments' ``handler``. Usage errors are one line, like every other
error (:mod:`runjournal.cli.errors`), with exit code 2. The handlers' modules
need rich, so they are imported only when the parser is built.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from runjournal.cli.errors import PROG, print_error

if TYPE_CHECKING:
    from runjournal.cli.output import Output

__all__ = ["DEFAULT_ACTIONS", "Handler", "build_parser", "with_default_action"]

Handler = Callable[[argparse.Namespace, "Output"], Coroutine[Any, Any, int]]
"""A command: runs with the parsed arguments and the output streams, returns the exit code."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        print_error(f"{message} (see '{self.prog} --help')")
        self.exit(2)


class _Version(argparse.Action):
    """``--version`` on stdout; looks the version up only when asked (importlib.metadata is slow)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        import importlib.metadata

        print(f"{parser.prog} {importlib.metadata.version(PROG)}")
        parser.exit()


DEFAULT_ACTIONS = {
    "runs": ("list", "end", "resume", "hide", "restore"),
    "artifacts": ("list", "get"),
}
"""Commands whose first word may be an action; without one, the first action is meant."""


def with_default_action(argv: Sequence[str]) -> list[str]:
    """``argv`` with the implied action spelled out: ``runs EXP`` is ``runs list EXP``.

    So ``runs end RUN`` and ``runs EXPERIMENT`` share a command; an experiment
    named ``end`` is still reached as ``runs list end``.
    """
    args = _glued_sort(argv)
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] == "--db" else 1  # the only global option with a value
    if i + 1 <= len(args) and i < len(args) and args[i] in DEFAULT_ACTIONS:
        actions = DEFAULT_ACTIONS[args[i]]
        following = args[i + 1] if i + 1 < len(args) else None
        if following not in (*actions, "-h", "--help"):
            args.insert(i + 1, actions[0])
    return args


def _glued_sort(argv: Sequence[str]) -> list[str]:
    """``--sort -lr`` as ``--sort=-lr``: argparse would take ``-lr`` for an option."""
    args: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--sort":
            value = next(tokens, None)
            args.append(token if value is None else f"--sort={value}")
        else:
            args.append(token)
    return args


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command line; each command sets ``handler``."""
    from runjournal.cli.database import DB_ENV, default_db

    db_help = f"the database (default: ${DB_ENV} or ./experiments.db)"
    parser = _Parser(
        prog=PROG,
        description="Look at, delete, export, import and replay runjournal experiment data.",
        epilog="Run 'runjournal COMMAND --help' for the options and an example of a command. "
        "An experiment is given by its id or its name, a run by its id or a unique "
        "prefix of at least 6 characters.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", metavar="PATH", default=default_db(), help=db_help)
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="print the version of runjournal and exit"
    )
    parser.set_defaults(handler=None)
    # --db also goes after the command. SUPPRESS keeps the value given before the command
    # (or the default) unless the command's own --db is given.
    db_option = _Parser(add_help=False)
    db_option.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help=db_help)
    commands = _Commands(parser, db_option)
    _add_experiments_command(commands)
    _add_run_commands(commands)
    _add_artifacts_command(commands)
    _add_journal_commands(commands)
    _add_ui_command(commands)
    _add_server_command(commands)
    return parser


_EXPERIMENT_HELP = "an experiment id, or a name (the oldest experiment of that name)"
_RUN_HELP = "a run id, or a unique prefix of it (at least 6 characters, any case)"


def _example(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  {PROG} {line}" for line in lines)


class _Commands:
    """Adds the subcommands, each with ``--db`` and, where it prints data, ``--format``."""

    def __init__(self, parser: argparse.ArgumentParser, db_option: argparse.ArgumentParser):
        self._subparsers = parser.add_subparsers(metavar="COMMAND")
        self.db_option = db_option

    def add(
        self,
        name: str,
        handler: Handler | None,
        help: str,
        example: str,
        formats: Sequence[str] = ("table", "json"),
        *,
        subparsers: Any = None,
    ) -> argparse.ArgumentParser:
        """A subcommand that runs ``handler``; ``formats=()`` for one without ``--format``."""
        sub: argparse.ArgumentParser = (subparsers or self._subparsers).add_parser(
            name,
            help=help,
            description=help,
            epilog=example,
            parents=[self.db_option],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if handler is not None:
            sub.set_defaults(handler=handler)
        if formats:
            _add_format(sub, formats)
        return sub


def _add_experiments_command(commands: _Commands) -> None:
    from runjournal.cli import experiments as handlers

    experiments = commands.add(
        "experiments",
        handlers.experiments_list,
        "List (the default), show or delete experiments.",
        _example("experiments", "experiments show gpt2-finetune"),
    )
    actions = experiments.add_subparsers(metavar="ACTION", required=False)
    commands.add(
        "list",
        handlers.experiments_list,
        "every experiment (the default)",
        _example("experiments list --format json"),
        subparsers=actions,
    )
    show = commands.add(
        "show",
        handlers.experiments_show,
        "one experiment and its runs",
        _example("experiments show gpt2-finetune"),
        subparsers=actions,
    )
    show.add_argument("id", metavar="EXPERIMENT", help=_EXPERIMENT_HELP)
    delete = commands.add(
        "delete",
        handlers.experiments_delete,
        "Delete an experiment and all its runs (hidden from every query; `purge` erases them "
        "for good). On a terminal it asks for "
        "confirmation first; elsewhere (a script, a pipe) it does not ask. --yes skips the "
        "question.",
        _example("experiments delete gpt2-finetune --yes"),
        formats=(),
        subparsers=actions,
    )
    delete.add_argument("id", metavar="EXPERIMENT", help=_EXPERIMENT_HELP)
    _add_yes(delete)


def _add_run_commands(commands: _Commands) -> None:
    from runjournal.cli import listing
    from runjournal.cli import runs as handlers

    runs = commands.add(
        "runs",
        None,
        "List runs, one row each with params and last metric values (the default), or end one.",
        _example(
            "runs gpt2-finetune --filter 'metric.loss<0.5' --sort loss --limit 10",
            "runs --status RUNNING",
            "runs end 01J9ZK3Q --status FAILED",
        ),
        formats=(),
    )
    actions = runs.add_subparsers(metavar="ACTION")
    listed = commands.add(
        "list",
        listing.runs,
        "List runs (of one experiment, or of all with an experiment column): one row per "
        "run, the params that differ between them and the last value of every metric as "
        "columns. The default action of 'runs'.",
        _example(
            "runs gpt2-finetune --filter lr<1e-3 --filter tag.team=nlp --columns lr,loss",
            "runs --filter status=SUCCESS --filter optimizer.name=adamw --sort -accuracy",
        ),
        subparsers=actions,
    )
    listed.add_argument(
        "experiment",
        metavar="EXPERIMENT",
        nargs="?",
        help=_EXPERIMENT_HELP + "; without it, the runs of every experiment",
    )
    listed.add_argument(
        "--filter",
        metavar="EXPR",
        action="append",
        default=[],
        type=_run_filter_argument,
        help="KEY OP VALUE, OP one of = != < <= > >= ~ (contains) ^= (starts with); KEY is a "
        "param (dots reach into nested ones: optimizer.name), param.KEY, metric.KEY (its last "
        "value), tag.KEY or status; VALUE is JSON if it parses, else a string; repeat to AND",
    )
    listed.add_argument(
        "--status",
        metavar="STATUS",
        type=_statuses,
        default=None,
        help="only runs with this status (PENDING, RUNNING, SUCCESS, FAILED, CANCELLED, or "
        "STALE: RUNNING but with no activity for 5 minutes, its process most likely dead; "
        "any case; comma-separated for several)",
    )
    listed.add_argument(
        "--sort",
        metavar="[-]KEY",
        help="order by a param, a metric's last value, or name/status/started/created/duration "
        "(-KEY descending); runs without it come last",
    )
    listed.add_argument("--limit", metavar="N", type=_count, help="at most N runs")
    hidden = listed.add_mutually_exclusive_group()
    hidden.add_argument(
        "--hidden", action="store_true", help="only the hidden runs (see 'runs hide')"
    )
    hidden.add_argument(
        "--all", action="store_true", help="hidden runs too (their status says '(hidden)')"
    )
    listed.add_argument(
        "--columns",
        metavar="K1,K2",
        help="the param and metric columns to show (default: params that differ, then every "
        "metric, as many as fit)",
    )
    _add_precision(listed)

    end = commands.add(
        "end",
        handlers.end_run,
        "Close a run that died without ending (a RUNNING or PENDING run).",
        _example("runs end 01J9ZK3Q --status FAILED"),
        subparsers=actions,
    )
    end.add_argument("run_id", metavar="RUN", help=_RUN_HELP)
    end.add_argument(
        "--status",
        default="FAILED",
        type=str.upper,
        choices=["FAILED", "CANCELLED", "SUCCESS"],
        help="the final status (default: FAILED)",
    )

    changes = (
        (
            "resume",
            handlers.resume_run,
            (
                "Make an ended run (SUCCESS, FAILED or CANCELLED) RUNNING again, to log more into "
                "it; its end time is cleared, its start time kept."
            ),
            _example("runs resume 01J9ZK3Q"),
        ),
        (
            "hide",
            handlers.hide_run,
            (
                "Hide a run (a soft delete, MLflow's delete): it leaves the listings and keeps "
                "everything; 'runs restore' brings it back. 'delete' is for good (then 'purge' "
                "erases)."
            ),
            _example("runs hide 01J9ZK3Q", "runs list --hidden"),
        ),
        (
            "restore",
            handlers.restore_run,
            "List a hidden run again.",
            _example("runs restore 01J9ZK3Q"),
        ),
    )
    for name, handler, description, examples in changes:
        change = commands.add(name, handler, description, examples, subparsers=actions)
        change.add_argument("run_id", metavar="RUN", help=_RUN_HELP)

    show = commands.add(
        "show",
        handlers.show,
        "Show one run: status, times, params, tags, metrics, artifacts. Long values are cut "
        "in tables; --format json gives them whole.",
        _example("show 01J9ZK3QX1", "show 01J9ZK3QX1 --format json"),
    )
    show.add_argument("run_id", metavar="RUN", help=_RUN_HELP)

    metrics = commands.add(
        "metrics",
        handlers.metrics,
        "Print metric series of a run; several keys are aligned by step, one column each.",
        _example("metrics 01J9ZK3QX1 loss", "metrics 01J9ZK3QX1 loss accuracy --format csv"),
        ("table", "json", "csv"),
    )
    metrics.add_argument("run_id", metavar="RUN", help=_RUN_HELP)
    metrics.add_argument("keys", metavar="KEY", nargs="+", help="a metric key; several for columns")
    metrics.add_argument(
        "--all",
        action="store_true",
        help="print every row in a table (by default a long series shows its first and last 100)",
    )

    compare = commands.add(
        "compare",
        handlers.compare,
        "Status, params and final metrics (with their steps) of runs side by side.",
        _example("compare 01J9ZK3QX1 01J9ZK4R2B --precision 6"),
    )
    compare.add_argument("run_ids", metavar="RUN", nargs="+", help=_RUN_HELP)
    _add_precision(compare)

    delete = commands.add(
        "delete",
        handlers.delete_run,
        "Delete a run (hidden from every query; `purge` erases it for good). On a terminal "
        "it asks for confirmation first; elsewhere "
        "(a script, a pipe) it does not ask. --yes skips the question.",
        _example("delete 01J9ZK3QX1 --yes"),
        formats=(),
    )
    delete.add_argument("run_id", metavar="RUN", help=_RUN_HELP)
    _add_yes(delete)


def _add_artifacts_command(commands: _Commands) -> None:
    from runjournal.cli import artifacts as handlers

    artifacts = commands.add(
        "artifacts",
        None,
        "List the artifacts of a run (the default), or write one's content to a file.",
        _example("artifacts 01J9ZK3QX1", "artifacts get model.bin --run 01J9ZK3QX1 -o model.bin"),
        formats=(),
    )
    actions = artifacts.add_subparsers(metavar="ACTION")
    listed = commands.add(
        "list",
        handlers.artifacts_list,
        "The artifacts of a run: name, size, SHA-256 and when each was logged.",
        _example("artifacts 01J9ZK3QX1"),
        subparsers=actions,
    )
    listed.add_argument("run_id", metavar="RUN", help=_RUN_HELP)
    get = commands.add(
        "get",
        handlers.artifacts_get,
        "Write an artifact's content to a file (or to stdout with -o -).",
        _example(
            "artifacts get model.bin --run 01J9ZK3QX1 -o model.bin",
            "artifacts get 9f86d0 --run 01J9ZK3QX1 -o - | sha256sum",
        ),
        formats=(),
        subparsers=actions,
    )
    get.add_argument(
        "artifact",
        metavar="SHA256|NAME",
        help="the artifact's SHA-256 (or a prefix of at least 6 hex digits) or its name "
        "(the newest of that name)",
    )
    get.add_argument("--run", metavar="RUN", required=True, help=_RUN_HELP)
    get.add_argument(
        "-o", "--output", metavar="PATH", required=True, help="the file to write, or - for stdout"
    )
    get.add_argument("--force", action="store_true", help="replace PATH if it exists")


def _add_journal_commands(commands: _Commands) -> None:
    from runjournal.cli import journal, log

    export = commands.add(
        "export",
        journal.export,
        "Write the journal (or part of it) to an event-log file. An existing file is "
        "replaced only with --force, and a database never.",
        _example("export backup.rjlog", "export gpt2.rjlog --experiment gpt2-finetune"),
    )
    export.add_argument("dest", metavar="DEST", help="the event-log file to write")
    export.add_argument(
        "--experiment", metavar="EXPERIMENT", help="only this experiment and its runs (id or name)"
    )
    export.add_argument("--run", metavar="RUN", help="only this run (id or unique prefix)")
    export.add_argument(
        "--after", metavar="POSITION", type=_position, help="only entries after this position"
    )
    export.add_argument("--force", action="store_true", help="replace DEST if it exists")

    load = commands.add(
        "import",
        journal.import_,
        "Append event-log files or databases to --db (created if missing); idempotent.",
        _example("--db merged.db import laptop.rjlog cluster.db"),
    )
    load.add_argument(
        "sources", metavar="SOURCE", nargs="+", help="an event-log file or a runjournal database"
    )

    commands.add(
        "rebuild",
        journal.rebuild,
        "Drop the projections and fold the journal again.",
        _example("--db experiments.db rebuild"),
    )
    commands.add(
        "verify",
        journal.verify,
        "Check that the projections match a fresh fold of the journal.",
        _example("verify"),
    )

    from runjournal.cli.import_mlflow import import_mlflow

    from_mlflow = commands.add(
        "import-mlflow",
        import_mlflow,
        "Bring the experiments and runs of an MLflow store into --db (created if missing): "
        "status, times, params, tags, whole metric histories and, with --artifacts, artifacts. "
        "Idempotent: each run remembers its MLflow run id (tag rj.mlflow.run_id), so importing "
        "again adds only new runs. Needs the MLflow client: pip install 'runjournal[mlflow]'.",
        _example(
            "import-mlflow ./mlruns",
            "--db experiments.db import-mlflow sqlite:///mlflow.db --artifacts",
        ),
        formats=(),
    )
    from_mlflow.add_argument(
        "source",
        metavar="SOURCE",
        help="an MLflow tracking URI: a ./mlruns folder, sqlite:///mlflow.db or http://host:port",
    )
    from_mlflow.add_argument(
        "--artifacts", action="store_true", help="import the runs' artifacts too"
    )

    from runjournal.cli.purge import purge

    _add_yes(
        commands.add(
            "purge",
            purge,
            "Erase deleted runs and experiments for good (their journal entries and the "
            "artifacts only they used), and compact the file. Asks for confirmation only on "
            "a terminal.",
            _example("purge", "purge --yes"),
        )
    )

    replay = commands.add(
        "replay",
        journal.replay,
        "Write the state at a position or a time into a new database.",
        _example(
            "replay --until 1200 --into before.db", "replay --until 2024-05-01T12:00 --into then.db"
        ),
    )
    replay.add_argument(
        "--until",
        metavar="POSITION|TIME",
        required=True,
        type=journal.parse_until,
        help="a journal position (see 'runjournal log'), or an ISO-8601 time (local time "
        "unless it has an offset)",
    )
    replay.add_argument("--into", metavar="NEW.db", required=True, help="a database to create")

    log_command = commands.add(
        "log",
        log.log,
        "List journal entries: position, time, kind, run or experiment, detail. The "
        "position is what 'replay --until' and 'export --after' take.",
        _example("log --after 1000 --limit 50"),
    )
    log_command.add_argument(
        "--after", metavar="POSITION", type=_position, default=0, help="start after this position"
    )
    log_command.add_argument("--limit", metavar="N", type=_count, help="at most N entries")

    follow = commands.add(
        "follow",
        log.follow,
        "Print the last entries of the journal, then each new one as it is committed, like "
        "'tail -f', until Ctrl-C.",
        _example("follow", "follow --after 0 --format json"),
    )
    follow.add_argument(
        "--after",
        metavar="POSITION",
        type=_position,
        default=None,
        help=f"start after this position (default: show the last {log.FOLLOW_BACKLOG})",
    )
    follow.add_argument(
        "--interval",
        metavar="SECONDS",
        type=_seconds,
        default=0.2,
        help="how often to look for new entries (default: 0.2)",
    )
    follow.set_defaults(interrupt_code=0)


def _add_ui_command(commands: _Commands) -> None:
    from runjournal.cli import ui

    ui.add_arguments(
        commands.add(
            "ui",
            ui.ui,
            "Serve the read-only dashboard (the `ui` extra). The first stdout line is its "
            "address; Ctrl-C or SIGTERM stops it.",
            _example("ui", "ui --port 0 --open", "ui --host 0.0.0.0 --token SECRET"),
            formats=(),
        )
    )


def _add_server_command(commands: _Commands) -> None:
    from runjournal.cli import server

    server.add_arguments(
        commands.add(
            "server",
            server.server,
            "Serve the dashboard and MLflow's tracking API, which accepts writes (the `ui` "
            "extra): MLFLOW_TRACKING_URI=http://127.0.0.1:5000. The first stdout line is its "
            "address; Ctrl-C or SIGTERM stops it.",
            _example("server", "server --port 0", "server --host 0.0.0.0 --token SECRET"),
            formats=(),
        )
    )


def _add_format(
    parser: argparse.ArgumentParser,
    choices: Sequence[str] = ("table", "json"),
    *,
    suppress: bool = False,
) -> None:
    parser.add_argument(
        "--format",
        choices=choices,
        default=argparse.SUPPRESS if suppress else "table",
        help="output format (default: table)",
    )


def _add_precision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        metavar="N",
        type=_digits,
        default=4,
        help="significant digits of floats in tables (default: 4; JSON is never rounded)",
    )


def _add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yes", "-y", action="store_true", help="do not ask for confirmation on a terminal"
    )


def _filter_argument(text: str) -> Any:
    from runjournal.filter_syntax import parse_filter

    try:
        return parse_filter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_filter_argument(text: str) -> Any:
    from runjournal.filter_syntax import parse_run_filter

    try:
        return parse_run_filter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _statuses(text: str) -> list[str]:
    from runjournal.model import RunStatus

    wanted = [part.strip().upper() for part in text.split(",") if part.strip()]
    known_names = [*RunStatus.__members__, "STALE"]
    unknown = [w for w in wanted if w not in known_names]
    if unknown or not wanted:
        known = ", ".join(known_names)
        raise argparse.ArgumentTypeError(f"unknown status {text!r}: one of {known}")
    return wanted


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, not {text!r}")
    return value


def _digits(text: str) -> int:
    value = _count(text)
    if not 1 <= value <= 17:
        raise argparse.ArgumentTypeError(f"precision is 1 to 17 digits, not {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, not {text!r}")
    return value


def _position(text: str) -> int:
    try:
        position = int(text)
    except ValueError:
        position = -1
    if position < 0:
        raise argparse.ArgumentTypeError(f"a journal position is an integer >= 0, not {text!r}")
    return position
