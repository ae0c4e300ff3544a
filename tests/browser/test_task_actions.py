"""Task actions from the task page in a real browser: revoke, terminate, cancel, retry with edited
arguments and the links between a task and its retry, a retry that cannot be sent, and actions turned off."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from helpers import (DashboardProc, dashboard_with_worker, producer_app, record_posts, send, start_dashboard,
                     wait_broker_connected, wait_until, wait_task_state as wait_state)

pytestmark = pytest.mark.browser

QUEUE = "page-actions-q"
WORKER = "actor@test"
#: Long enough for a revoke to reach the worker, or the task's state to change on the page.
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/14"
    # prefork with one slot: a task sent while the slot is busy waits in the worker, where a revoke reaches it
    with dashboard_with_worker(broker, tmp_path_factory.mktemp("task-actions"), "actor", queues=QUEUE,
                               pool="prefork", concurrency=1) as (dashboard, _):
        yield dashboard, broker




def state_badge(page: Page) -> Locator:
    return page.locator('[data-panel="task-detail"] .task-title [data-field="state"]')



def assert_facts(dialog: Locator, expected: list[tuple[str, str]]) -> None:
    """The dialog names its target in exactly these label/value rows, each set as plain text."""
    expect(dialog.locator("dt")).to_have_text([label for label, _ in expected])
    expect(dialog.locator("dd")).to_have_text([value for _, value in expected])
    assert dialog.locator("dl *").count() == 3 * len(expected)  # div, dt, dd: nothing made from the data


def test_revoke_a_queued_task_from_its_page(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    busy = send(app, "slow_report", 5, queue=QUEUE)  # the worker's one slot
    wait_state(dashboard, busy, "STARTED")
    queued = send(app, "add", 40, 2, queue=QUEUE)
    wait_until(lambda: dashboard.task(queued), 10, message="queued task never seen")

    page.goto(f"{dashboard.url}/tasks/{queued}")
    actions = page.locator("[data-task-actions]")
    revoke = actions.get_by_role("button", name="Revoke")
    expect(revoke).to_be_visible()
    expect(actions.get_by_role("button", name="Terminate…")).to_be_hidden()  # not running

    revoke.click()
    dialog = page.get_by_role("dialog", name="Revoke this task?")
    expect(dialog).to_be_visible()
    assert_facts(dialog, [("Task", "dashboard.demo.tasks.add"), ("Id", queued)])
    dialog.get_by_role("button", name="Revoke").click()
    expect(dialog).to_be_hidden()

    outcome = actions.locator("[data-action-outcome]")
    expect(outcome.locator("li")).to_have_text([re.compile(rf"^{WORKER}: tasks .*{queued}.* flagged as revoked$")],
                                               timeout=WAIT_MS)
    expect(outcome).to_have_attribute("data-level", "ok")
    expect(state_badge(page)).to_have_text("REVOKED", timeout=WAIT_MS)
    expect(revoke).to_be_hidden()  # live: nothing left to revoke, and it may be sent again instead
    expect(actions.get_by_role("button", name="Retry…")).to_be_visible()
    expect(actions.locator('[data-field="actions-none"]')).to_be_hidden()
    wait_state(dashboard, busy, "SUCCESS")  # the revoke touched nothing else


def test_terminate_a_running_task_with_kill(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    running = send(producer_app(broker), "slow_report", 60, queue=QUEUE)
    page.goto(f"{dashboard.url}/tasks/{running}")
    actions = page.locator("[data-task-actions]")
    terminate = actions.get_by_role("button", name="Terminate…")
    expect(terminate).to_be_visible(timeout=WAIT_MS)  # once it runs
    expect(state_badge(page)).to_have_text("STARTED")

    actions.get_by_label("Signal").select_option("KILL")
    terminate.click()
    dialog = page.get_by_role("dialog", name="Terminate this task?")
    expect(dialog).to_be_visible()
    assert_facts(dialog, [("Task", "dashboard.demo.tasks.slow_report"), ("Id", running), ("Worker", WORKER),
                          ("Signal", "SIGKILL")])
    dialog.get_by_role("button", name="Terminate (SIGKILL)").click()

    expect(state_badge(page)).to_have_text("REVOKED", timeout=WAIT_MS)
    expect(actions.locator("[data-action-outcome] li")).to_have_text([re.compile(rf"^{WORKER}: terminate: {running}$")])
    expect(terminate).to_be_hidden()
    expect(actions.get_by_role("button", name="Revoke")).to_be_hidden()
    revoked = wait_state(dashboard, running, "REVOKED")
    assert next(e for e in revoked["events"] if e["type"] == "task-revoked").get("terminated") is True


def test_cancelling_the_dialog_sends_nothing(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    running = send(producer_app(broker), "slow_report", 60, queue=QUEUE)
    try:
        wait_state(dashboard, running, "STARTED")
        posts = record_posts(page)
        page.goto(f"{dashboard.url}/tasks/{running}")
        actions = page.locator("[data-task-actions]")
        terminate = actions.get_by_role("button", name="Terminate…")
        revoke = actions.get_by_role("button", name="Revoke")

        terminate.click()
        dialog = page.get_by_role("dialog", name="Terminate this task?")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice first
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(terminate).to_be_focused()  # the dialog has closed, and handled it

        revoke.click()
        dialog = page.get_by_role("dialog", name="Revoke this task?")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Cancel").click()
        expect(revoke).to_be_focused()

        assert posts == []
        assert actions.locator("[data-action-outcome]").get_attribute("data-level") is None  # nothing shown
        task = dashboard.task(running)
        assert task is not None and task["state"] == "STARTED"
        assert not [e for e in task["events"] if e["type"] == "task-revoked"]
        expect(state_badge(page)).to_have_text("STARTED")
    finally:  # free the worker's one slot
        requests.post(f"{dashboard.url}/api/tasks/{running}/revoke", json={"terminate": True, "signal": "KILL"},
                      timeout=10)
        wait_state(dashboard, running, "REVOKED")


def test_no_buttons_when_actions_are_off(page: Page, redis_port: int, tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/14"
    dashboard = start_dashboard(broker, tmp_path, extra_args=("--read-only",))
    try:
        wait_broker_connected(dashboard)
        waiting = send(producer_app(broker), "add", 1, 2, queue="page-actions-nobody")  # no worker: stays PENDING
        wait_until(lambda: dashboard.task(waiting), 10, message="task never seen")
        page.goto(f"{dashboard.url}/tasks/{waiting}")
        actions = page.locator("[data-task-actions]")
        expect(state_badge(page)).to_have_text("PENDING")
        expect(actions.locator('[data-field="actions-off"]')).to_have_text("Actions are off on this dashboard.")
        expect(actions.get_by_role("button")).to_have_count(0)  # the dialog's are not rendered either
    finally:
        dashboard.stop()


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def wait_retryable(dashboard: DashboardProc, task_id: str) -> dict[str, Any]:
    """Wait until a retry of the task could be sent (its worker has reported its registered tasks)."""
    return wait_until(lambda: (p := dashboard.get(f"/api/tasks/{task_id}/retry").json())["retryable"] and p, 30,
                      message=lambda: f"{task_id} never retryable: {dashboard.get(f'/api/tasks/{task_id}/retry').json()}")


def retry_field(dialog: Locator, name: str) -> Locator:
    return dialog.get_by_role("textbox", name=f"{name} (a JSON {'array' if name == 'Args' else 'object'})", exact=True)


def test_retry_a_revoked_task_with_edited_args(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    busy = send(app, "slow_report", 2, queue=QUEUE)  # the worker's one slot: the add waits in the worker
    wait_state(dashboard, busy, "STARTED")
    old = send(app, "add", 40, 2, queue=QUEUE)
    wait_until(lambda: dashboard.task(old), 10, message="queued task never seen")
    assert requests.post(f"{dashboard.url}/api/tasks/{old}/revoke", json={}, timeout=10).status_code == 200
    wait_state(dashboard, old, "REVOKED")
    wait_retryable(dashboard, old)

    page.goto(f"{dashboard.url}/tasks/{old}")
    actions = page.locator("[data-task-actions]")
    retry = actions.get_by_role("button", name="Retry…")
    expect(retry).to_be_enabled()
    expect(actions.locator('[data-field="retry-note"]')).to_have_text("")
    expect(actions.locator('[data-field="actions-none"]')).to_be_hidden()
    expect(page.locator("[data-retry-links]")).to_be_hidden()  # not a retry, not retried yet

    retry.click()
    dialog = page.get_by_role("dialog", name="Retry this task?")
    expect(dialog).to_be_visible()
    assert_facts(dialog, [("Task", "dashboard.demo.tasks.add"), ("Queue", QUEUE), ("Retry of", old)])
    expect(retry_field(dialog, "Args")).to_have_value("[\n  40,\n  2\n]")  # exactly what the worker was given
    expect(retry_field(dialog, "Kwargs")).to_have_value("{}")
    retry_field(dialog, "Args").fill("[20, 22]")
    dialog.get_by_role("button", name="Send as a new task").click()
    expect(dialog).to_be_hidden()

    outcome = actions.locator("[data-action-outcome]")
    expect(outcome).to_have_attribute("data-level", "ok", timeout=WAIT_MS)
    expect(outcome.locator('[data-field="action-summary"]')).to_have_text("Sent as")
    sent_as = outcome.get_by_role("link")
    expect(sent_as).to_have_text(UUID)
    new = sent_as.text_content() or ""
    assert new != old
    expect(sent_as).to_have_attribute("href", f"/tasks/{new}")
    expect(page.locator("[data-retried-as]")).to_have_text(f"Retried as {new}")  # at once, before any refetch
    expect(page.locator("[data-retry-of]")).to_be_hidden()

    sent_as.click()
    expect(page).to_have_url(f"{dashboard.url}/tasks/{new}")
    expect(state_badge(page)).to_have_text("SUCCESS", timeout=WAIT_MS)
    expect(page.locator('[data-payload="result"] pre')).to_have_text("42")
    retried_from = page.locator("[data-retry-of]")
    expect(retried_from).to_have_text(f"Retried from {old}")
    expect(retried_from.get_by_role("link")).to_have_attribute("href", f"/tasks/{old}")
    expect(page.locator("[data-retried-as]")).to_be_hidden()
    # a finished task that succeeded has nothing to retry
    expect(page.locator("[data-task-actions]").get_by_role("button", name="Retry…")).to_be_hidden()
    expect(page.locator('[data-task-actions] [data-field="actions-none"]')).to_be_visible()

    page.goto(f"{dashboard.url}/tasks/{old}")  # the old one's page, from the dashboard's own links
    expect(page.locator("[data-retried-as]")).to_have_text(f"Retried as {new}")
    expect(page.locator("[data-retried-as]").get_by_role("link")).to_have_attribute("href", f"/tasks/{new}")
    assert dashboard.task(old)["retried_as"] == [new]  # type: ignore[index]


def test_a_bad_json_edit_is_shown_and_sends_nothing(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    failed = send(producer_app(broker), "fail_payment", "ORD-7", queue=QUEUE)
    wait_state(dashboard, failed, "FAILURE")
    wait_retryable(dashboard, failed)
    posts = record_posts(page)
    page.goto(f"{dashboard.url}/tasks/{failed}")
    actions = page.locator("[data-task-actions]")
    retry = actions.get_by_role("button", name="Retry…")

    retry.click()
    dialog = page.get_by_role("dialog", name="Retry this task?")
    args, kwargs = retry_field(dialog, "Args"), retry_field(dialog, "Kwargs")
    expect(args).to_have_value('[\n  "ORD-7"\n]')
    send_button = dialog.get_by_role("button", name="Send as a new task")
    error = dialog.locator('[data-field="retry-error"]')

    args.fill('["ORD-8"')
    send_button.click()
    expect(error).to_have_text(re.compile(r"^Args: not valid JSON \(.+\)\.$"))
    expect(dialog).to_be_visible()  # still open, the edit kept
    expect(args).to_be_focused()
    expect(args).to_have_attribute("aria-invalid", "true")
    expect(args).to_have_value('["ORD-8"')

    args.fill('["ORD-8"]')
    expect(error).to_be_hidden()  # typing clears it
    kwargs.fill('["not", "an object"]')
    send_button.click()
    expect(error).to_have_text("Kwargs: must be a JSON object, such as {} for none, not an array.")
    expect(kwargs).to_be_focused()
    expect(args).not_to_have_attribute("aria-invalid", "true")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(retry).to_be_focused()
    assert posts == []
    assert actions.locator("[data-action-outcome]").get_attribute("data-level") is None
    assert dashboard.task(failed)["retried_as"] == []  # type: ignore[index]

    retry.click()  # opened again: the task's own arguments, no error left over
    expect(args).to_have_value('[\n  "ORD-7"\n]')
    expect(kwargs).to_have_value("{}")
    expect(error).to_be_hidden()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert posts == []


def test_a_task_that_cannot_be_retried_says_why(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    long_order = list(range(600))  # longer than a worker shows in its events: the args are cut
    failed = send(producer_app(broker), "fail_payment", long_order, queue=QUEUE)
    wait_state(dashboard, failed, "FAILURE")
    reason = dashboard.get(f"/api/tasks/{failed}/retry").json()
    assert reason["retryable"] is False and "not known exactly" in reason["reason"], reason
    posts = record_posts(page)
    page.goto(f"{dashboard.url}/tasks/{failed}")
    actions = page.locator("[data-task-actions]")
    retry = actions.get_by_role("button", name="Retry…")
    expect(retry).to_be_visible()
    expect(retry).to_be_disabled()
    expect(actions.locator('[data-field="retry-note"]')).to_have_text(f"Cannot retry: {reason['reason']}.")
    retry.click(force=True)  # a disabled button opens nothing
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert posts == []

