"""Logging in with --auth-file in a real browser: redirected to the login page, back after it, a live
stream, the page's own POSTs carrying the session's CSRF token, and logging out."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Page, expect

from dashboard.auth import AuthFile
from helpers import DashboardProc, start_dashboard, wait_broker_connected

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
