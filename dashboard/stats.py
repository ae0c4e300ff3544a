"""Task analytics, aggregated as events arrive, so that no chart, top list or scrape ever scans tasks.

For every new task event the model calls ``TaskStats.observe`` (under its lock). That updates:

- per-second counts of each kind of task event, the last ``LIVE_SECONDS``, for the live charts;
- the open minute's ``Bucket`` of each task type, of all tasks, of each worker (its outcomes) and of
  each queue (its waits): counts by kind, runtime and queue-wait histograms with fixed ``BUCKETS``,
  the exceptions with an example task of each, and the slowest runs. Closed minutes are drained
  by the history writer into the store, which rolls them up per hour too;
- the running totals that ``GET /metrics`` exports, labelled as celery-exporter labels them.

Task names beyond ``max_names`` are folded into ``OTHER``, as are queues beyond ``max_queues``, so
memory and label cardinality stay bounded whatever the cluster sends. Pure: no I/O, no clock.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from .model import Task

#: Histogram bucket upper bounds, in seconds (Prometheus' defaults, extended for long tasks); +Inf follows.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
           30.0, 60.0, 300.0, 900.0, 3600.0)
#: The kinds of task event counted, in the order of every ``counts`` list.
KINDS = ("sent", "received", "started", "succeeded", "failed", "retried", "revoked", "rejected")
KIND_INDEX = {"task-" + kind: index for index, kind in enumerate(KINDS)}
SENT, RECEIVED, STARTED, SUCCEEDED, FAILED, RETRIED, REVOKED, REJECTED = range(len(KINDS))
#: Kinds counted on the worker that sent them (its outcomes).
_WORKER_KINDS = frozenset((SUCCEEDED, FAILED, RETRIED))
#: Seconds of per-second counts kept for the live charts.
LIVE_SECONDS = 900
#: Slowest runs and distinct exceptions kept per bucket.
SLOWEST_KEPT = 5
EXCEPTIONS_KEPT = 20
#: Exception classes labelled apart in ``celery_task_failed_total``; more are folded into ``OTHER``.
MAX_EXCEPTION_NAMES = 200
#: Node names whose hostname label is remembered; more are labelled ``OTHER`` (producers may be many).
MAX_HOST_LABELS = 10_000
#: (name, node, queue) combinations remembered with their series; more are folded again at each event.
MAX_SERIES = 100_000
#: The name a task type, queue or exception beyond the limits is counted under.
OTHER = "other"
#: The name of a task whose name no event has carried yet, and of a queue no task-sent named.
UNKNOWN = "unknown"
#: Bucket scopes: all tasks, one task type, one worker, one queue.
ALL, TASK, WORKER, QUEUE = "all", "task", "worker", "queue"

_EXCEPTION_CLASS = re.compile(r"^([\w.]+)\(")


def exception_class(exception: str | None) -> str:
    """Return the class name of an exception repr (``ValueError('x')`` -> ``ValueError``), as celery-exporter does."""
    match = _EXCEPTION_CLASS.match(exception or "")
    return match.group(1) if match else "UnknownException"


def host_label(hostname: str) -> str:
    """Return the host part of a Celery node name (``celery@web-1`` -> ``web-1``), celery-exporter's ``hostname``."""
    return hostname.rpartition("@")[2]


def empty_histogram() -> list[float]:
    """Return a histogram: a count per bucket (``BUCKETS`` then +Inf), then the sum of the values."""
    return [0] * (len(BUCKETS) + 1) + [0.0]


def observe(histogram: list[float], value: float) -> None:
    histogram[bisect_left(BUCKETS, value)] += 1
    histogram[-1] += value


def quantile(histogram: list[float] | None, q: float) -> float | None:
    """Estimate the ``q`` quantile of a histogram by linear interpolation in its bucket, as Prometheus'
    ``histogram_quantile`` does; None when it is empty. A value in the +Inf bucket reads as the last bound."""
    if not histogram:
        return None
    counts = histogram[:-1]
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0.0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index >= len(BUCKETS):
                return BUCKETS[-1]
            low = BUCKETS[index - 1] if index else 0.0
            return low + (BUCKETS[index] - low) * (rank - seen) / count
        seen += count
    return BUCKETS[-1]


def merge_histogram(into: list[float], other: list[float]) -> None:
    for index, value in enumerate(other):
        into[index] += value


