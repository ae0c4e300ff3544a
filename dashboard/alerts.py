"""Webhooks: POST a small JSON document to each configured URL on worker and queue alerts.

Deliveries run in their own background task with capped, jittered retries, so
a slow or failing receiver never blocks the event loop. Documents carry
hostnames, times and task ids only, never task payloads.
"""
from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from typing import Any, Callable, Mapping

from .redact import mask_url

log = logging.getLogger(__name__)

#: Attempts per document and URL before it is dropped (and logged).
MAX_ATTEMPTS = 5
#: First retry delay, doubled per attempt, in seconds; and its ceiling.
RETRY_START_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
#: Timeout of one POST, in seconds.
POST_TIMEOUT_SECONDS = 5.0
#: How often the delivery loop looks for work, in seconds.
POLL_SECONDS = 0.1
#: Documents waiting at most; the oldest are dropped past this (a receiver down for hours).
MAX_PENDING = 1000


class WebhookNotifier:
    """Queues alert documents and delivers them to every webhook URL with retries."""

    def __init__(self, urls: tuple[str, ...], sleep: Callable[[float], None] = time.sleep,
                 render: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
                 count_internal_error: Callable[[], None] = lambda: None) -> None:
        self.urls = urls
        self.sleep = sleep
        self.render = render  # turns a document into what the receivers expect (Slack's text), when set
        self.count_internal_error = count_internal_error  # for ``/api/health``'s ``errors.internal``
        self.pending: deque[tuple[float, int, str, Mapping[str, Any]]] = deque()  # (due, attempt, url, doc)
        self.lock = threading.Lock()
        self.delivered = 0
        self.failed = 0
        self.stopping = False

    def notify(self, document: Mapping[str, Any], urls: tuple[str, ...] | None = None) -> None:
        """Queue one document for every URL (or for ``urls``, some of them); returns at once."""
        with self.lock:
            for url in self.urls if urls is None else urls:
                self.pending.append((0.0, 0, url, document))
            while len(self.pending) > MAX_PENDING:
                self.pending.popleft()
                self.failed += 1

    def run(self) -> None:
        """Deliver queued documents until ``stop``."""
        while not self.stopping:
            self.sleep(POLL_SECONDS)
            now = time.monotonic()
            with self.lock:
                ready = [item for item in self.pending if item[0] <= now]
                for item in ready:
                    self.pending.remove(item)
            for _, attempt, url, document in ready:
                try:
                    self._deliver(attempt, url, document)
                except Exception:  # one bad delivery must not end the others
                    self.failed += 1  # a bug of ours: the document is dropped, and counted as undelivered
                    self.count_internal_error()
                    log.exception("webhook %s: delivery failed", mask_url(url))

    def stop(self) -> None:
        self.stopping = True

    def _deliver(self, attempt: int, url: str, document: Mapping[str, Any]) -> None:
        body = json.dumps(self.render(document) if self.render else document).encode()
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "celery-dashboard"})
        try:
            with urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS) as response:
                response.read()
            self.delivered += 1
            log.info("webhook %s: delivered %s for %s", mask_url(url), document["event"], _subject(document))
            return
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = str(exc)
        except http.client.HTTPException as exc:  # an answer that is not HTTP, or cut short: retried as well
            error = f"{type(exc).__name__}: {exc}"[:200]  # its text alone is the receiver's bytes
        attempt += 1
        if attempt >= MAX_ATTEMPTS:
            self.failed += 1
            log.warning("webhook %s: giving up on %s for %s after %d attempts: %s",
                        mask_url(url), document["event"], _subject(document), attempt, error)
            return
        delay = min(RETRY_START_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS) * random.uniform(0.8, 1.2)
        log.warning("webhook %s: attempt %d failed (%s); retrying in %.1f s", mask_url(url), attempt, error, delay)
        with self.lock:
            self.pending.append((time.monotonic() + delay, attempt, url, document))


def _subject(document: Mapping[str, Any]) -> str:
    """Name what an alert is about: a worker's hostname, a queue's name or a rule's subject."""
    return str(document.get("hostname") or document.get("queue") or document.get("subject") or "?")


def slack_text(document: Mapping[str, Any]) -> dict[str, Any]:
    """Render an alert rule's document in Slack's incoming-webhook format."""
    firing = document.get("event") == "alert-firing"
    state = "FIRING" if firing else "RESOLVED"
    icon = (":rotating_light:" if document.get("severity") == "critical" else ":warning:") if firing \
        else ":white_check_mark:"
    return {"text": f"{icon} [{state}] {document.get('summary', '')} (rule {document.get('rule', '?')})"}
