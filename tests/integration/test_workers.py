"""Workers: lost within Celery's window, orphaned tasks, webhooks, clean shutdowns, inspect data."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from dashboard.events import EventCollector
from dashboard.inspector import METHODS, NOT_ANSWERING, WorkerInspector
from dashboard.settings import Settings
from helpers import (DashboardProc, Proc, WebhookReceiver, dashboard_with_worker, holds_throughout, producer_app, send,
                     start_dashboard, start_worker, wait_answers_control, wait_broker_connected, wait_until,
                     wait_worker_online)

pytestmark = pytest.mark.integration

#: Heartbeat interval of the test workers and the dashboard's slack, in seconds.
FREQ = 1.0
SLACK = 1.0
#: Extra time allowed past freq * 2 + slack: the watcher's 250 ms tick and the HTTP poll.
TICK = 0.75


def worker_status(dashboard: DashboardProc, hostname: str) -> dict[str, Any] | None:
    return next((w for w in dashboard.get("/api/workers").json() if w["hostname"] == hostname), None)


def test_lost_offline_and_back(redis_port: int, log_dir: Path, webhook: WebhookReceiver) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/5"
    dashboard = start_dashboard(broker, log_dir, extra_args=(
        "--heartbeat-slack", str(SLACK), "--webhook", webhook.url, "--inspect-interval", "5"))
    procs: list[Proc] = []
    try:
        wait_broker_connected(dashboard)
        doomed = start_worker(broker, "doomed", log_dir, queues="doomed-q")
        calm = start_worker(broker, "calm", log_dir, queues="calm-q")
        procs += [doomed, calm]
        wait_worker_online(dashboard, "doomed@test", worker=doomed)
        wait_worker_online(dashboard, "calm@test", worker=calm)

        # Inspect data arrives for workers that started after the dashboard.
        detail = wait_until(lambda: (d := dashboard.get("/api/workers/doomed@test").json())["stats"] and d, 15,
                            message="no inspect data for a worker started after the dashboard")
        assert detail["pool"] == "eventlet" and detail["concurrency"] == 10
        assert detail["inspect_error"] is None and detail["inspected_at"]
        assert "dashboard.demo.tasks.slow_report" in detail["registered"]
        assert [q["name"] for q in detail["active_queues"]] == ["doomed-q"]
        assert "****" in json.dumps(detail["stats"]["broker"]) or detail["stats"]["broker"].get("password") is None

        task_id = send(producer_app(broker), "slow_report", 60, queue="doomed-q")
        wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] == "STARTED", 15,
                   message="the long task never started")

        doomed.kill()  # kill -9: no worker-offline
        lost = wait_until(lambda: (w := worker_status(dashboard, "doomed@test")) and w["status"] == "lost" and w,
                          2 * FREQ + SLACK + 5, interval=0.05, message="worker never lost")
        seen_lost_at = time.time()
        assert seen_lost_at - lost["last_heartbeat"] <= 2 * FREQ + SLACK + TICK
        task = dashboard.task(task_id)
        assert task is not None and task["orphaned"] is True and task["state"] == "STARTED"
        assert dashboard.get("/api/workers/doomed@test").json()["orphaned"] == [task_id]
        document = wait_until(lambda: next((d for d in webhook.documents if d["event"] == "worker-lost"), None), 10,
                              message=lambda: f"no webhook document: {webhook.documents}")
        assert document["hostname"] == "doomed@test" and document["orphaned"] == [task_id]
        assert document["last_heartbeat"] == pytest.approx(lost["last_heartbeat"])

        calm.stop()  # SIGTERM: a warm shutdown sends worker-offline
        wait_until(lambda: (w := worker_status(dashboard, "calm@test")) and w["status"] == "offline", 15,
                   message="cleanly stopped worker not offline")
        def stays_offline() -> None:
            assert worker_status(dashboard, "calm@test")["status"] == "offline"

        holds_throughout(stays_offline, 2 * FREQ + SLACK + 1)  # through the whole expiry window

        procs.append(start_worker(broker, "doomed", log_dir, queues="doomed-q"))
        wait_worker_online(dashboard, "doomed@test", worker=procs[-1])
        back = wait_until(lambda: next((d for d in webhook.documents if d["event"] == "worker-online"), None), 10,
                          message=lambda: f"no back-online webhook: {webhook.documents}")
        assert back["hostname"] == "doomed@test"
    finally:
        for proc in procs:
            proc.end()
        dashboard.stop()


def test_on_demand_inspect_and_its_guards(redis_port: int, log_dir: Path) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/6"
    with dashboard_with_worker(broker, log_dir, "asked", extra_args=("--inspect-interval", "600")) as (
            dashboard, worker):
        wait_answers_control(broker, "asked@test", worker=worker)
        refused = requests.post(f"{dashboard.url}/api/workers/asked@test/inspect", timeout=10,
                                data={"a": "form"})  # what a page of another site could send
        assert refused.status_code == 415 and "error" in refused.json()
        foreign = requests.post(f"{dashboard.url}/api/workers/asked@test/inspect", timeout=10, json={},
                                headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        response = requests.post(f"{dashboard.url}/api/workers/asked@test/inspect", json={}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["stats"]["pool"]["max-concurrency"] == 10
        missing = requests.post(f"{dashboard.url}/api/workers/nobody@test/inspect", json={}, timeout=10)
        assert missing.status_code == 404 and "error" in missing.json()


def test_a_worker_already_running_is_lost_within_its_own_window_not_the_requested_heartbeats(
        redis_port: int, log_dir: Path) -> None:
    """Workers already running when the dashboard starts answer its heartbeat request with Celery's
    hard-coded ``freq=5``; once a worker's own heartbeat has told its interval (1 s here), that
    request's answer must not stretch its window to 2 x 5 s."""
    broker = f"redis://127.0.0.1:{redis_port}/6"
    early = start_worker(broker, "early", log_dir, queues="early-q")
    other = start_worker(broker, "other", log_dir, queues="other-q")
    dashboard = start_dashboard(broker, log_dir, extra_args=("--heartbeat-slack", str(SLACK)))
    try:
        wait_until(lambda: (w := worker_status(dashboard, "early@test")) and w["freq"] == FREQ, 30,
                   message="the worker's own heartbeat never arrived")
        task_id = send(producer_app(broker), "slow_report", 60, queue="early-q")
        wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] == "STARTED", 15,
                   message="the long task never started")
        early.kill()
        lost = wait_until(lambda: (w := worker_status(dashboard, "early@test")) and w["status"] == "lost" and w,
                          2 * 5 + SLACK + 5, interval=0.05, message="worker never lost")
        assert time.time() - lost["last_heartbeat"] <= 2 * FREQ + SLACK + TICK
        assert lost["freq"] == FREQ
    finally:
        early.end()
        other.end()
        dashboard.stop()


