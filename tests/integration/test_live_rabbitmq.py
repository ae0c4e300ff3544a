"""The live happy path on the shared RabbitMQ broker, isolated by a unique worker name and queue."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests
from kombu import Connection, Exchange, Queue

from helpers import (LiveClient, port_open, producer_app, send, start_dashboard, start_worker,
                     wait_broker_connected, wait_until)

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672
RABBITMQ_URL = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}//"


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A queue of this test alone; deleted (with its exchange) afterwards so the shared broker stays clean."""
    if not port_open(RABBITMQ_HOST, RABBITMQ_PORT):
        pytest.skip(f"RabbitMQ not reachable at {RABBITMQ_HOST}:{RABBITMQ_PORT}")
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
        channel = connection.channel()
        Queue(name, Exchange(name), routing_key=name).bind(channel).delete()
        Exchange(name).bind(channel).delete()


def test_task_moves_through_its_states_live_on_rabbitmq(queue_name: str, log_dir: Path,
                                                        live_client: Callable[[str], LiveClient]) -> None:
    hostname_prefix = f"rabbit-{queue_name[5:]}"
    hostname = f"{hostname_prefix}@test"
    dashboard = start_dashboard(RABBITMQ_URL, log_dir)
    worker = None
    try:
        health = wait_broker_connected(dashboard)
        assert health["broker"]["url"] == "amqp://guest:****@127.0.0.1:5672//"
        client = live_client(dashboard.url)
        assert client.snapshots[0][1]["broker"]["url"] == "amqp://guest:****@127.0.0.1:5672//"

        worker = start_worker(RABBITMQ_URL, hostname_prefix, log_dir, concurrency=2, queues=queue_name)
        wait_until(lambda: any(d["status"] == "online" for _, d in client.worker_updates(hostname)), 30,
                   message=lambda: f"{hostname} never online live; {client.describe()}\n{worker.log_tail()}")

        producer = producer_app(RABBITMQ_URL)
        try:
            task_id = send(producer, "add", 4, 5, queue=queue_name)
        finally:
            producer.close()
        done = client.wait_task_state(task_id, "SUCCESS", 20)
        states = list(dict.fromkeys(d["state"] for _, d in client.task_updates(task_id)))
        assert states == [s for s in ("PENDING", "RECEIVED", "STARTED", "SUCCESS") if s in states], states
        assert done["worker"] == hostname and done["result"] == "9"
        assert done["queue"] == queue_name
        assert done["succeeded"] - done["received"] >= 0

        # The sampler reads RabbitMQ (a passive declare on its own connection) away from the event loop
        def sampled() -> dict | None:
            shape = next((q for q in dashboard.get("/api/queues").json() if q["name"] == queue_name), None)
            return shape if shape and shape["depth"] == 0 and shape["consumers"] == 1 else None
        wait_until(sampled, 30, message=lambda: f"{queue_name} not sampled: {dashboard.get('/api/queues').json()}")
        sampler = dashboard.get("/api/health").json()["sampler"]
        assert sampler["rounds"] >= 1 and sampler["last_ms"] is not None and sampler["last_ms"] < 5000
    finally:
        if worker is not None:
            worker.end()
        dashboard.stop()


def test_revoke_and_retry_on_rabbitmq(queue_name: str, log_dir: Path) -> None:
    hostname_prefix = f"rabbit-actor-{queue_name[5:]}"
    dashboard = start_dashboard(RABBITMQ_URL, log_dir)
    worker = None
    producer = producer_app(RABBITMQ_URL)
    try:
        wait_broker_connected(dashboard)
        # prefork with one slot: a task sent while the slot is busy waits in the worker, where a revoke reaches it
        worker = start_worker(RABBITMQ_URL, hostname_prefix, log_dir, concurrency=1, queues=queue_name, pool="prefork")
        wait_until(lambda: (w := dashboard.get(f"/api/workers/{hostname_prefix}@test")).status_code == 200
                   and w.json()["registered"], 30, message="the worker never online and inspected")

        def state(task_id: str, wanted: str) -> dict:
            return wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] == wanted and t, 30,
                              message=lambda: f"{task_id} never {wanted}: {dashboard.task(task_id)}")

        busy = send(producer, "slow_report", 5, queue=queue_name)
        state(busy, "STARTED")
        queued = send(producer, "add", 40, 2, queue=queue_name)
        wait_until(lambda: dashboard.task(queued), 15, message="queued task never seen")
        revoked = requests.post(f"{dashboard.url}/api/tasks/{queued}/revoke", json={}, timeout=10).json()
        assert revoked["ok"] and revoked["replies"], revoked
        state(queued, "REVOKED")

        sent = requests.post(f"{dashboard.url}/api/tasks/{queued}/retry", json={"args": [1, 2]}, timeout=10).json()
        assert sent["ok"], sent
        assert state(sent["task_id"], "SUCCESS")["result"] == "3"
        assert dashboard.get(f"/api/tasks/{sent['task_id']}").json()["retry_of"] == queued
    finally:
        producer.close()
        if worker is not None:
            worker.end()
        dashboard.stop()
