"""Reconciliation: after a gap in the event stream, what the tasks still shown in flight really became.

When a gap closes (see ``EventCollector.open_gap``), every task the model holds as PENDING, RECEIVED,
STARTED or RETRY becomes a suspect: it may have moved on while events were lost. Every
``RECHECK_SECONDS`` the suspects are checked:

- against ``inspect active``, ``reserved`` and ``scheduled`` of every online worker: a task a worker
  holds keeps its state (its events will come) and is cleared;
- when ``--app`` names an app with a result backend, against ``AsyncResult``'s meta, at most
  ``BACKEND_PER_PASS`` a pass: a task the backend knows as finished gets the event it missed, made from
  the backend's record and marked ``"reconciled": "result backend"`` in its timeline;
- a RECEIVED, STARTED or RETRY task that no worker holds and the backend does not know as finished is,
  once older than ``--stale-after``, marked lost: "events missed; no worker holds it". It is no
  longer taken as running (no runtime counting up, no stuck-task alert). A PENDING one is left: it
  may still wait in its queue.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import redis
from celery.exceptions import CeleryError
from celery.utils.saferepr import saferepr
from kombu.exceptions import KombuError

from .redact import mask_known
from .userapp import APP_ERRORS, load_user_app

if TYPE_CHECKING:
    from . import Dashboard

log = logging.getLogger(__name__)

#: Seconds between two checks of the suspects.
RECHECK_SECONDS = 10.0
#: Result-backend lookups per pass at most (the rest wait for the next pass).
BACKEND_PER_PASS = 200
#: What a task found nowhere is said to be.
LOST_REASON = "events missed; no worker holds it"
#: The label of an event made from the result backend's record.
FROM_BACKEND = "result backend"
_EVENT_OF = {"SUCCESS": "task-succeeded", "FAILURE": "task-failed", "REVOKED": "task-revoked"}
#: What a result backend that is down or refuses raises; anything else is a bug, logged with its traceback.
BACKEND_ERRORS = (OSError, redis.RedisError, KombuError, CeleryError)
#: What a call into the backend raises on a bug of ours, never on the backend failing: passed on as the bug it is.
PROGRAMMING_ERRORS = (TypeError, AttributeError, NameError, AssertionError)


class BackendUnavailable(Exception):
    """The result backend failed to answer (the error it raised is the ``__cause__``): whatever a backend's
    own client raises (redis, SQLAlchemy, pymongo, ...) is the backend's failure, never a bug of ours."""


def is_backend_failure(exc: BaseException) -> bool:
    """Tell a backend that is down or refuses from a bug of the dashboard's."""
    return isinstance(exc, (BackendUnavailable, *BACKEND_ERRORS))


#: What a backend's ``exception_to_python`` raises on a stored exception it cannot rebuild (not a dict,
#: no type, a type that is no exception: Celery's ``SecurityError``).
REBUILD_ERRORS = (TypeError, ValueError, CeleryError)
#: States a worker holds a task in; a PENDING task may also wait in its queue, so it is never marked lost.
_HELD_STATES = frozenset(("RECEIVED", "STARTED", "RETRY"))


def held_task_ids(replies: dict[str, dict[str, Any]]) -> set[str]:
    """The task ids in workers' ``active``, ``reserved`` and ``scheduled`` inspect replies."""
    held: set[str] = set()
    for reply in replies.values():
        for method in ("active", "reserved", "scheduled"):
            for item in reply.get(method) or ():
                if not isinstance(item, dict):
                    continue
                request = item.get("request") if method == "scheduled" else item
                uuid = request.get("id") if isinstance(request, dict) else None
                if isinstance(uuid, str):
                    held.add(uuid)
    return held


