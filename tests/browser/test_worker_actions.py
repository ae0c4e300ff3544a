"""Worker control from the worker page in a real browser: pool, consumers, ping, limits, shutdown through
its dialog, actions turned off, the controls an operator is shown on the worker and queue pages, and task
events turned on from the note that none arrive."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from dashboard.auth import AuthFile
from helpers import (DashboardProc, PYTHON, Proc, REPO_ROOT, dashboard_with_worker, producer_app, record_posts, send,
                     start_dashboard, start_worker, wait_answers_control, wait_broker_connected, wait_until,
                     wait_worker_online)

pytestmark = pytest.mark.browser

BROKER_DB = 13
QUEUE = "wctl-q"
WORKER = "controller@test"
#: Long enough for a reply and the inspect after it, or a worker's change of status, to reach the page.
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/{BROKER_DB}"
    with dashboard_with_worker(broker, tmp_path_factory.mktemp("worker-actions"), "controller", queues=QUEUE,
                               pool="prefork", concurrency=1) as (dashboard, _):
        yield dashboard, broker



def open_worker(page: Page, dashboard: DashboardProc, hostname: str) -> Locator:
    """Open the worker's page once the dashboard has inspected it (the page shows that inspect);
    return its Control section."""
    wait_until(lambda: dashboard.get(f"/api/workers/{hostname}").json().get("inspected_at"), WAIT_MS / 1000,
               message=f"{hostname} never inspected")
    page.goto(f"{dashboard.url}/workers/{hostname}")
    expect(page.locator('[data-panel="worker-detail"] [data-field="processes"]')).to_have_text(
        re.compile(r"^\d+$"), timeout=WAIT_MS)
    return page.locator("[data-worker-control]")


def outcome_lines(control: Locator) -> Locator:
    return control.locator("[data-action-outcome] li")


def consumed_row(page: Page, queue: str) -> Locator:
    return page.locator('[data-section="active_queues"] tbody tr').filter(
        has=page.locator('[data-field="name"]', has_text=re.compile(rf"^{re.escape(queue)}$")))


def test_grow_and_shrink_the_pool(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, _ = cluster
    control = open_worker(page, dashboard, WORKER)
    processes = page.locator('[data-panel="worker-detail"] [data-field="processes"]')
    expect(control.get_by_label("Processes")).to_have_value("1")

    control.get_by_role("button", name="Grow pool").click()
    expect(control.locator('[data-field="action-summary"]')).to_have_text("Grow pool by 1 sent; 1 worker replied:",
                                                                          timeout=WAIT_MS)
    expect(outcome_lines(control)).to_have_text([re.compile(rf"^{WORKER}: ")])
    # the pool resizes a few seconds after the reply: the page inspects again until it shows
    expect(processes).to_have_text(re.compile(r"^\d+, \d+$"), timeout=WAIT_MS)

    control.get_by_role("button", name="Shrink pool").click()
    expect(control.locator('[data-field="action-summary"]')).to_have_text("Shrink pool by 1 sent; 1 worker replied:",
                                                                          timeout=WAIT_MS)
    expect(processes).to_have_text(re.compile(r"^\d+$"), timeout=WAIT_MS)


def test_add_and_cancel_a_consumer(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, _ = cluster
    control = open_worker(page, dashboard, WORKER)
    expect(consumed_row(page, QUEUE)).to_have_count(1)
    expect(consumed_row(page, "wctl-extra")).to_have_count(0)

    control.get_by_label("Queue", exact=True).fill("wctl-extra")
    control.get_by_role("button", name="Add consumer").click()
    expect(control.locator('[data-field="action-summary"]')).to_have_text(
        "Add consumer (wctl-extra) sent; 1 worker replied:", timeout=WAIT_MS)
    expect(consumed_row(page, "wctl-extra")).to_have_count(1, timeout=WAIT_MS)

    page.get_by_role("button", name="Cancel consumer of wctl-extra").click()
    expect(control.locator('[data-field="action-summary"]')).to_have_text(
        "Cancel consumer (wctl-extra) sent; 1 worker replied:", timeout=WAIT_MS)
    expect(consumed_row(page, "wctl-extra")).to_have_count(0, timeout=WAIT_MS)
    expect(consumed_row(page, QUEUE)).to_have_count(1)


def test_ping_shows_the_pong(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, _ = cluster
    control = open_worker(page, dashboard, WORKER)
    control.get_by_role("button", name="Ping", exact=True).click()
    expect(outcome_lines(control)).to_have_text([f"{WORKER}: pong"], timeout=WAIT_MS)
    expect(control.locator("[data-action-outcome]")).to_have_attribute("data-level", "ok")


def test_rate_limit_of_a_registered_task_type(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, _ = cluster
    control = open_worker(page, dashboard, WORKER)
    posts = record_posts(page)
    control.get_by_label("Task type").select_option("dashboard.demo.tasks.add")

    control.get_by_label("Soft (s)").fill("30")
    control.get_by_label("Hard (s)").fill("10")
    control.get_by_role("button", name="Set time limits").click()
    expect(control.locator('[data-field="action-summary"]')).to_have_text("Time limits: nothing sent.")
    expect(outcome_lines(control)).to_have_text(["Soft limit: must not be longer than the hard limit (10 s)."])
    assert posts == []

    control.get_by_label("Rate", exact=True).fill("10/m")
    control.get_by_role("button", name="Set rate limit").click()
    expect(outcome_lines(control)).to_have_text([re.compile(rf"^{WORKER}: new rate limit set successfully$")],
                                                timeout=WAIT_MS)


def test_shutdown_through_its_dialog(page: Page, cluster: tuple[DashboardProc, str], tmp_path: Path) -> None:
    dashboard, broker = cluster
    worker = start_worker(broker, "doomed", tmp_path, concurrency=1, queues="wctl-doomed-q", pool="prefork")
    try:
        wait_worker_online(dashboard, "doomed@test", worker=worker)
        wait_answers_control(broker, "doomed@test", worker=worker)  # online comes before its control subscription
        control = open_worker(page, dashboard, "doomed@test")
        status = page.locator('[data-panel="worker-detail"] .worker-title [data-field="status"]')
        expect(status).to_have_text("online")
        shutdown = control.get_by_role("button", name="Shutdown…")
        posts = record_posts(page)

        shutdown.click()  # asked first: cancelling sends nothing
        dialog = page.get_by_role("dialog", name="Shut down this worker?")
        expect(dialog).to_be_visible()
        expect(dialog.locator("dt")).to_have_text(["Worker"])
        expect(dialog.locator("dd")).to_have_text(["doomed@test"])
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(shutdown).to_be_focused()
        shutdown.click()
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        assert posts == []
        assert control.locator("[data-action-outcome]").get_attribute("data-level") is None
        assert worker.alive()

        shutdown.click()
        dialog.get_by_role("button", name="Shut down").click()
        expect(dialog).to_be_hidden()
        expect(status).to_have_text("offline", timeout=WAIT_MS)
        expect(control.locator("[data-action-outcome]")).to_have_attribute("data-level", "ok")
        assert posts == [f"{dashboard.url}/api/workers/doomed%40test/shutdown"]
        wait_until(lambda: not worker.alive(), WAIT_MS / 1000, message="the worker process never exited")
    finally:
        worker.end()


def test_no_controls_when_actions_are_off(page: Page, cluster: tuple[DashboardProc, str], redis_port: int,
                                          tmp_path: Path) -> None:
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/{BROKER_DB}", tmp_path, extra_args=("--read-only",))
    try:
        wait_broker_connected(dashboard)
        wait_worker_online(dashboard, WORKER)
        control = open_worker(page, dashboard, WORKER)
        expect(control.locator('[data-field="control-off"]')).to_have_text("Actions are off on this dashboard.")
        expect(control.get_by_role("button")).to_have_count(0)
        for role in ("textbox", "spinbutton", "combobox"):
            expect(control.get_by_role(role)).to_have_count(0)  # hidden with their group
        expect(consumed_row(page, QUEUE)).to_have_count(1)
        expect(page.locator('[data-section="active_queues"]').get_by_role("button")).to_have_count(0)
    finally:
        dashboard.stop()


def test_an_operator_sees_only_the_controls_the_role_allows(page: Page, cluster: tuple[DashboardProc, str],
                                                            redis_port: int, tmp_path: Path) -> None:
    auth = AuthFile.create_or_open(str(tmp_path / "auth.toml"))
    auth.add_user("olive", "operator", "operator pass")
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/{BROKER_DB}", tmp_path,
                                extra_args=("--auth-file", str(tmp_path / "auth.toml")))
    basic = ("olive", "operator pass")
    try:
        wait_until(lambda: dashboard.get(f"/api/workers/{WORKER}", auth=basic).json().get("inspected_at"),
                   WAIT_MS / 1000, message=f"{WORKER} never inspected")
        page.goto(f"{dashboard.url}/workers/{WORKER}")
        page.fill('input[name="name"]', "olive")
        page.fill('input[name="password"]', "operator pass")
        page.click('button[type="submit"]')
        expect(page).to_have_url(f"{dashboard.url}/workers/{WORKER}")
        expect(page.locator(".session-user")).to_have_text("olive · operator")
        control = page.locator("[data-worker-control]")
        expect(consumed_row(page, QUEUE)).to_have_count(1, timeout=WAIT_MS)

        expect(control.get_by_role("button")).to_have_text(["Ping", "Enable task events"])
        expect(control.locator('[data-field="control-off"]')).to_have_text(
            "Pool, consumers, limits, restart and shutdown need the admin role.")
        for role in ("textbox", "spinbutton", "combobox"):
            expect(control.get_by_role(role)).to_have_count(0)  # their groups are not shown
        queues = page.locator('[data-section="active_queues"]')
        expect(queues.get_by_role("columnheader")).to_have_text(["Queue", "Exchange", "Type", "Routing key"])
        expect(queues.get_by_role("button")).to_have_count(0)  # no Cancel beside a queue
        expect(consumed_row(page, QUEUE).get_by_role("cell")).to_have_count(4)

        posts = record_posts(page)
        control.get_by_role("button", name="Ping", exact=True).click()  # what the role allows works
        expect(outcome_lines(control)).to_have_text([f"{WORKER}: pong"], timeout=WAIT_MS)
        assert posts == [f"{dashboard.url}/api/workers/{WORKER.replace('@', '%40')}/ping"]

        wait_until(lambda: dashboard.get(f"/api/queues/{QUEUE}", auth=basic).status_code == 200, WAIT_MS / 1000,
                   message=f"{QUEUE} never watched")
        page.goto(f"{dashboard.url}/queues/{QUEUE}")
        actions = page.locator("[data-queue-actions]")
        expect(actions.locator('[data-field="actions-off"]')).to_have_text("Purge needs the admin role.")
        expect(actions.get_by_role("button")).to_have_count(0)
    finally:
        dashboard.stop()


QUIET_APP = """\
from dashboard.demo.tasks import app
app.conf.worker_send_task_events = False  # a worker started without task events: heartbeats only
"""


def test_enable_task_events_from_the_note(page: Page, redis_port: int, tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/12"
    (tmp_path / "quiet_worker_app.py").write_text(QUIET_APP)
    dashboard = start_dashboard(broker, tmp_path)
    worker: Proc | None = None
    try:
        wait_broker_connected(dashboard)
        worker = Proc("worker-unheard", [
            PYTHON, "-m", "celery", "-A", "quiet_worker_app", "worker", "-P", "prefork", "-c", "1",
            "-n", "unheard@test", "--heartbeat-interval", "1", "-l", "warning", "--without-gossip",
            "--without-mingle", "-Q", "wctl-quiet-q",
        ], tmp_path, env={"CELERY_BROKER_URL": broker, "PYTHONPATH": f"{tmp_path}:{REPO_ROOT}"})
        wait_worker_online(dashboard, "unheard@test", worker=worker)

        page.clock.install()
        page.goto(dashboard.url + "/")
        expect(page.locator('[data-panel="workers"] [data-hostname="unheard@test"]')).to_have_attribute(
            "data-status", "online")
        page.clock.fast_forward(11_000)
        note = page.locator('[data-banner-key="no-task-events"]')
        expect(note).to_contain_text("no task events have arrived")
        posts = record_posts(page)
        note.get_by_role("button", name="Enable task events").click()
        expect(note.get_by_role("status")).to_have_text(
            "Enable task events sent to 1 worker; 1 replied: unheard@test: task events enabled", timeout=WAIT_MS)
        assert posts == [f"{dashboard.url}/api/workers/unheard%40test/enable-events"]

        app = producer_app(broker)
        app.conf.task_send_sent_event = False  # only the worker's own events count
        done = send(app, "add", 2, 3, queue="wctl-quiet-q")
        wait_until(lambda: (t := dashboard.task(done)) and t["state"] == "SUCCESS", WAIT_MS / 1000,
                   message="the worker's task events never arrived")
        expect(note).to_have_count(0, timeout=WAIT_MS)
    finally:
        if worker is not None:
            worker.end()
        dashboard.stop()
