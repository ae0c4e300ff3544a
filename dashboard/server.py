"""Start-up: read settings, build the app, start its loops (and the demo cluster), serve, stop cleanly."""
from __future__ import annotations

import dataclasses
import gc
import logging
import signal
import sys
from typing import Any, Callable, Sequence

from . import create_app, logs, run_inline
from .settings import Settings, SettingsError, load_settings
from .store import StoreError

log = logging.getLogger("dashboard")


#: Garbage collector thresholds. The model holds hundreds of thousands of long-lived objects
#: (100,000 tasks by default); with Python's defaults a full collection walks all of them every
#: few seconds under load, a pause of about 100 ms in which no request is served. Cyclic garbage
#: is rare here, so young collections can be rarer and full ones much rarer.
GC_THRESHOLDS = (50_000, 50, 1_000)


def _stop_on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def tune_gc() -> None:
    """Set the garbage collector for a process that holds a large, long-lived model."""
    gc.set_threshold(*GC_THRESHOLDS)


def main(argv: Sequence[str] | None = None, async_mode: str = "eventlet",
         run_blocking: Callable[..., Any] | None = None,
         server_options: Callable[[Settings], dict[str, Any]] | None = None) -> int:
    """Run the dashboard until Ctrl-C or SIGTERM; return the process exit status.

    ``server_options(settings)`` gives the async mode's web server its options (``run.py``:
    eventlet's connection cap and timeouts for slow clients).
    """
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.async_mode != async_mode and "--async-mode" in (sys.argv if argv is None else argv):
        print(f"error: --async-mode {settings.async_mode} is not available from this entry point "
              f"(run.py serves with eventlet; python -m dashboard serves with threading)", file=sys.stderr)
        return 2
    settings = dataclasses.replace(settings, async_mode=async_mode)
    tune_gc()
    logs.configure(settings.log_level)  # one line per record: outside text cannot forge lines
    cluster = None
    if settings.demo:
        from .demo import transport
        from .demo.cluster import DemoCluster
        transport.install()  # the demo's filesystem transport, safe against half-written files
        logging.getLogger("kombu.connection").setLevel(logging.ERROR)  # filesystem:// has no hostname
        cluster = DemoCluster()
        settings = dataclasses.replace(settings, broker_url=cluster.broker_url,
                                       broker_transport_options=cluster.transport_options)
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
        if cluster is not None:
            cluster.start()
            log.info("demo cluster running in %s", cluster.base_dir)
        dashboard.start()
        log.info("dashboard on http://%s:%d watching %s", settings.address, settings.port,
                 settings.masked_broker_url)
        _serve(dashboard.socketio, app, settings, server_options(settings) if server_options else {})
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        dashboard.stop()
        dashboard.close()  # a clean stop loses nothing: pending history is written first
        if cluster is not None:
            cluster.stop()
    return 0


def _serve(socketio: Any, app: Any, settings: Settings, options: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"host": settings.address, "port": settings.port, "log_output": False, **options}
    if settings.async_mode == "threading":
        kwargs["allow_unsafe_werkzeug"] = True
    socketio.run(app, **kwargs)
