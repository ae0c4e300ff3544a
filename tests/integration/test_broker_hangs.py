"""A broker that hangs without failing, and a broker that cuts the event subscription."""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable

import pytest
import redis

from helpers import (LiveClient, free_port, producer_app, send, start_dashboard, start_redis, start_worker,
                     wait_broker_connected, wait_until, wait_worker_online)

pytestmark = pytest.mark.integration

#: The watchdog's minimum silence in these tests, in seconds (the worker beats every second: its
#: limit is 3 heartbeats, 3 s).
WATCHDOG_SECONDS = 3.0


def test_watchdog_catches_a_hung_broker(log_dir: Path, live_client: Callable[[str], LiveClient]) -> None:
    port = free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"
    redis_proc = start_redis(port, log_dir, name="redis-hang")
    worker = dashboard = None
    stopped = False
    try:
        worker = start_worker(broker_url, "hang", log_dir)
        dashboard = start_dashboard(broker_url, log_dir, extra_args=("--watchdog-min", str(WATCHDOG_SECONDS)))
        wait_broker_connected(dashboard)
        wait_worker_online(dashboard, "hang@test", worker=worker)
        # The heartbeat Celery answers the dashboard's subscription with says freq=5 (hard-coded), which
        # stands in until the worker's own: a hang before that is noticed only after 3 x 5 s (or the 12 s of
        # a 5 s heartbeat's expiry), and with the machine busy that passed the wait below. Wait for the 1 s.
        wait_until(lambda: dashboard.get("/api/workers/hang@test").json()["freq"] == 1.0, 10,
                   message=lambda: f"no 1 s heartbeat yet: {dashboard.get('/api/workers/hang@test').json()}")
        client = live_client(dashboard.url)

        os.kill(redis_proc.pid, signal.SIGSTOP)  # the process hangs: sockets stay open, nothing answers
        stopped = True
        hung = wait_until(lambda: (h := dashboard.health())["broker"]["status"] == "unresponsive" and h,
                          WATCHDOG_SECONDS + 15, message=lambda: f"hang not noticed: {dashboard.health()}")
        assert hung["broker"]["connected"] is False and hung["status"] == "degraded"
        wait_until(lambda: any(m["status"] == "unresponsive" for _, m in client.broker), 2,
                   message=lambda: f"no live broker message about the hang: {client.describe()}")

        os.kill(redis_proc.pid, signal.SIGCONT)
        stopped = False
        wait_broker_connected(dashboard, 20)
        producer = producer_app(broker_url)
        try:
            task_id = send(producer, "add", 1, 2)
        finally:
            producer.close()
        assert client.wait_task_state(task_id, "SUCCESS", 20)["result"] == "3"
    finally:
        if stopped:
            os.kill(redis_proc.pid, signal.SIGCONT)
        for proc in (dashboard, worker, redis_proc):
            if proc is not None:
                proc.stop()


def test_a_cut_subscription_is_counted_and_shown(redis_port: int, log_dir: Path,
                                                 live_client: Callable[[str], LiveClient]) -> None:
    broker_url = f"redis://127.0.0.1:{redis_port}/13"
    dashboard = start_dashboard(broker_url, log_dir)
    try:
        wait_broker_connected(dashboard)
        client = live_client(dashboard.url)
        # What Redis does to a subscriber over client-output-buffer-limit pubsub: close its connection.
        killed = redis.Redis(host="127.0.0.1", port=redis_port).client_kill_filter(_type="pubsub")
        assert killed >= 1
        cut = wait_until(lambda: (h := dashboard.health())["broker"]["stream_cuts"] >= 1 and h, 5,
                         message=lambda: f"cut not counted: {dashboard.health()}")
        assert "events were lost" in cut["broker"]["error"]
        wait_until(lambda: any(m["stream_cuts"] >= 1 for _, m in client.broker), 2,
                   message=lambda: f"no live broker message about the cut: {client.describe()}")
        wait_broker_connected(dashboard, 15)
    finally:
        dashboard.stop()
