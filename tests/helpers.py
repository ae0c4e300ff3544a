"""Shared helpers of the integration tests: waiting, free ports, real subprocesses and a live client.

Everything here starts real parts (``redis-server``, Celery workers, the
dashboard) as subprocesses in their own process group, logs their output to
files, and stops them by process group. Nothing sleeps in the hope that
something happened: ``wait_until`` polls a predicate against a deadline.
"""
from __future__ import annotations

import base64
import shutil
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import redis
import requests
import socketio
from celery import Celery

#: The repository root: the cwd of every subprocess.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: The virtualenv's interpreter, used for every Python subprocess.
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python") if (REPO_ROOT / ".venv" / "bin" / "python").exists() \
    else sys.executable
#: How long a process gets between SIGTERM and SIGKILL, in seconds.
STOP_GRACE_SECONDS = 10.0
#: How long the dashboard may take to serve HTTP and subscribe to events, in seconds.
DASHBOARD_START_SECONDS = 20.0
#: How long a Celery worker may take to announce itself, in seconds.
WORKER_START_SECONDS = 30.0
#: Lines of each log shown with a failed test.
LOG_TAIL_LINES = 80

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05,
               message: str | Callable[[], str] = "condition not met") -> T:
    """Poll ``predicate`` until it returns something truthy and return that; raise AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g} s: {text}")
        time.sleep(interval)


def holds_throughout(check: Callable[[], None], seconds: float, interval: float = 0.2) -> None:
    """Call ``check``, which asserts, every ``interval`` for ``seconds`` and once more at the end: a state that
    must last (a worker that stays online or offline through the window that would have changed it). The
    first failed assertion ends the wait."""
    deadline = time.monotonic() + seconds
    while True:
        check()
        if time.monotonic() >= deadline:
            return
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Return whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# -- subprocesses ---------------------------------------------------------------

class Proc:
    """A subprocess in its own process group, its output in a log file."""

    #: Every process started and not yet stopped.
    running: list["Proc"] = []
    #: Every process that ran during the current test (reset at its setup); their logs go with a failure.
    seen: list["Proc"] = []

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.celery_worker = "worker" in args and "celery" in args  # ``celery -A app worker ...``
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")
        full_env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning", "PYTHONUNBUFFERED": "1"}
        full_env.update(env or {})
        self.popen = subprocess.Popen(args, cwd=REPO_ROOT, env=full_env, stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        Proc.running.append(self)
        Proc.seen.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<cannot read {self.log_path}: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def terminate(self) -> None:
        """Send SIGTERM to the process group and return at once (``stop`` still reaps it)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the process group at once (SIGKILL) and reap it."""
        self._signal(signal.SIGKILL)
        try:
            self.popen.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:  # as in ``stop``: a cleanup goes on to the next process
            pass
        self._forget()

    def end(self) -> None:
        """End the process when its test is over: a Celery worker is killed at once (``kill``), anything else
        stopped (``stop``). A worker's warm shutdown takes it 3-4 s (an eventlet pool's consumer loop looks
        for the stop every 2 s) to send a goodbye nobody reads any more; a test that reads it calls ``stop``."""
        if self.celery_worker:
            self.kill()
        else:
            self.stop()

    def stop(self) -> None:
        """SIGTERM the process group, wait, then SIGKILL what is left."""
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        self._signal(signal.SIGKILL)  # stragglers of the group (e.g. pool children)
        try:
            self.popen.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        self._forget()

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:
            pass

    def _forget(self) -> None:
        if self in Proc.running:
            Proc.running.remove(self)
        self._log.close()


def start_redis(port: int, log_dir: Path, name: str = "redis") -> Proc:
    """Start a throw-away ``redis-server`` on ``port`` and wait until it answers PING."""
    proc = Proc(name, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--daemonize", "no"], log_dir)

    def ready() -> bool:
        if not proc.alive():
            raise AssertionError(f"redis-server exited:\n{proc.log_tail()}")
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    wait_until(ready, 10, message=f"redis-server on port {port} does not answer PING")
    return proc


def start_worker(broker_url: str, name: str, log_dir: Path, concurrency: int = 10,
                 queues: str | None = None, pool: str = "eventlet", env: dict[str, str] | None = None) -> Proc:
    """Start a real Celery worker of the demo app (eventlet pool unless told, 1 s heartbeats) as ``name@test``."""
    args = [PYTHON, "-m", "celery", "-A", "dashboard.demo.tasks", "worker", "-E", "-P", pool,
            "-c", str(concurrency), "-n", f"{name}@test", "--heartbeat-interval", "1", "-l", "warning",
            "--without-gossip", "--without-mingle"]  # no waiting for replies of other workers at start
    if queues:
        args += ["-Q", queues]
    return Proc(f"worker-{name}", args, log_dir, env={"CELERY_BROKER_URL": broker_url, **(env or {})})


class DashboardProc:
    """The dashboard running as a subprocess, and how to talk to it."""

    def __init__(self, proc: Proc, port: int, prefix: str = "") -> None:
        self.proc = proc
        self.port = port
        self.root = f"http://127.0.0.1:{port}"
        self.url = self.root + prefix  # under --url-prefix when given

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=5, **kwargs)

    def health(self) -> dict[str, Any]:
        response = self.get("/api/health")
        assert response.status_code == 200, response.text
        return response.json()

    def task(self, task_id: str) -> dict[str, Any] | None:
        response = self.get(f"/api/tasks/{task_id}")
        return response.json() if response.status_code == 200 else None

    def stop(self) -> None:
        self.proc.stop()

    def end(self) -> None:
        self.proc.end()


def wait_serving(dashboard: DashboardProc, timeout: float) -> None:
    """Wait until the dashboard answers ``/api/health``; fail at once, with its log, if it exits."""
    def serving() -> bool:
        if not dashboard.proc.alive():
            raise AssertionError(f"{dashboard.proc.name} exited with {dashboard.proc.popen.returncode}:\n"
                                 f"{dashboard.proc.log_tail()}")
        try:
            return dashboard.get("/api/health").status_code in (200, 401)  # 401: serving, with a login
        except requests.RequestException:
            return False

    wait_until(serving, timeout, message=f"{dashboard.proc.name} does not serve /api/health")


def start_dashboard(broker_url: str, log_dir: Path, threading_mode: bool = False,
                    extra_args: tuple[str, ...] = (), port: int | None = None,
                    env: dict[str, str] | None = None) -> DashboardProc:
    """Start the dashboard (``run.py``, or ``python -m dashboard`` for threading) and wait until it serves."""
    port = port or free_port()
    entry = ["-m", "dashboard"] if threading_mode else ["run.py"]
    args = [PYTHON, *entry, "--broker", broker_url, "--port", str(port),
            "--db", str(log_dir / "dashboard.db"), "--flush-interval", "0.1", *extra_args]
    proc = Proc("dashboard-threading" if threading_mode else "dashboard", args, log_dir, env=env)
    prefix = extra_args[extra_args.index("--url-prefix") + 1].rstrip("/") if "--url-prefix" in extra_args else ""
    dashboard = DashboardProc(proc, port, prefix)
    try:
        wait_serving(dashboard, DASHBOARD_START_SECONDS)
    except BaseException:
        proc.stop()
        raise
    return dashboard


def wait_stored(dashboard: DashboardProc, task_ids: list[str], timeout: float = 5.0) -> None:
    """Wait until the task list (read from the store, written every 500 ms) has these tasks."""
    def listed() -> bool:
        items = dashboard.get("/api/tasks", params={"limit": 1000}).json()["items"]
        return set(task_ids) <= {item["uuid"] for item in items}
    wait_until(listed, timeout, message=lambda: f"tasks {task_ids} not in the stored history")


def wait_broker_connected(dashboard: DashboardProc, timeout: float = 15.0) -> dict[str, Any]:
    """Wait until the dashboard says it is subscribed to the event stream; return the health body."""
    return wait_until(lambda: (h := dashboard.health())["broker"]["connected"] and h, timeout,
                      message=lambda: f"dashboard not subscribed: {dashboard.health()}")


def wait_worker_online(dashboard: DashboardProc, hostname: str, timeout: float = WORKER_START_SECONDS,
                       worker: Proc | None = None) -> dict[str, Any]:
    """Wait until ``/api/workers`` lists ``hostname`` as online; return its JSON."""
    def online() -> dict[str, Any] | None:
        if worker is not None and not worker.alive():
            raise AssertionError(f"worker {hostname} exited:\n{worker.log_tail()}")
        for item in dashboard.get("/api/workers").json():
            if item["hostname"] == hostname and item["status"] == "online":
                return item
        return None
    return wait_until(online, timeout, interval=0.1, message=f"worker {hostname} never online in /api/workers")


def wait_answers_control(broker_url: str, hostname: str, timeout: float = WORKER_START_SECONDS,
                         worker: Proc | None = None) -> None:
    """Wait until ``hostname`` answers a remote-control ping (failing at once, with its log, if ``worker`` exits).

    A worker sends ``worker-online`` (its Heart step) before it subscribes to the control fanout
    (its Control step); a command broadcast in between reaches nobody. Seen online is not yet asked."""
    app = producer_app(broker_url)

    def answered() -> list[Any]:
        if worker is not None and not worker.alive():
            raise AssertionError(f"worker {hostname} exited:\n{worker.log_tail()}")
        return app.control.ping(destination=[hostname], timeout=0.5, limit=1, connection=connection)

    with app.connection_for_write() as connection:  # its own, closed here (see ``send``)
        wait_until(answered, timeout, message=f"worker {hostname} never answered a ping")


@contextmanager
def dashboard_with_worker(broker_url: str, log_dir: Path, worker_name: str, queues: str | None = None,
                          extra_args: tuple[str, ...] = (), pool: str = "eventlet",
                          concurrency: int = 10) -> Iterator[tuple[DashboardProc, Proc]]:
    """Run the dashboard and one worker ``<worker_name>@test`` it has seen online; stop both afterwards.

    A prefork worker with ``concurrency=1`` holds a task sent while its slot is busy in the worker,
    where a revoke still reaches it (an eventlet pool has already taken it)."""
    dashboard = start_dashboard(broker_url, log_dir, extra_args=extra_args)
    worker: Proc | None = None
    try:
        wait_broker_connected(dashboard)
        worker = start_worker(broker_url, worker_name, log_dir, concurrency=concurrency, queues=queues, pool=pool)
        wait_worker_online(dashboard, f"{worker_name}@test", worker=worker)
        yield dashboard, worker
    finally:
        if worker is not None:
            worker.end()
        dashboard.stop()


# -- producing tasks --------------------------------------------------------------

def event_envelope(body: dict[str, Any], routing_key: str) -> bytes:
    """Return one event as kombu publishes it on Redis for the ``celeryev`` fanout (a pub/sub payload)."""
    return json.dumps({"body": base64.b64encode(json.dumps(body).encode()).decode(), "content-encoding": "utf-8",
                       "content-type": "application/json", "headers": {},
                       "properties": {"delivery_info": {"exchange": "celeryev", "routing_key": routing_key},
                                      "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()), "priority": 0,
                                      "delivery_mode": 1}}).encode()


def deliver(dashboard: Any, bodies: list[dict[str, Any]]) -> None:
    """Hand raw event bodies to a dashboard's collector as a reader does (a fake event source)."""
    collector = dashboard.collector
    collector.apply_events(collector.take([dict(b) for b in bodies], lambda event: (event["type"], event)))


