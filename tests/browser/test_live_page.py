"""The live page in a real browser: worker cards, task rows changing state, hostile text shown as text."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest
from celery.events.dispatcher import EventDispatcher
from playwright.sync_api import Page, expect

from helpers import DashboardProc, dashboard_with_worker, producer_app, send, start_dashboard, wait_stored, wait_until

pytestmark = pytest.mark.browser

WORKER = "browser@test"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/11"
    with dashboard_with_worker(broker, tmp_path_factory.mktemp("browser-logs"), "browser") as (dashboard, _):
        yield dashboard, broker


def test_worker_card_and_task_row_update_without_reload(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    page.goto(dashboard.url + "/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected")
    card = page.locator(f'[data-panel="workers"] [data-hostname="{WORKER}"]')
    expect(card).to_have_attribute("data-status", "online")
    expect(card.locator('[data-field="pool"]')).to_have_text("eventlet")
    page.evaluate("window.__sameDocument = true")

    task_id = send(producer_app(broker), "slow_report", 2)
    row = page.locator(f'[data-panel="tasks"] tr[data-uuid="{task_id}"]')
    expect(row.locator('[data-field="state"]')).to_have_text("STARTED", timeout=10_000)
    expect(row.locator('[data-field="name"]')).to_have_text("dashboard.demo.tasks.slow_report")
    expect(row.locator('[data-field="state"]')).to_have_text("SUCCESS", timeout=10_000)
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"


def test_hostile_args_are_shown_as_text(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(dashboard.url + "/")
    task_id = send(producer_app(broker), "echo", XSS, kwargs={"note": "<script>alert(2)</script>"})
    row = page.locator(f'[data-panel="tasks"] tr[data-uuid="{task_id}"]')
    expect(row.locator('[data-field="state"]')).to_have_text("SUCCESS", timeout=10_000)

    page.goto(f"{dashboard.url}/tasks/{task_id}")
    args = page.locator('[data-panel="task-detail"] pre[data-field="args"]')
    expect(args).to_contain_text(XSS)
    expect(page.locator('[data-panel="task-detail"] pre[data-field="kwargs"]')).to_contain_text("<script>alert(2)</script>")
    expect(page.locator('[data-panel="task-detail"] pre[data-field="result"]')).to_contain_text(XSS)
    assert page.locator("main img").count() == 0
    assert dialogs == []


def test_unknown_task_is_a_404_page_with_a_jump_box(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    """Its box goes to a task from the first characters of its id, as the lists show them."""
    dashboard, broker = cluster
    task_id = send(producer_app(broker), "add", 1, 1)
    wait_stored(dashboard, [task_id], 20)
    response = page.goto(f"{dashboard.url}/tasks/no-such-task")
    assert response is not None and response.status == 404
    expect(page.locator('[data-view="missing"]')).to_be_visible()
    page.locator("#jump-uuid").fill(f" {task_id[:8].upper()} ")
    page.locator("#jump-uuid").press("Enter")
    expect(page).to_have_url(f"{dashboard.url}/tasks/{task_id}")
    expect(page.locator('[data-panel="task-detail"] [data-field="name"]')).to_contain_text("add")


def test_workers_without_task_events_get_a_hint(page: Page, redis_port: int, tmp_path: Path) -> None:
    """A worker that sends heartbeats but no task events (started without -E) makes the page say so."""
    broker = f"redis://127.0.0.1:{redis_port}/12"
    dashboard = start_dashboard(broker, tmp_path)
    app = producer_app(broker)
    stop = threading.Event()

    def heartbeats() -> None:  # what a worker without -E sends: worker events only
        with app.connection_for_write() as connection:
            dispatcher = EventDispatcher(connection, hostname="quiet@test", app=app)
            processed = 40  # tasks it ran before the dashboard saw it; one more each beat, none of them seen
            while not stop.is_set():
                dispatcher.send("worker-heartbeat", freq=1.0, active=0, processed=processed,
                                loadavg=[0.1, 0.1, 0.1], sw_ident="py-celery", sw_ver="5.7.0", sw_sys="Linux")
                processed += 1
                stop.wait(1.0)

    beating = threading.Thread(target=heartbeats, daemon=True)
    beating.start()
    try:
        page.clock.install()
        page.goto(dashboard.url + "/")
        card = page.locator('[data-panel="workers"] [data-hostname="quiet@test"]')
        expect(card).to_have_attribute("data-status", "online")
        expect(page.get_by_text("no task events have arrived")).to_have_count(0)
        # Its heartbeats count tasks processed since the dashboard saw it, and no task event came: its card says so.
        expect(card.locator('[data-field="no-events"]')).to_have_text("started without -E", timeout=15_000)
        page.clock.fast_forward(11_000)
        expect(page.get_by_text("no task events have arrived")).to_be_visible()
    finally:
        stop.set()
        beating.join(timeout=5)
        dashboard.stop()


def test_the_page_reconnects_and_resyncs_after_the_dashboard_restarts(
        page: Page, cluster: tuple[DashboardProc, str], tmp_path: Path) -> None:
    _, broker = cluster  # its worker runs the task sent after the restart
    dashboard = start_dashboard(broker, tmp_path)
    try:
        page.goto(dashboard.url + "/")
        status = page.locator("[data-connection]")
        expect(status).to_have_attribute("data-state", "connected")
        page.evaluate("window.__sameDocument = true")
        dashboard.stop()
        expect(status).to_have_attribute("data-state", "disconnected")
        expect(status).to_contain_text("reconnecting")
        dashboard = start_dashboard(broker, tmp_path, port=dashboard.port)
        expect(status).to_have_attribute("data-state", "connected", timeout=15_000)
        task_id = send(producer_app(broker), "add", 5, 5)
        row = page.locator(f'[data-panel="tasks"] tr[data-uuid="{task_id}"]')
        expect(row.locator('[data-field="state"]')).to_have_text("SUCCESS", timeout=15_000)
        assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    finally:
        dashboard.stop()


def test_a_page_opening_on_a_large_cluster_makes_the_first_cards_then_the_rest(
        page: Page, redis_port: int, tmp_path: Path) -> None:
    """120 workers: the page's first render makes the first 60 cards (those in view), the rest come after the next
    frame; then a heartbeat with a new load and an offline worker change their cards."""
    broker = f"redis://127.0.0.1:{redis_port}/13"
    dashboard = start_dashboard(broker, tmp_path)
    app = producer_app(broker)
    hosts = [f"w-{n:03d}@big" for n in range(120)]
    try:
        with app.connection_for_write() as connection:
            dispatchers = {host: EventDispatcher(connection, hostname=host, app=app) for host in hosts}
            for dispatcher in dispatchers.values():
                dispatcher.send("worker-online", freq=30.0, active=0, processed=0, loadavg=[0.1, 0.1, 0.1],
                                sw_ident="py-celery", sw_ver="5.7.0", sw_sys="Linux")
            wait_until(lambda: len(dashboard.get("/api/workers").json()) == 120, 15, message="120 workers known")
            # The cards the first render adds, in the task that applies the snapshot (one observer callback).
            page.add_init_script("""
                window.__firstCards = null;
                new MutationObserver((records, observer) => {
                  const added = records.flatMap((r) => [...r.addedNodes])
                    .filter((n) => n.matches?.("li.worker-card[data-hostname]")).length;
                  if (added) { window.__firstCards = added; observer.disconnect(); }
                }).observe(document, { childList: true, subtree: true });
            """)
            page.goto(dashboard.url + "/")
            panel = page.locator('[data-panel="workers"]')
            expect(panel.locator('[data-field="worker-count"]')).to_have_text("120 online · 0 offline", timeout=15_000)
            expect(panel.locator("li.worker-card[data-hostname]")).to_have_count(120)
            assert page.evaluate("window.__firstCards") == 60
            expect(panel.locator("li.worker-card[data-hostname]").last).to_have_attribute("data-hostname", "w-119@big")
            expect(panel.locator('[data-hostname="w-119@big"] [data-field="loadavg"]')).to_have_text("0.10 0.10 0.10")

            dispatchers["w-100@big"].send("worker-heartbeat", freq=30.0, active=3, processed=7, loadavg=[2.5, 1.0, 0.5],
                                          sw_ident="py-celery", sw_ver="5.7.0", sw_sys="Linux")
            dispatchers["w-005@big"].send("worker-offline")
            expect(panel.locator('[data-hostname="w-100@big"] [data-field="loadavg"]')).to_have_text("2.50 1.00 0.50")
            expect(panel.locator('[data-hostname="w-005@big"]')).to_have_attribute("data-status", "offline")
            expect(panel.locator('[data-field="worker-count"]')).to_have_text("119 online · 1 offline")
            expect(panel.locator("li.worker-card[data-hostname]").last).to_have_attribute("data-hostname", "w-005@big")
    finally:
        dashboard.stop()
