"""Idle cost: the CPU a monitor uses while a cluster does no work.

A cluster of ``--workers`` simulated workers (50) announce themselves and beat every 2 s, as
Celery workers do, their heartbeats spread over the interval; no task runs. One live client is
connected to the dashboard (a python-socketio client on ``/live``, reading every message, as the
overview page does). The CPU time of the monitor's process tree is read over ``--seconds`` after a
warm-up, and printed as a share of one core.

    bench/.venv/bin/python bench/idle.py                  # the dashboard, then Flower
    bench/.venv/bin/python bench/idle.py --systems dashboard --seconds 120
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from celery import Celery

from ingest import socketio_client
from systems import SYSTEMS, RedisServer, cpu_seconds, stop_on_sigterm

ROOT = Path(__file__).resolve().parent.parent
#: Seconds between two heartbeats of a worker (Celery's default).
HEARTBEAT_SECONDS = 2.0
#: Seconds before the measurement starts: start-up, the first inspect rounds, the client's snapshot.
WARM_UP_SECONDS = 15.0


class Heartbeats(threading.Thread):
    """Publishes ``worker-online``, then a heartbeat of every worker every 2 s, spread over the interval."""

    def __init__(self, broker: str, workers: int) -> None:
        super().__init__(daemon=True)
        self.app = Celery("idle-bench", broker=broker, set_as_current=False)
        self.hostnames = [f"celery@idle-{n:03d}" for n in range(workers)]
        self.stopping = threading.Event()
        self.sent = 0

    def run(self) -> None:
        info = {"freq": HEARTBEAT_SECONDS, "sw_ident": "py-celery", "sw_ver": "5.7.0", "sw_sys": "Linux"}
        with self.app.connection_for_write() as connection:
            dispatchers = [self.app.events.Dispatcher(connection, hostname=h, enabled=True) for h in self.hostnames]
            for dispatcher in dispatchers:
                dispatcher.send("worker-online", **info)
            gap = HEARTBEAT_SECONDS / len(dispatchers)
            next_at = time.monotonic()
            while not self.stopping.is_set():
                for dispatcher in dispatchers:
                    dispatcher.send("worker-heartbeat", active=0, processed=0, loadavg=[0.1, 0.1, 0.1], **info)
                    self.sent += 1
                    next_at += gap
                    if self.stopping.wait(max(0.0, next_at - time.monotonic())):
                        break
            for dispatcher in dispatchers:
                dispatcher.send("worker-offline", **info)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def measure(name: str, workers: int, seconds: float, workdir: Path) -> dict[str, Any]:
    redis_server = RedisServer(workdir)
    system = SYSTEMS[name](name=name, python=Path(sys.executable), workdir=workdir, broker=redis_server.url,
                           max_tasks=100_000)
    if hasattr(system, "root"):
        system.root = ROOT
    heartbeats = Heartbeats(redis_server.url, workers)
    client = None
    messages = {"count": 0, "bytes": 0}
    try:
        system.start(redis_server)
        heartbeats.start()
        if name == "dashboard":
            client = socketio_client()

            @client.on("*", namespace="/live")
            def _any(event: str, data: Any = None) -> None:
                messages["count"] += 1
                messages["bytes"] += len(json.dumps(data))

            client.connect(system.base, namespaces=["/live"], transports=["websocket"])
        time.sleep(WARM_UP_SECONDS)
        start_cpu, start_wall, start_messages = cpu_seconds(system.pid), time.monotonic(), dict(messages)
        time.sleep(seconds)
        used, wall = cpu_seconds(system.pid) - start_cpu, time.monotonic() - start_wall
        return {"system": name, "workers": workers, "seconds": round(wall, 1), "cpu_seconds": round(used, 3),
                "core_share": round(used / wall, 4), "heartbeats_sent": heartbeats.sent,
                "live_messages_per_second": round((messages["count"] - start_messages["count"]) / wall, 2),
                "live_bytes_per_second": round((messages["bytes"] - start_messages["bytes"]) / wall)}
    finally:
        if client is not None:
            client.disconnect()
        heartbeats.stop()
        system.stop()
        redis_server.stop()


def main() -> int:
    stop_on_sigterm()  # a SIGTERM stops the systems, their redis-server and the generator too
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="dashboard,flower", help="which systems, in the order they run")
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring time per system, after a warm-up")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where idle-<time>.json goes")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results = []
    for name in args.systems.split(","):
        with tempfile.TemporaryDirectory(prefix=f"idle-{name}-") as workdir:
            result = measure(name, args.workers, args.seconds, Path(workdir))
        results.append(result)
        print(f"{name}: {result['core_share'] * 100:.2f} % of a core idle with {args.workers} workers beating "
              f"every {HEARTBEAT_SECONDS:g} s ({result['cpu_seconds']} s CPU in {result['seconds']} s"
              + (f"; {result['live_messages_per_second']} live messages/s, {result['live_bytes_per_second']} B/s"
                 if name == "dashboard" else "") + ")", flush=True)
    print(json.dumps(results))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"idle-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"started": started, "settings": vars(args) | {"out": None},
                               "heartbeat_seconds": HEARTBEAT_SECONDS, "results": results}, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