def strict_json(text: str) -> Any:
    """Parse JSON as a strict parser (a browser's) would: NaN and Infinity are errors."""
    def refuse(constant: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {constant} in the output")
    return json.loads(text, parse_constant=refuse)


def producer_app(broker_url: str) -> Celery:
    """Return a Celery app that only sends tasks (no result backend), with ``task-sent`` events on."""
    app = Celery(f"tests-{uuid.uuid4().hex[:6]}", broker=broker_url, set_as_current=False)
    app.conf.update(task_send_sent_event=True, task_serializer="json", accept_content=["json"],
                    broker_connection_retry_on_startup=True)
    return app


def send(app: Celery, short_name: str, *args: Any, **options: Any) -> str:
    """Send ``dashboard.demo.tasks.<short_name>`` with ``args`` on a connection of its own; return its id.

    A connection of its own rather than Celery's process-wide producer pool, which ``app.close()``
    does not close (its sockets would leak past the test).
    """
    with app.connection_for_write() as connection, app.amqp.Producer(connection) as producer:
        return app.send_task(f"dashboard.demo.tasks.{short_name}", args=args, producer=producer,
                             **options).id


# -- the live Socket.IO client ------------------------------------------------------

class LiveClient:
    """A real python-socketio client on ``/live`` that records every message with its receive time."""

    def __init__(self, url: str, reconnect: bool = False, socketio_path: str = "socket.io") -> None:
        self.url = url
        self.socketio_path = socketio_path
        self.lock = threading.Lock()
        self.snapshots: list[tuple[float, dict[str, Any]]] = []
        self.changes: list[tuple[float, dict[str, Any]]] = []
        self.broker: list[tuple[float, dict[str, Any]]] = []
        self.alerts: list[tuple[float, dict[str, Any]]] = []  # "alert" messages (worker lost or back, queues)
        self.disconnects: list[Any] = []
        self.messages: list[tuple[str, float, dict[str, Any]]] = []  # every message, in arrival order
        self.sio = socketio.Client(reconnection=reconnect, reconnection_delay=0.2, reconnection_delay_max=1)
        self.sio.on("snapshot", self._record("snapshot", self.snapshots), namespace="/live")
        self.sio.on("changes", self._record("changes", self.changes), namespace="/live")
        self.sio.on("broker", self._record("broker", self.broker), namespace="/live")
        self.sio.on("alert", self._record("alert", self.alerts), namespace="/live")
        self.sio.on("disconnect", self._on_disconnect, namespace="/live")

    def _record(self, name: str, into: list[tuple[float, dict[str, Any]]]) -> Callable[[Any], None]:
        def handler(data: Any) -> None:
            at = time.time()
            with self.lock:
                into.append((at, data))
                self.messages.append((name, at, data))
        return handler

    def _on_disconnect(self, reason: Any = None) -> None:
        with self.lock:
            self.disconnects.append(reason)

    def connect(self) -> "LiveClient":
        self.sio.connect(self.url, namespaces=["/live"], transports=["websocket"], wait_timeout=5,
                         socketio_path=self.socketio_path)
        wait_until(lambda: self.snapshots, 5, message="no snapshot after connecting")
        return self

    def close(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()

    @property
    def connected(self) -> bool:
        return self.sio.connected and "/live" in self.sio.namespaces

    def emit(self, event: str, data: Any = None) -> None:
        self.sio.emit(event, data, namespace="/live")

    def all_changes(self) -> list[tuple[float, dict[str, Any]]]:
        """Return every change with the time its batch arrived, in arrival order."""
        with self.lock:
            batches = list(self.changes)
        return [(at, change) for at, batch in batches for change in batch["changes"]]

    def task_updates(self, task_id: str) -> list[tuple[float, dict[str, Any]]]:
        """Return (receive time, task JSON) for every live update of one task."""
        return [(at, c["data"]) for at, c in self.all_changes()
                if c["kind"] == "task" and c["key"] == task_id and c["data"] is not None]

    def worker_updates(self, hostname: str) -> list[tuple[float, dict[str, Any]]]:
        """Return (receive time, worker JSON) for every live update of one worker."""
        return [(at, c["data"]) for at, c in self.all_changes()
                if c["kind"] == "worker" and c["key"] == hostname and c["data"] is not None]

    def wait_task_state(self, task_id: str, state: str, timeout: float) -> dict[str, Any]:
        """Wait until a live update shows the task in ``state``; return that task JSON."""
        def seen() -> dict[str, Any] | None:
            return next((data for _, data in self.task_updates(task_id) if data["state"] == state), None)
        return wait_until(seen, timeout, message=lambda: (
            f"task {task_id} never {state} live; states seen: "
            f"{[d['state'] for _, d in self.task_updates(task_id)]}"))

    def describe(self) -> str:
        """Summarise what the client received, for failure messages."""
        with self.lock:
            return (f"connected={self.connected} snapshots={len(self.snapshots)} changes={len(self.changes)} "
                    f"broker={[m for _, m in self.broker]} disconnects={self.disconnects}")


# -- webhooks ------------------------------------------------------------------------

class WebhookReceiver:
    """A local HTTP server that records every JSON document POSTed to it."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []
        received = self.documents

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def record_posts(page: Any) -> list[str]:
    """Record the URL of every POST a Playwright page sends from now on."""
    posts: list[str] = []

    def record(request: Any) -> None:
        if request.method == "POST":
            posts.append(request.url)

    page.on("request", record)
    return posts


def assert_timeline(events: list[dict[str, Any]], worker_types: list[str], worker: str | None = None) -> None:
    """Check a real task's stored timeline: in time order, its task-sent and the worker's events ``worker_types``
    in their order. Celery stamps task-sent after the message is published, so on a busy machine the worker may
    receive (even start) the task before it: where task-sent lands among them follows the timestamps."""
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events), events
    assert [e["type"] for e in events if e["type"] == "task-sent"] == ["task-sent"], events
    from_worker = [e for e in events if e["type"] != "task-sent"]
    assert [e["type"] for e in from_worker] == worker_types, events
    assert worker is None or all(e["hostname"] == worker for e in from_worker), events


def wait_task_state(dashboard: DashboardProc, task_id: str, state: str, timeout: float = 30) -> dict[str, Any]:
    """Wait until the dashboard shows the task in ``state``; return its detail."""
    return wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] == state and t, timeout,
                      message=lambda: f"{task_id} never {state}: {dashboard.task(task_id)}")


# -- nginx ---------------------------------------------------------------------------

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def start_nginx(folder: Path, port: int, upstream: int, backup: int | None = None) -> Proc:
    """nginx with deploy/nginx.conf's map and server blocks, on ``port``, in front of ``upstream``
    (and of ``backup``, which gets the requests ``upstream`` refuses: a dashboard that died)."""
    site = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    if backup is None:
        site = site.replace("127.0.0.1:5555", f"127.0.0.1:{upstream}")
    else:
        site = (f"upstream dashboards {{ server 127.0.0.1:{upstream}; server 127.0.0.1:{backup} backup; }}\n"
                + site.replace("http://127.0.0.1:5555", "http://dashboards"))
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    config = folder / "nginx-test.conf"
    config.write_text(f"""
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log {folder}/nginx-access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    {site}
}}
""")
    proc = Proc("nginx", [NGINX, "-c", str(config), "-p", str(folder)], folder)

    def serving() -> bool:
        if not proc.alive():
            raise AssertionError(f"nginx exited:\n{proc.log_tail()}\n{(folder / 'nginx-error.log').read_text()}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/celery/api/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False
    wait_until(serving, 15, message="nginx does not pass /celery/ to the dashboard")
    return proc
