"""The HTML pages: each renders a template with a JSON bootstrap block; the browser does the rest."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .live import NAMESPACE

bp = Blueprint("views", __name__)


def bootstrap(page: str, **extra: Any) -> dict[str, Any]:
    """Return the JSON every page carries for its scripts."""
    dashboard = current_app.extensions["dashboard"]
    return {"page": page, "namespace": NAMESPACE, "broker": dashboard.collector.broker.to_json(),
            "insecure": dashboard.settings.insecure_no_auth, "actions": dashboard.settings.actions_refused is None,
            **extra}


@bp.get("/healthcheck")
def healthcheck() -> tuple[str, int, dict[str, str]]:
    """Answer ``OK`` while the process serves, as Flower's does, for load balancers set up for it."""
    return "OK", 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.get("/")
def overview() -> str:
    return render_template("overview.html", bootstrap=bootstrap("overview"))


@bp.get("/tasks")
def tasks() -> str | Response:
    uuid = request.args.get("uuid", "").strip()
    if uuid:  # the jump box without JavaScript
        return redirect(url_for("views.task", uuid=uuid))
    return render_template("tasks.html", bootstrap=bootstrap("tasks"))


@bp.get("/tasks/<uuid>")
def task(uuid: str) -> tuple[str, int]:
    dashboard = current_app.extensions["dashboard"]
    known = dashboard.cluster.task_detail(uuid)[0] is not None or dashboard.run_blocking(dashboard.store.exists, uuid)
    return render_template("task.html", bootstrap=bootstrap("task", uuid=uuid)), 200 if known else 404


@bp.get("/workers")
def workers() -> str:
    return render_template("workers.html", bootstrap=bootstrap("workers"))


@bp.get("/queues")
def queues() -> str:
    return render_template("queues.html", bootstrap=bootstrap("queues"))


@bp.get("/workers/<path:hostname>")
def worker(hostname: str) -> tuple[str, int]:
    known = current_app.extensions["dashboard"].cluster.worker_known(hostname)
    return render_template("worker.html", bootstrap=bootstrap("worker", hostname=hostname)), 200 if known else 404


@bp.get("/queues/<path:name>")
def queue(name: str) -> tuple[str, int]:
    known = current_app.extensions["dashboard"].cluster.queue_known(name)
    return render_template("queue.html", bootstrap=bootstrap("queue", queue=name)), 200 if known else 404
