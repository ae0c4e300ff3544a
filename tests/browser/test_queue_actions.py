"""Queue purge from the queue page in a real browser: asked first in a dialog naming the queue and its
depth, cancelled without a request, then done; and no button when actions are off."""
from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Page, expect

from helpers import DashboardProc, producer_app, record_posts, send, start_dashboard, wait_broker_connected, wait_until

pytestmark = pytest.mark.browser

BROKER_DB = 12
#: Long enough for a few depth samples (every 0.3 s here) to reach the page.
WAIT_MS = 15_000



@contextmanager
def queue_holding(redis_port: int, tmp_path: Path, queue: str, messages: int) -> Iterator[DashboardProc]:
    """A dashboard watching ``queue`` (sampled every 0.3 s), which nobody consumes, after ``messages`` were sent."""
    broker = f"redis://127.0.0.1:{redis_port}/{BROKER_DB}"
    dashboard = start_dashboard(broker, tmp_path, extra_args=("--queues", queue, "--queue-interval", "0.3"))
    try:
        wait_broker_connected(dashboard)
        app = producer_app(broker)
        for n in range(messages):
            send(app, "add", n, n, queue=queue)
        yield dashboard
    finally:
        dashboard.stop()


def test_purge_a_queue_through_its_dialog(page: Page, redis_port: int, tmp_path: Path) -> None:
    queue = "qpurge-idle-q"
    with queue_holding(redis_port, tmp_path, queue, 5) as dashboard:
        page.goto(f"{dashboard.url}/queues/{queue}")
        summary = page.locator('[data-panel="queue-detail"] [data-field="depth-summary"]')
        expect(summary).to_have_text("5 messages", timeout=WAIT_MS)
        actions = page.locator("[data-queue-actions]")
        purge = actions.get_by_role("button", name="Purge…")
        posts = record_posts(page)

        purge.click()
        dialog = page.get_by_role("dialog", name=f"Remove all 5 messages waiting in {queue}?")
        expect(dialog).to_be_visible()
        expect(dialog.locator("dt")).to_have_text(["Queue", "Waiting"])
        expect(dialog.locator("dd")).to_have_text([queue, "5 messages"])
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        expect(purge).to_be_focused()
        purge.click()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        assert posts == []
        assert actions.locator("[data-action-outcome]").get_attribute("data-level") is None
        expect(summary).to_have_text("5 messages")

        purge.click()
        dialog.get_by_role("button", name="Purge").click()
        expect(dialog).to_be_hidden()
        outcome = actions.locator("[data-action-outcome]")
        expect(outcome.locator('[data-field="action-summary"]')).to_have_text("Removed 5 messages", timeout=WAIT_MS)
        expect(outcome).to_have_attribute("data-level", "ok")
        expect(summary).to_have_text("0 messages", timeout=WAIT_MS)
        expect(page.locator('[data-panel="queue-detail"] [data-field="depth"]')).to_have_text("0")
        assert posts == [f"{dashboard.url}/api/queues/{queue}/purge"]


def test_the_dialog_names_the_depth_the_page_shows_before_the_live_stream_has_it(
        page: Page, redis_port: int, tmp_path: Path) -> None:
    queue = "qpurge-nolive-q"
    with queue_holding(redis_port, tmp_path, queue, 3) as dashboard:
        wait_until(lambda: dashboard.get(f"/api/queues/{queue}").json().get("depth") == 3, WAIT_MS / 1000,
                   message=f"{queue} never sampled at 3")
        # A live connection that never says anything: the page's own fetch alone knows the depth.
        page.route_web_socket(re.compile(r".*/socket\.io/.*"), lambda ws: None)
        page.route(re.compile(r".*/socket\.io/\?EIO=.*"), lambda route: route.abort())  # nor by polling
        page.goto(f"{dashboard.url}/queues/{queue}")
        expect(page.locator('[data-panel="queue-detail"] [data-field="depth-summary"]')).to_have_text("3 messages")
        page.locator("[data-queue-actions]").get_by_role("button", name="Purge…").click()
        dialog = page.get_by_role("dialog", name=f"Remove all 3 messages waiting in {queue}?")
        expect(dialog).to_be_visible()
        expect(dialog.locator("dd")).to_have_text([queue, "3 messages"])
        dialog.get_by_role("button", name="Cancel").click()


def test_no_purge_when_actions_are_off(page: Page, redis_port: int, tmp_path: Path) -> None:
    queue = "qpurge-readonly-q"
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/{BROKER_DB}", tmp_path,
                                extra_args=("--queues", queue, "--queue-interval", "0.3", "--read-only"))
    try:
        wait_broker_connected(dashboard)
        page.goto(f"{dashboard.url}/queues/{queue}")
        expect(page.locator('[data-panel="queue-detail"] [data-field="depth-summary"]')).to_have_text(
            re.compile(r"^0 messages$"), timeout=WAIT_MS)
        actions = page.locator("[data-queue-actions]")
        expect(actions.locator('[data-field="actions-off"]')).to_have_text("Actions are off on this dashboard.")
        expect(actions.get_by_role("button")).to_have_count(0)
    finally:
        dashboard.stop()
