"""Task history in a real browser: filter by state and text, open a task, follow a child, watch one run,
page with Back and Forward, sort by the column headers."""
from __future__ import annotations

import re
from typing import Iterator

import pytest
from playwright.sync_api import Page, expect

from helpers import DashboardProc, dashboard_with_worker, producer_app, send, wait_stored, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/10"
    with dashboard_with_worker(broker, tmp_path_factory.mktemp("tasks-page"), "pager") as (dashboard, _):
        yield dashboard, broker


def settled(dashboard: DashboardProc, task_id: str) -> dict:
    return wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] in ("SUCCESS", "FAILURE") and t, 20,
                      message=f"task {task_id} never finished")


def results(page: Page) -> list[str]:
    return page.locator("[data-results] tr[data-uuid]").evaluate_all("rows => rows.map(r => r.dataset.uuid)")


def test_filter_open_and_follow_a_child(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    ok = send(app, "add", 2, 2)
    failed = send(app, "fail_payment", "ORD-4242")
    parent = send(app, "echo", "parent", link=app.signature("dashboard.demo.tasks.echo", args=("child",)))
    for task_id in (ok, failed, parent):
        settled(dashboard, task_id)
    child = wait_until(lambda: dashboard.task(parent)["children"], 20, message="no child")[0]
    settled(dashboard, child)
    wait_stored(dashboard, [ok, failed, parent, child])

    page.goto(dashboard.url + "/")  # the overview's FAILURE counter opens the failed tasks
    page.locator('[data-counter="FAILURE"] a').click()
    expect(page).to_have_url(f"{dashboard.url}/tasks?state=FAILURE")
    expect(page.locator(f'[data-results] tr[data-uuid="{failed}"]')).to_be_visible()
    assert results(page) == [failed]

    page.goto(dashboard.url + "/tasks?state=FAILURE")  # a bookmarked, filtered view
    expect(page.locator(f'[data-results] tr[data-uuid="{failed}"]')).to_be_visible()
    assert results(page) == [failed]
    expect(page.locator('[data-filter="state"][value="FAILURE"]')).to_be_checked()

    page.goto(dashboard.url + "/tasks")
    page.locator('[data-filter="q"]').fill("ORD-4242")
    page.locator('[data-filter="q"]').press("Enter")
    expect(page).to_have_url(f"{dashboard.url}/tasks?q=ORD-4242")
    expect(page.locator(f'[data-results] tr[data-uuid="{failed}"]')).to_be_visible()
    assert results(page) == [failed]

    page.goto(f"{dashboard.url}/tasks?q={parent[:8]}")
    page.locator(f'[data-results] tr[data-uuid="{parent}"] a').first.click()
    expect(page).to_have_url(f"{dashboard.url}/tasks/{parent}")
    link = page.locator(f'[data-tree] a[data-task-link][href="/tasks/{child}"]')
    expect(link).to_be_visible()
    link.click()
    expect(page).to_have_url(f"{dashboard.url}/tasks/{child}")
    expect(page.locator('[data-panel="task-detail"] pre[data-field="args"]')).to_contain_text("child")


def test_a_running_tasks_timeline_grows_live(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    task_id = send(producer_app(broker), "slow_report", 3)
    wait_until(lambda: (t := dashboard.task(task_id)) and t["state"] == "STARTED", 15, message="never started")
    page.goto(f"{dashboard.url}/tasks/{task_id}")
    expect(page.locator('[data-event-type="task-started"]')).to_have_count(1)
    expect(page.locator('[data-event-type="task-succeeded"]')).to_have_count(0)
    page.evaluate("window.__sameDocument = true")
    expect(page.locator('[data-event-type="task-succeeded"]')).to_have_count(1, timeout=10_000)
    expect(page.locator('[data-panel="task-detail"] [data-field="state"]').first).to_have_text("SUCCESS")
    assert page.evaluate("window.__sameDocument === true")


def stored_successes(dashboard: DashboardProc, word: str, count: int) -> list[dict]:
    """Wait until the stored history has ``count`` finished tasks whose arguments hold ``word``; return them."""
    def done() -> list[dict] | None:
        items = dashboard.get("/api/tasks", params={"q": word, "state": "SUCCESS", "limit": 1000}).json()["items"]
        return items if len(items) == count else None
    return wait_until(done, 30, message=f"the {count} {word} tasks never all stored as finished")


def expect_page(page: Page, label: str, uuids: list[str]) -> None:
    """Wait until the pager says ``label`` and the search is not busy, then check the rows."""
    expect(page.locator('.pager [data-field="page"]')).to_have_text(label)
    expect(page.locator('[data-panel="task-search"]')).not_to_have_attribute("aria-busy", "true")
    assert results(page) == uuids


def test_back_and_forward_walk_the_pages(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    for i in range(110):  # three pages of 50
        send(app, "echo", "pagerword", i)
    stored_successes(dashboard, "pagerword", 110)
    first = f"{dashboard.url}/tasks?q=pagerword"

    def api_page(cursor: str | None) -> tuple[list[str], str | None]:
        params = {"q": "pagerword", "limit": 50, **({"cursor": cursor} if cursor else {})}
        body = dashboard.get("/api/tasks", params=params).json()
        return [item["uuid"] for item in body["items"]], body["next"]

    one, cursor2 = api_page(None)
    two, cursor3 = api_page(cursor2)
    three, end = api_page(cursor3)
    assert (len(one), len(two), len(three), end) == (50, 50, 10, None)

    page.goto(first)
    expect_page(page, "Page 1", one)
    expect(page.locator('[data-page="previous"]')).to_be_disabled()
    page.locator('[data-page="next"]').click()
    expect(page).to_have_url(f"{first}&cursor={cursor2}")
    expect_page(page, "Page 2", two)
    page.locator('[data-page="next"]').click()
    expect(page).to_have_url(f"{first}&cursor={cursor3}")
    expect_page(page, "Page 3", three)
    expect(page.locator('[data-page="next"]')).to_be_disabled()

    page.go_back()
    expect(page).to_have_url(f"{first}&cursor={cursor2}")
    expect_page(page, "Page 2", two)
    page.go_back()
    expect(page).to_have_url(first)
    expect_page(page, "Page 1", one)
    page.go_forward()
    expect(page).to_have_url(f"{first}&cursor={cursor2}")
    expect_page(page, "Page 2", two)
    expect(page.locator('[data-filter="q"]')).to_have_value("pagerword")

    page.reload()  # the same entry: its URL and its history.state
    expect_page(page, "Page 2", two)
    page.locator('[data-page="previous"]').click()
    expect(page).to_have_url(first)
    expect_page(page, "Page 1", one)

    page.goto(f"{first}&cursor={cursor3}")  # a shared link to a later page: no pages before it known
    expect_page(page, "A later page", three)
    page.locator('[data-page="previous"]').click()
    expect(page).to_have_url(first)
    expect_page(page, "Page 1", one)

    page.locator('[data-filter="state"][value="SUCCESS"]').check()  # new filters start on page 1
    expect(page).to_have_url(f"{dashboard.url}/tasks?state=SUCCESS&q=pagerword")
    expect_page(page, "Page 1", one)


def test_next_after_live_rows_neither_repeats_nor_skips_a_task(page: Page,
                                                               cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    queue = "livepager-q"  # nobody consumes it: the tasks stay PENDING, stored from their task-sent
    older = [send(app, "echo", "livepager", i, queue=queue) for i in range(52)]
    wait_stored(dashboard, older, timeout=15)
    page.goto(f"{dashboard.url}/tasks?queue={queue}")
    rows = page.locator("[data-results] tr[data-uuid]")
    expect(rows).to_have_count(50)
    newer = [send(app, "echo", "livepager", 100 + i, queue=queue) for i in range(3)]
    for task_id in newer:  # they arrive live at the top and push three rows off the page
        expect(page.locator(f'[data-results] tr[data-uuid="{task_id}"]')).to_be_visible(timeout=10_000)
    expect(rows).to_have_count(50)
    first = results(page)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # scrolled away: newer ones wait behind the pill
    waiting = [send(app, "echo", "livepager", 200 + i, queue=queue) for i in range(2)]
    expect(page.locator("[data-new-tasks]")).to_be_visible(timeout=10_000)
    wait_stored(dashboard, newer + waiting, timeout=15)
    assert results(page) == first
    page.locator('[data-page="next"]').click()
    expect(page).to_have_url(re.compile(r"cursor="))
    expect(rows).to_have_count(5)
    second = results(page)
    assert not set(first) & set(second), "a task shown on page 1 came again on page 2"
    assert set(first) | set(second) == set(older) | set(newer), "a task was skipped"


def test_column_headers_sort_like_the_select(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    for i in range(6):
        send(app, "echo", "sortword", i)
    runtimes = {item["uuid"]: item["runtime"] for item in stored_successes(dashboard, "sortword", 6)}
    assert len(set(runtimes.values())) == 6, runtimes
    longest_first = sorted(runtimes, key=runtimes.__getitem__, reverse=True)

    page.goto(f"{dashboard.url}/tasks?q=sortword")
    received = page.locator('th[data-sort-key="received"]')
    runtime = page.locator('th[data-sort-key="runtime"]')
    name = page.locator('th[data-sort-key="name"]')
    select = page.locator('[data-filter="sort"]')
    expect(received).to_have_attribute("aria-sort", "descending")
    expect(received.locator(".sort-arrow")).to_have_text("▼")
    expect(runtime).to_have_attribute("aria-sort", "none")
    expect(runtime.locator(".sort-arrow")).to_have_text("")

    runtime.get_by_role("button", name="Runtime").click()
    expect(page).to_have_url(f"{dashboard.url}/tasks?q=sortword&sort=-runtime")
    expect(runtime).to_have_attribute("aria-sort", "descending")
    expect(runtime.locator(".sort-arrow")).to_have_text("▼")
    expect(received).to_have_attribute("aria-sort", "none")
    expect(select).to_have_value("-runtime")
    expect_page(page, "Page 1", longest_first)

    runtime.get_by_role("button").click()
    expect(page).to_have_url(f"{dashboard.url}/tasks?q=sortword&sort=runtime")
    expect(runtime).to_have_attribute("aria-sort", "ascending")
    expect(runtime.locator(".sort-arrow")).to_have_text("▲")
    expect(select).to_have_value("runtime")
    expect_page(page, "Page 1", longest_first[::-1])

    select.select_option("name")  # the select moves the headers too
    expect(page).to_have_url(f"{dashboard.url}/tasks?q=sortword&sort=name")
    expect(name).to_have_attribute("aria-sort", "ascending")
    expect(runtime).to_have_attribute("aria-sort", "none")
    name.get_by_role("button").click()
    expect(page).to_have_url(f"{dashboard.url}/tasks?q=sortword&sort=-name")
    expect(select).to_have_value("-name")
    expect(name).to_have_attribute("aria-sort", "descending")

    page.go_back()  # the sort is in the URL: Back restores it, select and headers alike
    expect(page).to_have_url(f"{dashboard.url}/tasks?q=sortword&sort=name")
    expect(select).to_have_value("name")
    expect(name).to_have_attribute("aria-sort", "ascending")


def test_the_name_filter_completes_from_the_history_and_takes_a_prefix(
        page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    ok, failed, echoed = send(app, "add", 1, 2), send(app, "fail_payment", "ORD-77"), send(app, "echo", "x")
    for task_id in (ok, failed, echoed):
        settled(dashboard, task_id)
    wait_stored(dashboard, [ok, failed, echoed])

    page.goto(dashboard.url + "/tasks")
    name = page.locator('[data-filter="name"]')
    name.fill("dashboard.demo.tasks.")
    page.wait_for_function("() => [...document.querySelectorAll('datalist[data-suggest=name] option')]"
                           ".some(o => o.value === 'dashboard.demo.tasks.fail_payment')")
    offered = page.locator('datalist[data-suggest="name"] option').evaluate_all("os => os.map(o => o.value)")
    assert "dashboard.demo.tasks.*" in offered and "dashboard.demo.*" not in offered
    assert all(value.startswith("dashboard.demo.tasks.") for value in offered)

    name.fill("dashboard.demo.tasks.fail*")
    name.press("Enter")
    expect(page).to_have_url(f"{dashboard.url}/tasks?name=dashboard.demo.tasks.fail*")
    expect(page.locator(f'[data-results] tr[data-uuid="{failed}"]')).to_be_visible()
    listed = dashboard.get("/api/tasks", params={"name": "dashboard.demo.tasks.fail*", "limit": 1000}).json()
    assert {t["name"] for t in listed["items"]} == {"dashboard.demo.tasks.fail_payment"}
    assert set(results(page)) == {t["uuid"] for t in listed["items"][:50]}


def test_in_another_order_the_new_tasks_pill_loads_the_first_page_again(page: Page,
                                                                        cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    first = [send(app, "echo", "reorderword", i) for i in range(3)]
    for task_id in first:
        settled(dashboard, task_id)
    wait_stored(dashboard, first)  # the page lists the history: finished in memory is not yet written
    page.goto(f"{dashboard.url}/tasks?q=reorderword&sort=-runtime")
    expect(page.locator("[data-results] tr[data-uuid]")).to_have_count(3)
    late = send(app, "echo", "reorderword", 99)
    pill = page.locator("[data-new-tasks]")
    expect(pill).to_be_visible(timeout=10_000)  # it waits: the rows do not move in an order by runtime
    expect(pill.locator('[data-field="count"]')).to_have_text("1 new task")
    expect(pill.locator('[data-field="pill-mark"]')).to_have_text("↻")
    expect(pill).to_have_attribute("title", re.compile("first page again"))
    assert late not in results(page)
    settled(dashboard, late)
    wait_stored(dashboard, [late], timeout=15)
    pill.click()
    expect(page.locator(f'[data-results] tr[data-uuid="{late}"]')).to_be_visible(timeout=10_000)
    expect(page.locator("[data-results] tr[data-uuid]")).to_have_count(4)
    expect(pill).to_be_hidden()
    expect(page).to_have_url(re.compile(r"sort=-runtime"))
