"""The analytics: aggregation as events arrive, histograms and quantiles, bounded labels, and the API
that reads them back (in-process, fed events as a reader hands them over)."""
from __future__ import annotations

import time
from typing import Any, Callable

import pytest
from flask.testing import FlaskClient

from dashboard import Dashboard
from dashboard.stats import (BUCKETS, FAILED, OTHER, SUCCEEDED, Bucket, TaskStats, exception_class, host_label,
                             empty_histogram, observe, quantile)
from dashboard.state import ClusterState
from helpers import strict_json

Feed = Callable[[list[dict[str, Any]]], None]


def task_life(uuid: str, name: str, at: float, outcome: str = "succeeded", runtime: float = 0.2,
              wait: float = 0.5, hostname: str = "celery@host-a", queue: str = "default") -> list[dict[str, Any]]:
    """The events of one task: sent, received ``wait`` later, started, then its outcome."""
    end: dict[str, Any] = {"runtime": runtime} if outcome == "succeeded" else {
        "exception": "ValueError('bad input')", "traceback": "Traceback..."}
    base = {"uuid": uuid, "hostname": hostname}
    return [
        {**base, "type": "task-sent", "name": name, "queue": queue, "timestamp": at, "local_received": at,
         "hostname": "gen1@web"},
        {**base, "type": "task-received", "name": name, "timestamp": at + wait, "local_received": at + wait},
        {**base, "type": "task-started", "timestamp": at + wait, "local_received": at + wait},
        {**base, "type": f"task-{outcome}", "timestamp": at + wait + runtime,
         "local_received": at + wait + runtime, **end},
    ]


def test_histogram_buckets_and_quantiles_interpolate_as_prometheus_does() -> None:
    histogram = empty_histogram()
    for value in [0.004] * 50 + [0.3] * 45 + [20.0] * 5:
        observe(histogram, value)
    assert histogram[0] == 50 and histogram[BUCKETS.index(0.5)] == 45 and histogram[BUCKETS.index(30.0)] == 5
    assert histogram[-1] == pytest.approx(50 * 0.004 + 45 * 0.3 + 100.0)
    assert quantile(histogram, 0.5) == pytest.approx(0.005)  # the 50th of 50 in the first bucket: its bound
    assert 0.25 < quantile(histogram, 0.9) <= 0.5
    assert 10.0 < quantile(histogram, 0.99) <= 30.0
    assert quantile(empty_histogram(), 0.5) is None and quantile(None, 0.5) is None


def test_exception_class_and_host_label_follow_celery_exporter() -> None:
    assert exception_class("ValueError('bad')") == "ValueError"
    assert exception_class("requests.exceptions.Timeout()") == "requests.exceptions.Timeout"
    assert exception_class("not a repr") == "UnknownException" and exception_class(None) == "UnknownException"
    assert host_label("celery@web-1") == "web-1" and host_label("web-1") == "web-1"


def test_each_event_counts_once_per_second_minute_type_worker_and_metric_series() -> None:
    stats = TaskStats()
    state = ClusterState(stats=stats)
    start = 1_800_000_000.0  # a minute boundary
    events = task_life("a", "app.add", start + 1) + task_life("b", "app.add", start + 2, "failed") \
        + task_life("c", "app.mul", start + 3, runtime=3.0, wait=2.0)
    for event in events:
        state.apply(event)
    state.apply(events[-1])  # a duplicate is not counted again
    live = stats.live(start + 10, 10)
    assert sum(live["succeeded"]) == 2 and sum(live["failed"]) == 1 and sum(live["sent"]) == 3
    rows = stats.open_rows()
    buckets = {(scope, key): bucket for _, scope, key, bucket in rows}
    assert buckets[("task", "app.add")].counts[SUCCEEDED] == 1 and buckets[("task", "app.add")].counts[FAILED] == 1
    assert buckets[("all", "")].summary()["failure_rate"] == pytest.approx(1 / 3)
    assert buckets[("worker", "celery@host-a")].counts[SUCCEEDED] == 2
    assert buckets[("task", "app.add")].exceptions == {"ValueError": [1, "b"]}
    assert [run[1] for run in buckets[("all", "")].slowest] == ["c", "a"]
    assert sum(buckets[("queue", "default")].wait[:-1]) == 3  # one wait per task: received - sent
    metrics = stats.metrics()
    assert metrics["totals"][(SUCCEEDED, "app.add", "host-a", "default")] == 1
    assert metrics["totals"][(0, "app.add", "web", "default")] == 2  # task-sent: the producer's host
    assert metrics["failures"] == {("app.add", "host-a", "default", "ValueError"): 1}
    assert metrics["runtimes"][("app.mul", "host-a", "default")][-1] == pytest.approx(3.0)
    # The minute closes when time passes it; the store takes the closed buckets once.
    closed = stats.roll(start + 61)
    assert {(scope, key) for _, scope, key, _ in closed} == set(buckets) and stats.roll(start + 200) == []


