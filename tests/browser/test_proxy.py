"""The dashboard under a path prefix behind a real nginx (deploy/nginx.conf, as the README gives it):
pages, static files, the API and the live socket (WebSocket through the proxy) all under /celery/, a
live task reaching the page, and its link staying under the prefix. Debian's nginx is installed by ./dashboard.sh test when missing."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from celery.events.dispatcher import EventDispatcher
from playwright.sync_api import Page, expect

from helpers import NGINX, free_port, producer_app, start_dashboard, start_nginx, wait_broker_connected, wait_until

pytestmark = pytest.mark.browser

BROKER_DB = 3
def test_the_dashboard_under_a_prefix_through_nginx(redis_port: int, tmp_path: Path, page: Page) -> None:
    if not Path(NGINX).exists():
        pytest.fail(f"{NGINX} is missing: ./dashboard.sh test installs Debian's nginx when run as root")
    broker = f"redis://127.0.0.1:{redis_port}/{BROKER_DB}"
    dashboard = start_dashboard(broker, tmp_path, extra_args=("--url-prefix", "/celery", "--behind-proxy"))
    nginx = None
    app = producer_app(broker)
    try:
        wait_broker_connected(dashboard)
        direct = requests.get(f"{dashboard.root}/", allow_redirects=False, timeout=5)
        assert direct.status_code == 302 and direct.headers["Location"] == "/celery/"
        outside = requests.get(f"{dashboard.root}/api/health", timeout=5)  # outside the prefix
        assert outside.status_code == 404 and "/celery/" in outside.text
        port = free_port()
        nginx = start_nginx(tmp_path / "nginx", port, dashboard.port)
        proxy = f"http://127.0.0.1:{port}"

        page.goto(f"{proxy}/celery")  # without the trailing slash too
        expect(page).to_have_url(f"{proxy}/celery/")
        expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected", timeout=15_000)
        assert page.evaluate("getComputedStyle(document.body).getPropertyValue('--gap').trim()") != ""  # app.css
        expect(page.locator('nav a[href="/celery/tasks"]')).to_be_visible()

        with app.connection_for_write() as connection:
            EventDispatcher(connection, hostname="proxied@test", app=app).send(
                "task-received", uuid="proxied-task-1", name="reports.build", args="()", kwargs="{}",
                timestamp=time.time())
        row = page.locator('[data-panel="tasks"] tr[data-uuid="proxied-task-1"]')
        expect(row).to_be_visible(timeout=10_000)  # pushed live over the socket through nginx
        row.locator("a").first.click()
        expect(page).to_have_url(f"{proxy}/celery/tasks/proxied-task-1")
        expect(page.locator('[data-view="task"] [data-field="name"]')).to_have_text("reports.build")

    finally:
        app.close()
        if nginx is not None:
            nginx.stop()
        dashboard.stop()
