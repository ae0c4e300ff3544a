"""One client cannot hurt the others: a stalled socket is dropped, everyone else keeps their live updates.

A client that stops answering pings (a laptop gone to sleep) is closed by
engine.io from inside a send; the hub must never hold a lock across that send.
"""
from __future__ import annotations

import socket
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
    """Publishes ``tasks`` task lives every 50 ms on the event fanout until closed."""

    def __init__(self, redis_port: int, tasks: int = 1, args_chars: int = 10) -> None:
        self.tasks, self.args = tasks, "x" * args_chars
        self.client = redis.Redis(host="127.0.0.1", port=redis_port)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stopping.wait(0.05):
            now = time.time()
            pipe = self.client.pipeline(transaction=False)
            for _ in range(self.tasks):
                n += 1
                for step, kind in enumerate(("received", "succeeded")):
                    body = {"type": f"task-{kind}", "uuid": f"stream-{n}", "name": "tests.stream",
                            "hostname": "s@test", "timestamp": now + step * 0.001, "utcoffset": 0, "pid": 1,
                            "clock": n, "args": self.args}
                    pipe.publish(f"/{REDIS_DB}.celeryev/task.{kind}", event_envelope(body, f"task.{kind}"))
            pipe.execute()

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
        while not closed.wait(0.2):  # a client's own pace, until the test is done with it
            try:
                stalled.send('42/live,["unsubscribe",{"room":"task:none"}]')
            except (OSError, websocket.WebSocketException):
                return

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


def test_a_page_that_does_not_read_is_held_back_then_dropped_and_nobody_else_notices(
        redis_port: int, log_dir: Path, live_client: Callable[[str], LiveClient]) -> None:
    """A connected page that reads nothing (pings are answered too late to matter here): its batches are held
    back once 20 wait, and after --slow-client-timeout held back its connection is closed; the others never
    wait for it."""
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/{REDIS_DB}", log_dir,
                                extra_args=("--ping-interval", "300", "--ping-timeout", "300",
                                            "--slow-client-timeout", "3"))
    stream: TaskStream | None = None
    sleeper = None
    try:
        wait_broker_connected(dashboard)
        watcher = live_client(dashboard.url)
        sleeper = websocket.create_connection(
            f"ws://127.0.0.1:{dashboard.port}/socket.io/?EIO=4&transport=websocket", timeout=5,
            sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
        assert sleeper.recv().startswith("0{")
        sleeper.send("40/live,")  # and from now on never reads
        wait_until(lambda: dashboard.health()["live"]["clients"] == 2, 5, message="the sleeper did not join")
        stream = TaskStream(redis_port, tasks=20, args_chars=4096)  # about 1 MB of changes a second
        wait_until(lambda: dashboard.health()["live"]["dropped"] == 1, 90,
                   message=lambda: f"the page that does not read was never dropped: {dashboard.health()['live']}")
        assert dashboard.health()["live"]["clients"] == 1
        seen = changes_count(watcher)
        wait_until(lambda: changes_count(watcher) >= seen + 10, 5, message=lambda: watcher.describe())
        with watcher.lock:
            seqs = [data["seq"] for _, data in watcher.changes]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and not watcher.disconnects
    finally:
        if stream is not None:
            stream.close()
        if sleeper is not None:
            sleeper.close()
        dashboard.stop()
