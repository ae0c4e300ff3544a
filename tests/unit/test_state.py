"""The pure state model, fed event streams recorded from a real eventlet worker."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from dashboard.checks import clean_event
from dashboard.cluster import Cluster
from dashboard.journal import LiveChanges
from dashboard.queues import QueueBook
from dashboard.model import TASK_FIELDS, heartbeat_expires
from dashboard import state as state_module
from dashboard.state import ClusterState

DATA = Path(__file__).resolve().parent.parent / "data"
RECORDING = DATA / "redis_eventlet_worker.jsonl"
HOST = "rec@demo-host"


def load(path: Path = RECORDING) -> list[dict[str, Any]]:
    return [clean_event(json.loads(line), 4096, 32768) for line in path.read_text().splitlines() if line]


def replay(events: list[dict[str, Any]], **kwargs: Any) -> ClusterState:
    state = ClusterState(**kwargs)
    for event in events:
        state.apply(dict(event))
    return state


def task_by_name(state: ClusterState, suffix: str) -> dict[str, Any]:
    found = [state.task_detail(u) for u, t in state.tasks.items() if (t.name or "").endswith(suffix)]
    assert found, suffix
    return found[0]


def keeping_history(state: ClusterState) -> Cluster:
    """Return the model around ``state`` with the history writer's reader open."""
    cluster = Cluster(state, QueueBook())
    cluster.keep_history()
    return cluster


def unsaved(cluster: Cluster, now: float | None = None, hold_seconds: float = 0.0) -> tuple[Any, Any]:
    """What the history writer would be handed now: (task shapes, events)."""
    tasks, events, _ = cluster.drain_unsaved(now, hold_seconds)
    return tasks, events


def final_view(state: ClusterState) -> dict[str, Any]:
    """Every task's detail and every worker's shape; a key a task's shape leaves out (unknown to a task
    first seen after its start, for the store to fill in) counts as its default."""
    unset = dict.fromkeys(TASK_FIELDS) | {"state": "PENDING", "orphaned": False}
    tasks = {u: unset | (state.task_detail(u) or {}) for u in state.tasks}
    workers = {h: w.to_json() for h, w in state.workers.items()}
    return {"tasks": tasks, "workers": workers, "counters": state.counters()}


def test_recorded_stream_in_order() -> None:
    state = replay(load())
    assert state.workers[HOST].status == "offline"
    assert state.workers[HOST].freq == 1.0
    add = task_by_name(state, ".add")
    assert add["state"] == "SUCCESS" and add["worker"] == HOST
    assert [e["type"] for e in add["events"]] == ["task-sent", "task-received", "task-started", "task-succeeded"]
    assert add["queue"] == "celery"
    failed = task_by_name(state, ".fail_payment")
    assert failed["state"] == "FAILURE" and "ValueError" in failed["traceback"]
    flaky = task_by_name(state, ".flaky_fetch")
    assert flaky["state"] == "SUCCESS" and flaky["retries"] == 2
    assert [e["type"] for e in flaky["events"]].count("task-retried") == 2
    progress = task_by_name(state, ".progress_job")
    assert progress["progress"] == {"current": 4, "total": 4}
    email = task_by_name(state, ".send_email")
    assert email["queue"] == "high_priority"
    counts = state.counters()
    assert sum(counts["states"].values()) == len(state.tasks) == 11  # retries reuse the uuid
    assert counts["states"]["FAILURE"] == 1 and counts["states"]["SUCCESS"] == 10


def test_chain_links_children() -> None:
    state = replay(load())
    parents = [t for t in state.tasks.values() if t.parent_id]
    assert parents, "the recording holds a chain"
    child = parents[0]
    assert child.uuid in state.task_json(child.parent_id)["children"]


@pytest.mark.parametrize("seed", range(8))
def test_shuffled_order_reaches_the_same_state(seed: int) -> None:
    events = load()
    expected = final_view(replay(events))
    random.Random(seed).shuffle(events)
    assert final_view(replay(events)) == expected


def test_duplicate_deliveries_change_nothing() -> None:
    events = load()
    doubled = [e for event in events for e in (event, dict(event))]
    assert final_view(replay(doubled)) == final_view(replay(events))


