"""The HTML pages: each renders a template with a JSON bootstrap block; the browser does the rest."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template

from .live import NAMESPACE

bp = Blueprint("views", __name__)


def _bootstrap(page: str, **extra: Any) -> dict[str, Any]:
    dashboard = current_app.extensions["dashboard"]
    return {"page": page, "namespace": NAMESPACE, "broker": dashboard.collector.broker.to_json(), **extra}


@bp.get("/")
def overview() -> str:
    return render_template("overview.html", bootstrap=_bootstrap("overview"))


@bp.get("/tasks/<uuid>")
def task(uuid: str) -> tuple[str, int] | str:
    collector = current_app.extensions["dashboard"].collector
    with collector.lock:
        known = uuid in collector.state.tasks
    if not known:
        return render_template("error.html", bootstrap=_bootstrap("error"),
                               message=f"Unknown task {uuid}", uuid=uuid), 404
    return render_template("task.html", bootstrap=_bootstrap("task", uuid=uuid))
