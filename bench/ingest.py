"""Ingest benchmark: publish real Celery events at a set rate and measure what the dashboard does with them.

It starts its own ``redis-server`` on a free port and the dashboard (``run.py``)
against it, connects a Socket.IO client as a browser would, then publishes task
life cycles (sent, received, started, succeeded or failed with a traceback) and
worker heartbeats through Celery's own ``EventDispatcher``. It reports, per
rate: events published and received (loss), the dashboard's CPU per 1,000
events, and the time from publishing a task's final event to the client seeing
it. Results go to ``bench/results/ingest-<time>.json``.

    .venv/bin/python bench/ingest.py --rates 1000,2000,5000 --seconds 20
"""
from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
import socketio
from celery import Celery
from celery.events.dispatcher import EventDispatcher

ROOT = Path(__file__).resolve().parent.parent
#: Events per simulated task (sent, received, started, succeeded/failed).
EVENTS_PER_TASK = 4
#: Simulated workers sending heartbeats every second.
WORKERS = 8
#: One task in this many fails with a traceback.
FAILURE_EVERY = 10
TRACEBACK = "Traceback (most recent call last):\n" + '  File "app/tasks.py", line 42, in charge\n' * 8 + "ValueError: card declined\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Resident memory in KiB; ``RssAnon`` leaves out the SQLite file pages mapped by mmap."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def socketio_client() -> socketio.Client:
    """A Socket.IO client as the benchmarks measure with: no reconnection, and no pure-Python UTF-8 check of
    each message. Without wsaccel, websocket-client checks every text frame byte by byte in Python, 284 ms
    for the 945 KB snapshot of the 1,000-worker cluster on an idle machine and about 530 ms in one run under its load, more
    than the dashboard takes to build and send it; the text is still decoded strictly (``bytes.decode``)."""
    return socketio.Client(reconnection=False, websocket_extra_options={"skip_utf8_validation": True})


class LatencyClient:
    """A Socket.IO client that notes when each final task state reaches it."""

    def __init__(self, url: str) -> None:
        self.seen: dict[str, float] = {}
        self.client = socketio_client()
        self.client.on("changes", self._on_changes, namespace="/live")
        self.client.connect(url, namespaces=["/live"], transports=["websocket"])

    def _on_changes(self, message: dict[str, Any]) -> None:
        now = time.time()
        for change in message["changes"]:
            data = change.get("data") or {}
            if change["kind"] == "task" and data.get("state") in ("SUCCESS", "FAILURE"):
                self.seen.setdefault(change["key"], now)

    def close(self) -> None:
        self.client.disconnect()


def publish(dispatcher: EventDispatcher, rate: int, seconds: float, finals: dict[str, float]) -> int:
    """Publish about ``rate`` events a second for ``seconds``; return how many were published."""
    published = 0
    start = time.monotonic()
    next_beat = start
    tick = 0.01
    tasks_per_tick = max(rate * tick / EVENTS_PER_TASK, 0.0)
    owed = 0.0
    n = 0
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now >= next_beat:
            for w in range(WORKERS):
                dispatcher.hostname = f"bench-{w}@load"
                dispatcher.send("worker-heartbeat", freq=1.0,
                                active=3, processed=n, loadavg=[0.5, 0.4, 0.3], sw_ident="py-celery",
                                sw_ver="5.7.0", sw_sys="Linux")
                published += 1
            next_beat += 1.0
        owed += tasks_per_tick
        while owed >= 1:
            owed -= 1
            n += 1
            task_id = str(uuidlib.uuid4())
            dispatcher.hostname = "bench-producer@load"
            dispatcher.send("task-sent", uuid=task_id, name="billing.charge_card", args=f"({n}, 'cus_{n:08d}')",
                            kwargs="{'amount': 1999, 'currency': 'eur'}", retries=0, eta=None, expires=None,
                            queue="celery", exchange="", routing_key="celery", root_id=task_id, parent_id=None)
            dispatcher.hostname = f"bench-{n % WORKERS}@load"
            dispatcher.send("task-received", uuid=task_id, name="billing.charge_card", args=f"({n},)",
                            kwargs="{}", retries=0, root_id=task_id, parent_id=None)
            dispatcher.send("task-started", uuid=task_id)
            if n % FAILURE_EVERY == 0:
                dispatcher.send("task-failed", uuid=task_id,
                                exception="ValueError('card declined')", traceback=TRACEBACK)
            else:
                dispatcher.send("task-succeeded", uuid=task_id, result="'ch_1234'", runtime=0.012)
            finals[task_id] = time.time()
            published += EVENTS_PER_TASK
        if hasattr(dispatcher, "flush"):
            dispatcher.flush()  # publish this tick's events now, so their timestamps are their publish times
        sleep_for = tick - (time.monotonic() - now)
        if sleep_for > 0:
            time.sleep(sleep_for)
    return published