def test_started_after_succeeded_does_not_move_back() -> None:
    state = ClusterState()
    state.apply({"type": "task-succeeded", "uuid": "t1", "hostname": "w", "timestamp": 1e9 + 3, "result": "1"})
    state.apply({"type": "task-started", "uuid": "t1", "hostname": "w", "timestamp": 1e9 + 2})
    state.apply({"type": "task-received", "uuid": "t1", "hostname": "w", "timestamp": 1e9 + 1, "name": "add"})
    task = state.task_json("t1")
    assert task["state"] == "SUCCESS" and task["name"] == "add" and task["started"] == 1e9 + 2
    assert state.counters()["states"]["SUCCESS"] == 1 and state.finished_total == 1


def test_late_retry_of_an_earlier_attempt_does_not_reopen_a_finished_task() -> None:
    state = ClusterState()
    state.apply({"type": "task-succeeded", "uuid": "t1", "hostname": "b", "timestamp": 1e9 + 9})
    state.apply({"type": "task-retried", "uuid": "t1", "hostname": "a", "timestamp": 1e9 + 1, "exception": "E"})
    assert state.task_json("t1")["state"] == "SUCCESS"


def test_unknown_types_are_counted_and_ignored() -> None:
    state = ClusterState()
    state.apply({"type": "foo-bar", "hostname": "x"})
    state.apply({"type": "worker-unknown", "hostname": "x"})
    assert state.unknown_events == 2 and not state.workers and not state.tasks


def test_eviction_keeps_the_most_recently_updated_tasks() -> None:
    state = ClusterState(max_tasks=3)
    for i in range(5):
        state.apply({"type": "task-received", "uuid": f"t{i}", "hostname": "w", "timestamp": 1e9 + i})
    state.apply({"type": "task-started", "uuid": "t2", "hostname": "w", "timestamp": 1e9 + 10})
    state.apply({"type": "task-received", "uuid": "t5", "hostname": "w", "timestamp": 1e9 + 11})
    assert list(state.tasks) == ["t4", "t2", "t5"]
    assert sum(state.counters()["states"].values()) == 3


def worker_event(kind: str, ts: float, received: float, freq: float = 1.0) -> dict[str, Any]:
    return {"type": f"worker-{kind}", "hostname": "w", "timestamp": ts, "local_received": received,
            "freq": freq, "active": 0, "processed": 0}


def test_heartbeat_expiry_uses_the_dashboards_receive_time() -> None:
    state = ClusterState(heartbeat_slack_seconds=1.0)
    skewed = 1e9 + 3600  # the worker's clock runs an hour fast
    state.apply(worker_event("online", skewed, 1e9))
    state.apply({"type": "task-received", "uuid": "t1", "hostname": "w", "timestamp": skewed + 5,
                 "local_received": 1e9 + 5})
    assert state.workers["w"].clock_skew == -3600
    expires = heartbeat_expires(1e9, 1.0, 1.0)
    assert state.expire_workers(expires - 0.01) == []
    assert state.expire_workers(expires + 0.01) == ["w"]
    assert state.workers["w"].status == "lost"
    assert state.task_json("t1")["orphaned"] is True
    assert state.orphans == {"w": ["t1"]}


def test_heartbeat_older_than_offline_does_not_revive() -> None:
    state = ClusterState()
    state.apply(worker_event("heartbeat", 1e9, 1e9))
    state.apply(worker_event("offline", 1e9 + 2, 1e9 + 2))
    state.apply(worker_event("heartbeat", 1e9 + 1, 1e9 + 3))  # delivered late
    assert state.workers["w"].status == "offline"
    state.apply(worker_event("online", 1e9 + 30, 1e9 + 30))  # restarted under the same name
    assert state.workers["w"].status == "online"


def test_lost_worker_comes_back_with_a_new_heartbeat() -> None:
    state = ClusterState()
    state.apply(worker_event("heartbeat", 1e9, 1e9))
    state.expire_workers(1e9 + 60)
    assert state.workers["w"].status == "lost"
    state.apply(worker_event("heartbeat", 1e9 + 61, 1e9 + 61))
    assert state.workers["w"].status == "online"


