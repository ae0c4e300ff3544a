"""The live pipeline end to end on Redis: real worker -> broker -> dashboard (run.py) -> Socket.IO client and REST."""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from celery import Celery
from celery.events.event import get_exchange
from kombu import Connection

from helpers import (DashboardProc, LiveClient, assert_timeline, producer_app, send, start_dashboard, start_worker,
                     wait_broker_connected, wait_stored, wait_until, wait_worker_online)

pytestmark = pytest.mark.integration

#: This module's Redis database on the session's redis-server (Redis fanout events are per database).
REDIS_DB = 1
#: The worker every test here shares.
WORKER = "alpha@test"
#: Most a transition may take from the worker's event to the browser, in seconds.
LIVE_LATENCY_SECONDS = 1.0
#: Order in which a task's states must appear, and the task field holding each one's event timestamp.
STATE_ORDER = ("PENDING", "RECEIVED", "STARTED", "SUCCESS")
STATE_TIMESTAMP = {"PENDING": "sent", "RECEIVED": "received", "STARTED": "started", "SUCCESS": "succeeded"}
#: Fields DESIGN.md promises on every worker of /api/workers.
WORKER_FIELDS = ("hostname", "status", "last_heartbeat", "pool", "concurrency", "processed", "active",
                 "loadavg", "sw_ident", "sw_ver", "clock_skew")
#: Fields DESIGN.md promises on every item of /api/tasks.
TASK_FIELDS = ("uuid", "name", "state", "worker", "queue", "received", "started", "succeeded", "failed",
               "runtime", "retries", "args", "kwargs", "orphaned")


@pytest.fixture(scope="module")
def broker_url(redis_port: int) -> str:
    return f"redis://127.0.0.1:{redis_port}/{REDIS_DB}"


@pytest.fixture(scope="module")
def stack(broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProc]:
    """The dashboard (run.py, eventlet) and worker alpha on this module's broker, both ready."""
    log_dir = tmp_path_factory.mktemp("live-redis")
    worker = start_worker(broker_url, "alpha", log_dir)
    try:
        dashboard = start_dashboard(broker_url, log_dir)
        try:
            wait_broker_connected(dashboard)
            wait_worker_online(dashboard, WORKER, worker=worker)
            yield dashboard
        finally:
            dashboard.stop()
    finally:
        worker.end()


@pytest.fixture(scope="module")
def producer(broker_url: str) -> Iterator[Celery]:
    app = producer_app(broker_url)
    yield app
    app.close()


@pytest.fixture
def client(stack: DashboardProc, live_client: Callable[[str], LiveClient]) -> LiveClient:
    return live_client(stack.url)


def test_snapshot_arrives_on_connect(stack: DashboardProc, client: LiveClient) -> None:
    _, snapshot = client.snapshots[0]
    assert set(snapshot) >= {"seq", "workers", "tasks", "queues", "counters", "broker"}
    assert isinstance(snapshot["seq"], int)
    assert isinstance(snapshot["tasks"], list) and isinstance(snapshot["queues"], list)
    assert snapshot["broker"]["connected"] is True
    assert snapshot["broker"]["url"] == stack.health()["broker"]["url"]
    assert set(snapshot["counters"]["states"]) >= {"RECEIVED", "STARTED", "SUCCESS", "FAILURE"}
    alpha = next(w for w in snapshot["workers"] if w["hostname"] == WORKER)
    assert alpha["status"] == "online"


def test_worker_comes_online_and_goes_offline_live(broker_url: str, stack: DashboardProc,
                                                   client: LiveClient, log_dir: Path) -> None:
    hostname = "beta@test"
    assert all(w["hostname"] != hostname for w in client.snapshots[0][1]["workers"])
    worker = start_worker(broker_url, "beta", log_dir, concurrency=3)
    try:
        wait_until(lambda: any(d["status"] == "online" for _, d in client.worker_updates(hostname)), 30,
                   message=lambda: f"no live online update for {hostname}; {client.describe()}\n{worker.log_tail()}")
        # pool and concurrency are not in worker events; the dashboard learns them by inspecting the worker
        wait_until(lambda: any(d["pool"] == "eventlet" and d["concurrency"] == 3
                               for _, d in client.worker_updates(hostname)), 15,
                   message=lambda: f"pool/concurrency never known live: {client.worker_updates(hostname)[-1:]}")
        detail = stack.get(f"/api/workers/{hostname}").json()
        assert detail["stats"]["pool"]["max-concurrency"] == 3
        assert detail["inspected_at"] is not None and detail["inspect_error"] is None

        worker.terminate()  # a warm shutdown, which ends with worker-offline (it takes the worker a few seconds)
        wait_until(lambda: client.worker_updates(hostname)[-1][1]["status"] == "offline", 20,
                   message=lambda: f"{hostname} not offline live after a clean shutdown: "
                                   f"{client.worker_updates(hostname)[-1][1]}\n{worker.log_tail()}")
    finally:
        worker.end()


