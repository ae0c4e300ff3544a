"""Layout and runtimes in a real browser: every page fits a 360 px phone with real data, a state
counter opens its tasks, and an orphaned task's runtime stops at its worker's loss and stays put."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Page, expect

from helpers import DashboardProc, dashboard_with_worker, producer_app, send, wait_stored, wait_until

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
#: Long names without a break opportunity a browser would use on its own: they must not widen a page.
WORKER = "a-rather-long-worker-hostname-for-narrow-screens"
HOSTNAME = f"{WORKER}@test"
QUEUE = "a_rather_long_queue_name_for_narrow_screens"


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/3"
    with dashboard_with_worker(broker, tmp_path_factory.mktemp("layout"), WORKER, queues=f"celery,{QUEUE}") as (
            dashboard, _):
        yield dashboard, broker


def finished(dashboard: DashboardProc, *task_ids: str) -> None:
    for task_id in task_ids:
        wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] in ("SUCCESS", "FAILURE"), 20,
                   message=f"task {task_id} never finished")
    wait_stored(dashboard, list(task_ids))


def assert_fits(page: Page, path: str) -> None:
    """No horizontal page scroll, and every nav item wholly inside the viewport."""
    scroll_width, inner_width, inner_height = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth, window.innerHeight]")
    assert scroll_width <= inner_width, f"{path}: the page is {scroll_width} px wide in a {inner_width} px viewport"
    items = page.locator(".app-nav a")
    expect(items).to_have_count(7)
    for item in items.all():
        expect(item).to_be_visible()
        box = item.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["y"] >= 0, f"{path}: nav item {item.text_content()!r} at {box}"
        assert box["x"] + box["width"] <= inner_width and box["y"] + box["height"] <= inner_height, \
            f"{path}: nav item {item.text_content()!r} clipped: {box}"


def test_every_page_fits_a_360_px_screen(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    ok = send(app, "add", 2, 2)
    failed = send(app, "fail_payment", "ORD-" + "9" * 120)  # a traceback with long lines
    long_arg = send(app, "echo", "x" * 400)  # one unbroken 400-character value
    queued = send(app, "add", 1, 1, queue=QUEUE)
    finished(dashboard, ok, failed, long_arg, queued)
    page.set_viewport_size(PHONE)

    checks = {
        "/": [f'[data-panel="workers"] [data-hostname="{HOSTNAME}"]', f'[data-panel="tasks"] tr[data-uuid="{failed}"]',
              f'[data-panel="queues"] tr[data-queue="{QUEUE}"]'],
        "/tasks": [f'[data-results] tr[data-uuid="{long_arg}"]'],
        f"/tasks/{failed}": ['[data-event-type="task-failed"]'],
        f"/tasks/{long_arg}": ['[data-event-type="task-succeeded"]'],
        "/workers": [f'[data-panel="workers"] [data-hostname="{HOSTNAME}"]'],
        f"/workers/{HOSTNAME}": ['[data-section="registered"] li'],
        "/queues": [f'[data-panel="queues"] tr[data-queue="{QUEUE}"]'],
        f"/queues/{QUEUE}": ['[data-panel="queue-detail"] [data-list="workers"] li'],
        "/task-types": ['[data-panel="task-types"] tr[data-task-type="dashboard.demo.tasks.fail_payment"]'],
        "/task-types/dashboard.demo.tasks.fail_payment": ['[data-panel="task-type-detail"] [data-list="exceptions"] tr'],
        "/alerts": ['[data-panel="alerts"] [data-no-rules]'],
        "/periodic": ['[data-panel="periodic"] [data-field="empty"]:has-text("--app")'],
    }
    for path, ready in checks.items():
        page.goto(dashboard.url + path)
        for selector in ready:  # real data on the page before it is measured
            expect(page.locator(selector).first, f"{path}: {selector}").to_be_visible()
        if path == f"/tasks/{failed}":
            expect(page.locator('pre[data-field="traceback"]')).to_contain_text("ValueError")
        if path == f"/workers/{HOSTNAME}":
            expect(page.locator('[data-panel="worker-detail"] [data-field="pool"]')).to_have_text("eventlet")
        assert_fits(page, path)


def test_the_desktop_header_stays_one_row(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, _ = cluster
    page.goto(dashboard.url + "/")  # the page fixture's 1400 px viewport
    header = page.locator(".app-header").bounding_box()
    assert header is not None and header["height"] <= 45, header
    for item in page.locator(".app-nav a").all():
        box = item.bounding_box()
        assert box is not None and box["y"] + box["height"] <= header["height"], box


def test_the_failure_counter_opens_the_failed_tasks(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    ok = send(app, "add", 3, 4)
    failed = send(app, "fail_payment", "ORD-1234")
    finished(dashboard, ok, failed)

    page.goto(dashboard.url + "/")
    page.locator('[data-counter="FAILURE"] a').click()
    expect(page).to_have_url(f"{dashboard.url}/tasks?state=FAILURE")
    expect(page.locator(f'[data-results] tr[data-uuid="{failed}"]')).to_be_visible()
    rows = page.locator("[data-results] tr[data-uuid]")
    states = rows.evaluate_all("rows => rows.map(r => r.dataset.state)")
    assert states and set(states) == {"FAILURE"}, states
    expect(page.locator(f'[data-results] tr[data-uuid="{ok}"]')).to_have_count(0)
    expect(rows.first.locator('[data-field="state"]')).to_have_text("FAILURE")



def test_an_eta_reads_as_a_local_time_like_the_others(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    """Celery sends a task's ETA as an ISO 8601 string with its zone: the task page shows it as a local time in
    the same form as the task's other times (in Tokyo here), with the string as sent in its title."""
    dashboard, broker = cluster
    task_id = send(producer_app(broker), "add", 1, 2, countdown=1)
    finished(dashboard, task_id)
    task = dashboard.task(task_id)
    assert task is not None and isinstance(task["eta"], str) and task["eta"].endswith("+00:00"), task
    context = page.context.browser.new_context(timezone_id="Asia/Tokyo")  # type: ignore[union-attr]
    try:
        tokyo = context.new_page()
        tokyo.goto(f"{dashboard.url}/tasks/{task_id}")
        eta = tokyo.locator('[data-panel="task-detail"] dd[data-field="eta"]')
        expect(eta).to_have_attribute("title", task["eta"])
        text = eta.text_content() or ""
        assert "+00:00" not in text and "T" not in text, text
        # Tokyo is UTC+9 all year: the ETA's hour there, in either clock the locale uses
        hour, minute = (int(task["eta"][11:13]) + 9) % 24, task["eta"][14:16]
        assert re.search(rf"\b(0?{hour}|{hour % 12 or 12}):{minute}:", text), text
    finally:
        context.close()