def test_names_and_queues_beyond_the_limits_are_folded_into_other() -> None:
    stats = TaskStats(max_names=2, max_queues=1)
    state = ClusterState(stats=stats)
    for index, name in enumerate(["a", "b", "c", "d"]):
        for event in task_life(f"t{index}", name, 1_800_000_000.0 + index, queue=f"q{index}"):
            state.apply(event)
    types = {key for _, scope, key, _ in stats.open_rows() if scope == "task"}
    assert types == {"a", "b", OTHER}
    assert {key[3] for key in stats.metrics()["totals"]} == {"q0", OTHER}


def test_a_retried_task_s_second_delivery_is_not_a_wait_and_forgotten_hosts_leave_the_metrics() -> None:
    stats = TaskStats()
    state = ClusterState(stats=stats)
    at = 1_800_000_000.0
    for event in task_life("r", "app.flaky", at)[:3]:
        state.apply(event)
    state.apply({"type": "task-retried", "uuid": "r", "hostname": "celery@host-a", "timestamp": at + 1,
                 "local_received": at + 1, "exception": "IOError()"})
    state.apply({"type": "task-received", "uuid": "r", "hostname": "celery@host-a", "timestamp": at + 60,
                 "local_received": at + 60, "name": "app.flaky"})
    waits = [b.wait for _, scope, _, b in stats.open_rows() if scope == "all" and b.wait]
    assert sum(sum(w[:-1]) for w in waits) == 1
    stats.forget_hosts({"host-a"})
    assert all(key[2] != "host-a" for key in stats.metrics()["totals"])


def test_buckets_round_trip_and_merge() -> None:
    bucket = Bucket()
    bucket.counts[SUCCEEDED] = 3
    bucket.add_runtime(1.5, "u1", 10.0)
    bucket.add_exception("KeyError", "u2")
    again = Bucket.from_row(bucket.to_row())
    assert again.to_row() == bucket.to_row()
    again.merge(bucket)
    assert again.counts[SUCCEEDED] == 6 and again.exceptions["KeyError"] == [2, "u2"]
    assert Bucket.from_row({"counts": [1], "runtime": "garbage"}).counts[0] == 1


# -- the API -----------------------------------------------------------------------------------------
def test_the_live_chart_and_the_task_type_list(client: FlaskClient, feed: Feed) -> None:
    now = time.time() - 5
    events = []
    for index in range(17):
        events += task_life(f"ok{index}", "app.add", now + index * 0.01, runtime=0.05 + index * 0.01)
    for index in range(4):
        events += task_life(f"bad{index}", "app.add", now + index * 0.01, "failed")
    feed(events)
    live = strict_json(client.get("/api/stats").data)
    assert live["step"] == 1 and len(live["t"]) == 900 and sum(live["succeeded"]) == 17 and sum(live["failed"]) == 4
    types = strict_json(client.get("/api/task-types?range=1h").data)
    add = next(item for item in types["items"] if item["name"] == "app.add")
    assert add["succeeded"] == 17 and add["failed"] == 4 and add["failure_rate"] == pytest.approx(4 / 21)
    assert 0.05 <= add["runtime"]["p50"] <= 0.25 and add["runtime"]["p95"] is not None
    assert add["wait"]["p50"] == pytest.approx(0.5, rel=0.5)


def test_the_store_keeps_what_the_model_rolled_up(client: FlaskClient, feed: Feed, dashboard: Dashboard) -> None:
    now = time.time() - 5
    events = []
    for index in range(17):
        events += task_life(f"ok{index}", "app.add", now, runtime=0.05 + index * 0.01)
    for index in range(4):
        events += task_life(f"bad{index}", "app.add", now, "failed")
    feed(events)
    in_memory = strict_json(client.get("/api/task-types/app.add?range=1h").data)
    assert dashboard.history.close()  # the final write closes the open minute and stores it
    stored = strict_json(client.get("/api/task-types/app.add?range=1h").data)
    for body in (in_memory, stored):
        assert body["succeeded"] == 17 and body["failed"] == 4
        assert body["exceptions"] == [{"exception": "ValueError", "count": 4, "example": "bad3"}]
        assert body["slowest"][0]["uuid"] == "ok16" and len(body["slowest"]) == 5
        assert sum(body["series"]["succeeded"]) == 17 and len(body["series"]["buckets"]) == len(BUCKETS)
    week = strict_json(client.get("/api/task-types/app.add?range=7d").data)
    assert week["succeeded"] == 17 and week["series"]["step"] == 3600
    top = strict_json(client.get("/api/stats/top?range=1h").data)
    assert top["failing_types"][0]["name"] == "app.add"
    assert top["busiest_workers"] == [{"name": "celery@host-a", "processed": 21, "failed": 4}]
    assert top["longest_waits"][0]["name"] == "default"
    hour = strict_json(client.get("/api/stats?range=1h").data)
    assert hour["step"] == 60 and sum(hour["succeeded"]) == 17


def test_markers_are_posted_listed_and_checked(client: FlaskClient) -> None:
    answer = client.post("/api/markers", json={"label": "deployed v2.3"})
    assert answer.status_code == 200, answer.data
    items = strict_json(client.get("/api/markers").data)["items"]
    assert [(m["label"], m["source"]) for m in items] == [("deployed v2.3", "user")]
    assert client.post("/api/markers", json={"label": ""}).status_code == 400
    assert client.post("/api/markers", json={"label": "x" * 201}).status_code == 400


