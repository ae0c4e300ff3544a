"""Queues in a real browser: a depth rises while the worker is stopped and falls when it is back."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from helpers import Proc, producer_app, send, start_dashboard, start_worker, wait_broker_connected, wait_worker_online

pytestmark = pytest.mark.browser

QUEUE = "reports"


def test_depth_rises_and_falls_live(page: Page, redis_port: int, tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/8"
    dashboard = start_dashboard(broker, tmp_path, extra_args=("--queues", QUEUE, "--queue-interval", "0.3"))
    worker: Proc | None = None
    try:
        wait_broker_connected(dashboard)
        page.goto(dashboard.url + "/queues")
        row = page.locator(f'[data-panel="queues"] tr[data-queue="{QUEUE}"]')
        expect(row.locator('[data-field="depth"]')).to_have_text("0")

        app = producer_app(broker)
        for n in range(7):  # nobody consumes the queue yet
            send(app, "add", n, n, queue=QUEUE)
        expect(row.locator('[data-field="depth"]')).to_have_text("7")
        expect(row).to_contain_text("no consumer")

        worker = start_worker(broker, "reporter", tmp_path, queues=QUEUE)
        wait_worker_online(dashboard, "reporter@test", worker=worker)
        expect(row.locator('[data-field="depth"]')).to_have_text("0", timeout=15_000)
        expect(row.locator('[data-field="consumers"]')).to_have_text("1", timeout=15_000)

        worker.stop()
        worker = None
        for n in range(3):
            send(app, "add", n, n, queue=QUEUE)
        expect(row.locator('[data-field="depth"]')).to_have_text("3")
    finally:
        if worker is not None:
            worker.end()
        dashboard.stop()