def seconds_of(text: str) -> float:
    """The N of "unknown: worker lost after N" in seconds (N as "850 ms" or "2.45 s")."""
    match = re.fullmatch(r"unknown: worker lost after ([\d.]+) (ms|s)", text)
    assert match, text
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def test_an_orphaned_tasks_runtime_stops_at_the_loss_of_its_worker(page: Page, redis_port: int,
                                                                    tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/0"
    with dashboard_with_worker(broker, tmp_path, "doomed", extra_args=("--heartbeat-slack", "1")) as (
            dashboard, worker):
        task_id = send(producer_app(broker), "slow_report", 60)
        wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] == "STARTED", 15, message="never started")
        page.goto(f"{dashboard.url}/tasks/{task_id}")
        facts = page.locator('[data-panel="task-detail"] dd[data-field="runtime"]')
        step = page.locator('[data-panel="task-detail"] [data-field="step-runtime"]')
        expect(page.locator('[data-field="step-runtime-note"]')).to_have_text("running")

        worker.kill()  # kill -9: no worker-offline, the task is orphaned when the heartbeats stop
        expect(facts).to_contain_text("unknown: worker lost after", timeout=10_000)
        expect(step).to_have_text(facts.text_content() or "")  # the same N in both places
        expect(page.locator('[data-step="runtime"]')).to_have_attribute("data-lost", "")
        expect(page.locator('[data-field="step-runtime-note"]')).to_have_text("")

        # N runs from the start to the worker's last heartbeat (on the worker's clock), not to now.
        task = dashboard.task(task_id)
        lost = dashboard.get("/api/workers/doomed@test").json()
        assert task is not None and task["orphaned"] and lost["status"] == "lost"
        last_heard = max([lost["last_heartbeat"] - (lost["clock_skew"] or 0.0)]
                         + [e["timestamp"] for e in task["events"]])
        text = facts.text_content() or ""
        assert seconds_of(text) == pytest.approx(last_heard - task["started"], abs=0.051)

        start = page.evaluate("Date.now()")
        for waited_ms in (1000, 2000):  # the text stays put while time passes
            page.wait_for_function("([start, ms]) => Date.now() >= start + ms", arg=[start, waited_ms])
            assert facts.text_content() == text
            assert step.text_content() == text
