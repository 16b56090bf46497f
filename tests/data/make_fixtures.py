"""Write the event-log fixture of the current event version into this folder.

    python tests/data/make_fixtures.py

It writes ``eventlog-v{EVENT_VERSION}.rjlog``: a journal of two sources that
holds every kind of event, built from fixed ids, times and values, exported
with :func:`runjournal.journal.export_events`. A fixture, once committed, is
never regenerated: ``tests/test_upcasting.py`` reads each one forever after,
so that every later runjournal proves it still decodes what this one wrote.
When :data:`~runjournal.events.EVENT_VERSION` goes up, run this script to add
the new version's fixture beside the old ones, and add its expected content to
the test. The script refuses to overwrite an existing fixture.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import sys
from pathlib import Path

from runjournal.events import (
    EVENT_VERSION,
    ArtifactLogged,
    Event,
    ExperimentCreated,
    ExperimentDeleted,
    MetricLogged,
    MetricsLogged,
    ParamsLogged,
    RunCompleted,
    RunCreated,
    RunDeleted,
    RunStarted,
    SpanIdSet,
    TagSet,
)
from runjournal.journal import export_events
from runjournal.model import MetricPoint, RunStatus
from runjournal.stores.base import Content, NewEntry, recorded_at
from runjournal.stores.memory import InMemoryStorage

HERE = Path(__file__).resolve().parent

SOURCE_A = "01HF0000000000000000SRCAAA"
SOURCE_B = "01HF0000000000000000SRCBBB"
EXP = "01HF0000000000000000EXP001"
EXP_GONE = "01HF0000000000000000EXP002"
RUN = "01HF0000000000000000RUN001"
RUN_DELETED = "01HF0000000000000000RUN002"
RUN_IN_GONE = "01HF0000000000000000RUN003"
RUN_B = "01HF0000000000000000RUN004"
RUN_CANCELLED = "01HF0000000000000000RUN005"
RUN_PENDING = "01HF0000000000000000RUN006"
T0 = 1_700_000_000.0
ARTIFACT = b"fixture weights\x00\x01\x02"
ARTIFACT_SHA = hashlib.sha256(ARTIFACT).hexdigest()


def journal() -> list[tuple[str, Event]]:
    """The fixture's journal in order: (source, event); seq counts per source from 1."""
    inf = math.inf
    a: list[Event] = [
        ExperimentCreated(
            EXP,
            "fixture",
            T0,
            description="every kind of event",
            config={"model": "gpt2", "lr": 3e-4, "layers": [1, 2, 3], "nan": math.nan},
            tags={"team": "ml"},
        ),
        RunCreated(RUN, EXP, T0 + 1, name="run-one", tags={"seed": "1"}),
        RunStarted(RUN, T0 + 2),
        ParamsLogged(
            RUN,
            {
                "none": None,
                "flag": True,
                "int": -42,
                "big": 2**63 - 1,
                "float": 0.1,
                "nan": math.nan,
                "inf": inf,
                "ninf": -inf,
                "text": "héllo ✓",
                "list": [1, "two", 3.0, [None]],
                "dict": {"a": {"b": False}},
                "empty_list": [],
                "empty_dict": {},
            },
            T0 + 3,
        ),
        TagSet(RUN, "stage", "train", T0 + 4),
        SpanIdSet(RUN, "trace-0001", T0 + 5),
        MetricsLogged(
            RUN,
            "loss",
            [
                MetricPoint(0, 1.0, T0 + 6),
                MetricPoint(1, 0.5, T0 + 6.5),
                MetricPoint(2, math.nan, T0 + 7),
                MetricPoint(3, inf, T0 + 7.5),
                MetricPoint(4, -inf, T0 + 8),
            ],
            T0 + 8,
        ),
        MetricLogged(RUN, "accuracy", 7, 0.25, T0 + 9),
        ArtifactLogged(RUN, "weights.bin", ARTIFACT_SHA, len(ARTIFACT), T0 + 10),
    ]
    b: list[Event] = [
        RunCreated(RUN_B, EXP, T0 + 11, name="from-machine-b"),
        RunStarted(RUN_B, T0 + 12),
        MetricsLogged(RUN_B, "loss", [MetricPoint(0, 2.0, T0 + 13)], T0 + 13),
        RunCompleted(RUN_B, RunStatus.FAILED, T0 + 14),
        RunCreated(RUN_CANCELLED, EXP, T0 + 15),
        RunCompleted(RUN_CANCELLED, RunStatus.CANCELLED, T0 + 16),
    ]
    a_rest: list[Event] = [
        RunCompleted(RUN, RunStatus.SUCCESS, T0 + 17),
        RunCreated(RUN_DELETED, EXP, T0 + 18, name="doomed"),
        ParamsLogged(RUN_DELETED, {"x": 1}, T0 + 19),
        RunDeleted(RUN_DELETED, T0 + 20),
        ExperimentCreated(EXP_GONE, "gone", T0 + 21),
        RunCreated(RUN_IN_GONE, EXP_GONE, T0 + 22),
        ExperimentDeleted(EXP_GONE, T0 + 23),
        RunCreated(RUN_PENDING, EXP, T0 + 24, tags={"note": "never started"}),
    ]
    return [(SOURCE_A, e) for e in a] + [(SOURCE_B, e) for e in b] + [(SOURCE_A, e) for e in a_rest]


async def write(dest: Path) -> None:
    store = InMemoryStorage()
    seqs: dict[str, int] = {}
    entries: list[NewEntry] = []
    for source, event in journal():
        seqs[source] = seqs.get(source, 0) + 1
        entries.append(NewEntry(source, seqs[source], event, recorded_at(event)))
    result = store.append(entries, [Content.of_bytes(ARTIFACT, ARTIFACT_SHA)])
    if result.rejected or result.appended != len(entries):
        raise SystemExit(f"the fixture journal does not apply: {result}")
    await export_events(store, dest)


def main() -> None:
    dest = HERE / f"eventlog-v{EVENT_VERSION}.rjlog"
    if dest.exists():
        sys.exit(f"{dest} exists; fixtures are never regenerated")
    asyncio.run(write(dest))
    print(f"wrote {dest} ({dest.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
