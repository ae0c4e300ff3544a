"""``GET /metrics``: the Prometheus text format, made by ``prometheus_client`` from the model at scrape time.

The task, worker and queue families carry celery-exporter's names and labels, so its Grafana
dashboards and alert rules work unchanged; ``celery_dashboard_*`` is the dashboard's own health.
Nothing is counted twice: the counters are the analytics' running totals (``stats.TaskStats``),
read under the model's lock and turned into metric families here, off the event path.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .stats import BUCKETS, FAILED, KINDS, SENT, host_label

if TYPE_CHECKING:
    from . import Dashboard

#: What each task counter counts, as celery-exporter documents it.
_TASK_HELP = {
    "sent": "Sent when a task message is published.",
    "received": "Sent when the worker receives a task.",
    "started": "Sent just before the worker executes the task.",
    "succeeded": "Sent if the task executed successfully.",
    "failed": "Sent if the execution of the task failed.",
    "rejected": "The task was rejected by the worker, possibly to be re-queued or moved to a dead letter queue.",
    "revoked": "Sent if the task has been revoked.",
    "retried": "Sent if the task failed, but will be retried in the future.",
}
_LE = [f"{bound}" for bound in BUCKETS] + ["+Inf"]


class ClusterCollector(Collector):
    """Yields every metric family from one consistent read of the model and the dashboard's counters."""

    def __init__(self, dashboard: "Dashboard") -> None:
        self.dashboard = dashboard

    def collect(self) -> Iterator[Metric]:
        dashboard = self.dashboard
        data = dashboard.cluster.metrics()
        yield from _task_families(data, with_hostname=not dashboard.settings.metrics_no_hostname)
        yield from _worker_families(data)
        yield from _queue_families(data)
        yield from _health_families(dashboard)


def build_registry(dashboard: "Dashboard") -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(dashboard))
    return registry


def _task_families(data: dict[str, Any], with_hostname: bool) -> Iterator[Metric]:
    labels = ["name", "hostname", "queue_name"] if with_hostname else ["name", "queue_name"]

    def values(name: str, host: str, queue: str) -> tuple[str, ...]:
        return (name, host, queue) if with_hostname else (name, queue)

    totals: dict[tuple[int, tuple[str, ...]], int] = {}
    seen: set[tuple[str, ...]] = set()  # label sets of tasks a worker handled
    for (kind, name, host, queue), count in data.get("totals", {}).items():
        series = values(name, host, queue)
        totals[(kind, series)] = totals.get((kind, series), 0) + count
        if kind != SENT:
            seen.add(series)
    families = {index: CounterMetricFamily(f"celery_task_{kind}", _TASK_HELP[kind], labels=labels)
                for index, kind in enumerate(KINDS) if index != FAILED}
    for (kind, series), count in totals.items():
        if kind in families:  # failures are counted with their exception, below
            families[kind].add_metric(series, count)
    for kind, family in families.items():  # as celery-exporter: every worker-side series shows, at 0 if need be
        if kind != SENT:
            for series in seen:
                if (kind, series) not in totals:
                    family.add_metric(series, 0)
    failed = CounterMetricFamily("celery_task_failed", _TASK_HELP["failed"], labels=[*labels, "exception"])
    failures: dict[tuple[str, ...], int] = {}
    for (name, host, queue, exception), count in data.get("failures", {}).items():
        failure = (*values(name, host, queue), exception)
        failures[failure] = failures.get(failure, 0) + count
    for label_values, count in failures.items():
        failed.add_metric(label_values, count)
    for series in seen - {failure[:-1] for failure in failures}:
        failed.add_metric((*series, ""), 0)
    yield from families.values()
    yield failed
    for metric, source, text in (
            ("celery_task_runtime", "runtimes", "Histogram of task runtime measurements."),
            ("celery_task_queue_wait_time", "waits",
             "Histogram of the time tasks waited in the queue: received - sent, in seconds.")):
        histograms = HistogramMetricFamily(metric, text, labels=labels)
        merged: dict[tuple[str, ...], list[float]] = {}
        for (name, host, queue), histogram in data.get(source, {}).items():
            series = values(name, host, queue)
            if series in merged:
                merged[series] = [a + b for a, b in zip(merged[series], histogram)]
            else:
                merged[series] = list(histogram)
        for label_values, histogram in merged.items():
            cumulative, buckets = 0.0, []
            for le, count in zip(_LE, histogram[:-1]):
                cumulative += count
                buckets.append((le, cumulative))
            histograms.add_metric(label_values, buckets, histogram[-1])
        yield histograms