def test_the_pushers_reading_of_the_journal_coalesces() -> None:
    state = ClusterState()
    state.journal.open(LiveChanges.READER)
    for kind in ("received", "started", "succeeded"):
        state.apply({"type": f"task-{kind}", "uuid": "t1", "hostname": "w", "timestamp": 1e9})
    state.apply(worker_event("heartbeat", 1e9, 1e9))
    assert LiveChanges.coalesce(state.journal.read(LiveChanges.READER)) == (["t1"], {"w": False})
    assert LiveChanges.coalesce(state.journal.read(LiveChanges.READER)) == ([], {})
    assert len(state.journal) == 0


def test_worker_stats_fill_pool_and_concurrency() -> None:
    state = ClusterState()
    state.apply(worker_event("online", 1e9, 1e9))
    state.apply_inspect("w", {"stats": {"pool": {"implementation": "celery.concurrency.eventlet:TaskPool",
                                                 "max-concurrency": 20}}}, 1e9, None)
    assert (state.workers["w"].pool, state.workers["w"].concurrency) == ("eventlet", 20)
    state.apply_inspect("w", {"stats": {"pool": {"implementation": "celery.concurrency.prefork:TaskPool"}}}, 1e9, None)
    assert state.workers["w"].pool == "prefork"
    state.apply_inspect("w", {}, 1e9 + 5, "not answering inspect")
    assert state.inspect_replies["w"]["inspected_at"] == 1e9 and state.inspect_replies["w"]["stats"]


def test_silence_before_listening_does_not_make_a_worker_lost() -> None:
    state = ClusterState(heartbeat_slack_seconds=1.0)
    state.apply(worker_event("heartbeat", 1e9, 1e9))
    # the stream was down until 1e9 + 100 and was just resubscribed
    assert state.expire_workers(1e9 + 101, listening_since=1e9 + 100) == []
    assert state.expire_workers(1e9 + 104, listening_since=1e9 + 100) == ["w"]


def test_purged_workers_leave_the_list_and_come_back_with_an_alert() -> None:
    state = ClusterState()
    state.apply(worker_event("heartbeat", 1e9, 1e9))
    state.apply_inspect("w", {"stats": {"pid": 1}}, 1e9, None)
    state.journal.open(LiveChanges.READER)
    state.expire_workers(1e9 + 10)
    assert [a["event"] for a in state.drain_alerts()] == ["worker-lost"]
    assert state.purge_workers(1e9 + 100, after_seconds=3600) == []
    assert state.purge_workers(1e9 + 3601, after_seconds=3600) == ["w"]
    assert "w" not in state.workers and "w" in state.departed and state.inspect_replies["w"]["stats"]
    assert LiveChanges.coalesce(state.journal.read(LiveChanges.READER))[1] == {"w": True}
    state.apply(worker_event("heartbeat", 1e9 + 4000, 1e9 + 4000))
    assert state.workers["w"].status == "online" and "w" not in state.departed
    assert [a["event"] for a in state.drain_alerts()] == ["worker-online"]


def test_tasks_waiting_in_a_queue_are_indexed_by_sent_time() -> None:
    state = ClusterState()
    for i, name in enumerate(("a", "b", "a")):
        state.apply({"type": "task-sent", "uuid": f"t{i}", "name": name, "queue": "q", "timestamp": 1e9 + i,
                     "hostname": "producer"})
    assert state.waiting("q") == (1e9, {"a": 2, "b": 1})
    state.apply({"type": "task-received", "uuid": "t0", "hostname": "w", "timestamp": 1e9 + 5})
    assert state.waiting("q") == (1e9 + 1, {"b": 1, "a": 1})
    for i in (1, 2):
        state.apply({"type": "task-started", "uuid": f"t{i}", "hostname": "w", "timestamp": 1e9 + 6})
    assert state.waiting("q") == (None, {}) and state.pending_by_queue == {}


