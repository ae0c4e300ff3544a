"""Periodic tasks against a real ``celery beat`` and a real worker: runs appear on /api/periodic and on the
/periodic page with their outcomes (a failing entry alerts ``periodic-failed``); stopping beat makes every
entry missed within the grace, which is one ``beat looks stopped`` alert delivered to a webhook; starting
beat again resolves it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import Page, expect

from helpers import (PYTHON, DashboardProc, Proc, WebhookReceiver, start_dashboard, start_worker,
                     wait_broker_connected, wait_until, wait_worker_online)

pytestmark = pytest.mark.browser

#: The broker's Redis database: beat sends to the default queue, which no other module uses here.
BROKER_DB = 5
WORKER = "beatrunner"
#: Seconds a run may be late before it counts as missed (the default would be 30 s).
GRACE = 3
ADD = "add-every-2s"
CHARGE = "charge-every-2s"


def start_beat(broker: str, folder: Path) -> Proc:
    return Proc("beat", [PYTHON, "-m", "celery", "-A", "tests.periodic_app", "beat", "-s",
                         str(folder / "beat-schedule"), "-l", "info"], folder, env={"CELERY_BROKER_URL": broker})


def periodic(dashboard: DashboardProc) -> dict[str, Any]:
    response = dashboard.get("/api/periodic")
    assert response.status_code == 200, response.text
    return response.json()


def entry(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in body["entries"] if e["name"] == name)


@pytest.fixture
def cluster(redis_port: int, tmp_path: Path) -> Iterator[tuple[DashboardProc, str, WebhookReceiver, Path]]:
    broker = f"redis://127.0.0.1:{redis_port}/{BROKER_DB}"
    receiver = WebhookReceiver()
    worker = start_worker(broker, WORKER, tmp_path, concurrency=4)
    dashboard = start_dashboard(broker, tmp_path, extra_args=(
        "--app", "tests.periodic_app", "--periodic-grace", str(GRACE), "--alert-interval", "0.2",
        "--webhook", receiver.url))
    try:
        wait_broker_connected(dashboard)
        wait_worker_online(dashboard, f"{WORKER}@test")
        yield dashboard, broker, receiver, tmp_path
    finally:
        dashboard.stop()
        worker.end()
        receiver.close()


def test_runs_outcomes_a_stopped_beat_and_its_return(cluster: tuple[DashboardProc, str, WebhookReceiver, Path],
                                                      page: Page) -> None:
    dashboard, broker, receiver, folder = cluster
    body = periodic(dashboard)
    assert body["configured"] is True and body["errors"] == []
    assert {e["name"]: (e["task"], e["schedule"], e["match"]) for e in body["entries"]} == {
        ADD: ("dashboard.demo.tasks.add", "every 2 seconds", "name"),
        CHARGE: ("dashboard.demo.tasks.fail_payment", "every 2 seconds", "name")}
    assert entry(body, CHARGE)["args"] == "('ORD-<b>1</b>',)"

    beat = start_beat(broker, folder)
    try:
        ran = wait_until(lambda: (lambda b: b if entry(b, ADD)["last_run"] and entry(b, ADD)["last_run"]["state"]
                                  == "SUCCESS" and entry(b, CHARGE)["status"] == "failed" else None)(periodic(dashboard)),
                         30, message=lambda: f"no runs with outcomes: {periodic(dashboard)}")
        add = entry(ran, ADD)
        assert add["status"] == "ok" and add["missed"] == 0 and add["last_run"]["matched_by"] == "arguments"
        assert add["next_run"] > add["last_run"]["at"]
        assert dashboard.task(add["last_run"]["uuid"])["name"] == "dashboard.demo.tasks.add"
        failed = wait_until(lambda: next((d for d in receiver.documents if d.get("rule") == "periodic-failed"), None),
                            10, message=lambda: f"no periodic-failed alert: {receiver.documents}")
        assert failed["event"] == "alert-firing" and failed["subject"] == CHARGE

        page.goto(dashboard.url + "/periodic")
        row = page.locator("tr", has=page.locator('[data-field="name"]', has_text=ADD))
        expect(row.locator('[data-field="status"]')).to_have_text("ok", timeout=10_000)
        expect(row.locator('[data-field="schedule"]')).to_have_text("every 2 seconds")
        expect(row.locator('a.run-mark[data-kind="on-time"]').first).to_be_visible()
        charge = page.locator("tr", has=page.locator('[data-field="name"]', has_text=CHARGE))
        expect(charge.locator('[data-field="status"]')).to_have_text("failed")
        expect(charge.locator('[data-field="arguments"]')).to_contain_text("ORD-<b>1</b>")  # text, not markup
        assert charge.locator("b").count() == 0
        expect(page.locator("[data-beat-stopped]")).to_be_hidden()
    finally:
        beat.stop()
    # Before beat first ran, nothing had run for an interval and the grace since the start: that fired and
    # resolved already. What counts is what comes after the stop.
    seen = len(receiver.documents)

    # One entry may be seen missed (its own alert) a round before every entry is and beat looks stopped.
    stopped = wait_until(lambda: next((d for d in receiver.documents[seen:] if d.get("rule") == "periodic-missed"
                                       and d.get("event") == "alert-firing" and d.get("subject") == "beat"), None),
                         2 + GRACE + 10, message=lambda: f"no periodic-missed alert for beat: {receiver.documents[seen:]}")
    assert stopped["subject"] == "beat" and stopped["summary"].startswith("beat looks stopped")
    assert periodic(dashboard)["beat_stopped"] is True
    expect(page.locator("[data-beat-stopped]")).to_contain_text("Beat looks stopped", timeout=10_000)

    # When beat looked stopped, the alert of the entry seen missed a round before resolved (beat's took its
    # place): what counts now is beat's own resolving.
    restarted = len(receiver.documents)
    beat = start_beat(broker, folder)
    try:
        wait_until(lambda: any(d.get("rule") == "periodic-missed" and d.get("event") == "alert-resolved"
                               and d.get("subject") == "beat" for d in receiver.documents[restarted:]), 30,
                   message=lambda: f"the missed alert did not resolve: {receiver.documents}")
        assert periodic(dashboard)["beat_stopped"] is False
        expect(page.locator("[data-beat-stopped]")).to_be_hidden(timeout=10_000)
    finally:
        beat.stop()


def test_without_an_app_the_page_says_how_to_give_one(redis_port: int, tmp_path: Path, page: Page) -> None:
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/{BROKER_DB}", tmp_path)
    try:
        assert periodic(dashboard) == {"entries": [], "beat_stopped": False, "last_run_at": None, "errors": [],
                                       "configured": False}
        page.goto(dashboard.url + "/periodic")
        expect(page.locator('[data-field="empty"]')).to_contain_text("--app")
        expect(page.locator('nav a[href="/periodic"]')).to_have_attribute("aria-current", "page")
    finally:
        dashboard.stop()
