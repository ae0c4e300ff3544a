"""The history writer never stalls on a bad row: it stores the rest, drops the bad task, retries the disk."""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from dashboard import run_inline
from dashboard.events import EventCollector
from dashboard import history as history_module
from dashboard.history import HistoryWriter
from dashboard.settings import Settings
from dashboard.store import TaskStore
from test_store import T0, events_of, task

HOST = "celery@w1"


class FlakyDisk(TaskStore):
    """A real store whose next ``failures`` writes fail as a full disk does."""

    failures = 0

    def write_batch(self, tasks: list[dict[str, Any]], events: list[tuple[str, dict[str, Any]]]) -> None:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        super().write_batch(tasks, events)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FlakyDisk]:
    opened = FlakyDisk(str(tmp_path / "history.db"))
    yield opened
    opened.close()


class Writes:
    """``run_blocking`` that runs the call inline and counts the store writes."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, function: Callable[..., Any], *args: Any) -> Any:
        self.count += getattr(function, "__name__", "") == "write_batch"
        return run_inline(function, *args)


@pytest.fixture
def writes() -> Writes:
    return Writes()


@pytest.fixture
def writer(store: FlakyDisk, writes: Writes) -> HistoryWriter:
    return HistoryWriter(EventCollector(Settings(db=store.path)), store, writes)


def cyclic_task(uuid: str) -> dict[str, Any]:
    """A task shape holding a value no JSON can hold: the store refuses it."""
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return task(uuid, 0, progress=loop)


def pend(writer: HistoryWriter, shapes: list[dict[str, Any]]) -> None:
    """Hand tasks and their events to the writer as the state's drain does."""
    for shape in shapes:
        writer.pending_tasks[shape["uuid"]] = shape
        writer.pending_events.extend(events_of(shape))


def stored_uuids(store: TaskStore) -> set[str]:
    return {item["uuid"] for item in store.query(limit=1000)["items"]}


def apply_task(writer: HistoryWriter, uuid: str, **fields: Any) -> None:
    """Run a task through the real model: received, started, succeeded."""
    for offset, kind in enumerate(("task-received", "task-started", "task-succeeded")):
        failed = writer.cluster.apply_events([{"type": kind, "uuid": uuid, "timestamp": T0 + offset,
                                               "local_received": T0 + offset, "hostname": HOST,
                                               "name": "billing.charge_card", **fields}])
        assert not failed


def test_values_sqlite_cannot_hold_do_not_stall_the_writer(writer: HistoryWriter, store: FlakyDisk) -> None:
    apply_task(writer, "normal-1")
    apply_task(writer, "huge-retries", retries=1 << 63)
    apply_task(writer, "surrogate", args="('\ud800',)")
    apply_task(writer, "normal-2")
    assert writer.flush() is True
    assert stored_uuids(store) == {"normal-1", "huge-retries", "surrogate", "normal-2"}
    assert store.get("huge-retries")["retries"] is None and store.get("surrogate")["args"] == "('?',)"
    apply_task(writer, "later")
    assert writer.close() is True
    assert "later" in stored_uuids(store)
    assert writer.health()["quarantined"] == 0 and writer.health()["error"] is None