def test_task_moves_through_its_states_live(stack: DashboardProc, client: LiveClient, producer: Celery) -> None:
    task_id = send(producer, "add", 2, 3)
    final = client.wait_task_state(task_id, "SUCCESS", 15)

    updates = client.task_updates(task_id)
    first_seen: dict[str, float] = {}
    for at, data in updates:
        first_seen.setdefault(data["state"], at)
    seen_order = list(first_seen)
    assert seen_order == [s for s in STATE_ORDER if s in seen_order], f"states out of order: {seen_order}"
    for state, at in first_seen.items():
        event_time = final[STATE_TIMESTAMP[state]]
        assert event_time is not None, f"{state} seen but {STATE_TIMESTAMP[state]} unset: {final}"
        latency = at - event_time
        assert latency < LIVE_LATENCY_SECONDS, f"{state} reached the client {latency:.3f} s after its event"
    assert final["worker"] == WORKER
    assert final["name"] == "dashboard.demo.tasks.add"
    assert final["received"] <= final["started"] <= final["succeeded"]

    detail = stack.task(task_id)
    assert detail is not None
    assert detail["state"] == "SUCCESS" and detail["result"] == "5"
    assert detail["queue"] == "celery"  # known because the producer sends task-sent
    assert detail["runtime"] > 0
    assert_timeline(detail["events"], ["task-received", "task-started", "task-succeeded"], WORKER)


def test_failing_task_shows_its_traceback(stack: DashboardProc, client: LiveClient, producer: Celery) -> None:
    task_id = send(producer, "fail_payment", "A-17")
    live = client.wait_task_state(task_id, "FAILURE", 15)
    assert "ValueError" in live["traceback"]
    assert "declined" in live["exception"]
    assert live["failed"] is not None

    detail = stack.task(task_id)
    assert detail is not None and detail["state"] == "FAILURE"
    assert "ValueError" in detail["traceback"]
    assert [e["type"] for e in detail["events"]][-1] == "task-failed"


def test_rest_api_shapes(broker_url: str, stack: DashboardProc, producer: Celery) -> None:
    ids = [send(producer, "add", i, i) for i in range(2)]
    wait_until(lambda: all((t := stack.task(i)) and t["state"] == "SUCCESS" for i in ids), 15,
               message=lambda: f"tasks {ids} not SUCCESS in the API")
    wait_stored(stack, ids)

    page = stack.get("/api/tasks", params={"state": "SUCCESS", "limit": 5}).json()
    assert set(page) >= {"items", "total", "next"}
    assert 2 <= len(page["items"]) <= 5 and page["total"] >= len(page["items"])
    assert all(item["state"] == "SUCCESS" for item in page["items"])
    assert all(set(item) >= set(TASK_FIELDS) for item in page["items"])
    assert (page["next"] is None) == (page["total"] <= 5)
    first = stack.get("/api/tasks", params={"state": "SUCCESS", "limit": 1}).json()
    assert isinstance(first["next"], str) and len(first["items"]) == 1
    second = stack.get("/api/tasks", params={"state": "SUCCESS", "limit": 1, "cursor": first["next"]}).json()
    assert second["items"][0]["uuid"] != first["items"][0]["uuid"]

    for params in ({"state": "bogus"}, {"limit": "0"}, {"limit": "many"}):
        response = stack.get("/api/tasks", params=params)
        assert response.status_code == 400, params
        assert isinstance(response.json()["error"], str) and response.json()["error"]
    missing = stack.get(f"/api/tasks/{uuid.uuid4()}")
    assert missing.status_code == 404 and isinstance(missing.json()["error"], str)
    assert stack.get("/api/workers/nobody@nowhere").status_code == 404

    health = stack.health()
    assert health["status"] == "ok"
    assert health["broker"]["url"] == broker_url  # no password: nothing to mask
    assert health["broker"]["connected"] is True and health["broker"]["error"] is None
    assert isinstance(health["events"]["received"], int) and health["events"]["received"] > 0
    assert isinstance(health["events"]["malformed"], int)

    workers = stack.get("/api/workers").json()
    assert all(set(w) >= set(WORKER_FIELDS) for w in workers)
    # pool and concurrency come from inspect; processed from the next heartbeat (1 s apart) after the tasks
    alpha = wait_until(lambda: next((w for w in stack.get("/api/workers").json() if w["hostname"] == WORKER
                                     and w["concurrency"] is not None and w["processed"] >= 2), None), 15,
                       message=lambda: f"alpha's pool, concurrency or processed never known: "
                                       f"{stack.get('/api/workers').json()}")
    assert alpha["status"] == "online" and alpha["pool"] == "eventlet" and alpha["concurrency"] == 10
    assert alpha["sw_ident"] == "py-celery" and alpha["sw_ver"]
    assert abs(time.time() - alpha["last_heartbeat"]) < 5
    assert isinstance(alpha["loadavg"], list) and len(alpha["loadavg"]) == 3
    assert abs(alpha["clock_skew"]) < 1  # same machine


