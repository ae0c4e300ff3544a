"""Reconciliation against real parts: a Redis result backend, a real worker, the dashboard stopped
and started again on its history. A task that finished while the dashboard was down ends SUCCESS from
the backend's record, marked as reconciled; a task whose worker was killed while the dashboard was
down ends lost after --stale-after; the task page's look-up reads the backend on demand."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
import requests
from celery import Celery

from helpers import (DashboardProc, producer_app, send, start_dashboard, start_worker, wait_broker_connected,
                     wait_task_state, wait_until, wait_worker_online)

pytestmark = pytest.mark.integration

BROKER_DB = 6
BACKEND_DB = 7
#: Seconds after which a task no worker holds is marked lost, in these tests.
STALE_AFTER = 2


def backend_env(redis_port: int) -> dict[str, str]:
    return {"CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{redis_port}/{BACKEND_DB}"}


def dashboard_on(broker: str, log_dir: Path, redis_port: int, port: int | None = None) -> DashboardProc:
    """The dashboard with the demo app (and its Redis result backend) as --app, on one history file."""
    dashboard = start_dashboard(broker, log_dir, port=port, env=backend_env(redis_port), extra_args=(
        "--app", "dashboard.demo.tasks", "--stale-after", str(STALE_AFTER)))
    wait_broker_connected(dashboard)
    return dashboard


def producer_with_backend(broker: str, redis_port: int) -> Celery:
    app = producer_app(broker)
    app.conf.result_backend = backend_env(redis_port)["CELERY_RESULT_BACKEND"]
    return app


def task_detail(dashboard: DashboardProc, uuid: str) -> dict[str, Any]:
    body = dashboard.task(uuid)
    assert body is not None
    return body


@contextmanager
def stopped_during_a_task(redis_port: int, log_dir: Path, worker_name: str, seconds: float) -> Iterator[Any]:
    """A worker running ``slow_report(seconds)`` that the dashboard saw start; the dashboard stopped then.
    The test starts it again as ``scene.dashboard``; everything is stopped at the end."""
    broker = f"redis://127.0.0.1:{redis_port}/{BROKER_DB}"
    worker = start_worker(broker, worker_name, log_dir, env=backend_env(redis_port))
    dashboard = dashboard_on(broker, log_dir, redis_port)
    producer = producer_with_backend(broker, redis_port)
    scene = SimpleNamespace(broker=broker, worker=worker, producer=producer, dashboard=dashboard, port=dashboard.port)
    try:
        wait_worker_online(dashboard, f"{worker_name}@test", worker=worker)
        assert dashboard.health()["reconciliation"]["backend"] is True
        scene.task_id = send(producer, "slow_report", seconds)
        wait_task_state(dashboard, scene.task_id, "STARTED")
        dashboard.stop()  # it misses what comes next
        yield scene
    finally:
        producer.close()
        scene.dashboard.stop()
        worker.end()


def test_a_task_that_finished_while_the_dashboard_was_down_ends_from_the_backend(
        redis_port: int, log_dir: Path) -> None:
    with stopped_during_a_task(redis_port, log_dir, "reconciled", 8) as scene:  # 8 s: longer than a stop takes
        task_id = scene.task_id
        scene.producer.AsyncResult(task_id).get(timeout=30)  # finished meanwhile, its result in the backend
        dashboard = scene.dashboard = dashboard_on(scene.broker, log_dir, redis_port, port=scene.port)
        assert task_detail(dashboard, task_id)["state"] == "STARTED"  # as the history left it
        done = wait_until(lambda: (t := task_detail(dashboard, task_id))["state"] == "SUCCESS" and t, 30,
                          message=lambda: f"not reconciled: {task_detail(dashboard, task_id)}")
        assert done["events"][-1]["type"] == "task-succeeded"
        assert done["events"][-1]["reconciled"] == "result backend" and "sales-" in done["result"]
        assert [g["cause"] for g in dashboard.get("/api/gaps").json()["gaps"]] == ["dashboard stopped"]
        assert done["gaps"] and done["gaps"][0]["cause"] == "dashboard stopped"
        assert dashboard.health()["reconciliation"]["reconciled"] >= 1

        other = send(scene.producer, "add", 2, 3)  # the look-up on demand reads the backend
        wait_task_state(dashboard, other, "SUCCESS")
        scene.producer.AsyncResult(other).get(timeout=10)
        answer = requests.post(f"{dashboard.url}/api/tasks/{other}/result", json={}, timeout=5).json()
        assert answer == {**answer, "available": True, "state": "SUCCESS", "applied": False, "result": "5"}


def test_a_task_whose_worker_died_while_the_dashboard_was_down_ends_lost(redis_port: int, log_dir: Path) -> None:
    with stopped_during_a_task(redis_port, log_dir, "doomed", 60) as scene:
        task_id = scene.task_id
        scene.worker.kill()  # kill -9, pool and all: the task never ends and no event says so
        dashboard = scene.dashboard = dashboard_on(scene.broker, log_dir, redis_port, port=scene.port)
        lost = wait_until(lambda: (t := task_detail(dashboard, task_id))["lost"] and t, 30,
                          message=lambda: f"not marked lost: {task_detail(dashboard, task_id)}")
        assert lost["lost"] == "events missed; no worker holds it" and lost["state"] == "STARTED"
        wait_until(lambda: next(t for t in dashboard.get("/api/tasks", params={"limit": 10}).json()["items"]
                                if t["uuid"] == task_id)["lost"] == lost["lost"], 10,
                   message="the stored task is not marked lost")  # an unfinished task is written within 2.5 s
        assert dashboard.health()["reconciliation"]["lost"] >= 1
