"""``python -m dashboard`` (Flask-SocketIO's threading mode, no eventlet) serves the same live stream."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from helpers import LiveClient, start_dashboard, start_worker, wait_broker_connected, wait_until

pytestmark = pytest.mark.integration

#: This module's Redis database on the session's redis-server (Redis fanout events are per database).
REDIS_DB = 2


def test_threading_mode_serves_snapshot_and_sees_a_worker(redis_port: int, log_dir: Path,
                                                          live_client: Callable[[str], LiveClient]) -> None:
    broker_url = f"redis://127.0.0.1:{redis_port}/{REDIS_DB}"
    dashboard = start_dashboard(broker_url, log_dir, threading_mode=True)
    worker = None
    try:
        wait_broker_connected(dashboard)
        client = live_client(dashboard.url)
        snapshot = client.snapshots[0][1]
        assert set(snapshot) >= {"seq", "workers", "tasks", "queues", "counters", "broker"}
        assert snapshot["broker"]["connected"] is True

        worker = start_worker(broker_url, "delta", log_dir, concurrency=2)
        wait_until(lambda: any(d["status"] == "online" for _, d in client.worker_updates("delta@test")), 30,
                   message=lambda: f"delta never online live; {client.describe()}\n{worker.log_tail()}")
        assert client.connected and client.disconnects == []
    finally:
        if worker is not None:
            worker.end()
        dashboard.stop()
