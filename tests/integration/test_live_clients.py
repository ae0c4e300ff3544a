"""One client cannot hurt the others: a stalled socket is dropped, everyone else keeps their live updates.

A client that stops answering pings (a laptop gone to sleep) is closed by
engine.io from inside a send; the hub must never hold a lock across that send.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis
import websocket

from helpers import DashboardProc, LiveClient, event_envelope, start_dashboard, wait_broker_connected, wait_until

pytestmark = pytest.mark.integration

REDIS_DB = 10
#: Engine.IO ping interval and timeout of the dashboard under test, in seconds.
PING_SECONDS = "1"


class TaskStream:
    """Publishes a task's life every 50 ms on the event fanout until closed."""

    def __init__(self, redis_port: int) -> None:
        self.client = redis.Redis(host="127.0.0.1", port=redis_port)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stopping.wait(0.05):
            n += 1
            now = time.time()
            for step, kind in enumerate(("received", "succeeded")):
                body = {"type": f"task-{kind}", "uuid": f"stream-{n}", "name": "tests.stream", "hostname": "s@test",
                        "timestamp": now + step * 0.001, "utcoffset": 0, "pid": 1, "clock": n}
                self.client.publish(f"/{REDIS_DB}.celeryev/task.{kind}", event_envelope(body, f"task.{kind}"))

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.client.close()


@pytest.fixture
def live(redis_port: int, log_dir: Path) -> Iterator[tuple[DashboardProc, TaskStream]]:
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/{REDIS_DB}", log_dir,
                                extra_args=("--ping-interval", PING_SECONDS, "--ping-timeout", PING_SECONDS))
    stream: TaskStream | None = None
    try:
        wait_broker_connected(dashboard)
        stream = TaskStream(redis_port)
        yield dashboard, stream
    finally:
        if stream is not None:
            stream.close()
        dashboard.stop()


def changes_count(client: LiveClient) -> int:
    with client.lock:
        return len(client.changes)


def test_a_client_that_stops_answering_pings_is_dropped_and_nobody_else_notices(
        live: tuple[DashboardProc, TaskStream], live_client: Callable[[str], LiveClient]) -> None:
    dashboard, _ = live
    watcher = live_client(dashboard.url)
    wait_until(lambda: changes_count(watcher) > 5, 5, message=lambda: watcher.describe())

    # A raw websocket that joins /live, then never answers a ping but keeps sending (so that its
    # reads never time out): engine.io closes it for the missed pong, from inside a send.
    stalled = websocket.create_connection(f"ws://127.0.0.1:{dashboard.port}/socket.io/?EIO=4&transport=websocket",
                                          timeout=5)
    assert stalled.recv().startswith("0{")
    stalled.send("40/live,")
    wait_until(lambda: dashboard.health()["live"]["clients"] == 2, 5, message="the raw client did not join /live")
    closed = threading.Event()

    def keep_talking() -> None:
        while not closed.is_set():
            try:
                stalled.send('42/live,["unsubscribe",{"room":"task:none"}]')
            except (OSError, websocket.WebSocketException):
                return
            time.sleep(0.2)  # a client's own pace, not a wait for a condition

    talker = threading.Thread(target=keep_talking, daemon=True)
    talker.start()
    try:  # dropped within ping interval + ping timeout (2 s here), while it still talks
        wait_until(lambda: dashboard.health()["live"]["clients"] == 1, 10,
                   message="the stalled client was never dropped")
    finally:
        closed.set()
        talker.join(5)
        stalled.close()

    # Everyone else carries on: the watcher keeps getting numbered batches, and new pages connect.
    seen = changes_count(watcher)
    wait_until(lambda: changes_count(watcher) >= seen + 10, 5,
               message=lambda: f"live updates stopped after the stalled client: {watcher.describe()}")
    assert watcher.connected
    with watcher.lock:
        seqs = [data["seq"] for _, data in watcher.changes]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq must grow by exactly one"
    newcomer = live_client(dashboard.url)
    wait_until(lambda: changes_count(newcomer) > 3, 5, message=lambda: newcomer.describe())
    assert dashboard.health()["broker"]["connected"]

    started = time.monotonic()
    dashboard.proc.terminate()  # the first SIGTERM stops it
    wait_until(lambda: not dashboard.proc.alive(), 8, message="the dashboard did not stop on SIGTERM")
    assert time.monotonic() - started < 8