def _worker_families(data: dict[str, Any]) -> Iterator[Metric]:
    up = GaugeMetricFamily("celery_worker_up", "Indicates if a worker has recently sent a heartbeat.",
                           labels=["hostname"])
    active = GaugeMetricFamily("celery_worker_tasks_active", "The number of tasks the worker is currently processing",
                               labels=["hostname"])
    by_host: dict[str, list[int]] = {}
    for hostname, online, running in data.get("workers", []):
        seen = by_host.setdefault(host_label(hostname), [0, 0])
        seen[0] = max(seen[0], int(online))
        seen[1] += running if online else 0
    for host, (online, running) in by_host.items():
        up.add_metric([host], online)
        active.add_metric([host], running)
    yield up
    yield active


def _queue_families(data: dict[str, Any]) -> Iterator[Metric]:
    length = GaugeMetricFamily("celery_queue_length", "The number of message in broker queue.", labels=["queue_name"])
    consumers = GaugeMetricFamily("celery_active_consumer_count", "The number of active consumer in broker queue.",
                                  labels=["queue_name"])
    workers = GaugeMetricFamily("celery_active_worker_count", "The number of active workers in broker queue.",
                                labels=["queue_name"])
    processes = GaugeMetricFamily("celery_active_process_count", "The number of active processes in broker queue.",
                                  labels=["queue_name"])
    concurrency: dict[str, int] = data.get("concurrency", {})
    per_queue_workers: dict[str, list[str]] = {}
    for hostname, names in data.get("consumers", {}).items():
        for name in names:
            if isinstance(name, str):
                per_queue_workers.setdefault(name, []).append(hostname)
    for queue in data.get("queues", []):
        name = queue["name"]
        if queue["depth"] is not None:
            length.add_metric([name], queue["depth"])
        consumers.add_metric([name], queue["consumers"] or 0)
        hosts = per_queue_workers.get(name, [])
        workers.add_metric([name], len(hosts))
        processes.add_metric([name], sum(concurrency.get(h, 0) for h in hosts))
    yield from (length, consumers, workers, processes)


def _health_families(dashboard: "Dashboard") -> Iterator[Metric]:
    collector, history, hub = dashboard.collector, dashboard.history, dashboard.hub
    for name, text, value in (
            ("events_received", "Events taken off the broker, worker heartbeats included.", collector.received),
            ("events_malformed", "Events counted and skipped as malformed.", collector.malformed),
            ("events_unknown", "Events of types the dashboard does not know.", dashboard.cluster.unknown_events()),
            ("internal_errors", "Unexpected errors logged with a traceback.", collector.internal_errors),
            ("stream_cuts", "Times the broker cut the event subscriber (events were lost).",
             collector.broker.stream_cuts),
            ("store_written_events", "Task events written to the history.", history.written_events),
            ("store_dropped_events", "Task events dropped after failed writes.", history.dropped_events),
            ("store_quarantined_tasks", "Tasks the history could not take, dropped.", history.quarantined),
            ("live_dropped_clients", "Live clients dropped for falling behind.", hub.dropped_clients)):
        counter = CounterMetricFamily(f"celery_dashboard_{name}", text)
        counter.add_metric([], value)
        yield counter
    for name, text, gauge_value in (
            ("broker_connected", "1 while subscribed to the event stream.", float(collector.broker.connected)),
            ("reader_lag_seconds", "Seconds between the last event applied being sent and being received "
                                   "(as far as the clocks agree).", collector.reader_lag),
            ("store_pending_events", "Task events waiting to be written to the history.",
             float(len(history.pending_events))),
            ("store_error", "1 while the last write to the history failed.", float(history.last_error is not None)),
            ("live_clients", "Browsers and scripts connected to the live socket.", float(len(hub.clients)))):
        gauge = GaugeMetricFamily(f"celery_dashboard_{name}", text)
        gauge.add_metric([], gauge_value)
        yield gauge