@pytest.mark.parametrize("path", ["/api/stats?range=2y", "/api/task-types?range=forever",
                                  "/api/stats/top?range=1", "/api/markers?since=yesterday"])
def test_bad_analytics_parameters_are_a_400_with_a_message(client: FlaskClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 400 and strict_json(answer.data)["error"]


def test_an_unknown_task_type_is_a_404(client: FlaskClient) -> None:
    assert client.get("/api/task-types/app.nothing").status_code == 404


def test_a_worker_s_new_software_version_is_a_marker() -> None:
    state = ClusterState()
    base = {"hostname": "celery@a", "freq": 2.0, "sw_ident": "py-celery", "local_received": 1.0, "timestamp": 1.0}
    state.apply({**base, "type": "worker-online", "sw_ver": "5.6.0"})
    state.apply({**base, "type": "worker-heartbeat", "sw_ver": "5.6.0", "timestamp": 2.0})
    assert state.markers == []
    state.apply({**base, "type": "worker-online", "sw_ver": "5.7.0", "timestamp": 3.0, "local_received": 3.0})
    assert [m["label"] for m in state.markers] == ["celery@a: py-celery 5.6.0 -> py-celery 5.7.0"]


def test_metrics_carry_celery_exporter_s_families_and_labels(client: FlaskClient, feed: Feed) -> None:
    from prometheus_client.parser import text_string_to_metric_families
    now = time.time()
    feed([{"type": "worker-online", "hostname": "celery@host-a", "freq": 2.0, "timestamp": now, "active": 0}])
    events = []
    for index in range(3):
        events += task_life(f"ok{index}", "app.add", now)
    events += task_life("bad", "app.add", now, "failed")
    feed(events)
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(answer.get_data(as_text=True)) for s in family.samples}
    labels = (("hostname", "host-a"), ("name", "app.add"), ("queue_name", "default"))
    assert samples[("celery_task_succeeded_total", labels)] == 3
    assert samples[("celery_task_failed_total", tuple(sorted((*labels, ("exception", "ValueError")))))] == 1
    assert samples[("celery_task_runtime_count", labels)] == 3
    assert samples[("celery_task_runtime_bucket", tuple(sorted((*labels, ("le", "+Inf")))))] == 3
    assert samples[("celery_task_queue_wait_time_count", labels)] == 4
    assert samples[("celery_worker_up", (("hostname", "host-a"),))] == 1
    assert samples[("celery_dashboard_events_received_total", ())] >= 17


def test_every_second_the_live_socket_gets_the_new_points(app: Any, dashboard: Dashboard, feed: Feed) -> None:
    socket = dashboard.socketio.test_client(app, namespace="/live")
    now = time.time()
    feed(task_life("s1", "app.add", now - 2))
    dashboard.hub._stats_until = int(now) - 10  # as if the last message went out ten seconds ago
    dashboard.hub.flush()
    messages = [m["args"][0] for m in socket.get_received("/live") if m["name"] == "stats"]
    assert len(messages) == 1 and messages[0]["step"] == 1 and len(messages[0]["t"]) >= 9
    assert sum(messages[0]["succeeded"]) == 1 and sum(messages[0]["sent"]) == 1
    dashboard.hub.flush()  # within the same second: nothing more
    assert not [m for m in socket.get_received("/live") if m["name"] == "stats"]
    socket.disconnect(namespace="/live")


def test_longer_ranges_draw_the_deepest_queues_and_busiest_workers_per_step(client: FlaskClient, feed: Feed,
                                                                           dashboard: Dashboard) -> None:
    from dashboard.broker import QueueSample
    now = time.time()
    minute = now - now % 60
    beat = {"type": "worker-heartbeat", "hostname": "celery@busy", "freq": 2.0, "processed": 1}
    feed([{**beat, "type": "worker-online", "timestamp": minute - 120, "local_received": minute - 120}])
    for at, active in ((minute - 110, 3), (minute - 100, 7), (minute + 1, 2)):
        feed([{**beat, "timestamp": at, "local_received": at, "active": active}])
    dashboard.cluster._book.watch(["billing"])  # as the sampler learns a queue
    dashboard.cluster.apply_samples(minute - 100, {"billing": QueueSample(depth=40, consumers=1)})
    dashboard.cluster.apply_samples(minute + 1, {"billing": QueueSample(depth=12, consumers=1)})
    assert dashboard.history.flush()  # as the history writer does every half second
    body = strict_json(client.get("/api/stats?range=1h").data)
    workers, queues = body["workers"], body["queues"]
    assert set(workers) == {"celery@busy"} and set(queues) == {"billing"}
    assert len(workers["celery@busy"]) == len(body["t"])
    assert max(v for v in workers["celery@busy"] if v is not None) == 7  # the most active of its minute
    assert max(v for v in queues["billing"] if v is not None) == 40
    assert strict_json(client.get("/api/stats").data).get("workers") is None  # live: the page has them