def event_from_meta(uuid: str, meta: dict[str, Any], hostname: str, now: float, max_chars: int,
                    exception_to_python: Callable[[Any], Any]) -> dict[str, Any] | None:
    """The event a task missed, made from its result-backend record; None unless it is finished there."""
    status = meta.get("status")
    event_type = _EVENT_OF.get(status) if isinstance(status, str) else None
    if event_type is None:
        return None
    event: dict[str, Any] = {"type": event_type, "uuid": uuid, "hostname": hostname,
                             "timestamp": _epoch(meta.get("date_done"), now), "local_received": now,
                             "reconciled": FROM_BACKEND}
    if status == "SUCCESS":
        event["result"] = saferepr(meta.get("result"), maxlen=max_chars)
    elif status == "FAILURE":
        try:
            exception = exception_to_python(meta.get("result"))
        except REBUILD_ERRORS as exc:  # an exception the backend cannot rebuild: its stored form says enough
            log.debug("task %s: its stored exception is shown as stored (%s: %s)", uuid, type(exc).__name__, exc)
            exception = meta.get("result")
        except Exception:  # a bug: logged with its traceback; the stored form still says enough
            log.exception("task %s: rebuilding its stored exception failed", uuid)
            exception = meta.get("result")
        event["exception"] = saferepr(exception, maxlen=max_chars)
        traceback = meta.get("traceback")
        event["traceback"] = traceback[-max_chars:] if isinstance(traceback, str) else None
    return event


