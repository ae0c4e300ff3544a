"""The REST API under ``/api``: health, workers, tasks and queues as JSON.

Shapes come from the state model's ``to_json`` methods, the same ones the
live push and the pages use. A bad parameter is a 400 with a message.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

from flask import Blueprint, Response, current_app, g, jsonify, request

from . import analytics
from .access import LOCAL
from .cluster import Cluster
from .control import INTERNAL_FAILURE, SIGNALS, WORKER_ACTIONS, ActionError, NotExact, check_plain, exact_call
from .model import READY_STATES, TASK_FIELDS, TASK_STATES
from .reconcile import is_backend_failure
from .state import event_key
from .rules import RuleError
from .stats import ALL, QUEUE, TASK, WORKER
from .events import GAPS_SHOWN
from .links import task_links, worker_links
from .store import GAPS_MAX, HistoryStore, StoreQueryError

bp = Blueprint("api", __name__, url_prefix="/api")

#: Page size of ``GET /api/tasks`` when ``limit`` is not given, and its ceiling.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: Sort keys of ``GET /api/tasks``; a leading ``-`` sorts descending.
SORT_KEYS = ("received", "runtime", "name")
#: Longest queue history ``GET /api/queues/<name>?hours=`` returns, in hours.
MAX_HISTORY_HOURS = 24 * 31
#: Which time ``since`` / ``until`` bound (``time=``); the first is the default.
TIME_FIELDS = ("received", "started", "finished")
#: The query parameters of ``GET /api/tasks``.
#: Names ``GET /api/task-names`` returns when no ``limit`` is given.
DEFAULT_NAMES = 200
#: Longest silence, in minutes (a week).
MAX_SILENCE_MINUTES = 7 * 24 * 60
#: Longest marker label, in characters.
MAX_MARKER_CHARS = 200
TASK_PARAMS = ("state", "name", "worker", "queue", "q", "since", "until", "time", "sort", "limit", "cursor",
               "after")


class BadRequest(ValueError):
    """A request parameter the API cannot use; the message says which and why."""


def _cluster() -> Cluster:
    return current_app.extensions["dashboard"].cluster


@bp.before_request
def _refuse_cross_site_posts() -> tuple[Response, int] | None:
    """Refuse state-changing requests a page of another site could send as a plain form post.

    A foreign ``Origin`` was already refused in front of the app (``hosts.HostGuard``); a form
    cannot send JSON, so a POST must say it does.
    """
    if request.method != "POST":
        return None
    if request.mimetype != "application/json":
        return error("POST requests must have Content-Type: application/json", 415)
    return None


@bp.errorhandler(BadRequest)
def _bad_request(exc: BadRequest) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


def _closed_to(role: str) -> tuple[Response, int] | None:
    """A 403 when actions are off (--read-only, no login on a reachable address) or the request's
    principal is weaker than ``role``; None when the action may go ahead."""
    refused = current_app.extensions["dashboard"].settings.actions_refused
    return error(refused, 403) if refused else _denied(role)


def _denied(role: str) -> tuple[Response, int] | None:
    """A 403 when the request's principal is weaker than ``role`` (see auth.ROLES), else None; a refusal
    is audited too."""
    identity = g.get("identity")
    principal = identity.principal if identity else LOCAL
    if principal.may(role):
        return None
    message = f"the {role} role is needed; {principal.name} is {principal.role}"
    current_app.extensions["dashboard"].record(f"{request.method} {request.path}", None, None, f"refused: {message}")
    return error(message, 403)


def _who() -> str:
    """Who asked, for the log: the principal and the address."""
    identity = g.get("identity")
    principal = identity.principal if identity else LOCAL
    return f"{principal.name} ({request.remote_addr or '?'})"


def _outcome(result: dict[str, Any]) -> str:
    """An action's outcome in a few words, for the audit log."""
    if not result["ok"]:
        return f"failed: {result['error']}"
    replied = len(result.get("replies") or [])
    return f"sent; {replied} replied" + (f" ({result['error']})" if result.get("error") else "")


def error(message: str, status: int) -> tuple[Response, int]:
    """Return the API's error shape."""
    return jsonify(error=message), status


