"""DemoCluster: two Celery workers and the demo producer as subprocesses on a private filesystem broker.

It owns the demo directory (broker folders, results, logs) and the child process groups; it must
not touch anything outside that directory and must leave no process behind after ``stop()``.

Layout of the demo directory::

    data/      broker messages (data_folder_in == data_folder_out)
    control/   exchange tables (which queue is bound to which exchange)
    results/   file:// result backend
    logs/      one log file per child process
    tmp/       TMPDIR of the children (kombu moves consumed messages here)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

logger = logging.getLogger(__name__)

#: Seconds between two polls of the broker folders, for every consumer using ``transport_options``
#: (kombu's default of 1 s delays each hop of a message by up to a second).
POLLING_INTERVAL_SECONDS = 0.05
#: Seconds ``start()`` waits for both workers to come up.
READY_TIMEOUT_SECONDS = 30.0
#: Seconds ``stop()`` waits after SIGTERM before it sends SIGKILL.
STOP_TIMEOUT_SECONDS = 10.0
#: Lines of a failed child's log included in the error.
FAILURE_LOG_LINES = 25
#: Age in seconds after which an undelivered event message is deleted (like ``event_queue_ttl``).
STALE_EVENT_MAX_AGE_SECONDS = 60.0
#: Seconds between two sweeps for stale event messages.
PRUNE_INTERVAL_SECONDS = 10.0
#: Seconds between two checks of the children while waiting.
CHECK_INTERVAL_SECONDS = 0.05

#: Repository root (the directory holding the ``dashboard`` package), put on the children's PYTHONPATH.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Celery app the children load.
APP_MODULE = "dashboard.demo.tasks"
#: Exchanges created as empty tables before any process starts: kombu's filesystem transport
#: creates a missing table with a truncating open, so two processes binding the first queues of
#: an exchange at the same moment can overwrite each other's binding.
EXCHANGES = ("celery", "high_priority", "low_priority", "celeryev", "celery.pidbox", "reply.celery.pidbox")
#: Prefix of the queues bound to the ``celeryev`` fanout exchange (event receivers, gossip).
EVENT_QUEUE_PREFIX = "celeryev."

#: Node name prefix of each worker, as given to ``-n`` (``%h`` is expanded to the host name).
EVENTLET_WORKER = "eventlet-worker"
PREFORK_WORKER = "prefork-worker"


class DemoClusterError(RuntimeError):
    """A demo process exited or did not come up while starting."""


def _worker_argv(name: str, pool: str, concurrency: int, queues: str) -> list[str]:
    """Return the command line of one demo worker."""
    return [sys.executable, "-m", "celery", "-A", APP_MODULE, "worker", "-E"] + [
        *("-P", pool, "-c", str(concurrency), "-n", f"{name}@%h", "-Q", queues),
        *("--heartbeat-interval", "2", "-l", "warning"),
    ]


#: Worker command lines by child name, in start order.
WORKER_COMMANDS: dict[str, list[str]] = {
    EVENTLET_WORKER: _worker_argv(EVENTLET_WORKER, "eventlet", 20, "celery,high_priority,low_priority"),
    PREFORK_WORKER: _worker_argv(PREFORK_WORKER, "prefork", 2, "celery,high_priority"),
}
#: Producer command line.
PRODUCER_COMMAND = [sys.executable, "-m", "dashboard.demo.producer"]
#: The module of the demo app with its beat schedule, for the demo's beat and the demo dashboard's --app.
SCHEDULE_MODULE = "dashboard.demo.schedule"


def prune_stale_event_messages(data_dir: Path, max_age_seconds: float, now_monotonic: float) -> int:
    """Delete event messages older than ``max_age_seconds`` and return how many were deleted.

    kombu's virtual transport never deletes auto-delete queues, so every event receiver that ever
    ran stays bound to ``celeryev`` and keeps getting a copy of each event that nobody reads.
    Message files are named ``<monotonic ms>_<uuid>.<queue>.msg``.
    """
    deleted = 0
    cutoff_ms = (now_monotonic - max_age_seconds) * 1000
    try:
        names = os.listdir(data_dir)
    except FileNotFoundError:
        return 0
    for name in names:
        stamp, _, rest = name.partition("_")
        queue = rest.partition(".")[2]
        if not (queue.startswith(EVENT_QUEUE_PREFIX) and queue.endswith(".msg") and stamp.isdigit()):
            continue
        if int(stamp) < cutoff_ms:
            try:
                os.remove(data_dir / name)
            except FileNotFoundError:
                continue  # consumed meanwhile
            deleted += 1
    return deleted


def read_first_lines(path: Path, count: int) -> str:
    """Return the first ``count`` lines of a text file, or a note if it cannot be read."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return "".join(line for _, line in zip(range(count), f))
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


