"""The dashboard survives its Redis broker dying and coming back, without a restart."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest

from helpers import (LiveClient, free_port, producer_app, send, start_dashboard, start_redis, start_worker,
                     wait_broker_connected, wait_until, wait_worker_online)

pytestmark = pytest.mark.integration

#: Most time between the broker dying and the dashboard saying so, in seconds.
DETECT_SECONDS = 2.0
#: Most time for the dashboard to resubscribe once the broker is back (reconnect backoff included), in seconds.
RECOVER_SECONDS = 15.0
#: Most time for the worker to reconnect by itself, in seconds (Celery's own retry schedule).
WORKER_RECOVER_SECONDS = 30.0


def test_dashboard_reports_outage_and_recovers(log_dir: Path,
                                               live_client: Callable[[str], LiveClient]) -> None:
    port = free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"
    redis_proc = start_redis(port, log_dir, name="redis-outage")
    worker = dashboard = None
    try:
        worker = start_worker(broker_url, "gamma", log_dir)
        dashboard = start_dashboard(broker_url, log_dir)
        wait_broker_connected(dashboard)
        wait_worker_online(dashboard, "gamma@test", worker=worker)
        client = live_client(dashboard.url)

        redis_proc.kill()
        killed_at = time.monotonic()
        down = wait_until(lambda: (h := dashboard.health())["broker"]["connected"] is False and h,
                          DETECT_SECONDS, message=lambda: f"outage not reported: {dashboard.health()}")
        took = time.monotonic() - killed_at  # wait_until's last poll may succeed just past its deadline
        assert took < DETECT_SECONDS, f"outage reported {took:.2f} s after the kill (limit {DETECT_SECONDS:g} s)"
        assert down["status"] == "degraded"
        assert down["broker"]["status"] in ("reconnecting", "connecting")
        assert down["broker"]["error"]
        wait_until(lambda: any(m["connected"] is False for _, m in client.broker), 1.0,
                   message=lambda: f"no live broker message about the outage: {client.describe()}")

        redis_proc = start_redis(port, log_dir, name="redis-outage-restarted")
        restarted_at = time.time()
        up = wait_broker_connected(dashboard, RECOVER_SECONDS)
        assert up["status"] == "ok" and up["broker"]["error"] is None
        wait_until(lambda: client.broker[-1][1]["connected"] is True, 2,
                   message=lambda: f"no live broker message about the recovery: {client.describe()}")

        def worker_back() -> bool:
            return any(w["hostname"] == "gamma@test" and w["status"] == "online"
                       and w["last_heartbeat"] > restarted_at for w in dashboard.get("/api/workers").json())
        wait_until(worker_back, WORKER_RECOVER_SECONDS, interval=0.2,
                   message=lambda: f"worker never beat again after the broker came back\n{worker.log_tail()}")

        producer = producer_app(broker_url)
        try:
            task_id = send(producer, "add", 20, 22)
        finally:
            producer.close()
        done = client.wait_task_state(task_id, "SUCCESS", 20)
        assert done["result"] == "42"
        assert client.connected and client.disconnects == [], client.describe()
    finally:
        for proc in (dashboard, worker, redis_proc):
            if proc is not None:
                proc.end()