class Bucket:
    """What happened in one interval for one scope: counts by kind, runtime and wait histograms,
    exceptions with a count and an example task, and the slowest runs."""

    __slots__ = ("counts", "runtime", "wait", "exceptions", "slowest")

    def __init__(self) -> None:
        self.counts = [0] * len(KINDS)
        self.runtime: list[float] | None = None
        self.wait: list[float] | None = None
        self.exceptions: dict[str, list[Any]] = {}  # class -> [count, an example uuid (the latest)]
        self.slowest: list[list[Any]] = []  # [runtime, uuid, at], slowest first

    def add_runtime(self, runtime: float, uuid: str, at: float) -> None:
        if self.runtime is None:
            self.runtime = empty_histogram()
        observe(self.runtime, runtime)
        slowest = self.slowest
        if len(slowest) < SLOWEST_KEPT or runtime > slowest[-1][0]:
            slowest.append([runtime, uuid, at])
            slowest.sort(key=_first, reverse=True)
            del slowest[SLOWEST_KEPT:]

    def add_wait(self, wait: float) -> None:
        if self.wait is None:
            self.wait = empty_histogram()
        observe(self.wait, wait)

    def add_exception(self, name: str, uuid: str) -> None:
        seen = self.exceptions.get(name)
        if seen is not None:
            seen[0] += 1
            seen[1] = uuid
        elif len(self.exceptions) < EXCEPTIONS_KEPT:
            self.exceptions[name] = [1, uuid]
        else:
            other = self.exceptions.setdefault(OTHER, [0, uuid])
            other[0] += 1

    def merge(self, other: "Bucket") -> "Bucket":
        """Add ``other`` into this bucket; return it."""
        for index, count in enumerate(other.counts):
            self.counts[index] += count
        for mine, theirs in ((self.runtime, other.runtime), (self.wait, other.wait)):
            if theirs is not None and mine is not None:
                merge_histogram(mine, theirs)
        if self.runtime is None and other.runtime is not None:
            self.runtime = list(other.runtime)
        if self.wait is None and other.wait is not None:
            self.wait = list(other.wait)
        for name, (count, uuid) in other.exceptions.items():
            seen = self.exceptions.get(name)
            if seen is not None:
                seen[0] += count
                seen[1] = uuid
            else:
                self.exceptions[name] = [count, uuid]
        if other.slowest:
            self.slowest = sorted(self.slowest + [list(run) for run in other.slowest], key=_first,
                                  reverse=True)[:SLOWEST_KEPT]
        return self

    def to_row(self) -> dict[str, Any]:
        """Return the bucket as plain data (the store keeps it as JSON)."""
        return {"counts": self.counts, "runtime": self.runtime, "wait": self.wait,
                "exceptions": self.exceptions, "slowest": self.slowest}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Bucket":
        bucket = cls()
        counts = row.get("counts") or []
        bucket.counts = [int(c) for c in counts[:len(KINDS)]] + [0] * (len(KINDS) - len(counts))
        for name in ("runtime", "wait"):
            histogram = row.get(name)
            if isinstance(histogram, list) and len(histogram) == len(BUCKETS) + 2:
                setattr(bucket, name, [float(v) for v in histogram])
        exceptions = row.get("exceptions")
        if isinstance(exceptions, dict):
            bucket.exceptions = {str(k): [int(v[0]), str(v[1])] for k, v in exceptions.items()
                                 if isinstance(v, list) and len(v) == 2}
        slowest = row.get("slowest")
        if isinstance(slowest, list):
            bucket.slowest = [list(run) for run in slowest if isinstance(run, list) and len(run) == 3]
        return bucket

    def summary(self) -> dict[str, Any]:
        """Return the counts by kind, the failure rate and the runtime and wait percentiles."""
        counts = self.counts
        finished = counts[SUCCEEDED] + counts[FAILED]
        body: dict[str, Any] = dict(zip(KINDS, counts))
        body["failure_rate"] = counts[FAILED] / finished if finished else None
        runtime, wait = self.runtime, self.wait
        runs = sum(runtime[:-1]) if runtime else 0
        body["runtime"] = {"p50": quantile(runtime, 0.5), "p95": quantile(runtime, 0.95),
                           "p99": quantile(runtime, 0.99), "mean": runtime[-1] / runs if runtime and runs else None}
        body["wait"] = {"p50": quantile(wait, 0.5), "p95": quantile(wait, 0.95)}
        return body


def _first(item: list[Any]) -> Any:
    return item[0]


Row = tuple[int, str, str, Bucket]  # (minute start, scope, key, bucket)


class _Series:
    """One label set of the running totals (task type, hostname label, queue) and what it counts."""

    __slots__ = ("labels", "name", "queue", "counts", "by_name", "runtime", "wait")

    def __init__(self, labels: tuple[str, str, str], by_name: list[int]) -> None:
        self.labels = labels  # (name, hostname label, queue label): celery-exporter's labels
        self.name, self.queue = labels[0], labels[2]
        self.counts = [0] * len(KINDS)  # task events by kind since start
        self.by_name = by_name  # the task type's counts by kind (shared by its series)
        self.runtime: list[float] | None = None
        self.wait: list[float] | None = None