def test_a_worker_that_does_not_answer_stats_is_not_asked_the_rest_of_the_round(
        redis_port: int, log_dir: Path) -> None:
    """A silent worker (remote control off, or gone) would make each of the eight inspect methods wait out
    its timeout: it is asked ``stats`` only, while a worker that answers gets every method."""
    broker = f"redis://127.0.0.1:{redis_port}/7"
    worker = start_worker(broker, "talks", log_dir)
    try:
        app = producer_app(broker)
        wait_until(lambda: app.control.ping(destination=["talks@test"], timeout=0.5), timeout=60,
                   message="the worker never answered a ping")
        collector = EventCollector(Settings(broker_url=broker, inspect_timeout_seconds=1.0))
        collector.broker.set("connected")
        now = time.time()
        collector.apply_events([{"type": "worker-online", "hostname": h, "timestamp": now, "local_received": now}
                                for h in ("talks@test", "silent@test")])
        began = time.monotonic()
        replies = WorkerInspector(collector).inspect(["talks@test", "silent@test"])
        elapsed = time.monotonic() - began
        assert set(replies["talks@test"]) == set(METHODS)
        assert replies["silent@test"] == {}
        assert collector.cluster.worker_detail("silent@test")["inspect_error"] == NOT_ANSWERING
        assert elapsed < 3 * 1.0  # stats waited for the silent one; the other seven were answered at once
    finally:
        worker.end()
