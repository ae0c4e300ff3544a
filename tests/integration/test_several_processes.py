"""Two dashboard processes sharing one PostgreSQL history and one Redis (broker, leader lock and message
queue), behind nginx: each page sees every task once and the leader's alerts once, both answer the same
history, and a kill -9 of the leader hands the writing over within the lock's TTL while the pages go on
without a reload."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import (NGINX, DashboardProc, LiveClient, WebhookReceiver, free_port, producer_app, send,
                     start_dashboard, start_nginx, start_worker, wait_broker_connected, wait_until,
                     wait_worker_online)

pytestmark = pytest.mark.integration

BROKER_DB = 11
TTL = 3.0
PREFIX = "/celery"


def start(broker: str, db: str, log_dir: Path, webhook: str) -> DashboardProc:
    dashboard = start_dashboard(broker, log_dir, extra_args=(
        "--db", db, "--leader-lock", broker, "--leader-ttl", str(TTL), "--message-queue", broker,
        "--url-prefix", PREFIX, "--webhook", webhook))
    wait_broker_connected(dashboard)
    return dashboard


def assert_each_state_once(client: LiveClient, task_ids: list[str]) -> None:
    """No update reaches a page twice (as it would if both processes, or the message queue, pushed it).
    The same state may come again with more in it: an event that adds to a task without moving its
    state (a late ``task-received``, say) is an update of its own."""
    for task_id in task_ids:
        client.wait_task_state(task_id, "SUCCESS", 20)
        seen = [json.dumps(data, sort_keys=True) for _, data in client.task_updates(task_id)]
        assert len(seen) == len(set(seen)), f"{task_id} pushed twice to one page: {seen}"


def stored(dashboard: DashboardProc, limit: int = 100) -> list[str]:
    body = dashboard.get("/api/tasks", params={"limit": limit}).json()
    return sorted(task["uuid"] for task in body["items"])


def lost_alerts(client: LiveClient, hostname: str) -> list[dict[str, Any]]:
    return [a for _, a in client.alerts if a.get("event") == "worker-lost" and a.get("hostname") == hostname]


def test_two_processes_share_the_history_and_fail_over(
        redis_port: int, postgres_url: str, log_dir: Path, tmp_path: Path, webhook: WebhookReceiver) -> None:
    if not Path(NGINX).exists():
        pytest.fail(f"{NGINX} is missing: ./dashboard.sh test installs Debian's nginx when run as root")
    broker = f"redis://127.0.0.1:{redis_port}/{BROKER_DB}"
    first = start(broker, postgres_url, log_dir / "first", webhook.url)
    second = nginx = worker = doomed = None
    clients: list[LiveClient] = []
    try:
        wait_until(lambda: first.health()["leader"], 10, message="the first process never led")
        second = start(broker, postgres_url, log_dir / "second", webhook.url)
        health = second.health()
        assert health["leader"] is False and health["store"]["writes"] is False
        assert health["leadership"]["holder"] == first.health()["leadership"]["me"]
        port = free_port()
        nginx = start_nginx(tmp_path / "nginx", port, first.port, backup=second.port)
        # One page through nginx (on the first process while it lives), one on the second directly.
        via_proxy = LiveClient(f"http://127.0.0.1:{port}", reconnect=True, socketio_path="celery/socket.io")
        direct = LiveClient(f"http://127.0.0.1:{second.port}", socketio_path="celery/socket.io")
        clients += [via_proxy.connect(), direct.connect()]

        worker = start_worker(broker, "shared", log_dir)
        wait_worker_online(first, "shared@test", worker=worker)
        app = producer_app(broker)
        before = [send(app, "add", n, n) for n in range(8)]
        for client in clients:
            assert_each_state_once(client, before)
        wait_until(lambda: set(before) <= set(stored(second)), 10,
                   message=lambda: f"the leader's writes never reached the second process: {stored(second)}")
        assert stored(first) == stored(second)
        assert first.health()["store"]["writes"] is True

        # A worker dies: both processes see it lost; the leader alone tells every page (through the message
        # queue) and the webhook, once.
        doomed = start_worker(broker, "doomed", log_dir, queues="doomed-q")
        for dashboard in (first, second):
            wait_worker_online(dashboard, "doomed@test", worker=doomed)
        doomed.kill()
        for client in clients:
            wait_until(lambda: lost_alerts(client, "doomed@test"), 20,
                       message=lambda: f"no worker-lost alert on a page: {client.alerts}")
        wait_until(lambda: any(d["event"] == "worker-lost" for d in webhook.documents), 10,
                   message=lambda: f"no webhook document: {webhook.documents}")
        marker = send(app, "add", 7, 7)  # pushed after the alerts: a second copy would have arrived by then
        for client in clients:
            client.wait_task_state(marker, "SUCCESS", 20)
            assert len(lost_alerts(client, "doomed@test")) == 1, client.alerts
        assert [d["hostname"] for d in webhook.documents if d["event"] == "worker-lost"] == ["doomed@test"]

        last = send(app, "add", 100, 1)  # finished just before the kill: maybe not written by the leader yet
        for client in clients:
            client.wait_task_state(last, "SUCCESS", 20)
        first.proc.kill()  # kill -9
        killed_at = time.monotonic()
        wait_until(lambda: second.health()["leader"], TTL + 2, interval=0.1,
                   message=lambda: f"no take-over within the TTL: {second.health().get('leadership')}")
        assert time.monotonic() - killed_at <= TTL + 2
        assert second.health()["store"]["writes"] is True

        after = [send(app, "add", n, 1000) for n in range(4)]
        wait_until(lambda: via_proxy.connected and len(via_proxy.snapshots) >= 2, 15,
                   message=lambda: f"the proxied page never reconnected: {via_proxy.describe()}")
        for client in clients:
            assert_each_state_once(client, after)
        everything = sorted([*before, marker, last, *after])
        wait_until(lambda: stored(second) == everything, 10,
                   message=lambda: f"the new leader did not write what it saw: {stored(second)}")
        proxied = f"http://127.0.0.1:{port}{PREFIX}/api/tasks"
        import requests
        assert sorted(t["uuid"] for t in requests.get(proxied, params={"limit": 100}, timeout=5).json()["items"]) \
            == everything
        gaps = [gap for gap in second.health()["broker"]["gaps"] if gap["cause"] == "no leader"]
        assert gaps == []  # the second process saw every event while it followed: nothing is missing
    finally:
        for client in clients:
            client.close()
        for each in (worker, doomed):
            if each is not None:
                each.end()
        if nginx is not None:
            nginx.stop()
        for dashboard in (second, first):
            if dashboard is not None:
                dashboard.stop()