class TaskStats:
    """The running aggregates of task events; see the module docstring."""

    def __init__(self, max_names: int = 500, max_queues: int = 1_000) -> None:
        self.max_names = max_names
        self.max_queues = max_queues
        self.names: set[str] = set()
        self.queues: set[str] = set()
        self.exception_names: set[str] = set()
        self._hosts: dict[str, str] = {}  # node name -> hostname label (its host part)
        self._series: dict[tuple[str | None, str, str | None], _Series] = {}  # (name, node, queue) as sent ->
        self._labelled: dict[tuple[str, str, str], _Series] = {}  # ...the one series of its labels
        self.seconds: dict[int, list[int]] = {}  # second -> counts by kind, the last LIVE_SECONDS
        self.minute: int | None = None  # start of the open minute
        # The open minute's buckets: of all tasks, and per task type, worker and queue.
        self._everything: Bucket | None = None
        self._types: dict[str, Bucket] = {}
        self._workers: dict[str, Bucket] = {}
        self._queues: dict[str, Bucket] = {}
        self.closed: list[Row] = []  # closed minutes the store has not taken yet
        self.by_name: dict[str, list[int]] = {}  # task type -> counts by kind since start
        self.last_success: dict[str, float] = {}  # task type -> when one last succeeded
        self.failures: dict[tuple[str, str, str, str], int] = {}  # (name, hostname, queue, exception), for /metrics

    # -- writes (the model, under its lock) -----------------------------------------------------------
    def observe_task(self, event_type: str, task: "Task", entry: dict[str, Any], at: float) -> None:
        """Count a new event of ``task`` (already merged into it), with the queue wait once both ends are known."""
        kind = KIND_INDEX.get(event_type)
        if kind is None:
            return
        node = task.worker or entry.get("hostname") or ""
        key = (task.name, node, task.queue)
        series = self._series.get(key)
        if series is None:
            series = self._new_series(*key)
        second = int(at)
        counts = self.seconds.get(second)
        if counts is None:
            counts = self.seconds[second] = [0] * len(KINDS)
            if len(self.seconds) > LIVE_SECONDS + 60:
                self._forget_seconds(second - LIVE_SECONDS)
        counts[kind] += 1
        if self.minute is None or second - second % 60 > self.minute:
            self._close(second - second % 60)
        everything = self._everything
        if everything is None:
            everything = self._everything = Bucket()
        everything.counts[kind] += 1
        name = series.name
        of_type = self._types.get(name)
        if of_type is None:
            of_type = self._types[name] = Bucket()
        of_type.counts[kind] += 1
        series.counts[kind] += 1
        series.by_name[kind] += 1
        if kind in _WORKER_KINDS and node:
            of_worker = self._workers.get(node)
            if of_worker is None:
                of_worker = self._workers[node] = Bucket()
            of_worker.counts[kind] += 1
        if kind == SUCCEEDED:
            self.last_success[name] = at
            runtime = entry.get("runtime")
            if isinstance(runtime, (int, float)) and runtime >= 0:
                everything.add_runtime(runtime, task.uuid, at)
                of_type.add_runtime(runtime, task.uuid, at)
                if series.runtime is None:
                    series.runtime = empty_histogram()
                observe(series.runtime, runtime)
        elif kind == FAILED:
            cls = exception_class(entry.get("exception"))
            everything.add_exception(cls, task.uuid)
            of_type.add_exception(cls, task.uuid)
            failure = (*series.labels, self._fold(self.exception_names, cls, MAX_EXCEPTION_NAMES))
            self.failures[failure] = self.failures.get(failure, 0) + 1
        elif (kind == RECEIVED or kind == SENT) and task.sent is not None and task.received is not None \
                and task.retried is None:  # the first delivery's wait, once both ends are known
            wait = max(task.received - task.sent, 0.0)
            everything.add_wait(wait)
            of_type.add_wait(wait)
            of_queue = self._queues.get(series.queue)
            if of_queue is None:
                of_queue = self._queues[series.queue] = Bucket()
            of_queue.add_wait(wait)
            if series.wait is None:
                series.wait = empty_histogram()
            observe(series.wait, wait)

    def _new_series(self, name: str | None, node: str, queue: str | None) -> _Series:
        """Fold the names beyond the limits and remember the label set of this (name, node, queue)."""
        name_label = self._fold(self.names, name, self.max_names)
        queue_label = self._fold(self.queues, queue, self.max_queues)
        host = self._hosts.get(node)
        if host is None:
            host = self._hosts[node] = host_label(node) if len(self._hosts) < MAX_HOST_LABELS else OTHER
        labels = (name_label, host, queue_label)
        series = self._labelled.get(labels)
        if series is None:
            by_name = self.by_name.get(name_label)
            if by_name is None:
                by_name = self.by_name[name_label] = [0] * len(KINDS)
            series = self._labelled[labels] = _Series(labels, by_name)
        if len(self._series) < MAX_SERIES:  # beyond, a combination is looked up by its labels each time
            self._series[(name, node, queue)] = series
        return series

    @staticmethod
    def _fold(known: set[str], value: str | None, limit: int) -> str:
        """Return ``value``, remembered in ``known``; ``OTHER`` once ``limit`` others are; ``UNKNOWN`` for none."""
        if not value:
            return UNKNOWN
        if value in known:
            return value
        if len(known) >= limit:
            return OTHER
        known.add(value)
        return value

    def _forget_seconds(self, before: int) -> None:
        for second in [s for s in self.seconds if s < before]:
            del self.seconds[second]

    def _open_buckets(self) -> list[tuple[str, str, Bucket]]:
        """The open minute's buckets as (scope, key, bucket)."""
        buckets = [(ALL, "", self._everything)] if self._everything is not None else []
        for scope, by_key in ((TASK, self._types), (WORKER, self._workers), (QUEUE, self._queues)):
            buckets += [(scope, key, bucket) for key, bucket in by_key.items()]
        return buckets

    def _close(self, minute: int | None) -> None:
        """Close the open minute (its buckets go to ``closed``) and open ``minute``."""
        if self.minute is not None:
            self.closed.extend((self.minute, scope, key, bucket) for scope, key, bucket in self._open_buckets())
        self._everything = None
        self._types, self._workers, self._queues = {}, {}, {}
        self.minute = minute

    def roll(self, now: float) -> list[Row]:
        """Close the open minute once ``now`` is past it; return the closed minutes not yet taken."""
        if self.minute is not None and now >= self.minute + 60:
            self._close(None)
        closed, self.closed = self.closed, []
        return closed

    def forget_hosts(self, labels: Iterable[str]) -> None:
        """Drop the metric series of these hostname labels (workers gone for good)."""
        gone = set(labels)
        if not gone:
            return
        for labels in [k for k in self._labelled if k[1] in gone]:
            del self._labelled[labels]
        for sent in [k for k, series in self._series.items() if series.labels[1] in gone]:
            del self._series[sent]
        for failure in [k for k in self.failures if k[1] in gone]:
            del self.failures[failure]

    # -- reads ----------------------------------------------------------------------------------------
    def live(self, now: float, seconds: int = LIVE_SECONDS) -> dict[str, Any]:
        """Return the per-second counts of each kind over the last ``seconds`` up to ``now``, zeros filled in."""
        end = int(now)
        start = end - seconds + 1
        zero = [0] * len(KINDS)
        rows = [self.seconds.get(second, zero) for second in range(start, end + 1)]
        body: dict[str, Any] = {"step": 1, "t": list(range(start, end + 1))}
        for index, kind in enumerate(KINDS):
            body[kind] = [row[index] for row in rows]
        return body

    def open_rows(self, scope: str | None = None, key: str | None = None) -> list[Row]:
        """Return the open minute's buckets and the closed ones not yet stored (copies), of one scope/key or all."""
        rows = list(self.closed)
        if self.minute is not None:
            rows += [(self.minute, s, k, b) for s, k, b in self._open_buckets()]
        return [(minute, s, k, Bucket().merge(b)) for minute, s, k, b in rows
                if (scope is None or s == scope) and (key is None or k == key)]

    def metrics(self) -> dict[str, Any]:
        """Return copies of the running totals for a scrape: ``totals`` {(kind, name, hostname, queue): n},
        ``failures`` {(name, hostname, queue, exception): n}, and the ``runtimes`` and ``waits`` histograms
        {(name, hostname, queue): histogram}."""
        labelled = self._labelled.values()
        return {"totals": {(kind, *series.labels): count for series in labelled
                           for kind, count in enumerate(series.counts) if count},
                "failures": dict(self.failures),
                "runtimes": {series.labels: list(series.runtime) for series in labelled if series.runtime},
                "waits": {series.labels: list(series.wait) for series in labelled if series.wait}}

    def name_counts(self) -> dict[str, list[int]]:
        """Return each task type's counts by kind since start (copies), for the alert rules."""
        return {name: list(counts) for name, counts in self.by_name.items()}
