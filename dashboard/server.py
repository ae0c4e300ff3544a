"""Start-up: read settings, build the app, start its loops (and the demo cluster), serve, stop cleanly."""
from __future__ import annotations

import dataclasses
import gc
import logging
import signal
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import create_app, logs, run_inline
from .memory import fix_mmap_threshold
from .settings import DEFAULT_DB, Settings, SettingsError, load_settings
from .store import StoreError

if TYPE_CHECKING:
    from . import Dashboard
    from .demo.cluster import DemoCluster

log = logging.getLogger("dashboard")


#: Garbage collector thresholds. The model holds hundreds of thousands of long-lived objects
#: (100,000 tasks by default); with Python's defaults a full collection walks all of them every
#: few seconds under load, a pause of about 100 ms in which no request is served. Cyclic garbage
#: is rare here, so young collections can be rarer and full ones much rarer.
GC_THRESHOLDS = (50_000, 50, 1_000)
#: Longest a thread holds Python's lock (the GIL) while another waits for it, in seconds (Python's default is
#: 5 ms). Under eventlet one thread runs the event loop and native threads run the history's writes, which
#: take and give back the lock at every SQLite call: the event loop waited up to 5 ms each time for its turn.
#: In alternated runs at 5,000 events/s (per-worker), 1 ms brought the live p95 from 236-250 ms to 194-204.
SWITCH_INTERVAL_SECONDS = 0.001
#: Seconds the demo's workers get, at Ctrl-C, to finish their tasks (its slowest runs 30 s) and say worker-offline.
DEMO_STOP_SECONDS = 40.0
#: Seconds the collector keeps listening for their worker-offline once they have exited.
DEMO_GOODBYE_SECONDS = 3.0


def _stop_on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def tune_gc() -> None:
    """Set the garbage collector for a process that holds a large, long-lived model."""
    gc.set_threshold(*GC_THRESHOLDS)


def tune_switching() -> None:
    """Let the event loop's thread have Python's lock back sooner from native threads (``SWITCH_INTERVAL_SECONDS``)."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


def main(argv: Sequence[str] | None = None, async_mode: str = "eventlet",
         run_blocking: Callable[..., Any] | None = None,
         server_options: Callable[[Settings], dict[str, Any]] | None = None) -> int:
    """Run the dashboard until Ctrl-C or SIGTERM; return the process exit status.

    ``server_options(settings)`` gives the async mode's web server its options (``run.py``:
    eventlet's connection cap and timeouts for slow clients).
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["auth"]:  # run.py auth ...: users and tokens, no server
        from .auth_cli import main as auth_main
        return auth_main(arguments[1:])
    try:
        settings = load_settings(arguments)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.async_mode != async_mode and "--async-mode" in (sys.argv if argv is None else argv):
        print(f"error: --async-mode {settings.async_mode} is not available from this entry point "
              f"(run.py serves with eventlet; python -m dashboard serves with threading)", file=sys.stderr)
        return 2
    settings = dataclasses.replace(settings, async_mode=async_mode)
    tune_gc()
    if async_mode == "eventlet":
        tune_switching()
    fix_mmap_threshold()
    logs.configure(settings.log_level)  # one line per record: outside text cannot forge lines
    cluster = None
    kill_timeout = 10.0  # seconds the demo's processes get after SIGTERM at the very end
    if settings.demo:
        from .demo import transport
        from .demo.cluster import SCHEDULE_MODULE, DemoCluster
        transport.install()  # the demo's filesystem transport, safe against half-written files
        logging.getLogger("kombu.connection").setLevel(logging.ERROR)  # filesystem:// has no hostname
        cluster = DemoCluster()
        # The demo's history lives and dies with its folder: never mixed with a real cluster's.
        db = str(cluster.base_dir / "history.db") if settings.db == DEFAULT_DB else settings.db
        settings = dataclasses.replace(settings, broker_url=cluster.broker_url,
                                       broker_transport_options=cluster.transport_options, db=db,
                                       app=settings.app or SCHEDULE_MODULE)  # its queues and its beat schedule
    try:
        app = create_app(settings, run_blocking or run_inline)
    except (ImportError, ValueError, StoreError) as exc:  # --app that does not load, a --db it cannot use
        print(f"error: {exc}", file=sys.stderr)
        if cluster is not None:
            cluster.stop()
        return 2
    dashboard = app.extensions["dashboard"]
    # Both stop cleanly, also when the shell started us with SIGINT ignored (a background job).
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    try:
        try:
            if cluster is not None:
                cluster.start()
                log.info("demo cluster running in %s", cluster.base_dir)
            dashboard.start()
            log.info("dashboard on %s://%s:%d%s/ watching %s", "https" if settings.certfile else "http",
                     settings.address, settings.port, settings.url_prefix,
                     settings.masked_broker_url)
            _serve(dashboard.socketio, app, settings, server_options(settings) if server_options else {})
        except KeyboardInterrupt:
            pass  # eventlet's server returns on it instead; either way the signal stopped serving
        log.info("stopping")
        if cluster is not None and not _let_demo_workers_finish(cluster, dashboard):
            kill_timeout = 0.0
    finally:
        dashboard.stop()
        dashboard.close()  # a clean stop loses nothing: pending history is written first
        if cluster is not None:
            cluster.stop(kill_timeout)
    return 0


def _let_demo_workers_finish(cluster: "DemoCluster", dashboard: "Dashboard") -> bool:
    """Stop the producer, then let the workers finish their tasks and say worker-offline while
    the collector still listens, so the history ends with their outcome. Return False when a
    second Ctrl-C (or SIGTERM), or the time limit, cut the wait short: the workers are killed then.
    """
    cluster.stop_producer()
    running = cluster.stop_workers()
    if not running:
        return True
    log.info("stopping: waiting for %d demo workers to finish their tasks (Ctrl-C again to kill them)", running)
    again: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: again.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, frame: again.append(signum))
    deadline = time.monotonic() + DEMO_STOP_SECONDS
    exited_at = None
    while not again and time.monotonic() < deadline:
        if not cluster.workers_running():
            exited_at = exited_at or time.monotonic()
            said_goodbye = all(w["status"] != "online" for w in dashboard.cluster.workers()
                               if cluster.is_demo_worker(w["hostname"]))
            if said_goodbye or time.monotonic() - exited_at > DEMO_GOODBYE_SECONDS:
                return True
        dashboard.socketio.sleep(0.1)  # the collector, the pusher and the history writer go on meanwhile
    if again:
        log.info("stopping: killing the demo workers")
    else:
        log.warning("stopping: the demo workers did not finish within %.0f s; killing them", DEMO_STOP_SECONDS)
    return False


def _serve(socketio: Any, app: Any, settings: Settings, options: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"host": settings.address, "port": settings.port, "log_output": False, **options}
    if settings.async_mode == "threading":
        kwargs["allow_unsafe_werkzeug"] = True
        if settings.certfile:
            kwargs["ssl_context"] = (settings.certfile, settings.keyfile)
    elif settings.certfile:  # eventlet wraps its listening socket (Flask-SocketIO's run)
        kwargs.update(certfile=settings.certfile, keyfile=settings.keyfile)
    socketio.run(app, **kwargs)
