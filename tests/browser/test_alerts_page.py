"""Alert rules in a real browser: a stuck task's alert in every page's banner and on /alerts, silenced and
unsilenced by an operator (out of the banner and back, marked on the page), resolved into the history when the
task ends; a hostile rule name stays text; a viewer without actions sees no controls; no rules says how to add them."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from helpers import (DashboardProc, Proc, producer_app, send, start_dashboard, start_worker, wait_broker_connected,
                     wait_task_state, wait_worker_online)

pytestmark = pytest.mark.browser

#: The broker's Redis database; this module's tasks go to a queue of their own.
BROKER_DB = 12
QUEUE = "alerts_page"
WORKER = "alerter"
XSS = "<img src=x onerror=alert(1)>"
#: How long the stuck task runs, in seconds: long enough to silence it, unsilence it and silence it again.
STUCK_SECONDS = 12
#: How long an alert may take to show, in milliseconds (a 0.2 s check, the push, a redraw, a refetch).
ALERT_MS = 10_000
# A time to come as the page writes it: "HH:MM", with its day when it falls after midnight ("00:12 Tue, Dec 1").
UNTIL = r"\d\d:\d\d(?: \w{3}, \w{3} \d{1,2})?"
RULES = f"""
[[rule]]
name = "{XSS}"
kind = "task-runtime"
task = "dashboard.demo.tasks.slow_report"
seconds = 1
severity = "critical"

[[rule]]
name = "backing up"
kind = "queue-depth"
queue = "{QUEUE}"
above = 500
for = 120
"""
#: Fires 1 s after start: a named task type that never succeeded (counted from the dashboard's start).
NEVER_RULES = """
[[rule]]
name = "nightly"
kind = "no-success"
task = "reports.nightly"
seconds = 1
"""
BANNER = '[data-banner-key="alert-rules"]'
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    """A dashboard with the rules above (checked every 0.2 s) and a worker on the module's queue."""
    broker = f"redis://127.0.0.1:{redis_port}/{BROKER_DB}"
    log_dir = tmp_path_factory.mktemp("alerts-page")
    rules = log_dir / "alerts.toml"
    rules.write_text(RULES)
    dashboard = start_dashboard(broker, log_dir, extra_args=("--alerts", str(rules), "--alert-interval", "0.2"))
    worker: Proc | None = None
    try:
        wait_broker_connected(dashboard)
        worker = start_worker(broker, WORKER, log_dir, queues=QUEUE)
        wait_worker_online(dashboard, f"{WORKER}@test", worker=worker)
        yield dashboard, broker
    finally:
        if worker is not None:
            worker.end()
        dashboard.stop()


def assert_inert(page: Page) -> None:
    """Nothing of the hostile rule name became markup."""
    assert page.locator("img[src='x'], img[onerror], [onerror]").count() == 0


def firing_item(page: Page, alert_id: int | None = None) -> Locator:
    selector = f'[data-list="firing"] li[data-alert-id="{alert_id}"]' if alert_id else '[data-list="firing"] li'
    return page.locator(selector)


