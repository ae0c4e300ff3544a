"""Celery app and tasks of the demo cluster; configured only from the environment.

Environment read at import time:

* ``CELERY_BROKER_URL``: broker URL (default ``filesystem://``).
* ``DASHBOARD_DEMO_TRANSPORT_OPTIONS``: JSON object of broker transport options.
* ``CELERY_RESULT_BACKEND``: result backend URL; when unset and the broker is the
  filesystem one, ``file://$DASHBOARD_DEMO_DIR/results`` if that variable is set,
  otherwise no result backend.
"""

from __future__ import annotations

import json
import os
import random
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import Celery, Task
from kombu import Exchange, Queue

from dashboard.demo import lifeline, transport

#: Environment variable holding the broker URL.
BROKER_URL_ENV = "CELERY_BROKER_URL"
#: Environment variable holding the transport options as a JSON object.
TRANSPORT_OPTIONS_ENV = "DASHBOARD_DEMO_TRANSPORT_OPTIONS"
#: Environment variable holding the result backend URL.
RESULT_BACKEND_ENV = "CELERY_RESULT_BACKEND"
#: Environment variable holding the demo directory (logs, broker folders, results).
DEMO_DIR_ENV = "DASHBOARD_DEMO_DIR"
#: Broker used when ``CELERY_BROKER_URL`` is unset.
DEFAULT_BROKER_URL = "filesystem://"

#: Queues the demo workers consume, default queue first.
QUEUE_NAMES = ("celery", "high_priority", "low_priority")

#: Seconds between the attempts of ``flaky_fetch``.
FLAKY_RETRY_COUNTDOWN_SECONDS = 1.0
#: Retries ``flaky_fetch`` may use before it fails for good.
FLAKY_MAX_RETRIES = 3
#: Seconds each step of ``progress_job`` takes.
PROGRESS_STEP_SECONDS = 0.3


def transport_options_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Parse the transport options JSON, failing loudly on a bad value."""
    raw = environ.get(TRANSPORT_OPTIONS_ENV, "") or "{}"
    try:
        options = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{TRANSPORT_OPTIONS_ENV} is not valid JSON: {raw!r} ({exc})") from exc
    if not isinstance(options, dict):
        raise ValueError(f"{TRANSPORT_OPTIONS_ENV} must be a JSON object, got {raw!r}")
    return options


def result_backend_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """Return the result backend URL the environment asks for, or None."""
    explicit = environ.get(RESULT_BACKEND_ENV)
    if explicit:
        return explicit
    broker_url = environ.get(BROKER_URL_ENV, DEFAULT_BROKER_URL)
    demo_dir = environ.get(DEMO_DIR_ENV)
    if broker_url.startswith("filesystem://") and demo_dir:
        results = Path(demo_dir).resolve() / "results"
        results.mkdir(parents=True, exist_ok=True)
        return f"file://{results}"
    return None


def build_config(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Return the Celery settings of the demo app for this environment."""
    return {
        "broker_url": environ.get(BROKER_URL_ENV, DEFAULT_BROKER_URL),
        "broker_transport_options": transport_options_from_env(environ),
        "broker_connection_retry_on_startup": True,
        "result_backend": result_backend_from_env(environ),
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_default_queue": "celery",
        # Explicit exchanges so their names are known (the cluster pre-creates them).
        "task_queues": [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUE_NAMES],
        "task_routes": {
            "dashboard.demo.tasks.send_email": {"queue": "high_priority"},
            "dashboard.demo.tasks.resize_image": {"queue": "low_priority"},
            "dashboard.demo.tasks.slow_report": {"queue": "low_priority"},
        },
    }


transport.install()  # before any connection: stock filesystem reads can crash on half-written files
lifeline.watch()  # in a process the dashboard started: end with the dashboard, or with the demo folder
app = Celery("demo")
app.config_from_object(build_config())


def _pause(low_seconds: float, high_seconds: float) -> None:
    """Sleep a random time so the task has a visible runtime."""
    time.sleep(random.uniform(low_seconds, high_seconds))


@app.task
def add(x: float, y: float) -> float:
    """Add two numbers."""
    _pause(0.05, 0.3)
    return x + y


@app.task
def slow_report(seconds: float) -> dict[str, Any]:
    """Build a (pretend) report for ``seconds`` seconds."""
    time.sleep(seconds)
    return {"report": f"sales-{random.randint(1000, 9999)}.pdf", "seconds": seconds}


@app.task
def fail_payment(order_id: str) -> None:
    """Charge an order; always declined, so the task fails with a traceback."""
    _pause(0.1, 0.5)
    raise ValueError(f"Payment for order {order_id} declined by gateway: card expired")


@app.task(bind=True, max_retries=FLAKY_MAX_RETRIES, default_retry_delay=FLAKY_RETRY_COUNTDOWN_SECONDS)
def flaky_fetch(self: Task, url: str) -> dict[str, Any]:
    """Fetch a URL whose server times out on the first one or two attempts."""
    _pause(0.1, 0.4)
    failures = 1 + zlib.crc32(url.encode()) % 2  # same for every attempt of one URL
    if self.request.retries < failures:
        raise self.retry(
            exc=ConnectionError(f"Timed out fetching {url} (attempt {self.request.retries + 1})"),
            countdown=FLAKY_RETRY_COUNTDOWN_SECONDS,
        )
    return {"url": url, "status": 200, "attempts": self.request.retries + 1}


@app.task
def send_email(to: str, subject: str) -> dict[str, str]:
    """Send an email (pretend); routed to ``high_priority``."""
    _pause(0.1, 0.5)
    return {"to": to, "subject": subject, "status": "sent"}


@app.task
def resize_image(path: str, width: int) -> dict[str, Any]:
    """Resize an image (pretend); routed to ``low_priority``."""
    _pause(0.3, 1.0)
    stem, _, suffix = path.rpartition(".")
    return {"path": f"{stem}-{width}w.{suffix}", "width": width}


@app.task(bind=True)
def progress_job(self: Task, steps: int) -> dict[str, int]:
    """Work through ``steps`` steps, reporting progress as state and as events."""
    has_backend = bool(self.app.conf.result_backend)
    for i in range(1, steps + 1):
        time.sleep(PROGRESS_STEP_SECONDS)
        if has_backend:
            self.update_state(state="PROGRESS", meta={"current": i, "total": steps})
        self.send_event("task-progress", current=i, total=steps)
    return {"current": steps, "total": steps}


@app.task
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Return the arguments it was called with as ``{"args": [...], "kwargs": {...}}``."""
    _pause(0.05, 0.1)
    return {"args": list(args), "kwargs": kwargs}
