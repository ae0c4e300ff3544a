"""Task history in a real browser: filter by state and text, open a task, follow a child, watch one run."""
from __future__ import annotations

from typing import Iterator

import pytest
from playwright.sync_api import Page, expect

from helpers import DashboardProc, dashboard_with_worker, producer_app, send, wait_stored, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/10"
    with dashboard_with_worker(broker, tmp_path_factory.mktemp("tasks-page"), "pager") as (dashboard, _):
        yield dashboard, broker


def settled(dashboard: DashboardProc, task_id: str) -> dict:
    return wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] in ("SUCCESS", "FAILURE") and t, 20,
                      message=f"task {task_id} never finished")


def results(page: Page) -> list[str]:
    return page.locator("[data-results] tr[data-uuid]").evaluate_all("rows => rows.map(r => r.dataset.uuid)")


def test_filter_open_and_follow_a_child(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    ok = send(app, "add", 2, 2)
    failed = send(app, "fail_payment", "ORD-4242")
    parent = send(app, "echo", "parent", link=app.signature("dashboard.demo.tasks.echo", args=("child",)))
    for task_id in (ok, failed, parent):
        settled(dashboard, task_id)
    child = wait_until(lambda: dashboard.task(parent)["children"], 20, message="no child")[0]
    settled(dashboard, child)
    wait_stored(dashboard, [ok, failed, parent, child])

    page.goto(dashboard.url + "/")  # the overview's FAILURE counter opens the failed tasks
    page.locator('[data-counter="FAILURE"] a').click()
    expect(page).to_have_url(f"{dashboard.url}/tasks?state=FAILURE")
    expect(page.locator(f'[data-results] tr[data-uuid="{failed}"]')).to_be_visible()
    assert results(page) == [failed]

    page.goto(dashboard.url + "/tasks?state=FAILURE")  # a bookmarked, filtered view
    expect(page.locator(f'[data-results] tr[data-uuid="{failed}"]')).to_be_visible()
    assert results(page) == [failed]
    expect(page.locator('[data-filter="state"][value="FAILURE"]')).to_be_checked()

    page.goto(dashboard.url + "/tasks")
    page.locator('[data-filter="q"]').fill("ORD-4242")
    page.locator('[data-filter="q"]').press("Enter")
    expect(page).to_have_url(f"{dashboard.url}/tasks?q=ORD-4242")
    expect(page.locator(f'[data-results] tr[data-uuid="{failed}"]')).to_be_visible()
    assert results(page) == [failed]

    page.goto(f"{dashboard.url}/tasks?q={parent[:8]}")
    page.locator(f'[data-results] tr[data-uuid="{parent}"] a').first.click()
    expect(page).to_have_url(f"{dashboard.url}/tasks/{parent}")
    link = page.locator(f'[data-tree] a[data-task-link][href="/tasks/{child}"]')
    expect(link).to_be_visible()
    link.click()
    expect(page).to_have_url(f"{dashboard.url}/tasks/{child}")
    expect(page.locator('[data-panel="task-detail"] pre[data-field="args"]')).to_contain_text("child")


def test_a_running_tasks_timeline_grows_live(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    task_id = send(producer_app(broker), "slow_report", 3)
    wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] == "STARTED", 15, message="never started")
    page.goto(f"{dashboard.url}/tasks/{task_id}")
    expect(page.locator('[data-event-type="task-started"]')).to_have_count(1)
    expect(page.locator('[data-event-type="task-succeeded"]')).to_have_count(0)
    page.evaluate("window.__sameDocument = true")
    expect(page.locator('[data-event-type="task-succeeded"]')).to_have_count(1, timeout=10_000)
    expect(page.locator('[data-panel="task-detail"] [data-field="state"]').first).to_have_text("SUCCESS")
    assert page.evaluate("window.__sameDocument === true")
