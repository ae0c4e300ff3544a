"""Logging in with --auth-file in a real browser: redirected to the login page, back after it, a live
stream, the page's own POSTs carrying the session's CSRF token, logging out; and a retry through its
preflight dialog found on the audit page."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Page, expect

from dashboard.auth import AuthFile
from helpers import DashboardProc, producer_app, send, start_dashboard, start_worker, wait_broker_connected, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def secured(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProc]:
    folder = tmp_path_factory.mktemp("login")
    auth = AuthFile.create_or_open(str(folder / "auth.toml"))
    auth.add_user("alice", "admin", "correct horse")
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/15", folder,
                                extra_args=("--auth-file", str(folder / "auth.toml")))
    try:
        yield dashboard
    finally:
        dashboard.stop()


def test_log_in_use_the_page_and_log_out(page: Page, secured: DashboardProc) -> None:
    page.goto(secured.url + "/tasks?state=FAILURE")
    expect(page).to_have_url(f"{secured.url}/login?next=/tasks%3Fstate%3DFAILURE")
    page.fill('input[name="name"]', "alice")
    page.fill('input[name="password"]', "wrong guess")
    page.click('button[type="submit"]')
    expect(page.locator("[data-login-error]")).to_have_text("Wrong name or password.")

    page.fill('input[name="name"]', "alice")
    page.fill('input[name="password"]', "correct horse")
    page.click('button[type="submit"]')
    expect(page).to_have_url(f"{secured.url}/tasks?state=FAILURE")
    expect(page.locator(".session-user")).to_have_text("alice · admin")
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected")

    # The page's own POSTs carry the session's CSRF token: past it, the unknown task is a 404, not a 403.
    status = page.evaluate("""async () => (await fetch('/api/tasks/no-such-task/revoke', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: '{}'})).status""")
    assert status == 404

    page.click("form[data-session] button")
    expect(page).to_have_url(f"{secured.url}/login")
    page.goto(secured.url + "/")
    expect(page).to_have_url(f"{secured.url}/login?next=/")


@pytest.fixture(scope="module")
def secured_with_worker(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    folder = tmp_path_factory.mktemp("login-retry")
    auth = AuthFile.create_or_open(str(folder / "auth.toml"))
    auth.add_user("alice", "admin", "correct horse")
    token = auth.add_token("probe", "viewer")
    broker = f"redis://127.0.0.1:{redis_port}/15"
    dashboard = start_dashboard(broker, folder, extra_args=("--auth-file", str(folder / "auth.toml")))
    worker = start_worker(broker, "audited", folder, concurrency=1, queues="audited-q", pool="prefork")
    probe = {"Authorization": f"Bearer {token}"}
    try:
        wait_until(lambda: (w := dashboard.get("/api/workers/audited@test", headers=probe)).status_code == 200
                   and w.json()["registered"], 30, message="the worker was never inspected")
        yield dashboard, broker
    finally:
        worker.end()
        dashboard.stop()


def test_log_in_retry_through_the_preflight_and_find_it_on_the_audit_page(
        page: Page, secured_with_worker: tuple[DashboardProc, str]) -> None:
    dashboard, broker = secured_with_worker
    failed = send(producer_app(broker), "fail_payment", "ORD-77", queue="audited-q")
    page.goto(f"{dashboard.url}/tasks/{failed}")
    page.fill('input[name="name"]', "alice")
    page.fill('input[name="password"]', "correct horse")
    page.click('button[type="submit"]')
    expect(page).to_have_url(f"{dashboard.url}/tasks/{failed}")
    expect(page.locator('[data-panel="task-detail"] .task-title [data-field="state"]')).to_have_text(
        "FAILURE", timeout=20_000)
    retry = page.locator('[data-action="retry"]')
    expect(retry).to_be_enabled(timeout=20_000)
    retry.click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("dashboard.demo.tasks.fail_payment")
    expect(dialog.locator("textarea").first).to_have_value(re.compile(r'"ORD-77"'))
    dialog.locator("[data-retry-confirm]").click()
    link = page.locator("[data-action-link]")
    expect(link).to_be_visible(timeout=20_000)
    new_id = link.inner_text().strip()

    page.goto(f"{dashboard.url}/audit")
    row = page.locator("tr[data-audit-id]").filter(has_text="retry").first
    expect(row).to_contain_text("alice")
    expect(row).to_contain_text(failed)
    expect(row).to_contain_text(f"sent as {new_id}")
    expect(page.locator("tr[data-audit-id]").filter(has_text="logged in").first).to_contain_text("alice")