class RawDispatcher:
    """Publishes events in exactly the wire format of Celery's EventDispatcher on Redis, far cheaper.

    kombu's Redis transport publishes a fanout message as a JSON envelope (the event JSON in base64)
    on the channel ``/<db>.celeryev/<routing key>``; this builds the same envelope and pipelines the
    PUBLISH commands, so the generator does not eat the CPU the dashboard is measured on.
    """

    def __init__(self, broker: str) -> None:
        url = urlsplit(broker)
        self.db = int((url.path or "/0").strip("/") or 0)
        self.client = redis.Redis(host=url.hostname or "127.0.0.1", port=url.port or 6379, db=self.db)
        self.pipe = self.client.pipeline(transaction=False)
        self.hostname = "bench-producer@load"
        self.clock = 0
        self.pending = 0

    def send(self, type: str, **fields: Any) -> None:
        self.clock += 1
        event = {"hostname": self.hostname, "utcoffset": 0.0, "pid": os.getpid(), "clock": self.clock,
                 **fields, "timestamp": time.time(), "type": type}
        routing_key = type.replace("-", ".", 1)
        envelope = {"body": base64.b64encode(json.dumps(event).encode()).decode(), "content-encoding": "utf-8",
                    "content-type": "application/json", "headers": {"hostname": self.hostname},
                    "properties": {"delivery_mode": 1, "delivery_info": {"exchange": "celeryev",
                                                                         "routing_key": routing_key},
                                   "priority": 0, "body_encoding": "base64", "delivery_tag": str(uuidlib.uuid4())}}
        self.pipe.publish(f"/{self.db}.celeryev/{routing_key}", json.dumps(envelope))
        self.pending += 1
        if self.pending >= 200:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.pipe.execute()
        self.pending = 0

    def close(self) -> None:
        self.flush()
        self.client.close()


def publisher(broker: str, rate: int, seconds: float, raw: bool = False) -> tuple[int, dict[str, float]]:
    """Publish from one process; return the count and each task's final-event time."""
    finals: dict[str, float] = {}
    if raw:
        dispatcher: Any = RawDispatcher(broker)
        published = publish(dispatcher, rate, seconds, finals)
        dispatcher.close()
        return published, finals
    app = Celery(broker=broker, set_as_current=False)
    with app.connection_for_write() as connection:
        dispatcher = EventDispatcher(connection, hostname="bench-producer@load", app=app)
        published = publish(dispatcher, rate, seconds, finals)
        dispatcher.close()
    return published, finals


def measure(rate: int, seconds: float, broker: str, base: str, pid: int, publishers: int = 1,
            raw: bool = False) -> dict[str, Any]:
    client = LatencyClient(base)
    finals: dict[str, float] = {}
    before = requests.get(f"{base}/api/health", timeout=5).json()["events"]["received"]
    cpu_before = cpu_seconds(pid)
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(publishers) as pool:
        parts = pool.starmap(publisher, [(broker, rate // publishers, seconds, raw)] * publishers)
    elapsed = time.monotonic() - started
    published = sum(count for count, _ in parts)
    for _, part in parts:
        finals.update(part)
    ended = time.monotonic()
    caught_up = True
    try:
        wait_for(lambda: requests.get(f"{base}/api/health", timeout=5).json()["events"]["received"] - before
                 >= published, timeout=60, what="the dashboard to take every event")
        if finals:  # the overview window carries the most recent tasks of each batch; the last one must arrive
            last = max(finals, key=finals.__getitem__)
            wait_for(lambda: last in client.seen, timeout=10, what="the last task's final state")
    except RuntimeError:
        caught_up = False
    catch_up_seconds = round(time.monotonic() - ended, 2)
    health = requests.get(f"{base}/api/health", timeout=5).json()
    received = health["events"]["received"] - before
    store = health.get("store") or {}
    cpu = cpu_seconds(pid) - cpu_before
    latencies = sorted(client.seen[t] - finals[t] for t in finals if t in client.seen)
    client.close()
    return {
        "target_rate": rate, "seconds": round(elapsed, 2), "published": published,
        "published_rate": round(published / elapsed), "received": received,
        "lost": max(published - received, 0),
        "cpu_ms_per_1000_events": round(cpu * 1000 / max(received, 1) * 1000, 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "latency_ms_p95": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1) if latencies else None,
        "tasks_seen_live": len(latencies), "tasks_published": len(finals),
        "rss_kib": rss_kib(pid), "rss_anon_kib": rss_kib(pid, "RssAnon"),
        "caught_up": caught_up, "catch_up_seconds": catch_up_seconds,
        "store_pending_events": store.get("pending_events"), "store_written_events": store.get("written_events"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,2000,4000", help="comma-separated events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="publishing time per rate")
    parser.add_argument("--publishers", type=int, default=1, help="publishing processes sharing each rate")
    parser.add_argument("--generator", choices=("dispatcher", "raw"), default="dispatcher",
                        help="Celery's EventDispatcher, or the same wire format published straight to Redis")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    redis_port, web_port = free_port(), free_port()
    redis_server = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL, cwd=workdir)
    broker = f"redis://127.0.0.1:{redis_port}/0"
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    dashboard = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--broker", broker, "--port", str(web_port),
                                  "--db", str(workdir / "bench.db"), "--log-level", "WARNING"],
                                 cwd=ROOT, env=env, stdout=open(workdir / "dashboard.log", "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{web_port}"
    results = []
    try:
        wait_for(lambda: requests.get(f"{base}/api/health", timeout=1).json()["broker"]["connected"], 30, "dashboard")
        for rate in (int(r) for r in args.rates.split(",")):
            result = measure(rate, args.seconds, broker, base, dashboard.pid, args.publishers,
                             args.generator == "raw")
            result["generator"] = args.generator
            print(json.dumps(result))
            results.append(result)
    finally:
        dashboard.send_signal(signal.SIGTERM)
        dashboard.wait(timeout=20)
        redis_server.terminate()
        redis_server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ingest-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"machine": {"cpus": os.cpu_count()}, "results": results}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
