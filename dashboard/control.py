"""Actions through Celery's ``app.control``: revoke or terminate a task, control a worker, purge a queue.

Each action asks the workers for replies with a timeout, so a silent worker never
blocks a request; the answer names which workers replied and what they said (masked
like an inspect reply), or that none did. The outcome shows on the page through the
event stream (``task-revoked``), like any other change. Every action is logged with
who asked (the client's address), what and the outcome.
"""
from __future__ import annotations

import ast
import logging
import math
import re
from typing import Any, Callable, TypedDict

from kombu import Connection

from .checks import TRUNCATION_MARKER
from .redact import mask_known, mask_secrets

log = logging.getLogger(__name__)

#: What an answer says of a request that failed on a bug of the dashboard's (its traceback is in the log).
INTERNAL_FAILURE = "the dashboard failed on an internal error (logged)"
#: Signals a running task may be terminated with, as the page offers them.
SIGNALS = ("TERM", "KILL", "INT", "USR1")
#: Seconds an action waits for the workers' replies.
REPLY_TIMEOUT_SECONDS = 1.0
#: Largest pool change or autoscale bound an action takes (a typo of 10000 must not fork 10000 processes).
MAX_POOL_STEP = 256
#: Longest time limit an action takes, in seconds (a week).
MAX_TIME_LIMIT = 7 * 86400.0
#: A rate limit as Celery reads it: a number of tasks per second, minute or hour ("10/m", "0.5/s", "100").
_RATE = re.compile(r"^(\d+(\.\d+)?)(/[smh])?$")


def _count(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_POOL_STEP:
        raise ActionError(f"{key}: expected a whole number from 1 to {MAX_POOL_STEP}, got {value!r}")
    return value


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 255 or "\0" in value:
        raise ActionError(f"{key}: expected a name (1-255 characters), got {value!r}")
    return value.strip()


def _seconds(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIME_LIMIT:
        raise ActionError(f"{key}: expected seconds from 0 to {MAX_TIME_LIMIT:g} (or null for none), got {value!r}")
    return float(value)


def _pool(body: dict[str, Any]) -> dict[str, Any]:
    return {"n": _count(body, "n", 1)}


def _autoscale(body: dict[str, Any]) -> dict[str, Any]:
    high, low = _count(body, "max"), body.get("min", 0)
    if isinstance(low, bool) or not isinstance(low, int) or not 0 <= low <= high:
        raise ActionError(f"min: expected a whole number from 0 to max ({high}), got {low!r}")
    return {"max": high, "min": low}


def _consumer(body: dict[str, Any]) -> dict[str, Any]:
    return {"queue": _text(body, "queue")}


def _rate_limit(body: dict[str, Any]) -> dict[str, Any]:
    rate = body.get("rate")
    if not isinstance(rate, str) or not _RATE.match(rate.strip()):
        raise ActionError(f"rate: expected tasks per second, minute or hour such as 10/m, 0.5/s or 0 for none, got {rate!r}")
    return {"task_name": _text(body, "task"), "rate_limit": rate.strip()}


def _time_limit(body: dict[str, Any]) -> dict[str, Any]:
    soft, hard = _seconds(body, "soft"), _seconds(body, "hard")
    if soft is not None and hard is not None and soft > hard:
        raise ActionError(f"soft: must not be longer than hard ({hard:g} s), got {soft:g}")
    return {"task_name": _text(body, "task"), "soft": soft, "hard": hard}


def _nothing(body: dict[str, Any]) -> dict[str, Any]:
    return {}


#: Length from which a task's args or kwargs repr may have been cut by Celery (``argsrepr_maxsize`` 1,024, less
#: the few characters its cut may save).
CELERY_REPR_CUT_CHARS = 1_000


def reply_errors(replies: list[dict[str, Any]]) -> str | None:
    """The errors workers answered with (Celery's ``{hostname: {"error": text}}``), as "hostname: text; ...";
    None when none did."""
    errors = [f"{hostname}: {answer['error']}" for reply in replies for hostname, answer in reply.items()
              if isinstance(answer, dict) and isinstance(answer.get("error"), str) and answer["error"]]
    return "; ".join(errors)[:500] or None


class NotExact(ValueError):
    """A task's arguments as the events show them are not known exactly; the message says why."""


def exact_call(args_repr: str | None, kwargs_repr: str | None) -> tuple[list[Any], dict[str, Any]]:
    """Return a task's args and kwargs from the reprs its events carry, when they are known exactly.

    They are when each repr was not cut (by the worker's ``argsrepr`` limit, ``...``, or by
    --max-field-chars) and parses as Python literals (``ast.literal_eval``) made of JSON's types
    only: None, bools, finite numbers, strings, lists and tuples, dicts with string keys.
    Raise NotExact otherwise.
    """
    args = _literal(args_repr, "args", "()")
    kwargs = _literal(kwargs_repr, "kwargs", "{}")
    if not isinstance(args, (list, tuple)):
        raise NotExact(f"args are {type(args).__name__}, not a list")
    if not isinstance(kwargs, dict):
        raise NotExact(f"kwargs are {type(kwargs).__name__}, not a dict")
    return list(args), kwargs


def _literal(text: str | None, name: str, empty: str) -> Any:
    if text is None:
        raise NotExact(f"the {name} are unknown (no task-sent or task-received event carried them)")
    if TRUNCATION_MARKER in text:
        raise NotExact(f"the {name} were cut to --max-field-chars")
    if len(text) >= CELERY_REPR_CUT_CHARS:
        # Celery cuts a task's argsrepr to 1,024 characters (argsrepr_maxsize), shortening a long string
        # inside its quotes ('xxxx...'), which still parses: at that length nothing says it is whole.
        raise NotExact(f"the {name} are {len(text):,} characters long, where Celery cuts them (1,024)")
    try:
        value = ast.literal_eval(text.strip() or empty)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise NotExact(f"the {name} are not Python literals ({text[:80]!r}…)" if len(text) > 80
                       else f"the {name} are not Python literals ({text!r})") from None
    check_plain(value, name)
    return value


def check_plain(value: Any, name: str, depth: int = 0) -> None:
    """Raise NotExact unless ``value`` is made of JSON's types only (finite numbers, string keys)."""
    if depth > 32:
        raise NotExact(f"the {name} are nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise NotExact(f"the {name} hold a number JSON cannot carry ({value!r})")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            check_plain(item, name, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotExact(f"the {name} have a key that is not a string ({key!r})")
            check_plain(item, name, depth + 1)
        return
    if value is Ellipsis:
        raise NotExact(f"the {name} were cut by the worker (…)")
    raise NotExact(f"the {name} hold a {type(value).__name__}, which JSON cannot carry")


#: Worker actions: the path's name -> (Celery's remote-control command, argument parser, destructive, role needed).
WORKER_ACTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]], bool, str]] = {
    "ping": ("ping", _nothing, False, "operator"),
    "enable-events": ("enable_events", _nothing, False, "operator"),
    "pool-grow": ("pool_grow", _pool, False, "admin"),
    "pool-shrink": ("pool_shrink", _pool, False, "admin"),
    "autoscale": ("autoscale", _autoscale, False, "admin"),
    "add-consumer": ("add_consumer", _consumer, False, "admin"),
    "cancel-consumer": ("cancel_consumer", _consumer, False, "admin"),
    "rate-limit": ("rate_limit", _rate_limit, False, "admin"),
    "time-limit": ("time_limit", _time_limit, False, "admin"),
    "pool-restart": ("pool_restart", _nothing, True, "admin"),
    "shutdown": ("shutdown", _nothing, True, "admin"),
}