def test_retries_are_not_their_own_parent_and_success_clears_their_error() -> None:
    state = ClusterState()
    events = [
        {"type": "task-received", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 1, "retries": 0},
        {"type": "task-started", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 2},
        {"type": "task-retried", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 3, "exception": "Timeout()",
         "traceback": "Traceback ..."},
        {"type": "task-sent", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 3.5, "parent_id": "t",
         "root_id": "t", "retries": 1, "queue": "celery"},
        {"type": "task-received", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 4, "parent_id": "t",
         "retries": 1},
        {"type": "task-started", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 5},
        {"type": "task-succeeded", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 6, "result": "ok", "runtime": 1.0},
    ]
    for event in events:
        state.apply(event)
    task = state.task_json("t")
    assert task["parent_id"] is None and task["children"] == [] and task["retries"] == 1
    assert task["exception"] is None and task["traceback"] is None and task["state"] == "SUCCESS"
    assert [e["type"] for e in state.task_detail("t")["events"]].count("task-retried") == 1


def test_a_failed_task_gets_its_runtime_from_its_start() -> None:
    state = ClusterState()
    state.apply({"type": "task-started", "uuid": "t", "hostname": "w", "timestamp": 1e9})
    state.apply({"type": "task-failed", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 2.5, "exception": "E"})
    assert state.task_json("t")["runtime"] == 2.5


def test_a_task_evicted_before_it_was_saved_still_reaches_the_store() -> None:
    state = ClusterState(max_tasks=2)
    cluster = keeping_history(state)
    for i in range(3):
        state.apply({"type": "task-received", "uuid": f"t{i}", "hostname": "w", "timestamp": 1e9 + i})
    tasks, events = unsaved(cluster)
    assert sorted(t["uuid"] for t in tasks) == ["t0", "t1", "t2"] and len(events) == 3
    assert unsaved(cluster) == ([], [])


def test_finished_tasks_release_their_timelines_and_late_events_merge_by_celerys_rules() -> None:
    state = ClusterState()
    cluster = keeping_history(state)
    for event in load():
        state.apply(dict(event))
    tasks, events = unsaved(cluster)
    assert events
    released = state.release_timelines(t["uuid"] for t in tasks)
    assert released == len(state.tasks) == 11  # every recorded task finished
    add = task_by_name(state, ".add")
    assert add["events"] is None and add["state"] == "SUCCESS"
    before = state.task_json(add["uuid"])
    # a late, older event of a released task only fills in fields, as Celery's State would do
    state.apply({"type": "task-started", "uuid": add["uuid"], "hostname": HOST, "timestamp": add["started"] - 1})
    after = state.task_json(add["uuid"])
    assert after["state"] == "SUCCESS" and after["started"] == before["started"]
    assert unsaved(cluster)[1] == [(add["uuid"], {"type": "task-started", "hostname": HOST,
                                                       "timestamp": add["started"] - 1})]


def test_unfinished_tasks_keep_their_timelines() -> None:
    state = ClusterState()
    state.apply({"type": "task-received", "uuid": "t1", "hostname": "w", "timestamp": 1e9 + 1})
    assert state.release_timelines(["t1", "gone"]) == 0
    state.apply({"type": "task-sent", "uuid": "t1", "hostname": "p", "timestamp": 1e9, "queue": "q"})
    detail = state.task_detail("t1")
    assert [e["type"] for e in detail["events"]] == ["task-sent", "task-received"]
    assert detail["state"] == "RECEIVED" and detail["queue"] == "q"


def test_names_and_hostnames_are_kept_once() -> None:
    first, second = (clean_event({"type": "task-received", "uuid": u, "hostname": "celery@" + "w1",
                                  "name": "app." + "charge"}, 4096, 4096) for u in ("a", "b"))
    assert first["hostname"] is second["hostname"] and first["name"] is second["name"]


def test_unfinished_tasks_are_held_back_until_they_finish_or_their_hold_passes() -> None:
    state = ClusterState()
    cluster = keeping_history(state)
    t0 = 1e9

    def apply(kind: str, uuid: str, at: float) -> None:
        state.apply({"type": kind, "uuid": uuid, "hostname": "w", "timestamp": at, "local_received": at})

    apply("task-received", "a", t0)
    apply("task-received", "b", t0)
    apply("task-succeeded", "b", t0 + 0.5)
    tasks, events = unsaved(cluster, t0 + 1, 2.0)
    assert [t["uuid"] for t in tasks] == ["b"] and [uuid for uuid, _ in events] == ["b", "b"]
    apply("task-started", "a", t0 + 1.5)
    assert unsaved(cluster, t0 + 1.9, 2.0) == ([], [])
    tasks, events = unsaved(cluster, t0 + 2.1, 2.0)
    assert [t["uuid"] for t in tasks] == ["a"] and [e["type"] for _, e in events] == ["task-received", "task-started"]
    apply("task-succeeded", "a", t0 + 2.2)
    assert [t["state"] for t in unsaved(cluster, t0 + 2.3, 2.0)[0]] == ["SUCCESS"]


