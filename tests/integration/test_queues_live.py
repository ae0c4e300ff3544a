"""Queue depths in the dashboard: priority sub-queues counted, live rise and fall, backlog alerts."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from helpers import (DashboardProc, LiveClient, WebhookReceiver, producer_app, send, start_dashboard, start_worker,
                     wait_broker_connected, wait_until, wait_worker_online)

pytestmark = pytest.mark.integration

QUEUE = "invoices"


def queue_shape(dashboard: DashboardProc, name: str) -> dict[str, Any] | None:
    return next((q for q in dashboard.get("/api/queues").json() if q["name"] == name), None)


def live_depths(client: LiveClient, name: str) -> list[int | None]:
    return [c["data"]["depth"] for _, c in client.all_changes() if c["kind"] == "queue" and c["key"] == name]


def test_depth_alerts_and_consumers(redis_port: int, log_dir: Path, webhook: WebhookReceiver,
                                    live_client: Callable[[str], LiveClient]) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/7"
    dashboard = start_dashboard(broker, log_dir, extra_args=(
        "--queues", QUEUE, "--queue-interval", "0.3", "--queue-alert", f"{QUEUE}=10",
        "--webhook", webhook.url, "--inspect-interval", "2"))
    worker = None
    try:
        wait_broker_connected(dashboard)
        client = live_client(dashboard.url)
        assert QUEUE in [q["name"] for q in client.snapshots[-1][1]["queues"]]

        app = producer_app(broker)
        for priority in (0, 3, 6, 9):  # kombu keeps priorities in sub-queues: all of them count
            for _ in range(3):
                send(app, "add", 1, 1, queue=QUEUE, priority=priority)
        full = wait_until(lambda: (q := queue_shape(dashboard, QUEUE)) and q["depth"] == 12 and q, 10,
                          message=lambda: f"depth never 12: {queue_shape(dashboard, QUEUE)}")
        assert full["no_consumer"] is True and full["consumers"] == 0 and full["stale"] is False
        assert full["oldest_age"] is not None and full["oldest_age"] >= 0
        assert full["alerting"] is True
        sampler = dashboard.health()["sampler"]  # the round trip of one pipelined sample of every queue
        assert sampler["queues"] >= 1 and sampler["rounds"] >= 1 and sampler["at"] > 0
        assert 0 <= sampler["p50_ms"] <= sampler["p95_ms"] <= sampler["max_ms"] and sampler["last_ms"] <= sampler["max_ms"]
        wait_until(lambda: 12 in live_depths(client, QUEUE), 3, message="depth 12 never pushed live")
        backlog = wait_until(lambda: next((d for d in webhook.documents if d["event"] == "queue-backlog"), None),
                             10, message=lambda: f"no backlog webhook: {webhook.documents}")
        # the first sample over the threshold: 11 or 12, depending on when it was taken during the sends
        assert backlog["queue"] == QUEUE and backlog["depth"] > 10 and backlog["threshold"] == 10

        worker = start_worker(broker, "drainer", log_dir, queues=QUEUE)
        wait_worker_online(dashboard, "drainer@test", worker=worker)
        wait_until(lambda: (q := queue_shape(dashboard, QUEUE)) and q["depth"] == 0 and q["consumers"] == 1, 20,
                   message=lambda: f"never drained: {queue_shape(dashboard, QUEUE)}")
        wait_until(lambda: 0 in live_depths(client, QUEUE), 3, message="depth 0 never pushed live")
        wait_until(lambda: any(d["event"] == "queue-backlog-cleared" for d in webhook.documents), 10,
                   message=lambda: f"no cleared webhook: {webhook.documents}")
        detail = dashboard.get(f"/api/queues/{QUEUE}").json()
        assert detail["workers"] == ["drainer@test"] and detail["history"]["depth"]
        # The store's per-minute highs: the open minute's are written every 5 s (GAUGE_WRITE_SECONDS).
        day = wait_until(lambda: (d := dashboard.get(f"/api/queues/{QUEUE}", params={"hours": 24}).json())
                         and 12 in d["history"]["depth"] and d, 15,
                         message=lambda: f"12 never in the day's history: {dashboard.get(f'/api/queues/{QUEUE}', params={'hours': 24}).json()['history']}")
        assert day["history_hours"] == 24
        assert dashboard.get(f"/api/queues/{QUEUE}", params={"hours": 0}).status_code == 400

        worker.stop()
        worker = None
        wait_until(lambda: (q := queue_shape(dashboard, QUEUE)) and q["consumers"] == 0, 20,
                   message="consumer still counted after its worker stopped")
        assert queue_shape(dashboard, QUEUE)["depth"] == 0  # remembered, not dropped
        assert dashboard.get("/api/queues/nowhere").status_code == 404
    finally:
        if worker is not None:
            worker.end()
        dashboard.stop()
