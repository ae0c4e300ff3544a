"""Inspection of workers through ``app.control``: pool, queues, tasks held, registered types, config.

Runs in the background with a timeout, so a silent worker never blocks a
request or the event loop; a worker that does not answer is recorded as
"not answering inspect". Every worker is inspected when it appears (new or
back online) and again every ``inspect_interval_seconds``. Replies are
untrusted: secrets in them are masked before anything stores them.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from .control import INTERNAL_FAILURE
from .events import EventCollector
from .redact import mask_known, mask_secrets

log = logging.getLogger(__name__)

#: The inspect methods asked of each worker, in order; ``stats`` first for pool and concurrency.
METHODS = ("stats", "active_queues", "registered", "active", "reserved", "scheduled", "revoked", "conf")
#: How often the inspector looks for workers that are due, in seconds.
LOOP_SECONDS = 1.0
#: How soon a worker that has never answered is asked again, in seconds; doubled after each round it
#: does not answer either (a worker with remote control off never will), up to the inspect interval.
UNANSWERED_RETRY_SECONDS = 2.0
#: What a worker that did not reply is said to be.
NOT_ANSWERING = "not answering inspect"


class WorkerInspector:
    """Asks workers for their inspect replies and hands them to the collector's state."""

    def __init__(self, collector: EventCollector) -> None:
        self.collector = collector
        self.settings = collector.settings
        self.stopping = False
        self._asked: dict[str, float] = {}  # hostname -> monotonic time of the last request
        self._misses: dict[str, int] = {}  # hostname -> rounds in a row it did not answer

    def run(self) -> None:
        """Inspect due workers until ``stop``."""
        while not self.stopping:
            self.collector.sleep(LOOP_SECONDS)
            try:
                due = self.due(time.monotonic())
                if due:
                    self.inspect(due)
            except Exception:  # the inspector must outlive any surprise
                self.collector.count_internal_error()
                log.exception("inspect round failed")

    def stop(self) -> None:
        self.stopping = True

    def due(self, now: float) -> list[str]:
        """Return online workers that never answered, are back online since, or were not asked for an interval."""
        collector = self.collector
        if not collector.broker.connected:
            return []
        # Never answered yet (new, or too busy starting up to reply in time), or back: ask again soon.
        online, fresh = collector.cluster.inspect_candidates()
        interval = self.settings.inspect_interval_seconds
        misses = self._misses
        due = [h for h in online
               if (h in fresh and now - self._asked.get(h, -1e9)
                   >= min(interval, UNANSWERED_RETRY_SECONDS * 2 ** min(misses.get(h, 0), 16)))
               or now - self._asked.get(h, -1e9) >= interval]
        return due

    def inspect(self, hostnames: list[str]) -> dict[str, dict[str, Any]]:
        """Ask ``hostnames`` for every inspect method now; store and return the replies per worker.

        Those that do not answer ``stats`` in time are not asked the other methods: each would only
        wait out its timeout too (a worker with remote control off, or too busy to reply).
        """
        now = time.monotonic()
        for hostname in hostnames:
            self._asked[hostname] = now
        control, timeout = self.collector.app.control, self.settings.inspect_timeout_seconds
        asking = list(hostnames)
        replies: dict[str, dict[str, Any]] = {h: {} for h in hostnames}
        errors: dict[str, str] = {}
        for method in METHODS:
            try:
                inspector = control.inspect(destination=asking, timeout=timeout, limit=len(asking))
                answer = getattr(inspector, method)() or {}
            except Exception as exc:  # every worker gets the reason; one that is not the broker's is a bug
                reason = mask_known(f"{method}: {type(exc).__name__}: {exc}", self.settings.broker_url)
                if not isinstance(exc, self.collector.connection_errors()):
                    self.collector.count_internal_error()
                    log.exception("inspect %s failed", method)
                    reason = f"{INTERNAL_FAILURE}: {reason}"  # the worker's page must not blame the worker
                reason = reason[:300]
                errors.update({h: reason for h in hostnames})
                break
            for hostname, value in answer.items():
                if hostname in replies:
                    replies[hostname][method] = mask_secrets(value)
            if method == METHODS[0]:  # a worker that does not answer the first is not asked the rest this round
                asking = [h for h in asking if replies[h]]
                if not asking:
                    break
        outcome = {h: errors.get(h) or (None if replies[h] else NOT_ANSWERING) for h in hostnames}
        for hostname, error in outcome.items():
            if error == NOT_ANSWERING:
                self._misses[hostname] = self._misses.get(hostname, 0) + 1
            else:
                self._misses.pop(hostname, None)
        self.collector.cluster.apply_inspect(replies, outcome, time.time())
        return replies