def test_a_bad_task_is_quarantined_and_the_rest_stored(writer: HistoryWriter, store: FlakyDisk,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    good = [task(f"good-{n}", n, args=f"('secret-{n}',)") for n in range(50)]
    pend(writer, good[:20] + [cyclic_task("bad-one")] + good[20:])
    with caplog.at_level(logging.ERROR, logger="dashboard.history"):
        assert writer.flush() is True
    assert stored_uuids(store) == {shape["uuid"] for shape in good}
    assert all(len(store.get(shape["uuid"])["events"]) == 4 for shape in good)
    health = writer.health()
    assert health["quarantined"] == 1 and health["error"] is None and health["pending_events"] == 0
    assert health["written_events"] == 4 * 50
    assert writer.pending_tasks == {} and writer.pending_events == []
    [record] = caplog.records
    assert "bad-one" in record.getMessage() and "secret" not in record.getMessage()

    pend(writer, [task("next", 60)])  # the writer moves on
    assert writer.flush() is True and "next" in stored_uuids(store)
    pend(writer, [task("at-close", 61)])
    assert writer.close() is True and "at-close" in stored_uuids(store)


def test_bad_events_quarantine_their_task_with_them(writer: HistoryWriter, store: FlakyDisk) -> None:
    loop: list[Any] = []
    loop.append(loop)
    shapes = [task(f"t{n}", n) for n in range(4)]
    pend(writer, shapes)
    writer.pending_events.append(("t2", {"type": "task-progress", "timestamp": T0, "hostname": HOST, "x": loop}))
    assert writer.flush() is True
    assert stored_uuids(store) == {"t0", "t1", "t3"}
    assert writer.health()["quarantined"] == 1


def test_one_bad_row_among_thousands_costs_a_logarithmic_number_of_writes(
        writer: HistoryWriter, store: FlakyDisk, writes: Writes) -> None:
    shapes = [task(f"t{n}", n) for n in range(2048)]
    pend(writer, shapes[:1500] + [cyclic_task("bad")] + shapes[1500:])
    assert writer.flush() is True
    assert store.stats()["tasks"] == 2048
    assert writes.count <= 1 + 2 * 12  # the batch, then two halves at each of log2(2049) levels


def test_several_bad_rows_are_all_found(writer: HistoryWriter, store: FlakyDisk) -> None:
    shapes = [task(f"t{n}", n) for n in range(100)]
    bad = [cyclic_task(f"bad-{n}") for n in range(3)]
    pend(writer, [bad[0]] + shapes[:50] + [bad[1]] + shapes[50:] + [bad[2]])
    assert writer.flush() is True
    assert stored_uuids(store) == {shape["uuid"] for shape in shapes}
    assert writer.health()["quarantined"] == 3


def test_bad_rows_of_one_kind_log_one_traceback(writer: HistoryWriter, store: FlakyDisk,
                                                caplog: pytest.LogCaptureFixture) -> None:
    shapes = [task(f"t{n}", n) for n in range(20)]
    pend(writer, [cyclic_task(f"bad-{n}") for n in range(3)] + shapes)
    with caplog.at_level(logging.ERROR, logger="dashboard.history"):
        assert writer.flush() is True
    assert writer.health()["quarantined"] == 3 and writer.collector.internal_errors == 3
    assert sorted(r.getMessage().split()[1] for r in caplog.records) == ["bad-0", "bad-1", "bad-2"]  # each named
    assert len([r for r in caplog.records if r.exc_info]) == 1


def test_gaps_that_fail_on_a_bug_are_dropped_not_retried(writer: HistoryWriter, store: FlakyDisk,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def broken(gaps: list[dict[str, Any]]) -> None:
        calls.append(len(gaps))
        raise TypeError("a bug")

    monkeypatch.setattr(store, "save_gaps", broken)
    writer.collector.unsaved_gaps.append({"start": T0, "end": T0 + 5, "cause": "broker unresponsive"})
    with caplog.at_level(logging.WARNING, logger="dashboard.history"):
        assert writer.flush() is True
        assert writer.flush() is True
    assert calls == [1] and writer.collector.unsaved_gaps == []
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [TypeError]
    assert writer.collector.internal_errors == 1


def test_a_full_disk_is_retried_not_quarantined(writer: HistoryWriter, store: FlakyDisk) -> None:
    shapes = [task(f"t{n}", n) for n in range(10)]
    pend(writer, shapes)
    store.failures = 1
    assert writer.flush() is False
    health = writer.health()
    assert health["error"] == "OperationalError: database or disk is full"
    assert health["quarantined"] == 0 and health["pending_events"] == 40 and store.stats()["tasks"] == 0
    assert writer.flush() is True
    assert stored_uuids(store) == {shape["uuid"] for shape in shapes}
    assert writer.health()["error"] is None and writer.health()["written_events"] == 40


def test_a_full_disk_while_splitting_keeps_the_untried_tasks(writer: HistoryWriter, store: FlakyDisk,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    shapes = [task(f"t{n}", n) for n in range(8)]
    pend(writer, shapes[:4] + [cyclic_task("bad")] + shapes[4:])
    original = store.write_batch
    calls = []

    def fail_on_second_half(tasks: list[dict[str, Any]], events: list[tuple[str, dict[str, Any]]]) -> None:
        calls.append(len(tasks))
        if len(calls) == 3:  # the batch, the first half, then the disk fills up
            raise sqlite3.OperationalError("database or disk is full")
        original(tasks, events)

    store.write_batch = fail_on_second_half  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="dashboard.history"):
        assert writer.flush() is False
    assert writer.collector.internal_errors == 0 and not any(r.exc_info for r in caplog.records)  # no bug
    assert stored_uuids(store) == {"t0", "t1", "t2", "t3"}
    assert writer.health()["error"] == "OperationalError: database or disk is full"
    assert set(writer.pending_tasks) == {"bad", "t4", "t5", "t6", "t7"}
    assert {uuid for uuid, _ in writer.pending_events} == {"bad", "t4", "t5", "t6", "t7"}

    assert writer.flush() is True  # the disk is back: the rest is stored, the bad task dropped
    assert stored_uuids(store) == {shape["uuid"] for shape in shapes}
    assert writer.health()["quarantined"] == 1 and writer.health()["error"] is None


def test_a_bug_while_splitting_is_logged_as_one_and_the_tasks_kept(writer: HistoryWriter, store: FlakyDisk,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    shapes = [task(f"t{n}", n) for n in range(4)]
    pend(writer, shapes[:2] + [cyclic_task("bad")] + shapes[2:])

    def broken(*args: Any) -> None:
        raise RuntimeError("a bug in the splitting")

    writer._bisect = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="dashboard.history"):
        assert writer.flush() is False  # never raised: what is pending is kept for the next flush
    assert writer.collector.internal_errors == 1 and writer.health()["quarantined"] == 0
    assert set(writer.pending_tasks) == {"bad", "t0", "t1", "t2", "t3"}
    [bug] = [r for r in caplog.records if r.exc_info]
    assert bug.exc_info is not None and bug.exc_info[0] is RuntimeError
    assert "writing around a bad row" in bug.getMessage()


def test_a_shape_without_payloads_keeps_those_of_one_still_pending(writer: HistoryWriter, store: FlakyDisk) -> None:
    full = task("t", 1, args="('kept',)")
    writer._pend(full)  # as promote queues what this process followed: the full shape, then a later one
    writer._pend({k: v for k, v in task("t", 1, queue="slow").items() if k not in ("args", "result")})
    assert writer.pending_tasks["t"]["args"] == "('kept',)" and writer.pending_tasks["t"]["queue"] == "slow"
    writer._pend(task("t", 1, args="('new',)"))  # a whole shape stands as it is
    assert writer.pending_tasks["t"]["args"] == "('new',)"
    assert writer.flush() is True and store.get("t")["args"] == "('new',)"


def test_a_writes_finished_timelines_are_let_go_of_a_chunk_at_a_time(
        writer: HistoryWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Letting go of 600 timelines at once held the event loop for 8-10 ms: other work runs between chunks."""
    monkeypatch.setattr(history_module, "RELEASE_CHUNK", 100)
    uuids = [f"t{n:03d}" for n in range(250)]
    for uuid in uuids:
        apply_task(writer, uuid)
    tasks = writer.cluster._state.tasks
    released_at_each_pause: list[int] = []
    monkeypatch.setattr(writer.collector, "sleep", lambda seconds: released_at_each_pause.append(
        sum(tasks[uuid].events is None for uuid in uuids)))
    assert writer.flush() is True
    assert released_at_each_pause == [100, 200]
    assert all(tasks[uuid].events is None for uuid in uuids)


def test_a_bug_in_a_write_round_is_counted_logged_once_and_the_writer_goes_on(
        writer: HistoryWriter, store: FlakyDisk, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    apply_task(writer, "t1")
    drain = writer.cluster.drain_unsaved
    rounds: list[int] = []

    def broken_twice(*args: Any, **kwargs: Any) -> Any:
        rounds.append(1)
        if len(rounds) <= 2:
            raise TypeError("a bug")
        return drain(*args, **kwargs)

    errors_seen: list[str | None] = []

    def sleep(seconds: float) -> None:
        errors_seen.append(writer.health()["error"])
        if len(errors_seen) == 3:
            writer.stop()  # the third round still runs

    monkeypatch.setattr(writer.cluster, "drain_unsaved", broken_twice)
    monkeypatch.setattr(writer.collector, "sleep", sleep)
    with caplog.at_level(logging.WARNING, logger="dashboard.history"):
        writer.run()
    assert len(rounds) == 3 and stored_uuids(store) == {"t1"}
    assert errors_seen == [None, "internal error: TypeError: a bug", "internal error: TypeError: a bug"]
    assert writer.health()["error"] is None and writer.collector.internal_errors == 2
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [TypeError]  # once, not every round
