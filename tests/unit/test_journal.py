"""The journal of changes: one log, a cursor per reader, forgotten once every reader has passed."""
from __future__ import annotations

from dashboard.cluster import Cluster
from dashboard.journal import TASK, WORKER, WORKER_REMOVED, Journal, LiveChanges, Record, UnsavedTasks
from dashboard.queues import QueueBook
from dashboard.state import ClusterState


def test_nothing_is_kept_while_no_reader_is_open() -> None:
    journal = Journal()
    journal.append(Record(TASK, "a"))
    assert not journal.recording and len(journal) == 0


def test_each_reader_reads_every_record_once_at_its_own_pace() -> None:
    journal = Journal()
    journal.open("fast")
    journal.open("slow")
    journal.append(Record(TASK, "a"))
    journal.append(Record(WORKER, "w"))
    assert [r.key for r in journal.read("fast")] == ["a", "w"]
    journal.append(Record(TASK, "b"))
    assert [r.key for r in journal.read("fast")] == ["b"]
    assert journal.read("fast") == []
    assert len(journal) == 3  # the slow reader has read nothing yet
    assert [r.key for r in journal.unread("slow")] == ["a", "w", "b"]
    assert [r.key for r in journal.read("slow")] == ["a", "w", "b"]
    assert len(journal) == 0


def test_a_reader_opened_late_starts_at_the_end() -> None:
    journal = Journal()
    journal.open("first")
    journal.append(Record(TASK, "a"))
    journal.open("second")
    journal.append(Record(TASK, "b"))
    assert [r.key for r in journal.read("second")] == ["b"]
    assert [r.key for r in journal.read("first")] == ["a", "b"]


def test_a_worker_removed_and_back_in_one_window_ends_up_present() -> None:
    records = [Record(WORKER, "w"), Record(WORKER_REMOVED, "w"), Record(WORKER, "w"), Record(WORKER_REMOVED, "x")]
    assert LiveChanges.coalesce(records) == ([], {"w": False, "x": True})


def test_the_pusher_and_the_history_read_the_same_changes_independently() -> None:
    cluster = Cluster(ClusterState(), QueueBook())
    cluster.follow_changes()
    cluster.keep_history()
    event = {"type": "task-received", "uuid": "t1", "hostname": "w", "timestamp": 1e9, "local_received": 1e9}
    cluster.apply_events([event])
    common = cluster.changes(set(), set(), 100, 1e9).common
    assert [c["key"] for c in common] == ["t1"]
    assert cluster.changes(set(), set(), 100, 1e9)[0] == []
    tasks, events, _ = cluster.drain_unsaved(1e9, 0.0)
    assert [t["uuid"] for t in tasks] == ["t1"] and [e["type"] for _, e in events] == ["task-received"]


def test_a_task_evicted_and_seen_again_is_saved_with_its_new_shape() -> None:
    cluster = Cluster(ClusterState(max_tasks=1), QueueBook())
    cluster.keep_history()
    cluster.apply_events([{"type": "task-received", "uuid": "a", "hostname": "w", "timestamp": 1e9, "name": "old"},
                          {"type": "task-received", "uuid": "b", "hostname": "w", "timestamp": 1e9},
                          {"type": "task-started", "uuid": "a", "hostname": "w", "timestamp": 1e9 + 1}])
    tasks, events, _ = cluster.drain_unsaved()
    shapes = {t["uuid"]: t for t in tasks}
    assert set(shapes) == {"a", "b"} and shapes["a"]["state"] == "STARTED" and len(events) == 3


def test_a_task_evicted_and_back_before_the_write_keeps_its_evicted_fields() -> None:
    state = ClusterState(max_tasks=1)
    state.journal.open(UnsavedTasks.READER)
    unsaved = UnsavedTasks()
    state.apply({"type": "task-received", "uuid": "long", "hostname": "w", "timestamp": 1e9, "name": "n",
                 "args": "(1,)"})
    state.apply({"type": "task-received", "uuid": "other", "hostname": "w", "timestamp": 1e9 + 1})  # evicts it
    state.apply({"type": "task-succeeded", "uuid": "long", "hostname": "w", "timestamp": 1e9 + 9})  # back
    shapes, _ = unsaved.take(state.journal.read(UnsavedTasks.READER), state.task_json, lambda uuid: True)
    long = next(shape for shape in shapes if shape["uuid"] == "long")
    assert (long["name"], long["args"], long["state"], long["received"]) == ("n", "(1,)", "SUCCESS", 1e9)
