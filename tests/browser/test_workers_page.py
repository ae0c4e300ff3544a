"""Workers in a real browser: the lost banner within seconds, and a worker's page with inspect data."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from helpers import dashboard_with_worker, producer_app, send

pytestmark = pytest.mark.browser


def test_lost_worker_banner_and_worker_page(page: Page, redis_port: int, tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/15"
    with dashboard_with_worker(broker, tmp_path, "fragile", extra_args=("--heartbeat-slack", "1")) as (
            dashboard, worker):
        page.goto(f"{dashboard.url}/workers/fragile@test")
        expect(page.locator('[data-panel="worker-detail"] [data-field="pool"]')).to_have_text("eventlet")
        expect(page.locator('[data-panel="worker-detail"] [data-field="concurrency"]')).to_have_text("10")
        expect(page.locator('[data-panel="worker-detail"] svg')).to_have_count(1)
        # "Active" is the heartbeat's count, a number, also once inspect's list of active tasks came
        expect(page.locator('[data-panel="worker-detail"] dd[data-field="active"]')).to_have_text("0")
        expect(page.locator('[data-section="active_tasks"] [data-field="empty"]')).to_have_text("None.")

        page.goto(dashboard.url + "/")
        card = page.locator('[data-panel="workers"] [data-hostname="fragile@test"]')
        expect(card).to_have_attribute("data-status", "online")
        worker.kill()
        banner = page.locator('[data-banner-key="lost-workers"]')
        expect(banner).to_contain_text("fragile@test", timeout=8_000)  # 2 x 1 s + 1 s slack, plus the push
        expect(banner).to_contain_text("Worker lost")
        expect(card).to_have_attribute("data-status", "lost")
        expect(card.locator('[data-field="active"]')).to_have_text("unknown")  # not its last heartbeat's count


def test_the_worker_page_follows_each_inspect_round_without_a_refresh(page: Page, redis_port: int,
                                                                      tmp_path: Path) -> None:
    """The dashboard inspects every worker again each --inspect-interval: an open worker page reads each round's
    lists when it is due, so a task the worker starts shows in its active tasks with no click on Refresh."""
    broker = f"redis://127.0.0.1:{redis_port}/14"
    with dashboard_with_worker(broker, tmp_path, "watched", extra_args=("--inspect-interval", "2")) as (
            dashboard, _):
        page.goto(f"{dashboard.url}/workers/watched@test")
        active = page.locator('[data-section="active_tasks"]')
        expect(active.locator('[data-field="empty"]')).to_have_text("None.")
        task_id = send(producer_app(broker), "slow_report", 8)
        expect(active.locator(f'text={task_id[:8]}')).to_have_count(1, timeout=10_000)
        expect(active.locator('[data-field="empty"]')).to_have_text("None.", timeout=20_000)  # and gone once done