def test_orphaned_tasks_are_saved_again() -> None:
    state = ClusterState(heartbeat_slack_seconds=1.0)
    cluster = keeping_history(state)
    state.apply(worker_event("online", 1e9, 1e9))
    state.apply({"type": "task-started", "uuid": "t1", "hostname": "w", "timestamp": 1e9, "local_received": 1e9})
    unsaved(cluster)
    assert state.expire_workers(1e9 + 10) == ["w"]
    tasks, _ = unsaved(cluster, 1e9 + 10, 2.0)
    assert [(t["uuid"], t["orphaned"]) for t in tasks] == [("t1", True)]


def test_a_requested_heartbeats_freq_never_replaces_the_workers_own() -> None:
    """Celery answers the heartbeat request sent at subscription with ``freq=5`` and no ``active``."""
    state = ClusterState(heartbeat_slack_seconds=1.0)
    requested = {"type": "worker-heartbeat", "hostname": "w", "freq": 5.0, "sw_ident": "py-celery",
                 "timestamp": 1e9, "local_received": 1e9}
    state.apply(dict(requested))
    assert state.workers["w"].freq == 5.0  # all that is known until its own heartbeat
    state.apply(worker_event("heartbeat", 1e9 + 1, 1e9 + 1))  # freq 1, active 0
    state.apply({**requested, "timestamp": 1e9 + 1.5, "local_received": 1e9 + 1.5})
    assert state.workers["w"].freq == 1.0
    assert state.expire_workers(1e9 + 1.5 + 2 * 1 + 1 + 0.01) == ["w"]


def test_each_worker_counts_the_outcomes_it_sent_once() -> None:
    state = ClusterState()
    state.apply(worker_event("online", 1e9, 1e9))
    events = [{"type": "task-succeeded", "uuid": "a", "hostname": "w", "timestamp": 1e9 + 1},
              {"type": "task-failed", "uuid": "b", "hostname": "w", "timestamp": 1e9 + 1},
              {"type": "task-retried", "uuid": "c", "hostname": "w", "timestamp": 1e9 + 1},
              {"type": "task-succeeded", "uuid": "c", "hostname": "w", "timestamp": 1e9 + 2},
              {"type": "task-succeeded", "uuid": "d", "hostname": "elsewhere", "timestamp": 1e9 + 2}]
    for event in events + events[:2]:  # delivered twice: counted once
        state.apply(dict(event))
    shape = state.workers["w"].to_json()
    assert (shape["succeeded"], shape["failed"], shape["retried"]) == (2, 1, 1)


def test_the_heartbeat_an_eventlet_worker_sends_after_its_goodbye_does_not_revive_it() -> None:
    """Recorded from celery 5.7 -P eventlet: worker-offline at 8.09 s, then one more heartbeat at 8.84 s."""
    state = ClusterState(heartbeat_slack_seconds=1.0)
    state.apply(worker_event("heartbeat", 1e9 + 7.84, 1e9 + 7.84))
    state.apply(worker_event("offline", 1e9 + 8.09, 1e9 + 8.09))
    state.apply(worker_event("heartbeat", 1e9 + 8.84, 1e9 + 8.84))
    assert state.workers["w"].status == "offline"
    assert state.expire_workers(1e9 + 60) == [] and state.drain_alerts() == []  # never "lost" either
    state.apply(worker_event("online", 1e9 + 9, 1e9 + 9))  # restarted at once: worker-online revives
    assert state.workers["w"].status == "online"


