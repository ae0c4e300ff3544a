"""Charts and task-type pages in a real browser: the throughput chart extended live, a task type's percentiles,
runtime heatmap, exceptions and markers, all under the strict CSP (the ``page`` fixture fails on a CSP error)."""
from __future__ import annotations

import re
from typing import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from helpers import DashboardProc, dashboard_with_worker, producer_app, send, wait_task_state, wait_until

pytestmark = pytest.mark.browser

#: The broker's Redis database, shared with test_queues_page: this module's tasks go to a queue of their own.
BROKER_DB = 8
QUEUE = "analytics"
ADD = "dashboard.demo.tasks.add"
FAIL = "dashboard.demo.tasks.fail_payment"
XSS = "<img src=x onerror=alert(1)>"
#: A duration as the pages print one ("12 ms", "1.25 s", "3 min 4 s").
DURATION = re.compile(r"^\d[\d.,]* (ms|s|min|h|d)\b")
#: How long a live update may take to show, in milliseconds (events, the once-a-second stats message, a redraw).
LIVE_MS = 15_000


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/{BROKER_DB}"
    with dashboard_with_worker(broker, tmp_path_factory.mktemp("analytics-logs"), "analytics", queues=QUEUE) \
            as (dashboard, _):
        yield dashboard, broker