def test_a_stuck_task_is_announced_silenced_and_resolved(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(dashboard.url + "/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected")
    expect(page.locator(BANNER)).to_have_count(0)

    task_id = send(producer_app(broker), "slow_report", STUCK_SECONDS, queue=QUEUE)
    summary = f"task dashboard.demo.tasks.slow_report has been running on {WORKER}@test for"

    # Every page's banner: red (the rule is critical), the summary as text, a link to /alerts.
    banner = page.locator(BANNER)
    expect(banner.locator('[data-field="text"]')).to_have_text(
        re.compile(rf"^1 alert firing: {re.escape(summary)} \d+ s \(limit 1 s\)$"), timeout=ALERT_MS)
    expect(banner).to_have_attribute("data-level", "error")
    assert_inert(page)
    banner.get_by_role("link", name="See alerts").click()
    expect(page).to_have_url(dashboard.url + "/alerts")
    expect(page.locator('nav.app-nav a[href="/alerts"]')).to_have_attribute("aria-current", "page")

    # Firing now: severity, the rule's name as text, the summary, the subject linked to the task, since when.
    item = firing_item(page)
    expect(item).to_have_count(1)
    alert_id = int(item.get_attribute("data-alert-id") or "0")
    expect(item.locator('[data-field="severity"]')).to_have_text("critical")
    expect(item.locator('[data-field="rule"]')).to_have_text(XSS)
    expect(item.locator('[data-field="summary"]')).to_contain_text(summary)
    expect(item.locator('[data-field="subject"]')).to_have_text(task_id)
    expect(item.locator('[data-field="subject"]')).to_have_attribute("href", f"/tasks/{task_id}")
    expect(item.locator('[data-field="duration"]')).to_have_text(re.compile(r"^for \d+ s$"))
    expect(item.locator('[data-field="silenced"]')).to_have_text("")
    # The rules in words, the history's first row still firing, and nothing hostile became markup.
    rules = page.locator('[data-list="rules"] li')
    expect(rules).to_have_count(2)
    expect(rules.locator('[data-field="name"]')).to_have_text([XSS, "backing up"])
    expect(rules.locator('[data-field="severity"]')).to_have_text(["critical", "warning"])
    expect(rules.locator('[data-field="limits"]')).to_have_text([
        "task-runtime: dashboard.demo.tasks.slow_report running over 1 s",
        f"queue-depth: {QUEUE} over 500 messages for 2 min"])
    expect(page.locator("[data-no-rules]")).to_be_hidden()
    history_row = page.locator(f'[data-list="history"] tr[data-alert-id="{alert_id}"]')
    expect(history_row.locator('[data-field="outcome"]')).to_have_text("firing")
    expect(history_row.locator('[data-field="rule"]')).to_have_text(XSS)
    assert_inert(page)

    # An operator silences this alert for 15 minutes: out of the banner, marked on the page, listed.
    controls = item.locator("[data-silence-controls]")
    expect(controls).to_be_visible()
    expect(controls.locator('[data-action="silence"]')).to_be_disabled()
    controls.locator("[data-silence-choice]").select_option("15")
    controls.locator('[data-action="silence"]').click()
    expect(controls.locator('[data-field="action-summary"]')).to_have_text(re.compile(rf"^Silenced until {UNTIL}$"))
    expect(page.locator(BANNER)).to_have_count(0)
    expect(item).to_have_attribute("data-silenced", "")
    expect(item.locator('[data-field="silenced"]')).to_have_text(re.compile(rf"^silenced until {UNTIL} by local$"))
    silence = page.locator('[data-list="silences"] tr')
    expect(silence).to_have_count(1)
    expect(silence.locator('[data-field="rule"]')).to_have_text(XSS)
    expect(silence.locator('[data-field="subject"]')).to_have_text(task_id)
    expect(silence.locator('[data-field="who"]')).to_have_text("local")

    # Unsilenced from the Silences list: the banner is back; then the whole rule is silenced for an hour.
    silence.get_by_role("button", name="Unsilence").click()
    expect(page.locator('[data-silences] [data-field="action-summary"]')).to_have_text("Silence lifted")
    expect(page.locator(BANNER)).to_have_count(1)
    expect(page.locator('[data-list="silences"] tr')).to_have_count(0)
    expect(page.locator('[data-empty="silences"]')).to_be_visible()
    expect(item.locator('[data-field="silenced"]')).to_have_text("")
    controls.locator("[data-silence-choice]").select_option("rule:60")
    controls.locator('[data-action="silence"]').click()
    expect(controls.locator('[data-field="action-summary"]')).to_have_text(re.compile(r"^Rule silenced until "))
    expect(page.locator(BANNER)).to_have_count(0)
    expect(page.locator('[data-list="silences"] tr [data-field="subject"]')).to_have_text("every subject")
    expect(controls.locator('[data-action="unsilence"]')).to_have_text("Unsilence rule")

    # The task ends: the alert resolves, leaves Firing now and shows in the history as resolved.
    wait_task_state(dashboard, task_id, "SUCCESS", timeout=STUCK_SECONDS + 20)
    expect(firing_item(page, alert_id)).to_have_count(0, timeout=ALERT_MS)
    expect(page.locator('[data-field="firing-empty"]')).to_have_text("Nothing firing.")
    expect(history_row.locator('[data-field="outcome"]')).to_have_text(re.compile(r"^resolved after \d+ s$"))
    expect(history_row).to_have_attribute("data-resolved", "")
    assert_inert(page)

    # Down to a 360 px phone, the page does not scroll sideways (wide tables scroll in their own box).
    page.set_viewport_size(PHONE)
    expect(history_row).to_be_visible()
    scroll_width, inner_width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"/alerts is {scroll_width} px wide in a {inner_width} px viewport"

    # Lift the rule's silence again, so the module's dashboard is left as it was found.
    page.locator('[data-list="silences"] tr').get_by_role("button", name="Unsilence").click()
    expect(page.locator('[data-list="silences"] tr')).to_have_count(0)
    assert dialogs == []


def test_without_actions_the_page_shows_no_controls(page: Page, redis_port: int, tmp_path: Path) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text(NEVER_RULES)
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/{BROKER_DB}", tmp_path,
                                extra_args=("--alerts", str(rules), "--alert-interval", "0.2", "--read-only"))
    try:
        page.goto(dashboard.url + "/alerts")
        item = firing_item(page)
        expect(item.locator('[data-field="summary"]')).to_have_text(
            "no reports.nightly succeeded since the dashboard started (limit 1 s)", timeout=ALERT_MS)
        expect(item.locator('[data-field="severity"]')).to_have_text("warning")
        expect(item.locator('[data-field="subject"]')).to_have_attribute("href", "/task-types/reports.nightly")
        expect(page.locator(BANNER)).to_have_attribute("data-level", "warning")  # amber: no critical alert
        expect(item.locator("[data-silence-controls]")).to_be_hidden()
        expect(page.locator("[data-silence-choice]:visible, [data-action]:visible")).to_have_count(0)
    finally:
        dashboard.stop()


def test_without_rules_the_page_says_how_to_add_them(page: Page, redis_port: int, tmp_path: Path) -> None:
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/{BROKER_DB}", tmp_path)
    try:
        page.goto(dashboard.url + "/alerts")
        expect(page.locator("[data-no-rules]")).to_have_text(
            "No alert rules: start the dashboard with --alerts FILE (see the README).")
        expect(page.locator('[data-field="firing-empty"]')).to_have_text("Nothing firing.")
        expect(page.locator('[data-empty="history"]')).to_be_visible()
        expect(page.locator(BANNER)).to_have_count(0)
    finally:
        dashboard.stop()