def test_a_terminated_task_is_revoked_even_after_the_success_an_eventlet_pool_reports_for_it() -> None:
    """Recorded from celery 5.7 -P eventlet: revoke(terminate=True) of a running task."""
    state = ClusterState()
    for event in [{"type": "task-received", "uuid": "t", "hostname": "w", "timestamp": 1e9, "name": "slow"},
                  {"type": "task-started", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 0.002},
                  {"type": "task-succeeded", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 0.064, "result": "None"},
                  {"type": "task-revoked", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 0.066,
                   "terminated": True, "signum": "9", "expired": False}]:
        state.apply(dict(event))
    assert state.task_json("t")["state"] == "REVOKED"
    assert state.counters()["states"]["SUCCESS"] == 0 and state.counters()["states"]["REVOKED"] == 1
    plain = ClusterState()  # a plain revoke (not terminated) after a success changes nothing, as in Celery
    plain.apply({"type": "task-succeeded", "uuid": "u", "hostname": "w", "timestamp": 1e9, "result": "1"})
    plain.apply({"type": "task-revoked", "uuid": "u", "hostname": "w", "timestamp": 1e9 + 1, "terminated": False})
    assert plain.task_json("u")["state"] == "SUCCESS"


def finished(state: ClusterState, uuid: str, at: float, outcome: str = "task-succeeded",
             **fields: Any) -> None:
    """Apply a task's received, started and final events (its args and kwargs, its result or error)."""
    state.apply({"type": "task-received", "uuid": uuid, "hostname": "w", "timestamp": at, "name": "n",
                 "args": f"('{uuid}',)", "kwargs": "{}"})
    state.apply({"type": "task-started", "uuid": uuid, "hostname": "w", "timestamp": at + 1})
    state.apply({"type": outcome, "uuid": uuid, "hostname": "w", "timestamp": at + 2, **fields})


def test_stored_finished_tasks_let_go_of_their_payloads_past_the_latest_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "PAYLOADS_KEPT", 2)
    state = ClusterState()
    for n in range(4):
        finished(state, f"t{n}", 1e9 + n, result=f"'r{n}'")
    state.apply({"type": "task-received", "uuid": "busy", "hostname": "w", "timestamp": 1e9})
    written = [state.task_json(u) for u in ("t0", "t1", "t2", "t3", "busy")]
    state.release_timelines(u for u in ("t0", "t1", "t2", "t3", "busy"))
    assert state.release_payloads(written) == 2  # the two oldest; an unfinished task is never queued
    for uuid in ("t0", "t1"):
        shape = state.task_json(uuid)
        assert "args" not in shape and "kwargs" not in shape and "result" not in shape
        assert shape["exception"] is None and shape["state"] == "SUCCESS"  # never set: stays in the shape
        assert state.tasks[uuid].released == ("args", "kwargs", "result")
    assert state.task_json("t2")["args"] == "('t2',)" and state.tasks["t2"].released == ()
    assert state.task_json("busy")["args"] is None  # never let go of: a plain None


def test_a_payload_set_again_after_it_was_written_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "PAYLOADS_KEPT", 0)
    state = ClusterState()
    finished(state, "t", 1e9, result="'r'")
    written = state.task_json("t")
    state.release_timelines(["t"])
    # a late task-received sets args again, after the write and before the release: the next write carries it
    state.apply({"type": "task-received", "uuid": "t", "hostname": "w", "timestamp": 1e9 - 1, "args": "('new',)"})
    state.release_payloads([written])
    shape = state.task_json("t")
    assert shape["args"] == "('new',)" and "result" not in shape and "kwargs" not in shape
    # a late event that only fills in other fields leaves the let-go payloads out of the shape
    state.apply({"type": "task-sent", "uuid": "t", "hostname": "p", "timestamp": 1e9 - 2, "queue": "q"})
    shape = state.task_json("t")
    assert shape["queue"] == "q" and "result" not in shape


def failed_and_let_go(monkeypatch: pytest.MonkeyPatch, exception: str) -> ClusterState:
    """A state holding task ``t``, failed with ``exception``, stored, its payloads let go of at once."""
    monkeypatch.setattr(state_module, "PAYLOADS_KEPT", 0)
    state = ClusterState()
    finished(state, "t", 1e9, "task-failed", exception=exception, traceback="Traceback ...")
    written = state.task_json("t")
    state.release_timelines(["t"])
    state.release_payloads([written])
    return state


