"""The model of queues: which ones are watched, their sampled depths, history, flags and backlog alerts.

Pure code: it gets samples and times from its caller and does no I/O. A
queue, once known, is remembered, so it stays visible (with its depth) after
all its workers are gone. A failed sample marks the depth stale; it never
turns it into zero.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Iterable

from .shapes import QueueAlert

#: Sparkline history, in seconds.
SPARKLINE_SECONDS = 15 * 60
#: Resolution of the sparkline sent with a snapshot, in seconds (live samples fill in after it); each
#: queue keeps the highest depth of each step as samples come, never the samples themselves.
SPARKLINE_STEP_SECONDS = 10
#: Longest time between two pushes of a queue whose sample did not change, in seconds.
REFRESH_SECONDS = 10.0
#: Chart history, and the bucket its samples are kept in, in seconds.
HISTORY_SECONDS = 3600
HISTORY_BUCKET_SECONDS = 15
#: Samples looked at to call a queue "growing", and the least growth that counts, in messages.
GROWTH_SAMPLES = 10
GROWTH_MIN_MESSAGES = 5
#: Queue names beyond ``max_queues`` remembered for counting; more are not counted.
MAX_IGNORED_NAMES = 100_000


@dataclass(frozen=True)
class QueueAlertRule:
    """``--queue-alert NAME=DEPTH[:SECONDS]``: alert when depth stays above DEPTH for SECONDS."""

    queue: str
    depth: int
    seconds: float = 0.0

    @classmethod
    def parse(cls, raw: str) -> "QueueAlertRule":
        """Parse ``celery=1000:60``; raise ValueError naming what is wrong."""
        name, sep, rest = raw.partition("=")
        depth_text, _, seconds_text = rest.partition(":")
        try:
            depth = int(depth_text)
            seconds = float(seconds_text) if seconds_text else 0.0
        except ValueError:
            raise ValueError(f"expected NAME=DEPTH[:SECONDS] such as celery=1000:60, got {raw!r}") from None
        if not sep or not name.strip() or depth < 0 or seconds < 0:
            raise ValueError(f"expected NAME=DEPTH[:SECONDS] such as celery=1000:60, got {raw!r}")
        return cls(name.strip(), depth, seconds)


class Queue:
    """One watched queue: its latest sample and its history."""

    __slots__ = ("name", "depth", "broker_consumers", "unacked", "error", "stale", "sampled_at",
                 "sparkline", "peak", "last_depths", "history", "over_since", "alerting", "pushed", "minutes")

    def __init__(self, name: str) -> None:
        self.name = name
        self.depth: int | None = None
        self.broker_consumers: int | None = None
        self.unacked: int | None = None
        self.error: str | None = None
        self.stale = False
        self.sampled_at: float | None = None
        self.sparkline: deque[list[int]] = deque()  # [step start, highest depth] over SPARKLINE_SECONDS
        self.peak = 0  # the highest depth in the sparkline (0 when empty), kept as it changes
        self.last_depths: deque[int] = deque(maxlen=GROWTH_SAMPLES)  # the latest samples, for ``growing``
        self.history: deque[list[float]] = deque()  # [bucket start, max depth], for the hour chart
        self.over_since: float | None = None  # when depth first exceeded its alert threshold
        self.alerting = False
        self.pushed: tuple[Any, ...] = ()  # what the pages last got, and when
        self.minutes: dict[float, int] = {}  # minute start -> highest depth, until the store has it

    def signature(self) -> tuple[Any, ...]:
        return (self.depth, self.broker_consumers, self.unacked, self.error, self.stale, self.alerting,
                self.growing)

    def record(self, now: float, depth: int) -> None:
        minute = now - now % 60
        self.minutes[minute] = max(depth, self.minutes.get(minute, 0))
        self.last_depths.append(depth)
        _keep_highest(self.sparkline, int(now - now % SPARKLINE_STEP_SECONDS), depth)
        self.peak = max(self.peak, depth)
        peak_gone = False
        while self.sparkline and now - self.sparkline[0][0] > SPARKLINE_SECONDS + SPARKLINE_STEP_SECONDS:
            # a step goes once all of it is older than the window
            peak_gone = self.sparkline.popleft()[1] >= self.peak or peak_gone
        if peak_gone:  # the highest left the window: the next highest, once (ranking reads it at every snapshot)
            self.peak = max(map(itemgetter(1), self.sparkline), default=0)
        _keep_highest(self.history, now - now % HISTORY_BUCKET_SECONDS, depth)
        while self.history and now - self.history[0][0] > HISTORY_SECONDS:
            self.history.popleft()

    @property
    def growing(self) -> bool:
        """Whether depth rose at every one of the last samples, by GROWTH_MIN_MESSAGES or more."""
        last = self.last_depths
        if len(last) < GROWTH_SAMPLES or last[-1] - last[0] < GROWTH_MIN_MESSAGES:
            return False  # the cheap test first: most queues hold steady (every sample and snapshot asks)
        depths = list(last)
        return all(b >= a for a, b in zip(depths, depths[1:]))


def _keep_highest(buckets: deque[list[Any]], start: Any, depth: int) -> None:
    """Add ``depth`` to the bucket starting at ``start`` (the newest, or a new one), keeping its highest."""
    if buckets and buckets[-1][0] == start:
        buckets[-1][1] = max(buckets[-1][1], depth)
    else:
        buckets.append([start, depth])


class QueueBook:
    """Every watched queue, its consumers as the workers report them, and backlog alerts."""

    def __init__(self, configured: Iterable[str] = (), rules: Iterable[QueueAlertRule] = (),
                 max_queues: int = 2_000) -> None:
        self.queues: dict[str, Queue] = {}
        self.max_queues = max_queues
        self.ignored: set[str] = set()  # names beyond max_queues (up to MAX_IGNORED_NAMES), never sampled
        self.rules = {rule.queue: rule for rule in rules}
        self.alerts: list[QueueAlert] = []
        self.consumers: dict[str, list[str]] = {}  # queue -> online workers consuming it
        self._dirty: dict[str, None] = {}
        self.watch(configured)
        self.watch(self.rules)

    def watch(self, names: Iterable[str]) -> None:
        """Remember queues to sample from now on."""
        for name in names:
            if name and name not in self.queues:
                if len(self.queues) >= self.max_queues:
                    if name not in self.ignored and len(self.ignored) < MAX_IGNORED_NAMES:
                        self.ignored.add(name)
                    continue
                self.queues[name] = Queue(name)
                self._dirty[name] = None

    def names(self) -> list[str]:
        return list(self.queues)

    def set_consumers(self, consumers: dict[str, list[str]]) -> None:
        """Record which online workers consume which queue (from their active_queues replies)."""
        self.watch(consumers)
        for name in set(self.consumers) | set(consumers):
            if sorted(self.consumers.get(name, [])) != sorted(consumers.get(name, [])):
                self._dirty[name] = None
        self.consumers = {name: sorted(workers) for name, workers in consumers.items() if name in self.queues}

    def apply(self, now: float, samples: dict[str, Any]) -> None:
        """Apply one round of samples (``broker.QueueSample`` objects) taken at ``now``."""
        for name, sample in samples.items():
            queue = self.queues.get(name)
            if queue is None:
                continue
            queue.error = sample.error
            if sample.depth is None:
                queue.stale = queue.depth is not None  # keep the last depth, marked stale
            else:
                queue.depth, queue.stale, queue.sampled_at = sample.depth, False, now
                queue.record(now, sample.depth)
                self._check_rule(queue, now)
            queue.broker_consumers, queue.unacked = sample.consumers, sample.unacked
            signature = queue.signature()
            if not queue.pushed or queue.pushed[:-1] != signature or now - queue.pushed[-1] >= REFRESH_SECONDS:
                queue.pushed = (*signature, now)
                self._dirty[name] = None

    def _check_rule(self, queue: Queue, now: float) -> None:
        rule = self.rules.get(queue.name)
        if rule is None or queue.depth is None:
            return
        if queue.depth > rule.depth:
            if queue.over_since is None:
                queue.over_since = now
            if not queue.alerting and now - queue.over_since >= rule.seconds:
                queue.alerting = True
                self.alerts.append({"event": "queue-backlog", "queue": queue.name, "depth": queue.depth,
                                    "threshold": rule.depth, "seconds": rule.seconds,
                                    "since": queue.over_since, "time": now})
        else:
            if queue.alerting:
                self.alerts.append({"event": "queue-backlog-cleared", "queue": queue.name, "depth": queue.depth,
                                    "threshold": rule.depth, "seconds": rule.seconds,
                                    "since": queue.over_since, "time": now})
            queue.over_since, queue.alerting = None, False

    def drain_changes(self) -> list[str]:
        """Return the queues changed since the last call, and forget them."""
        names = list(self._dirty)
        self._dirty.clear()
        return names

    def drain_minutes(self) -> list[tuple[str, float, int]]:
        """Return (queue, minute, highest depth) rows recorded since the last call, for the store."""
        rows = []
        for queue in self.queues.values():
            rows += [(queue.name, minute, depth) for minute, depth in queue.minutes.items()]
            queue.minutes = {}
        return rows

    def drain_alerts(self) -> list[QueueAlert]:
        alerts, self.alerts = self.alerts, []
        return alerts

    def to_json(self, name: str, oldest_sent: float | None, now: float) -> dict[str, Any]:
        """Return a queue's JSON shape, shared by the API, the pages and the live push."""
        queue = self.queues[name]
        workers = self.consumers.get(name, [])
        consumers = queue.broker_consumers if queue.broker_consumers is not None else len(workers)
        waiting = queue.depth is None or queue.depth > 0
        rule = self.rules.get(name)
        return {
            "name": name, "depth": queue.depth, "consumers": consumers, "workers": workers,
            "unacked": queue.unacked, "stale": queue.stale, "error": queue.error,
            "sampled_at": queue.sampled_at,
            "oldest_sent": oldest_sent if waiting else None,
            "oldest_age": round(now - oldest_sent, 1) if waiting and oldest_sent is not None else None,
            "no_consumer": bool(queue.depth) and consumers == 0,
            "growing": queue.growing, "alerting": queue.alerting,
            "alert_threshold": None if rule is None else {"depth": rule.depth, "seconds": rule.seconds},
        }

    def history_json(self, name: str, full: bool = False) -> dict[str, list[Any]]:
        """Return the sparkline (15 min, the highest depth of each 10 s) or, with ``full``, the hour in 15 s
        buckets."""
        queue = self.queues[name]
        buckets = queue.history if full else queue.sparkline
        return {"t": [b[0] for b in buckets], "depth": [b[1] for b in buckets]}

    def highest(self, name: str) -> int:
        """Return the highest depth of a queue's sparkline (0 when it has none)."""
        return self.queues[name].peak
