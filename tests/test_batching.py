"""How a batch taken off the queue becomes journal entries (runjournal.batching.to_entries)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from runjournal.batching import Batch, to_entries
from runjournal.chunks import encode_chunk
from runjournal.events import (
    Event,
    MetricChunkLogged,
    MetricLogged,
    ParamsLogged,
    RunStarted,
)
from runjournal.model import MetricPoint
from runjournal.stores.base import NewEntry

SOURCE = "source-1"


class Marker:
    """Stands for the writer's flush markers: anything in the queue that is not an event."""


def point(run_id: str, key: str, step: int, at: float | None = None) -> MetricLogged:
    """A point logged at ``step`` with timestamp ``step / 10``, accepted then or at ``at``."""
    return MetricLogged(run_id, key, step, float(step), step / 10, at)


def group(items: Sequence[Event | Marker], next_seq: int = 1) -> Batch[Marker]:
    return to_entries(items, SOURCE, next_seq)


def stretch(entry: NewEntry) -> tuple[str, str, list[int]]:
    event = entry.event
    assert isinstance(event, MetricChunkLogged)
    return event.run_id, event.key, [p.step for p in event.points]


def test_consecutive_points_of_one_series_form_one_entry() -> None:
    batch = group([point("r", "loss", s) for s in range(5)])
    assert len(batch.entries) == 1
    event = batch.entries[0].event
    assert isinstance(event, MetricChunkLogged)
    assert (event.run_id, event.key, event.at) == ("r", "loss", 0.4)
    assert event.points == [MetricPoint(s, float(s), s / 10) for s in range(5)]
    assert event.chunk == encode_chunk(
        range(5), [float(s) for s in range(5)], [0, 0.1, 0.2, 0.3, 0.4]
    )
    assert batch.events == 5


def test_interleaved_series_form_one_entry_each_in_order_of_first_appearance() -> None:
    items = [point("r", "loss", 0), point("r", "acc", 0), point("q", "loss", 0)]
    items += [point("r", "acc", 1), point("r", "loss", 1)]
    batch = group(items)
    assert [stretch(e) for e in batch.entries] == [
        ("r", "loss", [0, 1]),
        ("r", "acc", [0, 1]),
        ("q", "loss", [0]),
    ]


def test_a_non_metric_event_closes_the_stretch() -> None:
    started = RunStarted("r", 5.0)
    items: list[Event] = [point("r", "loss", 0), point("r", "loss", 1), started]
    items += [point("r", "loss", 2)]
    batch = group(items)
    events = [e.event for e in batch.entries]
    assert len(events) == 3
    assert stretch(batch.entries[0]) == ("r", "loss", [0, 1])
    assert events[1] is started
    assert stretch(batch.entries[2]) == ("r", "loss", [2])
    assert batch.events == 4


def test_a_stretch_is_recorded_when_its_newest_point_was_accepted() -> None:
    # Accepted later than its timestamp says (a point logged with an explicit timestamp).
    items = [point("r", "loss", 0), point("r", "acc", 1, at=9.0), point("r", "loss", 2, at=7.5)]
    batch = group(items)
    assert [e.recorded_at for e in batch.entries] == [7.5, 7.5]
    assert [e.event.at for e in batch.entries] == [7.5, 7.5]
    # Without ``at``, a point was accepted at its timestamp.
    batch = group([point("r", "loss", 3, at=9.0), point("r", "loss", 4)])
    assert [e.recorded_at for e in batch.entries] == [0.4]


def test_other_events_are_recorded_when_they_were_accepted() -> None:
    batch = group([ParamsLogged("r", {"lr": 0.1}, 3.25)])
    assert [e.recorded_at for e in batch.entries] == [3.25]


def test_markers_are_set_apart_and_are_not_events() -> None:
    first, second = Marker(), Marker()
    batch = group([first, point("r", "loss", 0), second, point("r", "loss", 1)])
    assert batch.markers == [first, second]
    # A marker does not end the stretch of points around it, and is not an event.
    assert [stretch(e) for e in batch.entries] == [("r", "loss", [0, 1])]
    assert batch.events == 2


def test_entries_are_numbered_consecutively_from_next_seq() -> None:
    items: list[Event] = [point("r", "a", 0), point("r", "b", 0), RunStarted("r", 1.0)]
    items += [point("r", "a", 1)]
    batch = group(items, 41)
    assert [(e.source, e.seq) for e in batch.entries] == [(SOURCE, s) for s in (41, 42, 43, 44)]
    assert batch.next_seq == 45


def test_nothing_to_write_uses_no_sequence_number() -> None:
    marker = Marker()
    batch = group([marker], 7)
    assert (batch.entries, batch.markers) == ([], [marker])
    assert (batch.events, batch.next_seq) == (0, 7)


kinds = st.lists(st.sampled_from(["r/a", "r/b", "q/a", "event", "marker"]), max_size=30)


@given(kinds, st.integers(min_value=1, max_value=2**40))
def test_nothing_is_lost_reordered_or_numbered_twice(kinds: list[str], next_seq: int) -> None:
    # Each item carries its position in the queue: a point as its step, an event as its time.
    items: list[Event | Marker] = []
    for i, kind in enumerate(kinds):
        if kind == "event":
            items.append(RunStarted("r", float(i)))
        elif kind == "marker":
            items.append(Marker())
        else:
            run_id, key = kind.split("/")
            items.append(point(run_id, key, i))
    batch = group(items, next_seq)

    # Where each item of the queue ended up: (entry index, series or None, position).
    placed: list[tuple[int, str | None, int]] = []
    for index, entry in enumerate(batch.entries):
        event = entry.event
        if isinstance(event, MetricChunkLogged):
            placed += [(index, f"{event.run_id}/{event.key}", p.step) for p in event.points]
        else:
            assert isinstance(event, RunStarted)
            placed.append((index, None, int(event.at)))
    journal_items = [i for i, kind in enumerate(kinds) if kind != "marker"]
    assert sorted(position for _, _, position in placed) == journal_items
    for name in ("r/a", "r/b", "q/a"):
        steps = [position for _, series, position in placed if series == name]
        assert steps == sorted(steps)  # each series keeps its order
    for event_entry, series_name, at in placed:
        if series_name is None:  # an event: nothing crosses it
            for entry_index, _, position in placed:
                assert (entry_index < event_entry) == (position < at) or position == at
    assert batch.events == len(journal_items)
    assert batch.markers == [i for i in items if isinstance(i, Marker)]
    assert [(e.source, e.seq) for e in batch.entries] == [
        (SOURCE, seq) for seq in range(next_seq, batch.next_seq)
    ]