#: Make the page believe its tab was hidden or shown (what switching tabs does), and tell it.
SET_VISIBILITY = """(state) => {
    Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
    Object.defineProperty(document, "hidden", { value: state === "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def attribute_number(page: Page, selector: str, name: str) -> float:
    return float(page.locator(selector).get_attribute(name) or "nan")


def test_throughput_chart_grows_live(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    page.goto(dashboard.url + "/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "connected")
    outcomes = '[data-plot="outcomes"]'
    # Seeded from /api/stats: the last 15 minutes, a point a second.
    expect(page.locator(outcomes)).to_have_attribute("data-points", "900")
    expect(page.locator(f"{outcomes} .uplot canvas")).to_have_count(1)
    page.evaluate("window.__sameDocument = true")
    tasks_before = attribute_number(page, outcomes, "data-tasks")
    last_before = attribute_number(page, outcomes, "data-last")

    app = producer_app(broker)
    ids = [send(app, "add", n, n, queue=QUEUE) for n in range(5)]
    for task_id in ids:
        wait_task_state(dashboard, task_id, "SUCCESS")
    # Every `stats` message appends the seconds it carries: the newest second moves on, the count rises.
    page.wait_for_function(
        """([selector, tasks, last, count]) => {
            const chart = document.querySelector(selector).dataset;
            return Number(chart.tasks) >= tasks + count && Number(chart.last) > last;
        }""", arg=[outcomes, tasks_before, last_before, len(ids)], timeout=LIVE_MS)
    expect(page.locator(outcomes)).to_have_attribute("data-points", "900")  # trimmed to 15 minutes
    expect(page.locator('[data-panel="throughput"] [data-field="throughput-summary"]')).to_contain_text("finished")
    # The queue depths and active tasks charts have points too (from the snapshot, then each second).
    page.wait_for_function("""() => Number(document.querySelector('[data-plot="queue-depths"]').dataset.points) > 0""",
                           timeout=LIVE_MS)
    page.wait_for_function("""() => Number(document.querySelector('[data-plot="worker-active"]').dataset.points) > 0""",
                           timeout=LIVE_MS)
    expect(page.locator('[data-plot="worker-active"] .u-legend')).to_contain_text("analytics@test")
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"

    # A hidden tab keeps the series up to date but does not redraw; shown again, the chart catches up.
    page.evaluate(SET_VISIBILITY, "hidden")
    page.wait_for_function(
        """() => Number(document.querySelector('[data-panel="throughput"]').dataset.seriesLast)
                 >= Number(document.querySelector('[data-plot="outcomes"]').dataset.last) + 2""", timeout=LIVE_MS)
    page.evaluate(SET_VISIBILITY, "visible")
    page.wait_for_function(
        """() => document.querySelector('[data-plot="outcomes"]').dataset.last
                 === document.querySelector('[data-panel="throughput"]').dataset.seriesLast""", timeout=LIVE_MS)

    # A longer range is fetched at its own step and kept in the URL, so it can be bookmarked. Its workers'
    # activity comes from the store, where the history writer puts the open minute's every 5 s.
    wait_until(lambda: "analytics@test" in dashboard.get("/api/stats", params={"range": "1h"}).json()["workers"],
               10, message="the worker's activity never reached the store")
    page.select_option('[data-panel="throughput"] [data-range]', "1h")
    expect(page.locator(outcomes)).to_have_attribute("data-points", "61")
    assert page.url.endswith("/?range=1h")
    # ...and so are the queue depths and the workers' activity, from the store's minutes.
    expect(page.locator('[data-plot="worker-active"]')).to_have_attribute("data-points", "61")
    expect(page.locator('[data-plot="worker-active"] .u-legend')).to_contain_text("analytics@test")
    expect(page.locator('[data-field="worker-active-range"]')).to_have_text("the most at once in each minute")
    expect(page.locator('[data-plot="queue-depths"]')).to_have_attribute("data-points", "61")
    expect(page.locator('[data-field="queue-depth-range"]')).to_have_text("the highest of each minute")
    page.goto(dashboard.url + "/?range=6h")
    expect(page.locator('[data-panel="throughput"] [data-range]')).to_have_value("6h")
    expect(page.locator(outcomes)).to_have_attribute("data-points", "73")


def test_task_type_pages(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    added = [send(app, "add", n, 1, queue=QUEUE) for n in range(6)]
    # Five: a type needs five finished runs to rank among the most failing.
    failed = [send(app, "fail_payment", f"order-{n}", queue=QUEUE) for n in range(5)]
    for task_id in added:
        wait_task_state(dashboard, task_id, "SUCCESS")
    for task_id in failed:
        wait_task_state(dashboard, task_id, "FAILURE")

    # Every type, with a link to its page, and the top lists beneath.
    page.goto(dashboard.url + "/task-types")
    expect(page.locator('nav.app-nav a[href="/task-types"]')).to_have_attribute("aria-current", "page")
    row = page.locator(f'[data-list="types"] tr[data-task-type="{FAIL}"]')
    expect(row.locator('[data-field="failure-rate"]')).to_have_text("100%")
    expect(row.locator('[data-field="name"]')).to_have_attribute("href", f"/task-types/{quote(FAIL, safe='')}")
    expect(page.locator(f'[data-list="types"] tr[data-task-type="{ADD}"] [data-field="runtime-p95"]')) \
        .to_have_text(DURATION)
    expect(page.locator('[data-list="busiest_workers"] a')).to_have_attribute("href", "/workers/analytics%40test")
    expect(page.locator('[data-list="longest_waits"] a').first).to_have_attribute("href", f"/queues/{QUEUE}")
    expect(page.locator('[data-list="failing_types"] a')).to_have_text(FAIL)

    # The succeeding type: its percentiles, drawn over time, and its runtimes as a heatmap.
    page.goto(f"{dashboard.url}/task-types/{quote(ADD, safe='')}?range=15m")
    detail = page.locator('[data-panel="task-type-detail"]')
    expect(detail.locator('[data-field="name"]')).to_have_text(ADD)
    expect(detail.locator('[data-field="runtime-p95"]')).to_have_text(DURATION)
    expect(detail.locator('[data-field="runs"]')).not_to_have_text("0")
    expect(detail.locator('[data-plot="percentiles"]')).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    expect(detail.locator("[data-heatmap]")).to_have_attribute("data-cells", re.compile(r"^[1-9]\d*$"))
    expect(detail.locator('[data-range]')).to_have_value("15m")

    # The failing type: its exception, with a link to a task that raised it.
    page.goto(f"{dashboard.url}/task-types/{quote(FAIL, safe='')}")
    exception = detail.locator('[data-list="exceptions"] tr').first
    expect(exception.locator('[data-field="exception"]')).to_have_text("ValueError")
    expect(exception.locator('[data-field="count"]')).to_have_text(str(len(failed)))
    link = exception.locator('[data-field="example"]')
    href = link.get_attribute("href")
    assert href in {f"/tasks/{task_id}" for task_id in failed}, href
    expect(detail.locator('[data-field="failure-rate"]')).to_have_text("100%")

    # A marker posted with the form is listed, as text, and drawn on the chart with its label as tooltip.
    form = detail.locator("[data-marker-form]")
    expect(form).to_be_visible()
    form.locator('[data-input="label"]').fill(f"deploy {XSS}")
    form.locator('button[type="submit"]').click()
    expect(form.locator('[data-field="marker-status"]')).to_have_text("Marker added")
    expect(detail.locator('[data-list="markers"] li').last).to_contain_text(f"deploy {XSS}")
    marker = detail.locator('[data-plot="percentiles"] .chart-marker').last
    expect(marker).to_have_attribute("title", re.compile(re.escape(f"deploy {XSS}")))
    assert page.locator("main img").count() == 0

    link.click()
    expect(page).to_have_url(re.compile(r"/tasks/[0-9a-f-]{36}$"))
    expect(page.locator('[data-panel="task-detail"]')).to_contain_text(FAIL)
    # ... whose page links back to its type's.
    expect(page.locator('[data-panel="task-detail"] [data-field="task-type"]')) \
        .to_have_attribute("href", f"/task-types/{quote(FAIL, safe='')}")


def test_task_type_not_seen_says_so(page: Page, cluster: tuple[DashboardProc, str]) -> None:
    dashboard, _ = cluster
    page.goto(f"{dashboard.url}/task-types/{quote('no.such/task', safe='')}")
    expect(page.locator('[data-view="missing"]')).to_be_visible()
    expect(page.locator('[data-view="missing"] [data-field="requested-name"]')).to_have_text("no.such/task")
