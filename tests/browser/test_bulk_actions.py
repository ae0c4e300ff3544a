"""Bulk actions from the tasks page in a real browser: revoke every task matching the filters (held in a
busy one-slot worker), send the revoked ones again, cancel after the count, and no filter, no buttons."""
from __future__ import annotations

import re
from typing import Any, Iterator

import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from helpers import (DashboardProc, dashboard_with_worker, producer_app, record_posts, send, wait_task_state as wait_state,
                     wait_until)

pytestmark = pytest.mark.browser

QUEUE = "bulk-page-q"
WORKER = "bulker@test"
MARKER = "bulk-page-marker"
#: Long enough for a revoke to reach the worker, or a task's state to change.
WAIT_MS = 20_000
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/14"
    # prefork with one slot: tasks sent while the slot is busy wait in the worker, where a revoke reaches them
    with dashboard_with_worker(broker, tmp_path_factory.mktemp("bulk-actions"), "bulker", queues=QUEUE,
                               pool="prefork", concurrency=1) as (dashboard, _):
        yield dashboard, broker




def bulk_bar(page: Page) -> Locator:
    return page.locator("[data-bulk-actions]")


def queue_behind_busy_slot(dashboard: DashboardProc, broker: str, marker: str, count: int = 3) -> tuple[str, list[str]]:
    """Keep the worker's one slot busy, then send `count` echo tasks carrying `marker` behind it."""
    app = producer_app(broker)
    busy = send(app, "slow_report", 5, queue=QUEUE)
    wait_state(dashboard, busy, "STARTED")
    ids = [send(app, "echo", marker, n, queue=QUEUE) for n in range(count)]
    wait_until(lambda: sorted(searched(dashboard, q=marker)) == sorted(ids), 10,
               message=lambda: f"history search never found {ids}: {searched(dashboard, q=marker)}")
    return busy, ids


def searched(dashboard: DashboardProc, **params: str) -> list[str]:
    """The ids GET /api/tasks finds for `params` (the history the bulk actions search too)."""
    answer = requests.get(f"{dashboard.url}/api/tasks", params=params, timeout=10)
    answer.raise_for_status()
    return [item["uuid"] for item in answer.json()["items"]]


def test_revoke_then_retry_the_matching_tasks(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    busy, ids = queue_behind_busy_slot(dashboard, broker, MARKER)

    page.goto(f"{dashboard.url}/tasks?q={MARKER}")
    bar = bulk_bar(page)
    revoke = bar.get_by_role("button", name="Revoke matching…")
    expect(revoke).to_be_enabled()
    expect(bar.locator('[data-field="bulk-note"]')).to_be_hidden()
    revoke.click()

    dialog = page.get_by_role("dialog", name="Revoke 3 tasks?")
    expect(dialog).to_be_visible()
    expect(dialog.locator("dd")).to_have_count(3)
    assert sorted(dialog.locator("dd").all_inner_texts()) == sorted(ids)
    expect(dialog.locator("dt")).to_have_text(["dashboard.demo.tasks.echo"] * 3)
    dialog.get_by_role("button", name="Revoke 3 tasks").click()
    expect(dialog).to_be_hidden()

    outcome = bar.locator("[data-action-outcome]")
    expect(outcome.locator('[data-field="action-summary"]')).to_have_text("3 revoked; 1 worker replied", timeout=WAIT_MS)
    expect(outcome.locator("li")).to_have_text([re.compile(rf"^{WORKER}: ")])
    expect(outcome).to_have_attribute("data-level", "ok")
    for task_id in ids:
        wait_state(dashboard, task_id, "REVOKED")
    wait_state(dashboard, busy, "SUCCESS")  # the bulk revoke touched nothing else
    wait_until(lambda: sorted(searched(dashboard, q=MARKER, state="REVOKED")) == sorted(ids), 10,
               message="the revoked tasks never reached the history")

    page.goto(f"{dashboard.url}/tasks?q={MARKER}&state=REVOKED")
    bar = bulk_bar(page)
    bar.get_by_role("button", name="Retry matching…").click()
    dialog = page.get_by_role("dialog", name="Retry 3 tasks?")
    expect(dialog).to_be_visible()
    expect(dialog.locator("dd")).to_have_count(3)
    dialog.get_by_role("button", name="Retry 3 tasks").click()

    outcome = bar.locator("[data-action-outcome]")
    expect(outcome.locator('[data-field="action-summary"]')).to_have_text("3 sent again as new tasks", timeout=WAIT_MS)
    expect(outcome.locator("li")).to_have_count(3)
    new_ids = outcome.locator("li").all_inner_texts()
    assert all(UUID.match(task_id) for task_id in new_ids) and not set(new_ids) & set(ids)
    for task_id in new_ids:
        done = wait_state(dashboard, task_id, "SUCCESS")
        assert done["name"] == "dashboard.demo.tasks.echo"


def test_cancelling_after_the_count_sends_only_the_dry_run(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    marker = "bulk-page-cancel"
    busy, ids = queue_behind_busy_slot(dashboard, broker, marker, count=2)
    posts = record_posts(page)
    page.goto(f"{dashboard.url}/tasks?q={marker}")
    revoke = bulk_bar(page).get_by_role("button", name="Revoke matching…")
    revoke.click()
    dialog = page.get_by_role("dialog", name="Revoke 2 tasks?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(revoke).to_be_focused()

    assert posts == [f"{dashboard.url}/api/tasks/bulk"]  # the dry run only
    assert bulk_bar(page).locator("[data-action-outcome]").get_attribute("data-level") is None
    for task_id in ids:  # nothing revoked: they run once the slot is free
        wait_state(dashboard, task_id, "SUCCESS")
    wait_state(dashboard, busy, "SUCCESS")


def test_no_filter_disables_the_buttons(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, _ = cluster
    page.goto(f"{dashboard.url}/tasks")
    bar = bulk_bar(page)
    expect(bar).to_be_visible()
    expect(bar.get_by_role("button", name="Revoke matching…")).to_be_disabled()
    expect(bar.get_by_role("button", name="Retry matching…")).to_be_disabled()
    expect(bar.locator('[data-field="bulk-note"]')).to_have_text("Set a filter first")

    page.get_by_label("Search").fill("bulk-page-nothing-matches")
    page.get_by_role("button", name="Apply").click()
    expect(bar.get_by_role("button", name="Revoke matching…")).to_be_enabled()
    expect(bar.locator('[data-field="bulk-note"]')).to_be_hidden()
    bar.get_by_role("button", name="Revoke matching…").click()
    expect(bar.locator('[data-field="action-summary"]')).to_have_text("Nothing to revoke.")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert searched(dashboard, q="bulk-page-nothing-matches") == []
