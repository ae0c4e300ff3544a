"""The HTML pages: each renders a template with a JSON bootstrap block; the browser does the rest."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .access import COOKIE, LOCAL
from .auth import Principal
from .live import NAMESPACE
from .store import UUID_PREFIX

log = logging.getLogger(__name__)

bp = Blueprint("views", __name__)


def bootstrap(page: str, **extra: Any) -> dict[str, Any]:
    """Return the JSON every page carries for its scripts."""
    dashboard = current_app.extensions["dashboard"]
    identity = g.get("identity")
    principal = identity.principal if identity else LOCAL
    actions_on = dashboard.settings.actions_refused is None
    return {"page": page, "namespace": NAMESPACE, "broker": dashboard.collector.broker.to_json(),
            "insecure": dashboard.settings.insecure_no_auth and not dashboard.access.enabled,
            "actions": actions_on and principal.may("operator"), "admin": actions_on and principal.may("admin"),
            "user": {"name": principal.name, "role": principal.role} if dashboard.access.enabled else None,
            "csrf": identity.csrf if identity else None, **extra}


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The login form; a right name and password set the session cookie and go on to ``next``."""
    dashboard = current_app.extensions["dashboard"]
    access = dashboard.access
    target = _local_path(request.values.get("next", "/"))
    if not access.enabled:
        return redirect(request.script_root + target)
    if request.method == "GET":
        return render_template("login.html", bootstrap=_login_bootstrap(), next=target, error=None)
    name, password = request.form.get("name", "").strip(), request.form.get("password", "")
    address = request.remote_addr or "?"
    outcome = access.login(name, password, address) if name and password else None
    attempted = Principal(name[:64] or "?", "none", "user")
    if isinstance(outcome, float):
        log.warning("login of %r from %s refused: too many failures", name, address)
        dashboard.record("login", name[:64], None, "refused: too many failed logins", who=attempted)
        return render_template("login.html", bootstrap=_login_bootstrap(), next=target,
                               error=f"Too many failed logins: try again in {int(outcome) + 1} s."), 429
    if outcome is None:
        log.warning("login of %r from %s failed", name, address)
        dashboard.record("login", name[:64], None, "failed: wrong name or password", who=attempted)
        return render_template("login.html", bootstrap=_login_bootstrap(), next=target,
                               error="Wrong name or password."), 401
    log.info("login of %s (%s) from %s", outcome.name, outcome.role, address)
    dashboard.record("login", outcome.name, None, "logged in", who=outcome)
    response = redirect(request.script_root + target)
    response.set_cookie(COOKIE, access.new_session(outcome), max_age=int(access.session_seconds), httponly=True,
                        samesite="Lax", secure=request.is_secure, path=request.script_root or "/")
    return response


@bp.get("/audit")
def audit() -> Any:
    """The audit log, newest first (admin): 100 entries a page, ``before`` an id for older ones."""
    dashboard = current_app.extensions["dashboard"]
    identity = g.get("identity")
    principal = identity.principal if identity else LOCAL
    if not principal.may("admin"):
        return render_template("error.html", bootstrap=bootstrap("error"), title="Not allowed",
                               message="The audit log is for admins."), 403
    before = request.args.get("before", "")
    page = dashboard.run_blocking(dashboard.store.audit_page, 100, int(before) if before.isdigit() else None)
    return render_template("audit.html", bootstrap=bootstrap("audit"), page=page)


@bp.post("/logout")
def logout() -> Any:
    response = redirect(f"{request.script_root}/login")
    response.delete_cookie(COOKIE, path=request.script_root or "/")
    return response


def _login_bootstrap() -> dict[str, Any]:
    return {"page": "login", "namespace": None, "broker": None, "insecure": False, "actions": False,
            "admin": False, "user": None, "csrf": None}