class DemoCluster:
    """Run the demo workers and producer; ``with DemoCluster() as cluster: ...``."""

    def __init__(
        self,
        base_dir: str | None = None,
        *,
        with_producer: bool = True,
        polling_interval_seconds: float = POLLING_INTERVAL_SECONDS,
    ) -> None:
        self._owns_dir = base_dir is None
        chosen = base_dir if base_dir is not None else tempfile.mkdtemp(prefix="dashboard-demo-")
        self._base_dir = Path(chosen).resolve()
        self._with_producer = with_producer
        self._polling_interval_seconds = polling_interval_seconds
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._stop_pruning = threading.Event()
        self._pruner: threading.Thread | None = None
        self._removed = False
        self._prepared = False

    # -- configuration ---------------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        """Directory holding the broker folders, results and logs."""
        return self._base_dir

    @property
    def broker_url(self) -> str:
        """Broker URL to give a Celery app that should watch this cluster."""
        return "filesystem://"

    @property
    def transport_options(self) -> dict[str, Any]:
        """Broker transport options to use together with ``broker_url`` (a fresh dict each time)."""
        data = str(self._base_dir / "data")
        return {
            "data_folder_in": data,
            "data_folder_out": data,
            "control_folder": str(self._base_dir / "control"),
            "polling_interval": self._polling_interval_seconds,
        }

    @property
    def result_backend(self) -> str:
        """Result backend URL the workers store results in."""
        return f"file://{self._base_dir / 'results'}"

    @property
    def environment(self) -> dict[str, str]:
        """Environment of the children: this process's, plus the demo's broker settings."""
        env = dict(os.environ)
        pythonpath = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env.update(
            {
                "CELERY_BROKER_URL": self.broker_url,
                "DASHBOARD_DEMO_TRANSPORT_OPTIONS": json.dumps(self.transport_options),
                "CELERY_RESULT_BACKEND": self.result_backend,
                "DASHBOARD_DEMO_DIR": str(self._base_dir),
                "DASHBOARD_DEMO_PARENT_PID": str(os.getpid()),  # see lifeline.py
                "DASHBOARD_DEMO_OWNS_DIR": "1" if self._owns_dir else "0",
                "PYTHONPATH": os.pathsep.join(pythonpath),
                # Same file system as data/, so consuming a message is an atomic rename.
                "TMPDIR": str(self._base_dir / "tmp"),
                # Replaces an inherited filter such as "error", which would turn eventlet's import-time
                # EventletDeprecationWarning (a plain Warning) into a crash; it is just logged instead.
                "PYTHONWARNINGS": "ignore::DeprecationWarning",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    @property
    def log_paths(self) -> dict[str, Path]:
        """Log file of each child, by child name."""
        names = [*WORKER_COMMANDS, *(["producer", "beat"] if self._with_producer else [])]
        return {name: self._base_dir / "logs" / f"{name}.log" for name in names}

    @property
    def pids(self) -> dict[str, int]:
        """Process id (and process group id) of each started child, by child name."""
        return {name: child.pid for name, child in self._children.items()}

    @property
    def running(self) -> bool:
        """Whether the cluster was started and every child is still alive."""
        return bool(self._children) and all(child.poll() is None for child in self._children.values())

    # -- lifecycle -------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create fresh broker folders; call it before ``start()`` to bind a receiver that sees worker-online."""
        if self._prepared:
            return
        for sub in ("data", "control", "tmp"):
            shutil.rmtree(self._base_dir / sub, ignore_errors=True)
        for sub in ("data", "control", "results", "logs", "tmp"):
            (self._base_dir / sub).mkdir(parents=True, exist_ok=True)
        for exchange in EXCHANGES:
            (self._base_dir / "control" / f"{exchange}.exchange").write_text("[]")
        self._removed = False
        self._prepared = True

    def start(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Start both workers, wait until they consume, then start the producer; no-op if started."""
        if self._children:
            return
        self.prepare()
        try:
            for name, argv in WORKER_COMMANDS.items():
                self._spawn(name, argv)
            self._wait_for_workers(timeout)
            if self._with_producer:
                self._spawn("producer", PRODUCER_COMMAND)
                self._spawn("beat", [sys.executable, "-m", "celery", "-A", SCHEDULE_MODULE, "beat", "-l", "warning",
                                     "-s", str(self._base_dir / "tmp" / "beat-schedule")])
                self._check_alive()
        except BaseException:
            self._terminate(STOP_TIMEOUT_SECONDS)
            raise
        self._stop_pruning.clear()
        self._pruner = threading.Thread(target=self._prune_loop, name="demo-cluster-pruner", daemon=True)
        self._pruner.start()
        logger.info("Demo cluster started in %s (pids %s)", self._base_dir, self.pids)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop every child (SIGTERM, then SIGKILL to its group after ``timeout`` s); remove an owned temp dir."""
        self._stop_pruning.set()
        if self._pruner is not None:
            self._pruner.join()
            self._pruner = None
        self._terminate(timeout)
        self._prepared = False
        if self._owns_dir and not self._removed:
            shutil.rmtree(self._base_dir, ignore_errors=True)
            self._removed = True

    def stop_producer(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop the producer and beat (SIGTERM, then SIGKILL after ``timeout`` s), so no new task is sent."""
        children = [c for c in (self._children.get("producer"), self._children.get("beat")) if c is not None and _alive(c)]
        for child in children:
            _signal(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_alive(child) for child in children) and time.monotonic() < deadline:
            time.sleep(CHECK_INTERVAL_SECONDS)
        for child in children:
            _signal_group(child.pid, signal.SIGKILL)  # not reaped yet: its pid is still its own

    def stop_workers(self) -> int:
        """Ask every worker for Celery's warm shutdown (SIGTERM): it finishes its tasks, says
        ``worker-offline`` and exits. Return how many were running; ``stop()`` reaps them."""
        running = 0
        for name in WORKER_COMMANDS:
            child = self._children.get(name)
            if child is not None and _alive(child):
                _signal(child.pid, signal.SIGTERM)
                running += 1
        return running

    def workers_running(self) -> int:
        """Return how many worker processes have not exited yet."""
        return sum(1 for name in WORKER_COMMANDS
                   if (child := self._children.get(name)) is not None and _alive(child))

    @staticmethod
    def is_demo_worker(hostname: str) -> bool:
        """Whether ``hostname`` (``name@host``) is one of the demo's workers."""
        return hostname.partition("@")[0] in WORKER_COMMANDS

    def __enter__(self) -> DemoCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = self.log_paths[name].open("ab")
        self._logs[name] = log
        self._children[name] = subprocess.Popen(
            argv,
            cwd=self._base_dir,
            env=self.environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, so stop() can kill pool children too
        )

    def _check_alive(self) -> None:
        """Raise DemoClusterError, with the first lines of its log, if a child has exited."""
        for name, child in self._children.items():
            code = child.poll()
            if code is not None:
                head = read_first_lines(self.log_paths[name], FAILURE_LOG_LINES)
                logger.error("Demo process %s exited with code %s; log starts:\n%s", name, code, head)
                raise DemoClusterError(f"demo process {name} exited with code {code}; log starts:\n{head}")

    def _ready_workers(self) -> set[str]:
        """Return the workers that have bound their remote-control queue (their last start-up step)."""
        table = self._base_dir / "control" / "celery.pidbox.exchange"
        try:
            bindings = json.loads(table.read_text() or "[]")
        except (OSError, ValueError):
            return set()  # being rewritten
        nodes = {str(binding[2]).partition("@")[0] for binding in bindings}
        return nodes & set(WORKER_COMMANDS)

    def _wait_for_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._ready_workers() != set(WORKER_COMMANDS):
            self._check_alive()
            if time.monotonic() > deadline:
                missing = sorted(set(WORKER_COMMANDS) - self._ready_workers())
                raise DemoClusterError(f"workers {missing} not ready after {timeout} s; see {self._base_dir / 'logs'}")
            time.sleep(CHECK_INTERVAL_SECONDS)

    def _prune_loop(self) -> None:
        data_dir = self._base_dir / "data"
        while not self._stop_pruning.wait(PRUNE_INTERVAL_SECONDS):
            try:
                deleted = prune_stale_event_messages(data_dir, STALE_EVENT_MAX_AGE_SECONDS, time.monotonic())
            except OSError:
                logger.exception("Pruning stale event messages in %s failed", data_dir)
                continue
            if deleted:
                logger.debug("Deleted %d stale event messages", deleted)

    def _leaders_alive(self) -> list[int]:
        """Return the pids of children that have not exited, without reaping them."""
        return [child.pid for child in self._children.values() if _alive(child)]

    def _terminate(self, timeout: float) -> None:
        """SIGTERM every child, wait, SIGKILL its whole process group, reap; idempotent.

        SIGTERM goes to the group leader only: Celery's main process shuts its pool down itself,
        while a SIGTERM to the prefork pool children makes them die mid-shutdown (logged as errors).
        """
        if not self._children:
            return
        # Leaders are not reaped until the end, so their pids (= group ids) cannot be reused meanwhile.
        for pid in self._leaders_alive():
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._leaders_alive() and time.monotonic() < deadline:
            time.sleep(CHECK_INTERVAL_SECONDS)
        for name, child in self._children.items():
            if child.pid in self._leaders_alive():
                logger.warning("Demo process %s (pid %d) still running %s s after SIGTERM; killing it",
                               name, child.pid, timeout)
            _signal_group(child.pid, signal.SIGKILL)  # also stray members of the group, e.g. pool children
        for child in self._children.values():
            child.wait()
        for log in self._logs.values():
            log.close()
        self._children.clear()
        self._logs.clear()


def _alive(child: subprocess.Popen[bytes]) -> bool:
    """Whether a child has not exited, without reaping it (its pid stays its own until ``wait``)."""
    if child.returncode is not None:
        return False
    try:
        return os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def _signal(pid: int, signum: signal.Signals) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # already gone


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass  # the whole group is gone
