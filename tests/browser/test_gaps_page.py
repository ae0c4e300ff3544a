"""Gaps in the event stream, for real: Redis cutting the dashboard's subscription when its pubsub output
buffer overflows (the limit lowered in the test's own redis-server), and the dashboard's own downtime
between a stop and the next start. Both are in /api/gaps; the cut is marked on the overview."""
from __future__ import annotations

from pathlib import Path

import pytest
import redis
from playwright.sync_api import Page, expect

from helpers import (free_port, producer_app, start_dashboard, start_redis, wait_broker_connected, wait_until)

pytestmark = pytest.mark.browser


def test_a_subscriber_cut_and_a_downtime_are_gaps(log_dir: Path, page: Page) -> None:
    port = free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"
    redis_proc = start_redis(port, log_dir, name="redis-gaps")
    dashboard = None
    try:
        redis.Redis(host="127.0.0.1", port=port).config_set("client-output-buffer-limit", "pubsub 16kb 16kb 0")
        dashboard = start_dashboard(broker_url, log_dir)
        wait_broker_connected(dashboard)
        assert dashboard.get("/api/gaps").json() == {"gaps": []}  # a new history: no downtime before it
        page.goto(dashboard.url + "/")
        expect(page.locator('[data-panel="counters"]')).to_be_visible()
        expect(page.locator('[data-panel="gap-marker"]')).to_be_hidden()

        producer = producer_app(broker_url)
        try:
            with producer.connection_for_write() as connection:  # one event far over the 16 kB limit
                producer.events.Dispatcher(connection, enabled=True).send(
                    "task-sent", uuid="big-one", name="reports.big", args="x" * 200_000)
        finally:
            producer.close()
        cut = wait_until(lambda: next(iter(dashboard.get("/api/gaps").json()["gaps"]), None), 15,
                         message=lambda: f"no gap after the cut: {dashboard.health()}")
        assert cut["cause"].startswith("subscriber cut") and cut["start"] <= cut["end"]
        assert dashboard.health()["broker"]["stream_cuts"] >= 1
        marker = page.locator('[data-panel="gap-marker"]')
        expect(marker).to_contain_text("Events may be missing between", timeout=10_000)
        expect(marker).to_contain_text("subscriber cut")

        dashboard.stop()  # a clean stop: the downtime starts now
        dashboard = start_dashboard(broker_url, log_dir, port=dashboard.port)
        wait_broker_connected(dashboard)
        gaps = wait_until(lambda: (g := dashboard.get("/api/gaps").json()["gaps"]) and len(g) >= 2 and g, 10,
                          message=lambda: f"no downtime gap: {dashboard.get('/api/gaps').text}")
        assert gaps[0]["cause"] == "dashboard stopped" and gaps[0]["start"] >= cut["end"]
        assert gaps[1] == cut  # kept across the restart
    finally:
        if dashboard is not None:
            dashboard.stop()
        redis_proc.stop()
