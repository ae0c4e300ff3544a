"""The processes a comparison run starts: its own ``redis-server``, and the two systems measured.

Each system is started the same way for every run: a fresh ``redis-server`` on a
free port with no persistence, a fresh data folder, ``--max-tasks`` tasks held
in memory. A system says how to tell it is ready (its HTTP answer, and its event
subscription present in Redis), how many events it has processed so far, and
which URLs list tasks and show one task. Nothing here stops anything it did not
start, and everything is stopped by its own process id.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import requests

from ingest import free_port

#: Seconds a system may take to serve HTTP and subscribe to the event stream.
START_TIMEOUT_SECONDS = 60.0
#: Seconds a system may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT_SECONDS = 30.0
#: Seconds between two samples of a process's memory.
SAMPLE_SECONDS = 0.25
#: What redis-server logs when it disconnects a client over its output buffer limit (a subscriber behind).
CUT_MESSAGE = "for overcoming of output buffer limits"
#: Event types of workers: Flower counts only task events in ``flower_events_total``.
WORKER_TYPES = ("worker-online", "worker-heartbeat", "worker-offline")


def stop_on_sigterm() -> None:
    """Make SIGTERM stop this process as Ctrl-C does, so that the ``finally`` blocks stop what it started."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


class ProcessExited(RuntimeError):
    """A process that was waited for has exited: waiting longer cannot help."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Return ``predicate()``'s first true value, polling until ``timeout``; raise naming ``what`` after it."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except ProcessExited:
            raise
        except Exception as error:  # a server not up yet refuses connections
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


def kib(pid: int, field_name: str) -> int:
    """Return a ``/proc/<pid>/status`` memory field in KiB (0 when absent)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds of a process (all its threads) and its children, from /proc."""
    total = 0.0
    for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class MemorySampler:
    """Samples a process's RSS and anonymous RSS in a thread, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_kib = 0
        self.peak_anon_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        try:
            self.peak_rss_kib = max(self.peak_rss_kib, kib(self.pid, "VmRSS"))
            self.peak_anon_kib = max(self.peak_anon_kib, kib(self.pid, "RssAnon"))
        except OSError:  # the process is gone; its last sample stands
            pass

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()


class RedisServer:
    """A ``redis-server`` of the run's own, on a free port, without persistence."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = open(workdir / "redis.log", "w")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT)
        self.client = redis.Redis(port=self.port, socket_timeout=10)
        wait_until(self.client.ping, 20, f"redis-server on port {self.port}")

    def cuts(self) -> int:
        """Return how many clients Redis has disconnected for falling behind (its pub/sub output buffer limit)."""
        self.log.flush()
        return (self.workdir / "redis.log").read_text(errors="replace").count(CUT_MESSAGE)

    def subscribers(self) -> int:
        """Return the number of pattern subscriptions (kombu subscribes to the event exchange with one)."""
        return int(self.client.pubsub_numpat())

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@dataclass
class System:
    """One monitoring system under test, started as a subprocess against a broker."""

    name: str
    python: Path
    workdir: Path
    broker: str
    max_tasks: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def cwd(self) -> Path:
        return self.workdir

    def start(self, redis_server: RedisServer) -> None:
        """Start the process and wait until it serves HTTP and has subscribed to the events."""
        self.log_path = self.workdir / f"{self.name}.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.cwd(), env=self.environment(),
                                            stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: self._alive() and self.ready(), START_TIMEOUT_SECONDS, f"{self.name} to serve")
            wait_until(lambda: self._alive() and redis_server.subscribers() > 0, START_TIMEOUT_SECONDS,
                       f"{self.name} to subscribe to the events")
        except Exception as error:
            raise RuntimeError(f"{self.name} did not start: {error}; its log ends: {self.log_tail(3)}") from None

    def _alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise ProcessExited(f"{self.name} exited with status {self.process.returncode if self.process else '?'}")
        return True

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])

    def ready(self) -> bool:
        raise NotImplementedError

    def processed(self) -> int:
        """Return how many events the system has processed since it started (see ``counts``)."""
        raise NotImplementedError

    def counts(self, by_type: dict[str, int]) -> int:
        """Return how many of the published events (by type) ``processed`` counts once they are all processed."""
        return sum(by_type.values())

    def diagnostics(self) -> dict[str, Any]:
        """Return what the system says about its own state after a phase (nothing, unless it says more)."""
        return {}

    def list_url(self) -> str:
        raise NotImplementedError

    def list_newest_url(self) -> str:
        return self.list_url()

    def detail_url(self, uuid: str) -> str:
        raise NotImplementedError

    def first_uuid(self, listing: Any) -> str | None:
        """Return the first task id of a task list's JSON body (None when it is empty)."""
        raise NotImplementedError

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Dashboard(System):
    """This project's dashboard: ``run.py`` from ``root``, its history in a fresh SQLite file."""

    root: Path = Path(".")

    def command(self) -> list[str]:
        return [str(self.python), str(self.root / "run.py"), "--broker", self.broker, "--port", str(self.port),
                "--db", str(self.workdir / "bench.db"), "--log-level", "WARNING", "--max-tasks", str(self.max_tasks)]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}

    def cwd(self) -> Path:
        return self.root

    def health(self) -> dict[str, Any]:
        return requests.get(f"{self.base}/api/health", timeout=30).json()

    def ready(self) -> bool:
        return bool(self.health()["broker"]["connected"])

    def processed(self) -> int:
        return int(self.health()["events"]["received"])

    def diagnostics(self) -> dict[str, Any]:
        """Return the history's write backlog and the broker's stream cuts, from ``/api/health``."""
        health = self.health()
        store = health.get("store") or {}
        return {"store_pending_events": store.get("pending_events"),
                "store_written_events": store.get("written_events"),
                "stream_cuts": (health.get("broker") or {}).get("stream_cuts"), "health": health.get("status")}

    def list_url(self) -> str:
        return f"{self.base}/api/tasks?limit=20"

    def detail_url(self, uuid: str) -> str:
        return f"{self.base}/api/tasks/{uuid}"

    def first_uuid(self, listing: Any) -> str | None:
        items = listing["items"]
        return items[0]["uuid"] if items else None


@dataclass
class Flower(System):
    """Flower, as ``celery flower`` with its REST API open and ``--max_tasks`` tasks held."""

    def command(self) -> list[str]:
        return [str(self.python.parent / "celery"), f"--broker={self.broker}", "flower", f"--port={self.port}",
                "--address=127.0.0.1", f"--max_tasks={self.max_tasks}", "--logging=warning"]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"}

    def ready(self) -> bool:
        return requests.get(f"{self.base}/healthcheck", timeout=5).status_code == 200

    def processed(self) -> int:
        """Sum ``flower_events_total`` of ``/metrics``: every task event applied to Flower's state."""
        text = requests.get(f"{self.base}/metrics", timeout=60).text
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("flower_events_total{")))

    def counts(self, by_type: dict[str, int]) -> int:
        return sum(count for type, count in by_type.items() if type not in WORKER_TYPES)

    def list_url(self) -> str:
        return f"{self.base}/api/tasks?limit=20"

    def list_newest_url(self) -> str:
        return f"{self.base}/api/tasks?limit=20&sort_by=-received"

    def detail_url(self, uuid: str) -> str:
        return f"{self.base}/api/task/info/{uuid}"

    def first_uuid(self, listing: Any) -> str | None:
        return next(iter(listing), None)  # Flower's list is an object keyed by task id, in the order asked for


SYSTEMS: dict[str, type[System]] = {"dashboard": Dashboard, "flower": Flower}