@bp.get("/ready")
def ready() -> tuple[Response, int]:
    """200 once the history is loaded and the event stream subscribed; 503 with the reasons before (a load
    balancer's or Kubernetes' readiness probe; it needs no credentials and says nothing secret)."""
    dashboard = current_app.extensions["dashboard"]
    waiting = []
    if not dashboard.started:
        waiting.append("the task history is not loaded yet")
    if not dashboard.collector.broker.connected:
        waiting.append(f"not subscribed to the event stream ({dashboard.collector.broker.status})")
    return jsonify({"ready": not waiting, "waiting_for": waiting}), 503 if waiting else 200


@bp.get("/health")
def health() -> Response:
    dashboard = current_app.extensions["dashboard"]
    body = dashboard.health()
    body["store"] = dashboard.history.health()
    if body["store"]["error"] or body["store"]["integrity"] not in (None, "ok", "checking"):
        body["status"] = "degraded"
    if g.get("status_only"):  # no credentials (a probe): only whether it is healthy
        return jsonify({"status": body["status"]})
    return jsonify(body)


@bp.get("/workers")
def workers() -> Response:
    include_departed = _flag(request.args.get("all"), "all")
    return jsonify(_cluster().workers(include_departed))


@bp.get("/workers/<path:hostname>")
def worker(hostname: str) -> Response | tuple[Response, int]:
    body = _worker_body(hostname)
    return jsonify(body) if body is not None else error(f"unknown worker: {hostname}", 404)


def _worker_body(hostname: str) -> dict[str, Any] | None:
    """One worker as ``GET /api/workers/<hostname>`` shows it, with its ``--worker-link`` buttons."""
    body = _cluster().worker_detail(hostname)
    if body is not None:
        settings = current_app.extensions["dashboard"].settings
        body["links"] = worker_links(settings.worker_links, hostname)
        body["inspect_interval"] = settings.inspect_interval_seconds  # the page reads the next round's replies
    return body


@bp.post("/workers/<path:hostname>/inspect")
def inspect_worker(hostname: str) -> Response | tuple[Response, int]:
    dashboard = current_app.extensions["dashboard"]
    if not dashboard.cluster.worker_known(hostname):
        return error(f"unknown worker: {hostname}", 404)
    if not dashboard.collector.broker.connected:
        return error("the broker is not connected; cannot inspect now", 503)
    dashboard.inspector.inspect([hostname])
    return jsonify(_worker_body(hostname))


def _flag(raw: str | None, name: str) -> bool:
    if raw is None or raw == "":
        return False
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise BadRequest(f"{name}: expected 1 or 0, got {raw!r}")


@bp.get("/tasks")
def tasks() -> Response:
    args = request.args
    for name in TASK_PARAMS:  # full-text search stops reading at a NUL: refuse it in every parameter alike
        if any("\0" in value for value in args.getlist(name)):
            raise BadRequest(f"{name}: contains a NUL character")
    query = _task_query(args.get)
    dashboard = current_app.extensions["dashboard"]
    # The unfiltered list (any sort, any page) reads one page of an index: a short read. Filters and words may
    # read far more (tens of ms over a million tasks), away from the event loop.
    run = dashboard.run_blocking if any(query[name] is not None for name in _NARROWING) else dashboard.run_read
    try:  # from the store, which the history writer brings up to date every 500 ms
        page = run(_query_store, dashboard.store, query)
    except StoreQueryError as exc:
        raise BadRequest(str(exc)) from None
    return jsonify(page)


#: The ``_task_query`` keys that narrow the list to some tasks.
_NARROWING = ("states", "name", "worker", "queue", "q", "since", "until")