def test_seq_increases_by_one_and_resync_sends_a_snapshot(stack: DashboardProc, client: LiveClient,
                                                         producer: Celery) -> None:
    send(producer, "add", 1, 1)
    wait_until(lambda: len(client.changes) >= 3, 10, message=lambda: f"too few changes: {client.describe()}")
    first_seq = client.snapshots[0][1]["seq"]
    seqs = [batch["seq"] for _, batch in list(client.changes)]
    assert seqs == list(range(first_seq + 1, first_seq + 1 + len(seqs))), seqs

    client.emit("resync")
    wait_until(lambda: len(client.snapshots) == 2, 5, message="no snapshot after resync")

    def changes_after_resync() -> bool:
        names = [name for name, _, _ in list(client.messages)]
        return "changes" in names[names.index("snapshot", 1):]
    wait_until(changes_after_resync, 10, message="no changes after the resync snapshot")
    ordered = [(name, data) for name, _, data in list(client.messages) if name != "broker"]
    last_seq = first_seq
    snapshots = 0
    for name, data in ordered[1:]:  # after the first snapshot: changes carry seq + 1, a resync snapshot the current seq
        if name == "snapshot":
            snapshots += 1
            assert data["seq"] == last_seq, ordered
            assert set(data) >= {"workers", "tasks", "counters", "broker"}
        else:
            assert data["seq"] == last_seq + 1, [d["seq"] for _, d in ordered]
            last_seq = data["seq"]
    assert snapshots == 1


def test_malformed_events_are_counted_and_the_stream_survives(broker_url: str, stack: DashboardProc,
                                                              client: LiveClient, producer: Celery) -> None:
    before = stack.health()["events"]["malformed"]
    now = time.time()
    rejected_ids = [str(uuid.uuid4()) for _ in range(3)]
    huge_id = str(uuid.uuid4())
    bad: list[tuple[dict[str, Any], str]] = [
        ({"hostname": "bad@test", "timestamp": now}, "json"),  # no type
        ({"type": "task-received", "uuid": rejected_ids[0], "timestamp": "x"}, "json"),
        ({"type": "task-received", "uuid": rejected_ids[1], "timestamp": now, "clock": "y"}, "json"),
        ({"type": "worker-heartbeat", "hostname": "bad@test", "timestamp": now, "freq": "x"}, "json"),
        ({"type": "worker-heartbeat", "hostname": "bad@test", "timestamp": now, "freq": 1e9}, "json"),
        ({"type": "task-received", "uuid": rejected_ids[2], "timestamp": now}, "pickle"),  # only json is accepted
    ]
    huge = {"type": "task-received", "uuid": huge_id, "name": "dashboard.demo.tasks.echo",
            "args": "x" * 500_000, "kwargs": "{}", "timestamp": now, "hostname": "fake@test", "clock": 1}
    too_big_id = str(uuid.uuid4())  # over --max-event-bytes (1 MB): skipped whole
    bad.append(({"type": "task-received", "uuid": too_big_id, "args": "x" * 5_000_000, "timestamp": now}, "json"))
    rejected_ids.append(too_big_id)
    with Connection(broker_url) as connection:
        exchange = get_exchange(connection)  # what Celery's EventDispatcher uses (fanout on Redis)
        producer_ = connection.Producer()
        for body, serializer in [*bad, (huge, "json")]:
            routing_key = str(body.get("type", "task.x")).replace("-", ".")
            producer_.publish(body, exchange=exchange, routing_key=routing_key, serializer=serializer,
                              declare=[exchange])

    task_id = send(producer, "echo", "after the bad events")
    client.wait_task_state(task_id, "SUCCESS", 15)
    wait_until(lambda: stack.health()["events"]["malformed"] - before >= len(bad), 5,
               message=lambda: f"malformed not counted: before={before} now={stack.health()['events']}")

    stored = wait_until(lambda: stack.task(huge_id), 5, message="the huge-args event was not accepted")
    assert len(stored["args"]) < 10_000
    assert "…[truncated " in stored["args"]
    for rejected in rejected_ids:
        assert stack.get(f"/api/tasks/{rejected}").status_code == 404
    assert all(w["hostname"] != "bad@test" for w in stack.get("/api/workers").json())
    assert stack.health()["broker"]["connected"] is True


def test_both_event_readers_see_the_same_tasks(broker_url: str, stack: DashboardProc, producer: Celery,
                                               tmp_path: Path) -> None:
    """The Redis fast path (the default here) and Celery's receiver, side by side on one live stream."""
    assert stack.health()["events"]["reader"] == "redis"
    other = start_dashboard(broker_url, tmp_path, extra_args=("--event-reader", "kombu"))
    try:
        assert wait_broker_connected(other)["events"]["reader"] == "kombu"
        wait_worker_online(other, WORKER)
        ids = [send(producer, "add", 1, 2), send(producer, "fail_payment", "B-9"), send(producer, "echo", "é", k=[1])]
        ready = ("SUCCESS", "FAILURE")
        for dashboard in (stack, other):
            wait_until(lambda d=dashboard: all((t := d.task(i)) and t["state"] in ready for i in ids), 15,
                       message="tasks did not finish on both dashboards")
        for task_id in ids:
            fast, kombu = stack.task(task_id), other.task(task_id)
            for detail in (fast, kombu):
                for entry in detail["events"]:
                    entry.pop("local_received", None)
            assert fast == kombu
    finally:
        other.stop()
