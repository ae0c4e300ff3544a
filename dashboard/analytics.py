"""Charts, task-type pages and top lists, assembled from the analytics' buckets (``stats``).

A range reads the stored minute or hour buckets (``TaskStore.stats_series`` / ``stats_by_key``) plus
the ones the model holds that the store has not taken yet, and resamples them to the range's step.
Nothing here scans tasks. Pure: the caller passes the rows and ``now``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .stats import BUCKETS, FAILED, KINDS, SUCCEEDED, Bucket, Row, quantile


@dataclass(frozen=True)
class Range:
    """A chart range: how far back, which stored step it reads, and the step it draws at."""

    name: str
    seconds: int
    source_step: int  # 1: the live per-second counts; 60 or 3600: the stored buckets
    step: int

    def since(self, now: float) -> int:
        start = int(now) - self.seconds
        return start - start % self.step


#: The ranges a chart or list may ask for (``range=``); the first is the default.
RANGES = {r.name: r for r in (
    Range("15m", 900, 1, 1), Range("1h", 3600, 60, 60), Range("6h", 6 * 3600, 60, 300),
    Range("1d", 86400, 60, 900), Range("7d", 7 * 86400, 3600, 3600))}
#: Lists over many keys (task types, workers) read hour buckets from this long on.
LIST_HOURS_FROM_SECONDS = 6 * 3600
#: Queues and workers drawn at most on the depth and activity charts of a range.
GAUGES_SHOWN = 8
#: Entries of each top list.
TOP_ENTRIES = 10
#: A task type needs this many finished runs in the range to rank among the most failing.
TOP_FAILING_MIN_RUNS = 5


def list_step(range_: Range) -> int:
    """The stored step lists over many keys read for ``range_`` (minutes are too many rows beyond hours)."""
    return 3600 if range_.seconds >= LIST_HOURS_FROM_SECONDS else 60


def series(rows: Iterable[tuple[int, Bucket]], range_: Range, now: float, histogram: bool = False
           ) -> dict[str, Any]:
    """Resample buckets to the range's step: counts by kind, failure rate, runtime and wait percentiles,
    and with ``histogram`` the runtime histogram of each step (``BUCKETS`` then +Inf), for a heatmap."""
    step = range_.step
    since = range_.since(now)
    slots: dict[int, Bucket] = {}
    for start, bucket in rows:
        if start < since:
            continue
        slot = start - start % step
        if slot in slots:
            slots[slot].merge(bucket)
        else:
            slots[slot] = Bucket().merge(bucket)
    times = list(range(since, int(now) + 1, step))
    empty = Bucket()
    ordered = [slots.get(t, empty) for t in times]
    body: dict[str, Any] = {"range": range_.name, "step": step, "t": times}
    for index, kind in enumerate(KINDS):
        body[kind] = [b.counts[index] for b in ordered]
    body["failure_rate"] = [_rate(b.counts) for b in ordered]
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        body[f"runtime_{name}"] = [quantile(b.runtime, q) for b in ordered]
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        body[f"wait_{name}"] = [quantile(b.wait, q) for b in ordered]
    if histogram:
        body["buckets"] = list(BUCKETS)
        body["runtime_histogram"] = [b.runtime[:-1] if b.runtime else None for b in ordered]
    return body


def gauge_series(minutes: dict[str, list[tuple[float, int]]], range_: Range, now: float,
                 top: int = GAUGES_SHOWN) -> dict[str, list[int | None]]:
    """Resample per-minute highest values (queue depths, worker activity) to the range's step, keeping the
    highest of each step; return the ``top`` names with the highest values, each aligned with ``series``' t."""
    step, since = range_.step, range_.since(now)
    times = list(range(since, int(now) + 1, step))
    index = {t: i for i, t in enumerate(times)}
    drawn: dict[str, list[int | None]] = {}
    for name, points in minutes.items():
        values: list[int | None] = [None] * len(times)
        for minute, value in points:
            slot = index.get(int(minute) - int(minute) % step)
            if slot is not None:
                seen = values[slot]
                values[slot] = value if seen is None else max(seen, value)
        drawn[name] = values
    highest = sorted(drawn, key=lambda name: -max((v for v in drawn[name] if v is not None), default=-1))
    return {name: drawn[name] for name in highest[:top]}


