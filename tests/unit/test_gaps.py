"""Gaps: intervals in which events may have been lost, recorded by the collector, kept by the store."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from dashboard.events import EventCollector
from dashboard.history import HistoryWriter
from dashboard.settings import Settings
from dashboard.store import TaskStore

from test_hardening import OneOutage


def test_a_lost_connection_is_a_gap_from_the_last_event_to_the_next_subscription(tmp_path: Path) -> None:
    collector = EventCollector(Settings(db=str(tmp_path / "h.db")), sleep=lambda seconds: None)
    collector.app.connection_for_read = lambda: OneOutage(collector)  # type: ignore[method-assign]
    collector.ping_broker = lambda: False  # type: ignore[method-assign]
    attempts: list[float] = []

    def subscribe_then_fail(connection: Any) -> None:
        attempts.append(time.time())
        if len(attempts) == 3:
            collector.stop()
        collector.on_subscribed()
        collector.last_event_at = time.monotonic() - 5  # the last event came 5 s before the loss
        raise ConnectionError("Redis restarted")

    collector._capture_redis = subscribe_then_fail  # type: ignore[method-assign]
    collector.run()
    gaps = collector.take_gaps()
    assert [g["cause"] for g in gaps] == ["broker connection lost", "broker connection lost"]
    assert all(4 <= g["end"] - g["start"] <= 10 for g in gaps)  # from the last event, not from the loss
    assert collector.take_gaps() == [] and [g["cause"] for g in collector.broker.to_json()["gaps"]] == [
        "broker connection lost", "broker connection lost"]


def test_a_cut_and_an_unresponsive_broker_name_their_cause_and_one_gap_covers_both(tmp_path: Path) -> None:
    collector = EventCollector(Settings(db=str(tmp_path / "h.db")))
    collector.broker.set("connected")
    collector.ping_broker = lambda: True  # type: ignore[method-assign]
    collector._on_connection_error(ConnectionError("Connection closed by server."))
    collector.open_gap("broker unresponsive")  # still open: the first cause stays
    collector.on_subscribed()
    [gap] = collector.take_gaps()
    assert gap["cause"].startswith("subscriber cut") and collector.broker.stream_cuts == 1


def test_the_downtime_since_the_last_run_is_a_gap_at_the_first_subscription(tmp_path: Path) -> None:
    path = str(tmp_path / "h.db")
    store = TaskStore(path)
    assert store.last_seen_running() is None  # a new history: no downtime to speak of
    store.mark("alive_at", 1000.0)
    store.mark("stopped_at", 1030.0)
    assert store.last_seen_running() == 1030.0  # stopped cleanly
    store.mark("alive_at", 2000.0)
    assert store.last_seen_running() == 2000.0  # ran again, then died: the last minute mark
    collector = EventCollector(Settings(db=path))
    writer = HistoryWriter(collector, store, lambda function, *args: function(*args))
    writer.warm()
    assert collector.down_since == 2000.0
    collector.on_subscribed()
    collector.on_subscribed()  # only the first subscription closes it
    [gap] = collector.take_gaps()
    assert gap["start"] == 2000.0 and gap["cause"] == "dashboard stopped"
    store.save_gaps([gap, {"start": 10.0, "end": 20.0, "cause": "broker connection lost"}])
    assert [g["start"] for g in store.gaps()] == [2000.0, 10.0]  # newest first
    assert [g["start"] for g in store.gaps(since=15, until=19)] == [10.0]
    assert store.gaps(since=21, until=1999) == []
    writer.close()
    assert store.last_seen_running() is not None and store.last_seen_running() >= gap["end"]
    store.close()
    again = TaskStore(path)
    collector = EventCollector(Settings(db=path))
    HistoryWriter(collector, again, lambda function, *args: function(*args)).warm()
    assert [g["start"] for g in collector.broker.gaps] == [10.0, 2000.0]  # the page's list, oldest first
    again.close()


@pytest.mark.parametrize("query", ["since=x", "until=inf", "limit=0", "limit=1001"])
def test_bad_gap_parameters_are_400(client: Any, query: str) -> None:
    response = client.get(f"/api/gaps?{query}")
    assert response.status_code == 400 and response.get_json()["error"]


def test_gaps_are_listed_and_a_task_whose_life_crosses_one_says_so(client: Any) -> None:
    dashboard = client.application.extensions["dashboard"]
    stored = {"start": 100.0, "end": 200.0, "cause": "broker connection lost"}
    dashboard.store.save_gaps([stored])
    dashboard.collector.broker.add_gap(stored)  # as the history's warm-up loads it
    fresh = {"start": 300.0, "end": 310.0, "cause": "subscriber cut"}
    dashboard.collector.unsaved_gaps.append(fresh)
    dashboard.collector.broker.add_gap(fresh)
    assert client.get("/api/gaps").get_json() == {"gaps": [
        {"start": 300.0, "end": 310.0, "cause": "subscriber cut"},
        {"start": 100.0, "end": 200.0, "cause": "broker connection lost"}]}
    assert client.get("/api/gaps?since=250").get_json()["gaps"][0]["cause"] == "subscriber cut"
    dashboard.cluster.apply_events([
        {"type": "task-received", "uuid": "crossing", "name": "app.t", "timestamp": 150.0, "hostname": "w@h",
         "local_received": 150.0},
        {"type": "task-succeeded", "uuid": "crossing", "timestamp": 250.0, "hostname": "w@h", "result": "1",
         "runtime": 1.0, "local_received": 250.0},
        {"type": "task-received", "uuid": "clear", "name": "app.t", "timestamp": 210.0, "hostname": "w@h",
         "local_received": 210.0},
        {"type": "task-succeeded", "uuid": "clear", "timestamp": 220.0, "hostname": "w@h", "result": "1",
         "runtime": 1.0, "local_received": 220.0},
    ])
    assert [g["start"] for g in client.get("/api/tasks/crossing").get_json()["gaps"]] == [100.0]
    assert client.get("/api/tasks/clear").get_json()["gaps"] == []
    # Twenty later gaps in memory: a task older than all of them is looked up in the store.
    for n in range(20):
        dashboard.collector.broker.add_gap({"start": 1000.0 + n * 10, "end": 1005.0 + n * 10, "cause": "x"})
    assert [g["start"] for g in client.get("/api/tasks/crossing").get_json()["gaps"]] == [100.0]
    assert client.get("/api/tasks/clear").get_json()["gaps"] == []