def test_a_success_after_a_failure_clears_the_let_go_error(monkeypatch: pytest.MonkeyPatch) -> None:
    state = failed_and_let_go(monkeypatch, "ValueError('x')")
    assert "exception" not in state.task_json("t") and "traceback" not in state.task_json("t")
    state.apply({"type": "task-succeeded", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 3, "result": "'ok'"})
    shape = state.task_json("t")
    assert shape["state"] == "SUCCESS" and shape["result"] == "'ok'"
    assert shape["exception"] is None and shape["traceback"] is None  # known to be None: written as None
    assert "args" not in shape


def test_restored_finished_tasks_keep_the_latest_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "PAYLOADS_KEPT", 1)
    state = ClusterState()
    for n in range(3):  # oldest first, as the history restores them
        state.restore({"uuid": f"t{n}", "state": "SUCCESS", "args": f"({n},)", "result": "'r'"}, None)
    state.restore({"uuid": "run", "state": "STARTED", "args": "(9,)"}, [])
    assert ["args" in state.task_json(f"t{n}") for n in range(3)] == [False, False, True]
    assert state.task_json("run")["args"] == "(9,)"


def test_a_task_first_seen_after_its_start_leaves_what_it_does_not_know_out_of_its_shape() -> None:
    state = ClusterState(max_tasks=2)
    state.apply({"type": "task-received", "uuid": "long", "hostname": "w", "timestamp": 1e9, "name": "n",
                 "args": "(1,)"})
    for n in range(2):  # newer tasks push it out of memory
        state.apply({"type": "task-received", "uuid": f"t{n}", "hostname": "w", "timestamp": 1e9 + 1 + n})
    assert "long" not in state.tasks
    state.apply({"type": "task-succeeded", "uuid": "long", "hostname": "w", "timestamp": 1e9 + 9, "result": "'r'"})
    shape = state.task_json("long")
    assert shape["state"] == "SUCCESS" and shape["result"] == "'r'" and shape["worker"] == "w"
    assert "name" not in shape and "args" not in shape and "received" not in shape and "sent" not in shape
    assert shape["exception"] is None  # cleared by the success: known
    state.apply({"type": "task-received", "uuid": "long", "hostname": "w", "timestamp": 1e9, "name": "n"})
    assert state.task_json("long")["name"] == "n"  # set since: in the shape again
    for first in ("task-sent", "task-received"):  # a life seen from its start knows its Nones
        state.apply({"type": first, "uuid": first, "hostname": "w", "timestamp": 1e9})
        assert "args" in state.task_json(first) and state.tasks[first].released == ()


def test_a_late_event_does_not_fill_in_a_payload_let_go_of(monkeypatch: pytest.MonkeyPatch) -> None:
    state = failed_and_let_go(monkeypatch, "KeyError('final')")
    # an earlier attempt's retry, arriving last: the store's final error stands
    state.apply({"type": "task-retried", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 1.5,
                 "exception": "Retry in 1s: TimeoutError()", "traceback": "Traceback earlier"})
    shape = state.task_json("t")
    assert shape["state"] == "FAILURE" and "exception" not in shape and "traceback" not in shape


def test_what_a_task_first_seen_mid_life_says_of_its_state_and_start() -> None:
    state = ClusterState()
    state.apply({"type": "task-progress", "uuid": "p", "hostname": "w", "timestamp": 1e9, "current": 1, "total": 4})
    shape = state.task_json("p")  # the store's STARTED (and orphan flag) stand: nothing here moved the state
    assert "state" not in shape and "orphaned" not in shape and shape["progress"] == {"current": 1, "total": 4}
    state.apply({"type": "task-received", "uuid": "r", "hostname": "w", "timestamp": 1e9, "name": "n"})
    shape = state.task_json("r")  # a first attempt's task-received: only what task-sent says is unknown
    assert "queue" not in shape and "sent" not in shape and shape["args"] is None and shape["state"] == "RECEIVED"
    state.apply({"type": "task-sent", "uuid": "r", "hostname": "p", "timestamp": 1e9 - 1, "queue": "q"})
    assert state.task_json("r")["queue"] == "q"  # a late task-sent still fills it in
    state.apply({"type": "task-received", "uuid": "again", "hostname": "w", "timestamp": 1e9, "retries": 1})
    shape = state.task_json("again")  # a later attempt: its first attempt's fields are in the store
    assert "args" not in shape and "retry_errors" not in shape and shape["state"] == "RECEIVED"