class ActionError(ValueError):
    """An action that cannot be asked as given (a bad parameter); the message says why."""


class ActionResult(TypedDict):
    """The answer of every action endpoint."""

    ok: bool  # the request reached the broker (whether any worker replied is in ``replies``)
    replies: list[dict[str, Any]]  # one {hostname: reply} per worker that answered in time
    error: str | None


class TaskControl:
    """Sends task actions through ``app.control`` (``app`` is a Celery app on the watched broker)."""

    def __init__(self, app: Any, broker_url: str, connection_errors: Callable[[], tuple[type[BaseException], ...]],
                 count_internal_error: Callable[[], None]) -> None:
        self.app = app
        self.app.conf.task_send_sent_event = True  # a retry sent from here shows its queue, as the producer's do
        self.broker_url = broker_url
        self.connection_errors = connection_errors
        self.count_internal_error = count_internal_error

    def _failed(self, what: str, exc: Exception, who: str) -> ActionResult:
        """Log a failed action and return its answer: the broker's failures as the broker not taking
        the request, anything else as the bug it is (with its traceback, counted)."""
        message = mask_known(f"{type(exc).__name__}: {exc}", self.broker_url)[:300]
        log.warning("action by %s: %s: failed (%s)", who, what, message)
        if isinstance(exc, self.connection_errors()):
            return {"ok": False, "replies": [], "error": f"the broker did not take the request: {message}"}
        self.count_internal_error()
        log.exception("%s failed", what)
        return {"ok": False, "replies": [], "error": f"{INTERNAL_FAILURE}: {message}"}

    def worker(self, hostname: str, action: str, body: dict[str, Any], who: str = "?") -> ActionResult:
        """Send one of WORKER_ACTIONS to one worker (``body`` holds its arguments) and gather its reply."""
        if action not in WORKER_ACTIONS:
            raise ActionError(f"action: expected one of {', '.join(WORKER_ACTIONS)}, got {action!r}")
        command, parse, _, _ = WORKER_ACTIONS[action]
        arguments = parse(body)
        what = f"{action} on {hostname}" + (f" {arguments}" if arguments else "")
        try:
            replies = self.app.control.broadcast(command, arguments=arguments, destination=[hostname], reply=True,
                                                 timeout=REPLY_TIMEOUT_SECONDS, limit=1)
        except Exception as exc:
            return self._failed(what, exc, who)
        answered = [mask_secrets(reply) for reply in replies or () if isinstance(reply, dict)]
        log.info("action by %s: %s: %d replied", who, what, len(answered))
        error = None if answered else f"{hostname} did not reply within {REPLY_TIMEOUT_SECONDS:g} s"
        if action == "shutdown" and not answered:
            error = None  # a worker shutting down may well go before it answers; worker-offline will say
        refused = reply_errors(answered)
        if refused:  # it answered, with an error: a rate limit for a task it does not know, a refused restart
            error = refused
            log.info("action by %s: %s: refused: %r", who, what, refused)  # the workers' text, quoted
        return {"ok": True, "replies": answered, "error": error}

    def purge(self, queue: str, transport_options: dict[str, Any], who: str = "?") -> dict[str, Any]:
        """Purge a queue with the broker's own purge; return ``{"ok", "purged", "error"}``."""
        connection = Connection(self.broker_url, transport_options=transport_options, connect_timeout=5)
        try:
            with connection:
                purged = connection.default_channel.queue_purge(queue)
        except Exception as exc:  # the broker failing or refusing (no such queue) is an answer; a bug is said as one
            failed = self._failed(f"purge of queue {queue}", exc, who)
            return {"ok": False, "purged": None, "error": failed["error"]}
        log.info("action by %s: purged queue %s: %s messages removed", who, queue, purged)
        return {"ok": True, "purged": purged if isinstance(purged, int) else None, "error": None}

    def retry(self, task: dict[str, Any], args: list[Any], kwargs: dict[str, Any], who: str = "?") -> dict[str, Any]:
        """Send ``task``'s name again with these args and kwargs to its queue, as a new task; return
        ``{"ok", "task_id", "error"}``. The caller checked the name is registered and the arguments."""
        name, queue = task["name"], task.get("queue") or None
        try:
            result = self.app.send_task(name, args=args, kwargs=kwargs, queue=queue)
        except Exception as exc:
            failed = self._failed(f"retry of task {task['uuid']} ({name})", exc, who)
            return {"ok": False, "task_id": None, "error": failed["error"]}
        log.info("action by %s: retry of task %s (%s) sent as %s to %s", who, task["uuid"], name, result.id,
                 queue or "the default queue")
        return {"ok": True, "task_id": result.id, "error": None}

    def revoke_many(self, uuids: list[str], who: str = "?") -> ActionResult:
        """Revoke these tasks in one request (a bulk revoke)."""
        try:
            replies = self.app.control.revoke(uuids, reply=True, timeout=REPLY_TIMEOUT_SECONDS)
        except Exception as exc:
            return self._failed(f"bulk revoke of {len(uuids)} tasks", exc, who)
        answered = [mask_secrets(reply) for reply in replies or () if isinstance(reply, dict)]
        log.info("action by %s: bulk revoke of %d tasks: %d workers replied", who, len(uuids), len(answered))
        return {"ok": True, "replies": answered,
                "error": None if answered else f"no worker replied within {REPLY_TIMEOUT_SECONDS:g} s"}

    def revoke(self, uuid: str, terminate: bool = False, signal: str = "TERM", who: str = "?") -> ActionResult:
        """Revoke a task: a worker that receives it later discards it. With ``terminate``, a worker
        running it now also kills it with ``signal`` (one of SIGNALS)."""
        if signal not in SIGNALS:
            raise ActionError(f"signal: expected one of {', '.join(SIGNALS)}, got {signal!r}")
        what = f"terminate (SIG{signal})" if terminate else "revoke"
        try:
            replies = self.app.control.revoke(uuid, terminate=terminate, signal=f"SIG{signal}", reply=True,
                                              timeout=REPLY_TIMEOUT_SECONDS)
        except Exception as exc:
            return self._failed(f"{what} task {uuid}", exc, who)
        answered = [mask_secrets(reply) for reply in replies or () if isinstance(reply, dict)]
        log.info("action by %s: %s task %s: %d workers replied", who, what, uuid, len(answered))
        return {"ok": True, "replies": answered,
                "error": None if answered else f"no worker replied within {REPLY_TIMEOUT_SECONDS:g} s; "
                                               "workers that start later do not know of this revoke"}