def live_series(live: dict[str, Any]) -> dict[str, Any]:
    """Add the failure rate to the model's per-second counts (``TaskStats.live``)."""
    body = {"range": "15m", **live}
    body["failure_rate"] = [_rate_of(s, f) for s, f in zip(live["succeeded"], live["failed"])]
    return body


def merge_rows(stored: list[tuple[int, Bucket]], unstored: list[Row], step: int) -> list[tuple[int, Bucket]]:
    """Add the model's not-yet-stored minute buckets to stored ones of ``step``."""
    return stored + [(minute - minute % step, bucket) for minute, _, _, bucket in unstored]


def by_key(stored: dict[str, Bucket], unstored: list[Row], since: int) -> dict[str, Bucket]:
    """Add the model's not-yet-stored buckets (from ``since`` on) to stored totals per key."""
    for minute, _, key, bucket in unstored:
        if minute < since:
            continue
        if key in stored:
            stored[key].merge(bucket)
        else:
            stored[key] = bucket
    return stored


def summaries(buckets: dict[str, Bucket]) -> list[dict[str, Any]]:
    """Return one summary per key (counts, failure rate, percentiles), busiest first."""
    items = [{"name": key, **bucket.summary()} for key, bucket in buckets.items()]
    items.sort(key=lambda item: -(item["succeeded"] + item["failed"] + item["received"]))
    return items


def detail(name: str, bucket: Bucket) -> dict[str, Any]:
    """Return a task type's summary with its most common exceptions and slowest runs."""
    body = {"name": name, **bucket.summary()}
    body["exceptions"] = [{"exception": exc, "count": count, "example": uuid}
                          for exc, (count, uuid) in sorted(bucket.exceptions.items(), key=lambda e: -e[1][0])]
    body["slowest"] = [{"runtime": runtime, "uuid": uuid, "at": at} for runtime, uuid, at in bucket.slowest]
    return body


def top(types: dict[str, Bucket], workers: dict[str, Bucket], queues: dict[str, Bucket]) -> dict[str, Any]:
    """Return the top lists: slowest and most failing task types, busiest workers, longest queue waits."""
    kinds = summaries(types)
    slowest = sorted((k for k in kinds if k["runtime"]["p95"] is not None), key=lambda k: -k["runtime"]["p95"])
    failing = sorted((k for k in kinds if k["failed"] and k["succeeded"] + k["failed"] >= TOP_FAILING_MIN_RUNS),
                     key=lambda k: (-(k["failure_rate"] or 0), -k["failed"]))
    busiest: list[dict[str, Any]] = sorted(
        ({"name": h, "processed": b.counts[SUCCEEDED] + b.counts[FAILED], "failed": b.counts[FAILED]}
         for h, b in workers.items()), key=lambda w: -w["processed"])
    waits: list[dict[str, Any]] = sorted(
        ({"name": q, "p50": quantile(b.wait, 0.5), "p95": quantile(b.wait, 0.95), "count": int(sum(b.wait[:-1]))}
         for q, b in queues.items() if b.wait), key=lambda q: -(q["p95"] or 0))
    waiting_types = sorted((k for k in kinds if k["wait"]["p95"] is not None), key=lambda k: -k["wait"]["p95"])
    pick = ("name", "succeeded", "failed", "failure_rate", "runtime", "wait")
    return {"slowest_types": [{key: k[key] for key in pick} for k in slowest[:TOP_ENTRIES]],
            "failing_types": [{key: k[key] for key in pick} for k in failing[:TOP_ENTRIES]],
            "busiest_workers": [w for w in busiest[:TOP_ENTRIES] if w["processed"]],
            "longest_waits": waits[:TOP_ENTRIES],
            "longest_waiting_types": [{key: k[key] for key in pick} for k in waiting_types[:TOP_ENTRIES]]}


def _rate(counts: list[int]) -> float | None:
    return _rate_of(counts[SUCCEEDED], counts[FAILED])


def _rate_of(succeeded: int, failed: int) -> float | None:
    finished = succeeded + failed
    return failed / finished if finished else None
