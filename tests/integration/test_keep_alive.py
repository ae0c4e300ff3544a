"""Responses on a kept-alive connection, as a browser reuses one: none waits for the client's delayed
acknowledgement (40 ms on Linux, 200 ms on Windows) because the server held part of it back."""
from __future__ import annotations

import http.client
import time
import uuid
from pathlib import Path

import pytest
from redis import Redis

from helpers import event_envelope, start_dashboard, wait_broker_connected, wait_until

pytestmark = pytest.mark.integration

#: A body of about 10 to 64 KB (a loopback segment) was held back: the
#: server wrote the head and the body apart, and Nagle's algorithm kept the body until the client had
#: acknowledged the head, which it delays.
BODY_RANGE = (20_000, 60_000)
#: The client's delayed acknowledgement lasts at least this long (Linux's minimum), in seconds.
DELAYED_ACK_SECONDS = 0.04
#: Requests on one connection after the first (a new connection's receiver acknowledges at once).
REQUESTS = 10


def test_kept_alive_api_responses_are_not_held_back(redis_port: int, log_dir: Path) -> None:
    """Under eventlet (``run.py``); the threading mode's server closes each connection after its response."""
    broker_db = 4
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/{broker_db}", log_dir)
    connection = http.client.HTTPConnection("127.0.0.1", dashboard.port, timeout=10)
    try:
        wait_broker_connected(dashboard)
        pipe = Redis(port=redis_port).pipeline(transaction=False)
        now = time.time()
        for n in range(40):  # about 1 KB each in the task list
            body = {"uuid": str(uuid.uuid4()), "hostname": "keep@test", "timestamp": now + n * 0.001, "utcoffset": 0,
                    "pid": 1, "clock": n, "type": "task-received", "name": "reports.build_pdf",
                    "args": repr((n, "x" * 700)), "kwargs": "{}"}
            pipe.publish(f"/{broker_db}.celeryev/task.received", event_envelope(body, "task.received"))
        pipe.execute()
        wait_until(lambda: len(dashboard.get("/api/tasks", params={"limit": 40}).json()["items"]) == 40, 15,
                   message="the tasks never showed")
        took = []
        for _ in range(REQUESTS + 1):
            started = time.monotonic()
            connection.request("GET", "/api/tasks?limit=30")
            response = connection.getresponse()
            body = response.read()
            took.append(time.monotonic() - started)
            assert response.status == 200 and BODY_RANGE[0] < len(body) < BODY_RANGE[1], len(body)
            assert not response.will_close  # the same connection every time
        # Held back, every response after the first takes the delayed acknowledgement at least; a busy
        # machine may slow some of them, not all.
        assert min(took[1:]) < DELAYED_ACK_SECONDS, [round(t * 1000, 1) for t in took]
    finally:
        connection.close()
        dashboard.stop()
