"""Hostile text in every field that comes from outside (task name, args, kwargs, result, exception,
traceback, worker hostname, queue name) shows literally on every page and in the action dialogs, and
nothing of it becomes markup: no element, no handler, no script, no javascript: link."""
from __future__ import annotations

import time
import uuid
from typing import Iterator
from urllib.parse import quote

import pytest
from celery.events import EventDispatcher
from playwright.sync_api import Page, expect

from helpers import DashboardProc, producer_app, start_dashboard, wait_broker_connected, wait_until

pytestmark = pytest.mark.browser

IMG = "<img src=x onerror=alert(1)>"
SVG = "<svg onload=alert(2)>"
SCRIPT = "<script>alert(3)</script>"
BREAK = "</script><script>alert(4)</script>"
JS_URL = "javascript:alert(5)"
HOSTNAME = f"x{IMG}@evil"
QUEUE = f"q{SVG}"
NAME = f"{JS_URL}.{SCRIPT}"


@pytest.fixture(scope="module")
def hostile(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str, str]]:
    """A dashboard that has seen a worker, a failed task and a running one, all named with payloads."""
    broker = f"redis://127.0.0.1:{redis_port}/4"
    dashboard = start_dashboard(broker, tmp_path_factory.mktemp("xss"), extra_args=("--queues", QUEUE))
    app = producer_app(broker)
    failed, running = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        wait_broker_connected(dashboard)
        with app.connection_for_write() as connection:
            worker = EventDispatcher(connection, hostname=HOSTNAME, app=app)
            worker.send("worker-online", freq=30.0, active=1, processed=1, loadavg=[0.1, 0.1, 0.1],
                        sw_ident=SCRIPT, sw_ver=BREAK, sw_sys=IMG)
            now = time.time()
            for task_id, outcome in ((failed, "task-failed"), (running, None)):
                worker.send("task-sent", uuid=task_id, name=NAME, args=f"('{IMG}', '{BREAK}')",
                            kwargs=f"{{'x': '{SVG}'}}", retries=0, eta=None, expires=None, queue=QUEUE,
                            exchange=QUEUE, routing_key=QUEUE, root_id=task_id, parent_id=None, timestamp=now)
                worker.send("task-received", uuid=task_id, name=NAME, args=f"('{IMG}',)", kwargs="{}", timestamp=now)
                worker.send("task-started", uuid=task_id, timestamp=now + 0.1)
                if outcome:
                    worker.send(outcome, uuid=task_id, exception=f"ValueError('{SCRIPT}')",
                                traceback=f"Traceback:\n  {BREAK}\n{IMG}", timestamp=now + 0.2)
        wait_until(lambda: (t := dashboard.task(failed)) and t["state"] == "FAILURE", 15, message="no failed task")
        wait_until(lambda: (t := dashboard.task(running)) and t["state"] == "STARTED", 15, message="no running task")
        yield dashboard, failed, running
    finally:
        dashboard.stop()


def assert_inert(page: Page) -> None:
    """Nothing from the payloads became markup."""
    assert page.locator("img[src='x'], img[onerror], svg[onload], [onload], [onerror]").count() == 0
    assert page.locator("script:not([src]):not([type='application/json'])").count() == 0
    assert page.locator("a[href^='javascript:' i]").count() == 0


@pytest.mark.parametrize("path", ["/", "/tasks", "/tasks?q=alert", "/tasks/{failed}", "/tasks/{running}",
                                  "/workers", "/workers/{hostname}", "/queues", "/queues/{queue}"])
def test_every_page_shows_hostile_text_as_text(page: Page, hostile: tuple[DashboardProc, str, str],
                                               path: str) -> None:
    dashboard, failed, running = hostile
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(dashboard.url + path.format(failed=failed, running=running, hostname=quote(HOSTNAME, safe="@"),
                                          queue=quote(QUEUE, safe="")))
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected")
    shown = {"/": HOSTNAME, "/tasks": NAME, "/tasks?q=alert": NAME, "/tasks/{failed}": BREAK,
             "/tasks/{running}": IMG, "/workers": HOSTNAME, "/workers/{hostname}": HOSTNAME, "/queues": QUEUE,
             "/queues/{queue}": QUEUE}[path]
    expect(page.locator("main")).to_contain_text(shown, timeout=10_000)
    assert_inert(page)
    assert dialogs == []


def test_the_action_dialog_names_a_hostile_task_as_text(page: Page, hostile: tuple[DashboardProc, str, str]) -> None:
    dashboard, _, running = hostile
    page.goto(f"{dashboard.url}/tasks/{running}")
    page.locator('[data-action="revoke"]').click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text(NAME)
    assert_inert(page)
    page.keyboard.press("Escape")
    page.locator('[data-action="terminate"]').click()
    expect(page.locator("dialog[open]")).to_contain_text(HOSTNAME)
    assert_inert(page)
