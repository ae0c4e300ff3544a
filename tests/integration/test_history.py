"""Task history survives a restart of the dashboard, with search, filters and paging from the store."""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
from redis import Redis

from dashboard.state import PAYLOADS_KEPT
from helpers import (DashboardProc, LiveClient, assert_timeline, event_envelope, producer_app, send, start_dashboard,
                     start_worker, wait_broker_connected, wait_stored, wait_until, wait_worker_online)

pytestmark = pytest.mark.integration


def final(dashboard: DashboardProc, task_id: str, state: str) -> dict:
    return wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] == state and t, 20,
                      message=lambda: f"task {task_id} never {state}: {dashboard.task(task_id)}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_history_survives_a_restart(redis_port: int, log_dir: Path, tmp_path: Path, backend: str,
                                    request: pytest.FixtureRequest) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/9"
    db = tmp_path / "history.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    dashboard = start_dashboard(broker, log_dir, extra_args=("--db", str(db)))
    worker = None
    try:
        wait_broker_connected(dashboard)
        worker = start_worker(broker, "historian", log_dir)
        wait_worker_online(dashboard, "historian@test", worker=worker)
        app = producer_app(broker)
        ok = send(app, "add", 40, 2)
        second = send(app, "add", 1, 1)
        failed = send(app, "fail_payment", "ORD-77")
        parent = send(app, "echo", "parent", link=app.signature("dashboard.demo.tasks.echo", args=("child",)))
        final(dashboard, ok, "SUCCESS")
        final(dashboard, second, "SUCCESS")
        final(dashboard, failed, "FAILURE")
        children = wait_until(lambda: (t := dashboard.task(parent)) and t["children"], 20,
                              message="the linked child never arrived")
        final(dashboard, children[0], "SUCCESS")
        before = dashboard.task(failed)
        dashboard.stop()  # SIGTERM: pending history is written before it exits
        assert dashboard.proc.popen.returncode == 0

        dashboard = start_dashboard(broker, log_dir, extra_args=("--db", str(db)))
        after = dashboard.task(failed)
        assert after is not None
        assert [e["type"] for e in after["events"]] == [e["type"] for e in before["events"]]
        assert_timeline(after["events"], ["task-received", "task-started", "task-failed"])
        assert "ValueError" in after["traceback"] and after["args"] == "('ORD-77',)"
        assert dashboard.task(parent)["children"] == children
        assert dashboard.get(f"/tasks/{failed}").status_code == 200
        assert dashboard.get("/api/health").json()["store"]["path"] == str(db)  # no password in these URLs

        failures = dashboard.get("/api/tasks", params={"state": "FAILURE"}).json()
        assert [t["uuid"] for t in failures["items"]] == [failed] and failures["total"] == 1
        found = dashboard.get("/api/tasks", params={"q": "ORD-77"}).json()
        assert [t["uuid"] for t in found["items"]] == [failed]
        adds = dashboard.get("/api/tasks", params={"name": "dashboard.demo.tasks.add", "limit": 1}).json()
        assert len(adds["items"]) == 1 and adds["next"]
        following = dashboard.get("/api/tasks", params={"name": "dashboard.demo.tasks.add", "limit": 1,
                                                         "cursor": adds["next"]}).json()
        assert {adds["items"][0]["uuid"], following["items"][0]["uuid"]} == {ok, second}
        assert following["next"] is None
        by_worker = dashboard.get("/api/tasks", params={"worker": "historian@test"}).json()
        assert by_worker["total"] == 5
        for params in ({"cursor": "garbage"}, {"time": "lunch"}, {"sort": "color"}, {"since": "yesterday"}):
            response = dashboard.get("/api/tasks", params=params)
            assert response.status_code == 400 and "error" in response.json(), params
    finally:
        if worker is not None:
            worker.end()
        dashboard.stop()


