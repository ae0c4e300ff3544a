"""The queue sampler: reads queue depths from the broker every ``--queue-interval`` into the queue model.

Which queues: those the workers consume from (their ``active_queues``
replies), those tasks were sent to (``task-sent``), the Celery app's
configured queues (``--app``) and ``--queues``; once seen, a queue is
remembered. The sampler holds at most one broker connection of its own
(the reader's) and changes the model only through its methods. The broker
round trip runs away from the event loop (``run_blocking``: a native thread
under eventlet), so a busy loop (thousands of events a second while pages
load) neither delays the reading nor stretches its measured round trip; the
samples are then applied on the loop.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Callable, Sequence

from .broker import QueueReader, QueueSample, make_reader
from .events import EventCollector
from .queues import QueueAlertRule, QueueBook
from .settings import Settings
from .shapes import Alert
from .userapp import load_user_app

log = logging.getLogger(__name__)

#: Sampling rounds whose broker round trips ``/api/health`` sums up.
RECENT_ROUNDS = 100


def configured_queues(app_path: str) -> list[str]:
    """Return the queue names a Celery app is configured with (``module`` or ``module:attr``)."""
    app = load_user_app(app_path)
    names = [app.conf.task_default_queue]
    for queue in app.conf.task_queues or ():
        names.append(getattr(queue, "name", queue))
    return [n for n in dict.fromkeys(names) if isinstance(n, str)]


def build_queue_book(settings: Settings) -> QueueBook:
    """Make the queue model with ``--queues``, ``--app`` queues and ``--queue-alert`` rules."""
    configured = list(settings.queues)
    if settings.app:
        configured += configured_queues(settings.app)
    rules = [QueueAlertRule.parse(raw) for raw in settings.queue_alerts]
    return QueueBook(configured, rules, settings.max_queues)


class QueueSampler:
    """Samples every watched queue's depth and hands the samples to the queue model."""

    def __init__(self, collector: EventCollector, on_alert: Callable[[Alert], None],
                 run_blocking: Callable[..., Any], reader: QueueReader | None = None) -> None:
        self.collector = collector
        self.run_blocking = run_blocking  # the app's: a native thread under eventlet, inline in threading mode
        self.on_alert = on_alert
        settings = collector.settings
        self.reader = reader or make_reader(settings.broker_url, settings.broker_transport_options,
                                            settings.broker_api, collector.count_internal_error)
        self.stopping = False
        self._ignored_logged = 0
        self.queues = 0  # queues in the last round
        self.round_trips: deque[float] = deque(maxlen=RECENT_ROUNDS)  # the broker round trips, in ms
        self.sampled_at: float | None = None

    def run(self) -> None:
        """Sample until ``stop``, every queue interval."""
        while not self.stopping:
            self.collector.sleep(self.collector.settings.queue_interval_seconds)
            try:
                self.step(time.time())
            except Exception:  # the sampler must outlive any surprise
                self.collector.count_internal_error()
                log.exception("queue sampling failed")
        self.reader.close()

    def stop(self) -> None:
        self.stopping = True

    def health(self) -> dict[str, Any]:
        """Return ``/api/health``'s ``sampler``: the queues of the last round, when it was, and the broker round
        trip of the last round and the median, 95th percentile and slowest of the last ``RECENT_ROUNDS``, in ms."""
        ordered = sorted(self.round_trips)
        pick = (lambda share: ordered[min(len(ordered) - 1, int(len(ordered) * share))]) if ordered else (lambda _: None)
        return {"queues": self.queues, "at": self.sampled_at, "rounds": len(ordered),
                "last_ms": self.round_trips[-1] if ordered else None, "p50_ms": pick(0.5), "p95_ms": pick(0.95),
                "max_ms": ordered[-1] if ordered else None}

    def _read(self, names: Sequence[str]) -> tuple[dict[str, QueueSample], float]:
        """Read the depths of ``names`` (blocking broker I/O) and time the round trip, where it runs."""
        began = time.perf_counter()
        samples = self.reader.sample(names)
        return samples, time.perf_counter() - began

    def step(self, now: float) -> None:
        """Take one round of samples."""
        cluster = self.collector.cluster
        names = cluster.queues_to_sample()
        ignored = cluster.limits()["queues_ignored"]
        if ignored and ignored >= 2 * self._ignored_logged:  # the first, then each time the count doubles
            self._ignored_logged = ignored
            log.warning("%d queues beyond --max-queues %d are not watched", ignored, self.collector.settings.max_queues)
        if not names:
            return
        samples, took = self.run_blocking(self._read, names)
        self.round_trips.append(round(took * 1000, 1))
        self.queues, self.sampled_at = len(names), now
        for alert in cluster.apply_samples(now, samples):
            self.on_alert(alert)
