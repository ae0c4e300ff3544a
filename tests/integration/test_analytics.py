"""Analytics against a real worker: exact /metrics for a known mix, the task-type API, and a stuck task's
alert delivered to a webhook while the task still runs, then resolved when it ends."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import (DashboardProc, WebhookReceiver, dashboard_with_worker, producer_app, send, strict_json,
                     wait_task_state, wait_until)

pytestmark = pytest.mark.integration

#: The task names as the worker registers them.
ADD, FAIL, FLAKY, SLOW = (f"dashboard.demo.tasks.{n}" for n in ("add", "fail_payment", "flaky_fetch", "slow_report"))
#: A URL flaky_fetch fails on once, then fetches: one retry.
ONE_RETRY_URL = "https://api.example.com/items/0"
#: What celery-exporter's Grafana dashboards (celery-tasks-overview, celery-tasks-by-task) and its alert
#: rules query: families and the labels they filter or group by.
GRAFANA_FAMILIES = {
    "celery_task_sent_total": {"name", "hostname", "queue_name"},
    "celery_task_received_total": {"name", "hostname", "queue_name"},
    "celery_task_started_total": {"name", "hostname", "queue_name"},
    "celery_task_succeeded_total": {"name", "hostname", "queue_name"},
    "celery_task_failed_total": {"name", "hostname", "queue_name", "exception"},
    "celery_task_rejected_total": {"name", "hostname", "queue_name"},
    "celery_task_revoked_total": {"name", "hostname", "queue_name"},
    "celery_task_retried_total": {"name", "hostname", "queue_name"},
    "celery_task_runtime_bucket": {"name", "hostname", "queue_name", "le"},
    "celery_task_runtime_sum": {"name", "hostname", "queue_name"},
    "celery_task_runtime_count": {"name", "hostname", "queue_name"},
    "celery_task_queue_wait_time_bucket": {"name", "hostname", "queue_name", "le"},
    "celery_worker_up": {"hostname"},
    "celery_worker_tasks_active": {"hostname"},
    "celery_queue_length": {"queue_name"},
    "celery_active_consumer_count": {"queue_name"},
    "celery_active_worker_count": {"queue_name"},
    "celery_active_process_count": {"queue_name"},
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory,
            receiver: WebhookReceiver) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/11"
    folder = tmp_path_factory.mktemp("analytics")
    rules = folder / "alerts.toml"
    rules.write_text(f'[notify]\nwebhooks = ["{receiver.url}"]\n\n'
                     f'[[rule]]\nname = "stuck report"\nkind = "task-runtime"\ntask = "{SLOW}"\nseconds = 2\n')
    with dashboard_with_worker(broker, folder, "analyst", queues="analytics-q",
                               extra_args=("--alerts", str(rules), "--alert-interval", "0.2")) as (dashboard, _):
        yield dashboard, broker


def scrape(dashboard: DashboardProc) -> dict[str, list[Any]]:
    answer = dashboard.get("/metrics")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(answer.text):
        samples.setdefault(family.name, [])
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def total(samples: dict[str, list[Any]], metric: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(metric, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_count_a_known_mix_exactly(cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    ids = [send(app, "add", i, 1, queue="analytics-q") for i in range(16)]
    ids += [send(app, "fail_payment", f"order-{i}", queue="analytics-q") for i in range(4)]
    ids.append(send(app, "flaky_fetch", ONE_RETRY_URL, queue="analytics-q"))
    for task_id in ids:
        wait_task_state(dashboard, task_id, "FAILURE" if task_id in ids[16:20] else "SUCCESS")
    # The queue's worker and process counts come from the worker's inspect replies, which may take a round,
    # and its length from the queue sampler's next round after the queue became known.
    samples = wait_until(lambda: (s := scrape(dashboard)) and total(s, "celery_task_succeeded_total") == 17
                         and total(s, "celery_active_worker_count", queue_name="analytics-q") == 1
                         and any(x.labels.get("queue_name") == "analytics-q" for x in s.get("celery_queue_length", []))
                         and s, 30, message=lambda: f"the counters never settled: {scrape(dashboard)}")
    queue = {"queue_name": "analytics-q", "hostname": "test"}  # celery-exporter's hostname: the node's host part
    assert total(samples, "celery_task_succeeded_total", name=ADD, **queue) == 16
    assert total(samples, "celery_task_succeeded_total", name=FLAKY, **queue) == 1
    assert total(samples, "celery_task_failed_total", name=FAIL, exception="ValueError", **queue) == 4
    assert total(samples, "celery_task_retried_total", name=FLAKY, **queue) == 1
    assert total(samples, "celery_task_sent_total", name=ADD, queue_name="analytics-q") == 16
    assert total(samples, "celery_task_runtime_count", name=ADD, **queue) == 16
    assert total(samples, "celery_task_runtime_bucket", name=ADD, le="+Inf", **queue) == 16
    assert total(samples, "celery_task_runtime_bucket", name=ADD, le="0.025", **queue) == 0  # it sleeps 50 ms+
    assert total(samples, "celery_worker_up", hostname="test") == 1
    assert total(samples, "celery_active_worker_count", queue_name="analytics-q") == 1
    assert total(samples, "celery_active_process_count", queue_name="analytics-q") == 10
    for metric, labels in GRAFANA_FAMILIES.items():
        assert metric in samples, f"{metric} missing from /metrics"
        assert samples[metric] and all(labels <= set(s.labels) for s in samples[metric]), (metric, samples[metric])
    assert total(samples, "celery_dashboard_events_received_total") > 80
    # The task-type API reads the same aggregation.
    add = strict_json(dashboard.get(f"/api/task-types/{ADD}").text)
    assert add["succeeded"] == 16 and add["failed"] == 0 and 0.05 <= add["runtime"]["p95"] <= 0.5
    failing = strict_json(dashboard.get(f"/api/task-types/{FAIL}").text)
    assert failing["failure_rate"] == 1.0 and failing["exceptions"][0]["exception"] == "ValueError"
    assert failing["exceptions"][0]["count"] == 4 and failing["exceptions"][0]["example"] in ids[16:20]


def test_a_stuck_task_fires_while_it_runs_and_resolves_when_it_ends(cluster: tuple[DashboardProc, str],
                                                                    receiver: WebhookReceiver) -> None:
    dashboard, broker = cluster
    task_id = send(producer_app(broker), "slow_report", 6, queue="analytics-q")
    wait_task_state(dashboard, task_id, "STARTED")
    firing = wait_until(lambda: next((d for d in receiver.documents if d.get("event") == "alert-firing"
                                      and d.get("subject") == task_id), None), 10,
                        message=lambda: f"no firing alert for {task_id}: {receiver.documents}")
    assert dashboard.task(task_id)["state"] == "STARTED"  # told while it still runs
    assert firing["rule"] == "stuck report" and firing["kind"] == "task-runtime" and firing["link"] == f"/tasks/{task_id}"
    active = strict_json(dashboard.get("/api/alerts").text)["active"]
    assert [a["subject"] for a in active] == [task_id]
    wait_task_state(dashboard, task_id, "SUCCESS", timeout=15)
    resolved = wait_until(lambda: next((d for d in receiver.documents if d.get("event") == "alert-resolved"
                                        and d.get("subject") == task_id), None), 10,
                          message=lambda: f"no resolved alert for {task_id}: {receiver.documents}")
    assert resolved["resolved"] >= firing["started"]
    body = strict_json(dashboard.get("/api/alerts").text)
    assert body["active"] == [] and body["history"][0]["subject"] == task_id and body["history"][0]["resolved"]
