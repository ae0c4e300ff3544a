"""A broker that hangs without failing, and a broker that cuts the event subscription."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Callable

import pytest
import redis

from dashboard.redis_stream import decode_envelope
from helpers import (LiveClient, free_port, producer_app, send, start_dashboard, start_redis, start_worker,
                     wait_broker_connected, wait_until, wait_worker_online)

pytestmark = pytest.mark.integration

#: The watchdog's minimum silence in these tests, in seconds (the worker beats every second: its
#: limit is 3 heartbeats, 3 s).
WATCHDOG_SECONDS = 3.0
#: Events published while the dashboard is stopped: more than it applies while the watcher pings the broker.
STALL_FILLER_EVENTS = 5_000


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
                proc.end()


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


class Heartbeats:
    """Records, off Redis itself, each worker's heartbeats by the time the worker stamped on them (its clock is
    this machine's)."""

    def __init__(self, broker_url: str) -> None:
        self.pubsub = redis.Redis.from_url(broker_url).pubsub()
        self.pubsub.psubscribe("*.celeryev/worker.heartbeat")  # kombu's channel of the event fanout
        self.seen: list[tuple[float, str]] = []

    def poll(self) -> None:
        while (message := self.pubsub.get_message(timeout=0.05)) is not None:
            if message["type"] == "pmessage":
                event = decode_envelope(message["data"])
                self.seen.append((event["timestamp"], event["hostname"]))

    def of(self, hostname: str, since: float) -> list[float]:
        self.poll()
        return [at for at, host in self.seen if host == hostname and at >= since]

    def close(self) -> None:
        self.pubsub.close()


def test_a_stalled_dashboard_blames_no_worker(log_dir: Path, live_client: Callable[[str], LiveClient]) -> None:
    """The dashboard stops for longer than a worker's window while the worker beats on and a burst of events
    arrives: once it runs again, the heartbeats it has not read yet are not taken for silence. A worker
    killed afterwards is still found lost."""
    port = free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"
    redis_proc = start_redis(port, log_dir, name="redis-stall")
    worker = dashboard = heartbeats = None
    stopped = False
    try:
        worker = start_worker(broker_url, "steady", log_dir)
        dashboard = start_dashboard(broker_url, log_dir)
        wait_broker_connected(dashboard)
        wait_worker_online(dashboard, "steady@test", worker=worker)
        wait_until(lambda: dashboard.get("/api/workers/steady@test").json()["freq"] == 1.0, 10,
                   message=lambda: f"no 1 s heartbeat yet: {dashboard.get('/api/workers/steady@test').json()}")
        client = live_client(dashboard.url)
        heartbeats = Heartbeats(broker_url)
        received = dashboard.health()["events"]["received"]

        os.kill(dashboard.proc.popen.pid, signal.SIGSTOP)  # the whole process stops, as in a long pause
        stopped = True
        began = time.time()
        producer = producer_app(broker_url)
        try:  # more than the reader applies while the watcher pings the broker once it runs again
            with producer.connection_for_write() as connection:
                dispatcher = producer.events.Dispatcher(connection, enabled=True)
                for n in range(STALL_FILLER_EVENTS):
                    dispatcher.send("task-sent", uuid=f"filler-{n}", name="filler.task", queue="celery")
                dispatcher.close()
        finally:
            producer.close()
        # The worker's window is 2 x 1 s + 2 s of slack: stop for 6 of its heartbeats.
        beats = wait_until(lambda: len(b := heartbeats.of("steady@test", began)) >= 6 and b, 30,
                           message=lambda: f"heartbeats since the stop: {heartbeats.of('steady@test', began)}")
        gaps = [later - earlier for earlier, later in zip([began] + beats, beats)]
        assert max(gaps) < 3.0, f"the worker itself missed its window: {gaps}"  # then lost would be right
        os.kill(dashboard.proc.popen.pid, signal.SIGCONT)
        stopped = False
        resumed = time.time()

        wait_until(lambda: dashboard.health()["events"]["received"] >= received + STALL_FILLER_EVENTS + 6, 30,
                   message=lambda: f"not caught up: {dashboard.health()['events']}")
        wait_until(lambda: (dashboard.get("/api/workers/steady@test").json()["last_heartbeat"] or 0) > resumed + 1, 10,
                   message=lambda: f"no heartbeat after the stall: {dashboard.get('/api/workers/steady@test').json()}")
        assert [a for _, a in client.alerts] == [] and client.connected and not client.disconnects
        assert dashboard.get("/api/workers/steady@test").json()["status"] == "online"

        worker.kill()  # no goodbye: found lost by its heartbeats alone, about 4 s after its last
        killed = time.time()
        seen_at, lost = wait_until(lambda: next(((at, a) for at, a in client.alerts if a["event"] == "worker-lost"),
                                                None), 15,
                                   message=lambda: f"the killed worker was not found lost: {client.describe()}")
        assert lost["hostname"] == "steady@test" and seen_at - killed < 7
    finally:
        if stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(dashboard.proc.popen.pid, signal.SIGCONT)
        if heartbeats is not None:
            heartbeats.close()
        for proc in (dashboard, worker, redis_proc):
            if proc is not None:
                proc.end()