def _task_query(get: Callable[[str], str | None]) -> dict[str, Any]:
    """The store query of ``GET /api/tasks``'s parameters (``get(name)`` reads one)."""
    args = get
    sort_key, descending = _sort(args("sort"))  # the parameters as GET /api/tasks reads them
    return {
        "states": _states(args("state")) or None,
        "name": args("name") or None,
        "worker": args("worker") or None,
        "queue": args("queue") or None,
        "q": (args("q") or "").strip() or None,
        "since": _timestamp(args("since"), "since"),
        "until": _timestamp(args("until"), "until"),
        "time_field": _choice(args("time"), "time", TIME_FIELDS),
        "sort": sort_key,
        "descending": descending,
        "limit": _int(args("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        "cursor": args("cursor") or None,
        "after": args("after") or None,
    }


def _query_store(store: HistoryStore, query: dict[str, Any]) -> dict[str, Any]:
    return store.query(**query)


@bp.get("/task-names")
def task_names() -> Response:
    """The distinct task names in the history starting with ``prefix``, for the name filter's completion."""
    prefix = request.args.get("prefix") or ""
    if "\0" in prefix:
        raise BadRequest("prefix: contains a NUL character")
    limit = _int(request.args.get("limit"), "limit", DEFAULT_NAMES, 1, MAX_LIMIT)
    dashboard = current_app.extensions["dashboard"]
    return jsonify({"names": dashboard.run_blocking(dashboard.store.task_names, prefix.rstrip("*"), limit)})


@bp.post("/tasks/<uuid>/revoke")
def revoke_task(uuid: str) -> Response | tuple[Response, int]:
    """Revoke a task, or with ``{"terminate": true, "signal": "TERM"}`` also kill it where it runs."""
    dashboard = current_app.extensions["dashboard"]
    closed = _closed_to("operator")
    if closed:
        return closed
    body = _json_object()
    terminate = body.get("terminate", False)
    if not isinstance(terminate, bool):
        raise BadRequest(f"terminate: expected true or false, got {terminate!r}")
    signal = body.get("signal", "TERM")
    if not isinstance(signal, str):
        raise BadRequest(f"signal: expected one of {', '.join(SIGNALS)}, got {signal!r}")
    if task_detail(uuid) is None:
        return error(f"unknown task: {uuid}", 404)
    try:
        result = dashboard.control.revoke(uuid, terminate, signal.upper(), who=_who())
    except ActionError as exc:
        raise BadRequest(str(exc)) from None
    dashboard.record("terminate" if terminate else "revoke", uuid, {"signal": signal.upper()} if terminate else {},
                     _outcome(result), result["replies"])
    return jsonify(result)


@bp.post("/workers/<path:hostname>/<action>")
def worker_action(hostname: str, action: str) -> Response | tuple[Response, int]:
    """One remote-control action on one worker: see ``control.WORKER_ACTIONS`` and the README."""
    dashboard = current_app.extensions["dashboard"]
    closed = _closed_to(WORKER_ACTIONS[action][3] if action in WORKER_ACTIONS else "operator")
    if closed:
        return closed
    if action not in WORKER_ACTIONS:
        return error(f"unknown action: {action}; expected one of {', '.join(WORKER_ACTIONS)}", 404)
    body = _json_object()
    if not dashboard.cluster.worker_known(hostname):
        return error(f"unknown worker: {hostname}", 404)
    try:
        result = dashboard.control.worker(hostname, action, body, who=_who())
    except ActionError as exc:
        raise BadRequest(str(exc)) from None
    dashboard.record(f"worker-{action}", hostname, body, _outcome(result), result["replies"])
    return jsonify(result)


@bp.post("/queues/<path:name>/purge")
def purge_queue(name: str) -> Response | tuple[Response, int]:
    """Remove every message waiting in a watched queue (the broker's own purge); say how many."""
    dashboard = current_app.extensions["dashboard"]
    closed = _closed_to("admin")
    if closed:
        return closed
    _json_object()
    if not dashboard.cluster.queue_known(name):
        return error(f"unknown queue: {name}", 404)
    settings = dashboard.settings
    result = dashboard.control.purge(name, dict(settings.broker_transport_options or {}), who=_who())
    dashboard.record("queue-purge", name, {}, f"purged {result['purged']}" if result["ok"] else
                     f"failed: {result['error']}")
    return jsonify(result)


#: The ``GET /api/tasks`` parameters a bulk action's filter takes (it always covers the newest first).
BULK_FILTER_PARAMS = ("state", "name", "worker", "queue", "q", "since", "until", "time")
#: Tasks a bulk dry run lists (it counts them all).
BULK_LISTED = 100


@bp.post("/tasks/bulk")
def bulk_tasks() -> Response | tuple[Response, int]:
    """Revoke or retry every stored task matching a ``/tasks`` filter: a dry run first, then the real one."""
    dashboard = current_app.extensions["dashboard"]
    closed = _closed_to("operator")
    if closed:
        return closed
    body = _json_object()
    action = body.get("action")
    if action not in ("revoke", "retry"):
        raise BadRequest(f"action: expected revoke or retry, got {action!r}")
    dry_run = body.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise BadRequest(f"dry_run: expected true or false, got {dry_run!r}")
    flt = body.get("filter", {})
    if not isinstance(flt, dict):
        raise BadRequest("filter: expected a JSON object of GET /api/tasks parameters")
    unknown = sorted(set(flt) - set(BULK_FILTER_PARAMS))
    if unknown:
        raise BadRequest(f"filter: unknown {', '.join(unknown)}; expected any of {', '.join(BULK_FILTER_PARAMS)}")
    if not any(flt.get(key) not in (None, "", []) for key in BULK_FILTER_PARAMS):
        raise BadRequest("filter: empty; a bulk action needs at least one filter")
    limit = dashboard.settings.bulk_limit
    query = _task_query(lambda key: _filter_text(flt, key))
    query.update(limit=limit + 1, cursor=None, sort="received", descending=True)
    try:
        page = dashboard.run_blocking(_query_store, dashboard.store, query)
    except StoreQueryError as exc:
        raise BadRequest(str(exc)) from None
    items = page["items"]
    if len(items) > limit:
        more = f"about {page['total']:,}" if page.get("total_is_estimate") else f"{page['total']:,}"
        return error(f"the filter matches {more} tasks, more than --bulk-limit {limit:,}: narrow it", 400)
    skipped: list[dict[str, Any]] = []
    targets = items
    if action == "revoke":  # a finished task has nothing left to revoke
        targets = [item for item in items if item.get("state") not in READY_STATES]
        skipped = [{"uuid": item["uuid"], "reason": f"already {item.get('state')}"} for item in items
                   if item.get("state") in READY_STATES]
    if action == "retry":
        targets = []
        for item in items:
            preflight = _retry_preflight(item)
            if preflight["retryable"]:
                targets.append({**item, "_call": (preflight["args"], preflight["kwargs"])})
            else:
                skipped.append({"uuid": item["uuid"], "reason": preflight["reason"]})
    count = len(targets)
    if dry_run:
        dashboard.record(f"bulk-{action} (dry run)", None, {"filter": flt}, f"{count} would be touched")
        return jsonify({"ok": True, "dry_run": True, "action": action, "count": count,
                        "tasks": [{"uuid": t["uuid"], "name": t.get("name"), "state": t.get("state")}
                                  for t in targets[:BULK_LISTED]],
                        "skipped": skipped[:BULK_LISTED], "skipped_count": len(skipped), "error": None})
    confirm = body.get("confirm_count")
    if confirm != count:
        return error(f"confirm_count: the filter matches {count} tasks to {action} now, not {confirm!r}; "
                     "run the dry run again and confirm its count", 409)
    who = _who()
    if not targets:
        return jsonify({"ok": True, "dry_run": False, "action": action, "count": 0, "replies": [], "task_ids": [],
                        "error": None})
    if action == "revoke":
        result = dashboard.control.revoke_many([t["uuid"] for t in targets], who=who)
        dashboard.record("bulk-revoke", None, {"filter": flt, "count": count, "uuids": [t["uuid"] for t in targets]},
                         _outcome(result), result["replies"])
        return jsonify({**result, "dry_run": False, "action": action, "count": count, "task_ids": []})
    sent_ids: list[str] = []
    errors: list[str] = []
    for target in targets:
        args, kwargs = target.pop("_call")
        sent = dashboard.control.retry(target, args, kwargs, who=who)
        if sent["ok"]:
            sent_ids.append(sent["task_id"])
            dashboard.run_blocking(dashboard.store.link_retry, target["uuid"], sent["task_id"], time.time())
        else:
            errors.append(sent["error"])
    dashboard.record("bulk-retry", None, {"filter": flt, "count": count},
                     f"{len(sent_ids)} sent" + (f", {len(errors)} failed: {errors[0]}" if errors else ""),
                     {"task_ids": sent_ids})
    return jsonify({"ok": not errors, "dry_run": False, "action": action, "count": count, "replies": [],
                    "task_ids": sent_ids, "error": errors[0] if errors else None})


def _filter_text(flt: dict[str, Any], key: str) -> str | None:
    """One filter value as GET /api/tasks would get it in its query string."""
    value = flt.get(key)
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadRequest(f"filter.{key}: expected text or a number, got {value!r}")
    if isinstance(value, str) and "\0" in value:
        raise BadRequest(f"filter.{key}: contains a NUL character")
    return str(value)


def _json_object() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise BadRequest("body: expected a JSON object")
    return body


@bp.get("/tasks/<uuid>")
def task(uuid: str) -> Response | tuple[Response, int]:
    detail = task_detail(uuid)
    if detail is None:
        return error(f"unknown task: {uuid}", 404)
    dashboard = current_app.extensions["dashboard"]
    detail["retry_of"], detail["retried_as"] = dashboard.run_read(dashboard.store.links, uuid)
    times = [t for t in (detail.get(k) for k in ("sent", "received", "started", "succeeded", "failed", "retried",
                                                  "revoked", "rejected", "timestamp")) if isinstance(t, (int, float))]
    finished = detail.get("state") in READY_STATES
    detail["gaps"] = _task_gaps(min(times), max(times) if finished else time.time()) if times else []
    detail["links"] = task_links(dashboard.settings.task_links, detail)
    return jsonify(detail)


def _task_gaps(since: float, until: float) -> list[dict[str, Any]]:
    """The gaps a task's life crosses: from the latest ones in memory when they reach back before its
    start (no store round trip on a busy page), else from the store."""
    recent = list(current_app.extensions["dashboard"].collector.broker.gaps)  # in the order they closed
    if len(recent) < GAPS_SHOWN or since > recent[0]["end"]:  # nothing older can reach into its life
        return [g for g in reversed(recent) if g["end"] >= since and g["start"] <= until]
    return _gaps(since, until)


def _gaps(since: float | None, until: float | None, limit: int = GAPS_MAX) -> list[dict[str, Any]]:
    """The gaps overlapping [since, until], newest first: stored ones and those not written yet."""
    dashboard = current_app.extensions["dashboard"]
    stored = dashboard.run_blocking(dashboard.store.gaps, since, until, limit)
    fresh = [g for g in dashboard.collector.unsaved_gaps
             if (since is None or g["end"] >= since) and (until is None or g["start"] <= until)]
    return sorted(fresh + stored, key=lambda g: -g["end"])[:limit]


@bp.post("/tasks/<uuid>/result")
def look_up_result(uuid: str) -> Response | tuple[Response, int]:
    """Read one task's result-backend record (``--app``'s backend); a task still shown unfinished that
    the backend knows as finished moves on, marked as reconciled."""
    dashboard = current_app.extensions["dashboard"]
    if dashboard.reconciler.backend_app is None:
        return error("no result backend: start the dashboard with --app naming an app that has one", 404)
    try:
        body = dashboard.reconciler.look_up(uuid)
    except Exception as exc:  # the backend is down or refuses (a bug is logged as one): say so, never a 500
        text = dashboard.reconciler.backend_failure(exc, "result look-up")
        said = "the result backend did not answer" if is_backend_failure(exc) else INTERNAL_FAILURE
        return error(f"{said}: {text}", 503)
    return jsonify(body)


@bp.get("/gaps")
def gaps() -> Response:
    """Intervals in which events may have been lost (reconnects, cuts, the dashboard's downtime), newest first."""
    args = request.args
    since, until = _timestamp(args.get("since"), "since"), _timestamp(args.get("until"), "until")
    limit = _int(args.get("limit"), "limit", 100, 1, GAPS_MAX)
    return jsonify({"gaps": _gaps(since, until, limit)})


#: States a task may be retried from.
RETRYABLE_STATES = ("FAILURE", "REVOKED", "REJECTED")


def _retry_preflight(detail: dict[str, Any]) -> dict[str, Any]:
    """What a retry of this task would send, or why it cannot be retried."""
    dashboard = current_app.extensions["dashboard"]
    preflight: dict[str, Any] = {"retryable": False, "reason": None, "name": detail.get("name"), "args": None,
                                 "kwargs": None, "queue": detail.get("queue")}
    lost = (detail.get("orphaned") or detail.get("lost")) and detail.get("state") in ("RECEIVED", "STARTED", "RETRY")
    if detail.get("state") not in RETRYABLE_STATES and not lost:
        preflight["reason"] = f"a {detail.get('state')} task is not retried: only failed, revoked, rejected or lost ones"
        return preflight
    if not detail.get("name"):
        preflight["reason"] = "its task name is unknown"
        return preflight
    try:
        preflight["args"], preflight["kwargs"] = exact_call(detail.get("args"), detail.get("kwargs"))
    except NotExact as exc:
        preflight["reason"] = f"its arguments are not known exactly: {exc}"
        return preflight
    registered = dashboard.cluster.registered_names()
    if registered is None:
        preflight["reason"] = "no online worker has reported its registered tasks yet (inspect)"
    elif detail["name"] not in registered:
        preflight["reason"] = f"no online worker has {detail['name']} registered"
    else:
        preflight["retryable"] = True
    return preflight


@bp.get("/audit")
def audit_log() -> Response | tuple[Response, int]:
    """The audit log, newest first (admin); ``before`` (an id), ``action`` and ``who`` narrow it."""
    denied = _denied("admin")
    if denied:
        return denied
    args = request.args
    before = args.get("before")
    if before is not None and not before.isdigit():
        raise BadRequest(f"before: expected an entry id, got {before!r}")
    dashboard = current_app.extensions["dashboard"]
    return jsonify(dashboard.run_blocking(dashboard.store.audit_page, _int(args.get("limit"), "limit", 100, 1, 500),
                                          int(before) if before else None, args.get("action") or None,
                                          args.get("who") or None))


@bp.get("/tasks/<uuid>/retry")
def retry_preflight(uuid: str) -> Response | tuple[Response, int]:
    """What ``POST`` to this URL would send: name, exact args and kwargs, queue; or why it cannot."""
    detail = task_detail(uuid)
    if detail is None:
        return error(f"unknown task: {uuid}", 404)
    return jsonify(_retry_preflight(detail))


@bp.post("/tasks/<uuid>/retry")
def retry_task(uuid: str) -> Response | tuple[Response, int]:
    """Send a failed, revoked, rejected or lost task again as a new task, with its arguments or edited ones."""
    dashboard = current_app.extensions["dashboard"]
    closed = _closed_to("operator")
    if closed:
        return closed
    body = _json_object()
    detail = task_detail(uuid)
    if detail is None:
        return error(f"unknown task: {uuid}", 404)
    preflight = _retry_preflight(detail)  # edited arguments too need the originals known exactly
    if not preflight["retryable"]:
        return error(f"cannot retry: {preflight['reason']}", 409)
    args = body.get("args", preflight["args"])
    kwargs = body.get("kwargs", preflight["kwargs"])
    if not isinstance(args, list):
        raise BadRequest(f"args: expected a JSON array, got {type(args).__name__}")
    if not isinstance(kwargs, dict):
        raise BadRequest(f"kwargs: expected a JSON object, got {type(kwargs).__name__}")
    try:
        check_plain(args, "args")
        check_plain(kwargs, "kwargs")
    except NotExact as exc:
        raise BadRequest(str(exc)) from None
    sent = dashboard.control.retry(detail, args, kwargs, who=_who())
    if sent["ok"]:
        dashboard.run_blocking(dashboard.store.link_retry, uuid, sent["task_id"], time.time())
    dashboard.record("retry", uuid, {"args": args, "kwargs": kwargs, "edited": "args" in body or "kwargs" in body},
                     f"sent as {sent['task_id']}" if sent["ok"] else f"failed: {sent['error']}")
    return jsonify({**sent, "replies": []})


#: What a field a task's shape leaves out holds in memory, when the store has no row for it yet.
_UNSET: dict[str, Any] = {"state": "PENDING", "orphaned": False}


def task_detail(uuid: str) -> dict[str, Any] | None:
    """Return a task with its timeline: from memory while it is held there, else from the store.

    A finished task held in memory has handed its timeline to the store: its fields come from
    memory, its timeline from the store plus the events not written yet. Fields its shape leaves
    out (payloads let go of; what a task first seen after its start does not know) come from the
    store, and so do the earlier events of the latter. Nothing here waits for a write.
    """
    dashboard = current_app.extensions["dashboard"]
    detail, unsaved = dashboard.cluster.task_detail(uuid)
    complete = detail is not None and all(name in detail for name in TASK_FIELDS)
    if complete and detail is not None and detail["events"] is not None:
        return detail
    stored = dashboard.run_read(dashboard.store.get, uuid)
    if detail is None:
        return stored
    if not complete:
        for name in TASK_FIELDS:
            if name not in detail:  # left out where memory holds PENDING, no orphan flag, or None
                detail[name] = stored.get(name) if stored else _UNSET.get(name)
    events = stored["events"] if stored else []
    held = detail["events"] if detail["events"] is not None else dashboard.history.unwritten_events(uuid) + unsaved
    for entry in held:
        if entry not in events:
            events.append(entry)
    detail["events"] = sorted(events, key=event_key)
    return detail


def _range(raw: str | None) -> analytics.Range:
    return analytics.RANGES[_choice(raw, "range", tuple(analytics.RANGES))]


@bp.get("/stats")
def stats() -> Response:
    """Task events per step over a range (``range=15m|1h|6h|1d|7d``) by kind, with the failure rate, the
    runtime and queue-wait percentiles, and the deepest queues' depths and the busiest workers' activity per
    step; the last 15 minutes per second from memory (the page has the queues and workers live)."""
    range_ = _range(request.args.get("range"))
    dashboard = current_app.extensions["dashboard"]
    now = time.time()
    if range_.source_step == 1:
        return jsonify(analytics.live_series(dashboard.cluster.live_stats(now)))
    since = range_.since(now)
    stored = dashboard.run_blocking(dashboard.store.stats_series, range_.source_step, ALL, "", since)
    rows = analytics.merge_rows(stored, dashboard.cluster.open_stats(ALL, ""), range_.source_step)
    body = analytics.series(rows, range_, now)  # depths and activity as the writer left them (every 5 s)
    for key, table in (("queues", "queue_depths"), ("workers", "worker_active")):
        body[key] = analytics.gauge_series(dashboard.run_blocking(dashboard.store.gauge_minutes, table, since),
                                           range_, now)
    return jsonify(body)


def _stats_by_key(scope: str, range_: analytics.Range, now: float) -> dict[str, Any]:
    """Each key of a scope with its buckets over the range added together (stored and not yet stored)."""
    dashboard = current_app.extensions["dashboard"]
    since = range_.since(now)
    stored = dashboard.run_blocking(dashboard.store.stats_by_key, analytics.list_step(range_), scope, since)
    return analytics.by_key(stored, dashboard.cluster.open_stats(scope), since)


@bp.get("/task-types")
def task_types() -> Response:
    """Every task type seen over the range with its counts, failure rate and percentiles, busiest first."""
    range_ = _range(request.args.get("range") or "1h")
    return jsonify({"range": range_.name, "items": analytics.summaries(_stats_by_key(TASK, range_, time.time()))})


@bp.get("/task-types/<path:name>")
def task_type(name: str) -> Response | tuple[Response, int]:
    """One task type over the range: its summary, series with percentiles and runtime histograms, the most
    common exceptions with an example task each, the slowest runs, and the markers in the range."""
    range_ = _range(request.args.get("range") or "1h")
    dashboard = current_app.extensions["dashboard"]
    now = time.time()
    source = range_.source_step if range_.source_step > 1 else 60
    stored = dashboard.run_blocking(dashboard.store.stats_series, source, TASK, name, range_.since(now))
    rows = analytics.merge_rows(stored, dashboard.cluster.open_stats(TASK, name), source)
    if not rows:
        return error(f"no {name} task seen in the last {range_.name}", 404)
    total = analytics.Bucket()
    for _, bucket in rows:
        total.merge(bucket)
    chart_range = range_ if range_.source_step > 1 else analytics.Range("15m", 900, 60, 60)
    body = analytics.detail(name, total)
    body["range"] = range_.name
    body["series"] = analytics.series(rows, chart_range, now, histogram=True)
    body["markers"] = dashboard.run_blocking(dashboard.store.markers, range_.since(now))
    return jsonify(body)


@bp.get("/stats/top")
def stats_top() -> Response:
    """The top lists over the range: slowest and most failing task types, busiest workers, longest waits."""
    range_ = _range(request.args.get("range") or "1h")
    now = time.time()
    body = analytics.top(_stats_by_key(TASK, range_, now), _stats_by_key(WORKER, range_, now),
                         _stats_by_key(QUEUE, range_, now))
    return jsonify({"range": range_.name, **body})


@bp.get("/markers")
def markers() -> Response:
    """The chart markers (worker software changes, labels posted) from ``since`` (default: a day ago)."""
    now = time.time()
    since = _timestamp(request.args.get("since"), "since")
    dashboard = current_app.extensions["dashboard"]
    return jsonify({"items": dashboard.run_blocking(dashboard.store.markers,
                                                    since if since is not None else now - 86400)})


@bp.post("/markers")
def add_marker() -> Response | tuple[Response, int]:
    """Draw a marker on every chart now (operator): ``{"label": "deployed v2.3"}``, a deploy or an incident."""
    closed = _closed_to("operator")
    if closed:
        return closed
    body = _json_object()
    label = body.get("label")
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_MARKER_CHARS:
        raise BadRequest(f"label: expected text of 1 to {MAX_MARKER_CHARS} characters")
    dashboard = current_app.extensions["dashboard"]
    identity = g.get("identity")
    marker = {"at": time.time(), "label": label.strip(), "source": "user",
              "who": (identity.principal if identity else LOCAL).name}
    dashboard.run_blocking(dashboard.store.write_stats, [], [marker])
    dashboard.record("marker", None, {"label": marker["label"]}, "added")
    return jsonify({"ok": True, "marker": marker})


@bp.get("/periodic")
def periodic() -> Response:
    """Every beat schedule entry the dashboard reads, with its next run, its last run and its status."""
    dashboard = current_app.extensions["dashboard"]
    return jsonify({**dashboard.periodic.report(), "configured": dashboard.periodic.configured})


@bp.get("/alerts")
def alerts() -> Response:
    """The alert rules, the active alerts, the running silences and the stored history, newest first
    (``limit``, and ``before`` an alert id for the next page)."""
    args = request.args
    before = args.get("before")
    if before is not None and not before.isdigit():
        raise BadRequest(f"before: expected an alert id, got {before!r}")
    dashboard = current_app.extensions["dashboard"]
    history = dashboard.run_blocking(dashboard.store.alerts_page, _int(args.get("limit"), "limit", 100, 1, 500),
                                     int(before) if before else None)
    return jsonify({**dashboard.alerting.to_json(), "history": history})


@bp.post("/alerts/silence")
def silence_alert() -> Response | tuple[Response, int]:
    """Silence a rule's alerts for a while (operator): ``{"rule", "subject"?, "minutes"}``; 0 minutes lifts it.
    A silenced alert still shows; it is not delivered."""
    closed = _closed_to("operator")
    if closed:
        return closed
    body = _json_object()
    rule, subject, minutes = body.get("rule"), body.get("subject"), body.get("minutes")
    if not isinstance(rule, str):
        raise BadRequest("rule: expected a rule's name")
    if subject is not None and not isinstance(subject, str):
        raise BadRequest("subject: expected text (a hostname, queue, task type or task id) or null for all")
    if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or not 0 <= minutes <= MAX_SILENCE_MINUTES:
        raise BadRequest(f"minutes: expected a number from 0 to {MAX_SILENCE_MINUTES}")
    dashboard = current_app.extensions["dashboard"]
    identity = g.get("identity")
    try:
        silence = dashboard.alerting.silence(rule, subject, float(minutes), (identity.principal if identity
                                                                               else LOCAL).name)
    except RuleError as exc:
        return error(str(exc), 404)
    dashboard.record("silence", rule + (f" / {subject}" if subject else ""), {"minutes": minutes},
                     "lifted" if not minutes else "silenced")
    return jsonify({"ok": True, "silence": silence.to_json()})


@bp.get("/queues")
def queues() -> Response:
    return jsonify(_cluster().queues(time.time()))


@bp.get("/queues/<path:name>")
def queue(name: str) -> Response | tuple[Response, int]:
    hours = _int(request.args.get("hours"), "hours", 1, 1, MAX_HISTORY_HOURS)
    dashboard = current_app.extensions["dashboard"]
    now = time.time()
    body = dashboard.cluster.queue_detail(name, now)
    if body is None:
        return error(f"unknown queue: {name}", 404)
    if hours > 1:  # beyond the hour in memory: the store's per-minute highest depths
        dashboard.history.flush()
        body["history"] = dashboard.run_blocking(dashboard.store.queue_depths, name, now - hours * 3600)
    body["history_hours"] = hours
    return jsonify(body)


def _states(raw: str | None) -> set[str]:
    if not raw:
        return set()
    states = {s.strip().upper() for s in raw.split(",") if s.strip()}
    unknown = states.difference(TASK_STATES)
    if unknown:
        raise BadRequest(f"state: unknown {', '.join(sorted(unknown))}; expected any of {', '.join(TASK_STATES)}")
    return states


def _int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: expected a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name}: must be between {low} and {high}, got {value}")
    return value


def _timestamp(raw: str | None, name: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name}: expected epoch seconds, got {raw!r}") from None
    if not math.isfinite(value):
        raise BadRequest(f"{name}: expected epoch seconds, got {raw!r}")
    return value


def _sort(raw: str | None) -> tuple[str, bool]:
    if not raw:
        return "received", True
    descending = raw.startswith("-")
    key = raw.lstrip("-")
    if key not in SORT_KEYS:
        raise BadRequest(f"sort: expected one of {', '.join(SORT_KEYS)} (prefix - for descending), got {raw!r}")
    return key, descending


def _choice(raw: str | None, name: str, choices: tuple[str, ...]) -> str:
    if not raw:
        return choices[0]
    if raw not in choices:
        raise BadRequest(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
    return raw
