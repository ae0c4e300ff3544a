"""A real worker's NaN progress, read through Celery's receiver: the pages stay live and the task opens."""
from __future__ import annotations

from typing import Iterator

import pytest
from playwright.sync_api import Page, expect

from helpers import (PYTHON, DashboardProc, Proc, producer_app, start_dashboard, strict_json, wait_broker_connected,
                     wait_until, wait_worker_online)

pytestmark = pytest.mark.browser

WORKER = "nan@test"


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/12"
    log_dir = tmp_path_factory.mktemp("nan-progress")
    dashboard = start_dashboard(broker, log_dir, extra_args=("--event-reader", "kombu"))
    worker = None
    try:
        wait_broker_connected(dashboard)
        worker = Proc("worker-nan", [PYTHON, "-m", "celery", "-A", "nan_tasks", "worker", "-E", "-P", "eventlet",
                                     "-c", "2", "-n", WORKER, "--heartbeat-interval", "1", "-l", "warning",
                                     "--without-gossip", "--without-mingle"], log_dir,
                      env={"CELERY_BROKER_URL": broker, "PYTHONPATH": "tests"})
        wait_worker_online(dashboard, WORKER, worker=worker)
        yield dashboard, broker
    finally:
        if worker is not None:
            worker.end()
        dashboard.stop()


def test_nan_progress_keeps_every_page_live(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    page.goto(dashboard.url + "/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected")

    app = producer_app(broker)
    with app.connection_for_write() as connection, app.amqp.Producer(connection) as producer:
        task_id = app.send_task("nan_tasks.nan_progress", producer=producer).id
    row = page.locator(f'[data-panel="tasks"] tr[data-uuid="{task_id}"]')
    expect(row.locator('[data-field="state"]')).to_have_text("SUCCESS", timeout=15_000)
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected")

    detail = wait_until(lambda: (r := dashboard.get(f"/api/tasks/{task_id}")).status_code == 200 and r, 10,
                        message="the task never reached the API")
    body = strict_json(detail.text)
    progress = [e for e in body["events"] if e["type"] == "task-progress"]
    assert progress and progress[0]["current"] is None and progress[0]["total"] == 10
    strict_json(dashboard.get("/api/tasks", params={"limit": 10}).text)

    page.goto(f"{dashboard.url}/tasks/{task_id}")
    expect(page.locator('[data-panel="task-detail"]')).to_contain_text("nan_tasks.nan_progress")
    expect(page.locator('[data-panel="task-detail"]')).not_to_contain_text("Could not load")
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected")
    assert dashboard.health()["events"]["malformed"] == 0
