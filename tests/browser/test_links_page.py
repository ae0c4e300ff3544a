"""--task-link and --worker-link in a real browser: buttons on the task and worker pages whose URLs carry
the values URL-encoded, a hostile task name included, and whose labels stay text."""
from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from celery.events.dispatcher import EventDispatcher
from playwright.sync_api import Page, expect

from helpers import producer_app, start_dashboard, wait_broker_connected, wait_until

pytestmark = pytest.mark.browser

BROKER_DB = 5
HOSTILE = "billing.charge&admin=1#<b>x</b>"


def test_links_out_on_the_task_and_worker_pages(redis_port: int, tmp_path: Path, page: Page) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/{BROKER_DB}"
    dashboard = start_dashboard(broker, tmp_path, extra_args=(
        "--task-link", "Logs <i>=https://logs.example/search?q={uuid}&task={name}",
        "--worker-link", "Host=https://grafana.example/d/node?var-host={hostname}"))
    app = producer_app(broker)
    try:
        wait_broker_connected(dashboard)
        with app.connection_for_write() as connection:
            dispatcher = EventDispatcher(connection, hostname="linked@test", app=app)
            dispatcher.send("worker-heartbeat", freq=2.0, active=0, processed=0)
            dispatcher.send("task-received", uuid="link-task-1", name=HOSTILE, args="()", kwargs="{}",
                            timestamp=time.time())
        wait_until(lambda: dashboard.task("link-task-1") is not None, 10, message="the task did not arrive")

        page.goto(f"{dashboard.url}/tasks/link-task-1")
        link = page.locator("[data-links] a")
        expect(link).to_have_text("Logs <i>")  # text, not markup
        href = link.get_attribute("href") or ""
        assert urlsplit(href).netloc == "logs.example"
        assert parse_qs(urlsplit(href).query) == {"q": ["link-task-1"], "task": [HOSTILE]}  # one parameter each
        assert link.get_attribute("rel") == "noopener noreferrer"

        page.goto(f"{dashboard.url}/workers/linked@test")
        host = page.locator("[data-links] a")
        expect(host).to_have_text("Host")
        assert host.get_attribute("href") == "https://grafana.example/d/node?var-host=linked%40test"
    finally:
        app.close()
        dashboard.stop()
