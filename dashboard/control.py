"""Actions on tasks through Celery's ``app.control``: revoke, and terminate a running task.

Each action asks the workers for replies with a timeout, so a silent worker never
blocks a request; the answer names which workers replied and what they said (masked
like an inspect reply), or that none did. The outcome shows on the page through the
event stream (``task-revoked``), like any other change. Every action is logged with
who asked (the client's address), what and the outcome.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, TypedDict

from .redact import mask_known, mask_secrets

log = logging.getLogger(__name__)

#: Signals a running task may be terminated with, as the page offers them.
SIGNALS = ("TERM", "KILL", "INT", "USR1")
#: Seconds an action waits for the workers' replies.
REPLY_TIMEOUT_SECONDS = 1.0


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
        self.broker_url = broker_url
        self.connection_errors = connection_errors
        self.count_internal_error = count_internal_error

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
            if not isinstance(exc, self.connection_errors()):
                self.count_internal_error()
                log.exception("%s of task %s failed", what, uuid)
            message = mask_known(f"{type(exc).__name__}: {exc}", self.broker_url)[:300]
            log.warning("action by %s: %s task %s: failed (%s)", who, what, uuid, message)
            return {"ok": False, "replies": [], "error": f"the broker did not take the request: {message}"}
        answered = [mask_secrets(reply) for reply in replies or () if isinstance(reply, dict)]
        log.info("action by %s: %s task %s: %d workers replied", who, what, uuid, len(answered))
        return {"ok": True, "replies": answered,
                "error": None if answered else f"no worker replied within {REPLY_TIMEOUT_SECONDS:g} s; "
                                               "workers that start later do not know of this revoke"}