def test_a_corrupt_database_is_moved_aside(redis_port: int, log_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "broken.db"
    db.write_bytes(b"this is not a database" * 1000)
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/9", log_dir, extra_args=("--db", str(db)))
    try:
        assert dashboard.get("/api/tasks").json()["items"] == []
        assert [p.name for p in tmp_path.glob("broken.db.corrupt-*")], list(tmp_path.iterdir())
        assert "moved it to" in dashboard.proc.log_path.read_text()
    finally:
        dashboard.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_finished_tasks_leave_their_payloads_to_the_history(redis_port: int, log_dir: Path, tmp_path: Path,
                                                             backend: str, request: pytest.FixtureRequest,
                                                             live_client: Callable[[str], LiveClient]) -> None:
    """Past the latest PAYLOADS_KEPT stored, a finished task's args, kwargs and result live in the history
    alone: its live shape leaves them out, its API detail and the task list still carry them, and a late
    event that changes other fields leaves them as they were in the store."""
    broker = f"redis://127.0.0.1:{redis_port}/9"
    db = tmp_path / "history.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    dashboard = start_dashboard(broker, log_dir, extra_args=("--db", str(db)))
    try:
        wait_broker_connected(dashboard)
        client = live_client(dashboard.url)
        redis = Redis(port=redis_port)
        now = time.time() - 60
        tasks = [str(uuid.uuid4()) for _ in range(PAYLOADS_KEPT + 100)]

        def publish(task_id: str, at: float, key: str, fields: dict[str, Any]) -> None:
            body = {"uuid": task_id, "hostname": "keeper@test", "timestamp": at, "utcoffset": 0, "pid": 1,
                    "clock": 1, "type": key.replace(".", "-"), **fields}
            pipe.publish(f"/9.celeryev/{key}", event_envelope(body, key))

        pipe = redis.pipeline(transaction=False)
        for n, task_id in enumerate(tasks):
            at = now + n * 0.01
            publish(task_id, at, "task.received", {"name": "billing.charge", "args": f"({n}, 'card-{n}')",
                                                   "kwargs": f"{{'order': 'ORD-{n}'}}"})
            publish(task_id, at + 0.001, "task.started", {})
            publish(task_id, at + 0.002, "task.succeeded", {"result": f"'charged {n}'", "runtime": 0.001})
        pipe.execute()
        wait_until(lambda: dashboard.health()["store"]["written_events"] >= 3 * len(tasks), 30,
                   message=lambda: f"not all stored: {dashboard.health()['store']}")
        client.emit("resync")  # a snapshot now: the latest tasks keep their payloads in memory
        snapshot = wait_until(lambda: len(client.snapshots) > 1 and client.snapshots[-1][1], 5,
                              message="no snapshot after resync")
        newest = next(t for t in snapshot["tasks"] if t["uuid"] == tasks[-1])
        assert newest["args"] == f"({len(tasks) - 1}, 'card-{len(tasks) - 1}')"

        oldest = tasks[0]
        pushed = len(client.task_updates(oldest))  # a push of its SUCCESS may have come already, without a queue
        pipe = redis.pipeline(transaction=False)
        publish(oldest, now - 1, "task.sent", {"queue": "slow", "eta": "2026-11-29T12:00:00"})  # a late task-sent
        pipe.execute()
        live = wait_until(lambda: next((data for _, data in client.task_updates(oldest)[pushed:]
                                        if data["state"] == "SUCCESS"), None), 10,
                          message=lambda: f"no push of {oldest} after its late task-sent: {client.describe()}")
        assert live["queue"] == "slow" and live["eta"] == "2026-11-29T12:00:00"
        assert "args" not in live and "kwargs" not in live and "result" not in live

        def listed() -> dict[str, Any] | None:
            items = dashboard.get("/api/tasks", params={"queue": "slow"}).json()["items"]
            return items[0] if items else None
        stored = wait_until(listed, 10, message="the late task-sent never reached the history")
        assert stored["uuid"] == oldest and stored["eta"] == "2026-11-29T12:00:00"
        assert (stored["args"], stored["kwargs"], stored["result"]) == \
            ("(0, 'card-0')", "{'order': 'ORD-0'}", "'charged 0'")
        detail = dashboard.task(oldest)
        assert detail is not None and detail["queue"] == "slow" and detail["state"] == "SUCCESS"
        assert (detail["args"], detail["kwargs"], detail["result"]) == \
            ("(0, 'card-0')", "{'order': 'ORD-0'}", "'charged 0'")
        assert [e["type"] for e in detail["events"]] == ["task-sent", "task-received", "task-started",
                                                         "task-succeeded"]
    finally:
        dashboard.stop()


def test_a_long_task_evicted_from_memory_keeps_its_beginning_in_the_history(redis_port: int, log_dir: Path,
                                                                            tmp_path: Path) -> None:
    """A task still running when newer tasks push it out of memory (``--max-tasks``) finishes later: the
    dashboard sees it anew from its task-succeeded, and the history keeps its name, arguments, times and
    earlier events instead of overwriting them with what that one event says."""
    broker = f"redis://127.0.0.1:{redis_port}/9"
    dashboard = start_dashboard(broker, log_dir, extra_args=("--db", str(tmp_path / "history.db"),
                                                             "--max-tasks", "10"))
    try:
        wait_broker_connected(dashboard)
        redis = Redis(port=redis_port)
        now = time.time() - 60
        long_task, others = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(20)]

        def publish(task_id: str, at: float, key: str, fields: dict[str, Any]) -> None:
            body = {"uuid": task_id, "hostname": "keeper@test", "timestamp": at, "utcoffset": 0, "pid": 1,
                    "clock": 1, "type": key.replace(".", "-"), **fields}
            redis.publish(f"/9.celeryev/{key}", event_envelope(body, key))

        publish(long_task, now, "task.received", {"name": "reports.build_ledger", "args": "('2026-11',)",
                                                  "kwargs": "{}", "root_id": long_task})
        publish(long_task, now + 0.1, "task.started", {})
        wait_stored(dashboard, [long_task])
        for n, task_id in enumerate(others):
            publish(task_id, now + 1 + n * 0.01, "task.received", {"name": "emails.send", "args": f"({n},)"})
        wait_stored(dashboard, others)
        publish(long_task, now + 30, "task.succeeded", {"result": "'ledger.pdf'", "runtime": 29.9})
        detail = wait_until(lambda: (t := dashboard.task(long_task)) and t["state"] == "SUCCESS" and t, 10,
                            message=lambda: f"never SUCCESS: {dashboard.task(long_task)}")
        assert (detail["name"], detail["args"], detail["result"]) == ("reports.build_ledger", "('2026-11',)",
                                                                      "'ledger.pdf'")
        assert detail["received"] == pytest.approx(now) and detail["started"] == pytest.approx(now + 0.1)
        assert [e["type"] for e in detail["events"]] == ["task-received", "task-started", "task-succeeded"]

        def stored_row() -> dict[str, Any] | None:
            items = dashboard.get("/api/tasks", params={"state": "SUCCESS"}).json()["items"]
            return next((item for item in items if item["uuid"] == long_task), None)
        row = wait_until(stored_row, 10, message="the task's success never reached the history")
        assert (row["name"], row["args"], row["root_id"], row["runtime"]) == \
            ("reports.build_ledger", "('2026-11',)", long_task, 29.9)
        assert row["received"] == pytest.approx(now)
    finally:
        dashboard.stop()