def _epoch(value: Any, default: float) -> float:
    """A backend's ``date_done`` (a datetime or ISO text, UTC when naive) as epoch seconds."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return default
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return default


class Reconciler:
    """Checks the suspects left by gaps; see the module docstring."""

    def __init__(self, dashboard: "Dashboard", clock: Callable[[], float] = time.time) -> None:
        self.dashboard = dashboard
        self.clock = clock
        self.suspects: set[str] = set()
        self.stopping = False
        self.backend_app = None
        self.reconciled = 0  # tasks moved on by the result backend's record
        self.lost = 0  # tasks marked lost
        settings = dashboard.settings
        if settings.app:
            try:
                app = load_user_app(settings.app)
                backend = str(app.conf.result_backend or "")
                if backend and backend != "disabled":
                    self.backend_app = app
            except APP_ERRORS as exc:  # the queues read it at start already; here it only means no backend
                log.warning("--app %s: no result backend to reconcile with (%s)", settings.app, exc)
            except Exception:  # a bug: no backend either, but said as what it is
                dashboard.collector.count_internal_error()
                log.exception("--app %s: reading its result backend failed", settings.app)

    def after_gap(self, gap: dict[str, Any]) -> None:
        """A gap closed: every task still shown unfinished may have moved on."""
        unfinished = self.dashboard.cluster.unfinished()
        self.suspects.update(task["uuid"] for task in unfinished)
        if unfinished:
            log.info("after the gap (%s): checking %d unfinished tasks against the workers%s", gap["cause"],
                     len(unfinished), " and the result backend" if self.backend_app else "")

    def run(self) -> None:
        while not self.stopping:
            self.dashboard.socketio.sleep(RECHECK_SECONDS)
            if self.suspects and self.dashboard.collector.broker.connected and not self.stopping:
                try:
                    self.check()
                except Exception:  # the next pass tries again
                    self.dashboard.collector.count_internal_error()
                    log.exception("reconciling tasks after a gap failed")

    def stop(self) -> None:
        self.stopping = True

    def check(self) -> None:
        """One pass over the suspects."""
        dashboard = self.dashboard
        cluster = dashboard.cluster
        tasks = cluster.unfinished(self.suspects)
        self.suspects = {task["uuid"] for task in tasks}  # finished or lost since: no longer suspect
        if not tasks:
            return
        online = [w["hostname"] for w in cluster.workers() if w.get("status") == "online"]
        replies = dashboard.inspector.inspect(online) if online else {}
        answered = {hostname for hostname, reply in replies.items() if reply}
        held = held_task_ids(replies)
        self.suspects -= held
        now = self.clock()
        looked_up = 0
        backend_down = False  # the backend failed this pass: asked again next pass, not for every task now
        events = []
        stale: list[str] = []
        for task in tasks:
            uuid = task["uuid"]
            if uuid in held:
                continue
            if self.backend_app is not None and looked_up < BACKEND_PER_PASS and not backend_down:
                looked_up += 1
                try:
                    event = self._from_backend(uuid, task.get("worker") or "", now)
                except BackendUnavailable as exc:  # one warning a pass, and no connect timeout per task
                    self.backend_failure(exc, "result backend lookups of this pass")
                    backend_down, event = True, None
                if event is not None:
                    events.append(event)
                    self.suspects.discard(uuid)
                    continue
            worker = task.get("worker")
            unanswered = worker in online and worker not in answered  # its worker may hold it: cannot tell
            since = task.get("since")
            if (task["state"] in _HELD_STATES and not unanswered and isinstance(since, (int, float))
                    and now - since > dashboard.settings.stale_after_seconds):
                stale.append(uuid)
        if events:
            applied = self._apply(events)
            self.reconciled += applied
            log.info("reconciled %d tasks from the result backend", applied)
        if stale:
            marked = cluster.mark_lost(stale, LOST_REASON)
            self.suspects.difference_update(marked)
            self.lost += len(marked)
            if marked:
                log.warning("%d tasks marked lost: %s (older than --stale-after)", len(marked), LOST_REASON)

    def _from_backend(self, uuid: str, hostname: str, now: float) -> dict[str, Any] | None:
        """The event a task missed, from the backend's record (None when it holds none that is finished);
        raise BackendUnavailable when the backend fails to answer."""
        backend, meta = self._meta(uuid)
        return event_from_meta(uuid, meta, hostname, now, self.dashboard.settings.max_field_chars,
                               backend.exception_to_python)

    def _meta(self, uuid: str) -> tuple[Any, dict[str, Any]]:
        """Return the backend and its record of one task; raise BackendUnavailable when it fails to answer."""
        app = self.backend_app
        assert app is not None
        try:
            backend = app.backend
            return backend, backend.get_task_meta(uuid)
        except PROGRAMMING_ERRORS:  # a bug: logged with its traceback and counted by the callers
            raise
        except Exception as exc:  # the backend's client, whatever its kind: its failure, said as one
            raise BackendUnavailable(str(exc)) from exc

    def _apply(self, events: list[dict[str, Any]]) -> int:
        """Apply events made from backend records; return how many the model took. One it could not
        take is a bug in the model (the records were checked): logged with its traceback, counted."""
        failed = self.dashboard.cluster.apply_events(events)
        for event, exc in failed:
            self.dashboard.collector.count_internal_error()
            log.error("applying the reconciled %s of %s failed", event["type"], event["uuid"], exc_info=exc)
        return len(events) - len(failed)

    def backend_failure(self, exc: Exception, doing: str) -> str:
        """Log a failed backend call, its password masked, and return it as text: a backend that is down as a
        warning, anything else as the bug it is (with its traceback, counted)."""
        url = str(self.backend_app.conf.result_backend or "") if self.backend_app is not None else ""
        cause = exc.__cause__ if isinstance(exc, BackendUnavailable) and exc.__cause__ is not None else exc
        text = mask_known(f"{type(cause).__name__}: {cause}", url)[:500]
        if is_backend_failure(exc):
            log.warning("%s failed: %s", doing, text)
        else:
            self.dashboard.collector.count_internal_error()
            log.error("%s failed: %s", doing, text, exc_info=exc)
        return text

    def look_up(self, uuid: str) -> dict[str, Any]:
        """``POST /api/tasks/<uuid>/result``: the backend's record of one task, applied when it says finished."""
        if self.backend_app is None:
            return {"available": False, "state": None, "applied": False}
        backend, meta = self._meta(uuid)
        held = self.dashboard.cluster.unfinished([uuid])
        applied = False
        if held:
            event = event_from_meta(uuid, meta, held[0].get("worker") or "", self.clock(),
                                    self.dashboard.settings.max_field_chars, backend.exception_to_python)
            if event is not None:
                applied = self._apply([event]) == 1
                self.reconciled += applied
        return {"available": True, "state": meta.get("status"), "applied": applied,
                "result": saferepr(meta.get("result"), maxlen=self.dashboard.settings.max_field_chars),
                "date_done": _epoch(meta.get("date_done"), 0.0) or None}