def _local_path(raw: str) -> str:
    """``raw`` when it is a path on this site ("/tasks?state=FAILURE"), else "/" (no open redirect)."""
    if not raw.startswith("/") or raw.startswith("//") or "\\" in raw or any(ord(c) < 32 for c in raw):
        return "/"
    return raw


@bp.get("/healthcheck")
def healthcheck() -> tuple[str, int, dict[str, str]]:
    """Answer ``OK`` while the process serves, as Flower's does, for load balancers set up for it."""
    return "OK", 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus text format (see metrics.py): celery-exporter's families and the dashboard's health."""
    from prometheus_client import generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
    body = generate_latest(current_app.extensions["dashboard"].metrics_registry)
    # The classic text format, which every Prometheus (2.x too) and celery-exporter's users scrape.
    return Response(body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4, "Cache-Control": "no-store"})


@bp.get("/")
def overview() -> str:
    return render_template("overview.html", bootstrap=bootstrap("overview"))


@bp.get("/tasks")
def tasks() -> str | Response:
    uuid = request.args.get("uuid", "").strip()
    if uuid:  # the "Go to task id" boxes
        return redirect(_jump_target(uuid))
    return render_template("tasks.html", bootstrap=bootstrap("tasks"))


def _jump_target(value: str) -> str:
    """Where "Go to task id" leads: the task with this id (in any case), else the one task whose id starts with it
    (the lists show the first 8 characters), else the search for it when several do, else the unknown id's page."""
    dashboard = current_app.extensions["dashboard"]
    for uuid in dict.fromkeys((value, value.lower())):
        if _known(uuid):
            return url_for("views.task", uuid=uuid)
    if "\0" not in value and UUID_PREFIX.fullmatch(value):
        found = dashboard.run_blocking(dashboard.store.uuids_starting, value.lower(), 2)
        if len(found) == 1:
            return url_for("views.task", uuid=found[0])
        if found:
            return url_for("views.tasks", q=value)
    return url_for("views.task", uuid=value)


def _known(uuid: str) -> bool:
    dashboard = current_app.extensions["dashboard"]
    return dashboard.cluster.task_detail(uuid)[0] is not None or dashboard.run_blocking(dashboard.store.exists, uuid)


@bp.get("/tasks/<uuid>")
def task(uuid: str) -> tuple[str, int]:
    dashboard = current_app.extensions["dashboard"]
    known = _known(uuid)
    return render_template("task.html", bootstrap=bootstrap(
        "task", uuid=uuid, result_backend=dashboard.reconciler.backend_app is not None)), 200 if known else 404


@bp.get("/task-types")
def task_types() -> str:
    return render_template("task_types.html", bootstrap=bootstrap("task-types"))


@bp.get("/task-types/<path:name>")
def task_type(name: str) -> str:
    # Whether it was seen depends on the range the page asks for: its script says so, from the API.
    return render_template("task_type.html", bootstrap=bootstrap("task-type", task_type=name))


@bp.get("/workers")
def workers() -> str:
    return render_template("workers.html", bootstrap=bootstrap("workers"))


@bp.get("/queues")
def queues() -> str:
    return render_template("queues.html", bootstrap=bootstrap("queues"))


@bp.get("/periodic")
def periodic() -> str:
    return render_template("periodic.html", bootstrap=bootstrap("periodic"))


@bp.get("/alerts")
def alerts() -> str:
    return render_template("alerts.html", bootstrap=bootstrap("alerts"))


@bp.get("/workers/<path:hostname>")
def worker(hostname: str) -> tuple[str, int]:
    known = current_app.extensions["dashboard"].cluster.worker_known(hostname)
    return render_template("worker.html", bootstrap=bootstrap("worker", hostname=hostname)), 200 if known else 404


@bp.get("/queues/<path:name>")
def queue(name: str) -> tuple[str, int]:
    known = current_app.extensions["dashboard"].cluster.queue_known(name)
    return render_template("queue.html", bootstrap=bootstrap("queue", queue=name)), 200 if known else 404
