"""Task actions against a real worker: revoke a queued task, terminate a running one, and the guards."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from helpers import (DashboardProc, dashboard_with_worker, producer_app, send, start_worker, wait_until,
                     wait_worker_online, wait_task_state as wait_state)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, str]]:
    broker = f"redis://127.0.0.1:{redis_port}/7"
    # prefork: a task the worker holds (prefetched) waits in the worker, not in the pool, so a revoke
    # still reaches it; an eventlet pool has already taken it (see the README)
    with dashboard_with_worker(broker, tmp_path_factory.mktemp("actions"), "actor", queues="actions-q",
                               pool="prefork", concurrency=1) as (dashboard, _):
        yield dashboard, broker


def post(dashboard: DashboardProc, path: str, body: Any) -> requests.Response:
    return requests.post(dashboard.url + path, json=body, timeout=10)




def test_revoke_a_queued_task(cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    busy = send(app, "slow_report", 5, queue="actions-q")  # the worker's one slot
    wait_state(dashboard, busy, "STARTED")
    queued = send(app, "add", 40, 2, queue="actions-q")
    wait_until(lambda: dashboard.task(queued), 10, message="queued task never seen")
    answer = post(dashboard, f"/api/tasks/{queued}/revoke", {})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["error"] is None
    assert [next(iter(reply)) for reply in body["replies"]] == ["actor@test"]
    wait_state(dashboard, queued, "REVOKED")
    wait_state(dashboard, busy, "SUCCESS")  # the revoke touched nothing else


def test_terminate_a_running_task(cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    running = send(producer_app(broker), "slow_report", 60, queue="actions-q")
    wait_state(dashboard, running, "STARTED")
    answer = post(dashboard, f"/api/tasks/{running}/revoke", {"terminate": True, "signal": "KILL"})
    assert answer.status_code == 200 and answer.json()["ok"] is True, answer.text
    revoked = wait_state(dashboard, running, "REVOKED")
    event = next(e for e in revoked["events"] if e["type"] == "task-revoked")
    assert event.get("terminated") is True


@pytest.mark.parametrize("path, body, status, message", [
    ("/api/tasks/{uuid}/revoke", {"signal": "HUP"}, 400, "signal: expected one of TERM, KILL, INT, USR1"),
    ("/api/tasks/{uuid}/revoke", {"terminate": "yes"}, 400, "terminate: expected true or false"),
    ("/api/tasks/{uuid}/revoke", [1], 400, "body: expected a JSON object"),
    ("/api/tasks/no-such-task/revoke", {}, 404, "unknown task"),
])
def test_bad_action_requests_get_a_clear_error(cluster: tuple[DashboardProc, str], path: str, body: Any,
                                               status: int, message: str) -> None:
    dashboard, broker = cluster
    known = send(producer_app(broker), "add", 1, 1, queue="actions-q")
    wait_until(lambda: dashboard.task(known), 10, message="task never seen")
    answer = post(dashboard, path.format(uuid=known), body)
    assert answer.status_code == status and message in answer.json()["error"]


def test_a_plain_form_post_is_refused(cluster: tuple[DashboardProc, str]) -> None:
    dashboard, _ = cluster
    answer = requests.post(dashboard.url + "/api/tasks/x/revoke", data={"terminate": "true"}, timeout=10)
    assert answer.status_code == 415


def inspect_now(dashboard: DashboardProc, hostname: str) -> dict[str, Any]:
    answer = requests.post(f"{dashboard.url}/api/workers/{hostname}/inspect", json={}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_grow_and_shrink_the_pool_and_add_and_cancel_a_consumer(cluster: tuple[DashboardProc, str],
                                                                 tmp_path: Path) -> None:
    dashboard, broker = cluster
    # A worker of its own: a prefork pool shrinks only once a process is idle, which can take a while,
    # and the other tests need the one-slot worker to stay at one slot.
    sizer = start_worker(broker, "sizer", tmp_path, concurrency=1, queues="sizer-q", pool="prefork")
    try:
        wait_worker_online(dashboard, "sizer@test", worker=sizer)
        wait_until(lambda: dashboard.get("/api/workers/sizer@test").json().get("stats"), 20,
                   message="sizer@test never inspected")
        check_pool_and_consumers(dashboard, "sizer@test")
    finally:
        sizer.stop()


def check_pool_and_consumers(dashboard: DashboardProc, hostname: str) -> None:
    grown = post(dashboard, f"/api/workers/{hostname}/pool-grow", {"n": 1}).json()
    assert grown["ok"] and grown["error"] is None and hostname in grown["replies"][0]
    wait_until(lambda: inspect_now(dashboard, hostname)["stats"]["pool"]["processes"].__len__() == 2, 30,
               message="the pool never grew to 2 processes")
    assert post(dashboard, f"/api/workers/{hostname}/pool-shrink", {"n": 1}).json()["ok"]
    wait_until(lambda: len(inspect_now(dashboard, hostname)["stats"]["pool"]["processes"]) == 1, 30,
               message="the pool never shrank back to 1 process")

    added = post(dashboard, f"/api/workers/{hostname}/add-consumer", {"queue": "extra-q"}).json()
    assert added["ok"] and "extra-q" in str(added["replies"])
    wait_until(lambda: "extra-q" in [q["name"] for q in inspect_now(dashboard, hostname)["active_queues"]], 30,
               message="the new queue never showed in active_queues")
    assert post(dashboard, f"/api/workers/{hostname}/cancel-consumer", {"queue": "extra-q"}).json()["ok"]
    wait_until(lambda: "extra-q" not in [q["name"] for q in inspect_now(dashboard, hostname)["active_queues"]],
               30, message="the cancelled queue stayed in active_queues")

    pong = post(dashboard, f"/api/workers/{hostname}/ping", {}).json()
    assert pong["replies"] == [{hostname: {"ok": "pong"}}]
    limited = post(dashboard, f"/api/workers/{hostname}/rate-limit",
                   {"task": "dashboard.demo.tasks.add", "rate": "10/m"}).json()
    assert limited["ok"] and "new rate limit set successfully" in str(limited["replies"])
    assert limited["error"] is None
    unknown = post(dashboard, f"/api/workers/{hostname}/rate-limit", {"task": "no.such.task", "rate": "10/m"}).json()
    assert unknown == {"ok": True, "replies": [{hostname: {"error": "unknown task"}}],
                       "error": f"{hostname}: unknown task"}  # it answered, refusing: said as the action's error
    [entry] = dashboard.get("/api/audit?limit=1").json()["items"]
    assert entry["outcome"] == f"sent; 1 replied ({hostname}: unknown task)", entry


def test_purge_a_queue_and_see_its_depth_fall_to_zero(cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    for n in range(5):
        send(app, "add", n, n, queue="idle-q")  # nobody consumes it
    wait_until(lambda: next((q for q in dashboard.get("/api/queues").json() if q["name"] == "idle-q"
                             and q["depth"] == 5), None), 20, message="idle-q never showed a depth of 5")
    answer = post(dashboard, "/api/queues/idle-q/purge", {})
    assert answer.status_code == 200 and answer.json() == {"ok": True, "purged": 5, "error": None}, answer.text
    wait_until(lambda: next((q for q in dashboard.get("/api/queues").json() if q["name"] == "idle-q"
                             and q["depth"] == 0), None), 20, message="idle-q's depth never fell to 0")


@pytest.mark.parametrize("path, body, status, message", [
    ("/api/workers/actor@test/pool-grow", {"n": 100000}, 400, "n: expected a whole number from 1 to 256"),
    ("/api/workers/actor@test/autoscale", {"max": 4, "min": 9}, 400, "min: expected a whole number from 0 to max"),
    ("/api/workers/actor@test/rate-limit", {"task": "x", "rate": "fast"}, 400, "rate: expected tasks per"),
    ("/api/workers/actor@test/time-limit", {"task": "x", "soft": 10, "hard": 5}, 400, "soft: must not be longer"),
    ("/api/workers/actor@test/explode", {}, 404, "unknown action: explode"),
    ("/api/workers/nobody@test/ping", {}, 404, "unknown worker: nobody@test"),
    ("/api/queues/no-such-queue/purge", {}, 404, "unknown queue: no-such-queue"),
])
def test_bad_worker_and_queue_actions_get_a_clear_error(cluster: tuple[DashboardProc, str], path: str, body: Any,
                                                        status: int, message: str) -> None:
    dashboard, _ = cluster
    answer = post(dashboard, path, body)
    assert answer.status_code == status and message in answer.json()["error"], answer.text


def test_retry_a_revoked_task_exactly_then_with_edited_arguments(cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    busy = send(app, "slow_report", 5, queue="actions-q")
    wait_state(dashboard, busy, "STARTED")
    old = send(app, "add", 40, 2, queue="actions-q")
    wait_until(lambda: dashboard.task(old), 10, message="queued task never seen")
    assert post(dashboard, f"/api/tasks/{old}/revoke", {}).json()["ok"]
    wait_state(dashboard, old, "REVOKED")

    preflight = dashboard.get(f"/api/tasks/{old}/retry").json()
    assert preflight == {"retryable": True, "reason": None, "name": "dashboard.demo.tasks.add", "args": [40, 2],
                         "kwargs": {}, "queue": "actions-q"}
    sent = post(dashboard, f"/api/tasks/{old}/retry", {}).json()
    assert sent["ok"] is True and sent["error"] is None and sent["task_id"] != old
    new = wait_state(dashboard, sent["task_id"], "SUCCESS")
    assert new["result"] == "42" and new["queue"] == "actions-q"
    assert dashboard.get(f"/api/tasks/{sent['task_id']}").json()["retry_of"] == old
    assert dashboard.get(f"/api/tasks/{old}").json()["retried_as"] == [sent["task_id"]]

    edited = post(dashboard, f"/api/tasks/{old}/retry", {"args": [1, 1]}).json()
    assert wait_state(dashboard, edited["task_id"], "SUCCESS")["result"] == "2"
    assert dashboard.get(f"/api/tasks/{old}").json()["retried_as"] == [sent["task_id"], edited["task_id"]]

    refused = post(dashboard, f"/api/tasks/{edited['task_id']}/retry", {})
    assert refused.status_code == 409 and "only failed, revoked, rejected or lost" in refused.json()["error"]
    bad = post(dashboard, f"/api/tasks/{old}/retry", {"args": {"x": 1}})
    assert bad.status_code == 400 and "args: expected a JSON array" in bad.json()["error"]


def test_bulk_revoke_with_its_dry_run_and_bulk_retry(cluster: tuple[DashboardProc, str]) -> None:
    dashboard, broker = cluster
    app = producer_app(broker)
    busy = send(app, "slow_report", 5, queue="actions-q")
    wait_state(dashboard, busy, "STARTED")
    queued = [send(app, "echo", "bulk-marker-7", n, queue="actions-q") for n in range(3)]
    wait_until(lambda: dashboard.get("/api/tasks", params={"q": "bulk-marker-7"}).json()["total"] == 3, 15,
               message="the queued tasks never reached the history")
    flt = {"q": "bulk-marker-7"}
    dry = post(dashboard, "/api/tasks/bulk", {"action": "revoke", "filter": flt, "dry_run": True}).json()
    assert dry["count"] == 3 and sorted(t["uuid"] for t in dry["tasks"]) == sorted(queued)
    wrong = post(dashboard, "/api/tasks/bulk", {"action": "revoke", "filter": flt, "dry_run": False,
                                                "confirm_count": 2})
    assert wrong.status_code == 409 and "matches 3 tasks" in wrong.json()["error"]
    done = post(dashboard, "/api/tasks/bulk", {"action": "revoke", "filter": flt, "dry_run": False,
                                               "confirm_count": 3}).json()
    assert done["ok"] and done["count"] == 3
    for task_id in queued:
        wait_state(dashboard, task_id, "REVOKED")

    wait_until(lambda: dashboard.get("/api/tasks", params={"q": "bulk-marker-7", "state": "REVOKED"}).json()["total"]
               == 3, 10, message="the revoked states never reached the history")
    dry = post(dashboard, "/api/tasks/bulk", {"action": "retry", "filter": {**flt, "state": "REVOKED"}}).json()
    assert dry["count"] == 3 and dry["dry_run"] is True
    sent = post(dashboard, "/api/tasks/bulk", {"action": "retry", "filter": {**flt, "state": "REVOKED"},
                                               "dry_run": False, "confirm_count": 3}).json()
    assert sent["ok"] and len(sent["task_ids"]) == 3
    for task_id in sent["task_ids"]:
        wait_state(dashboard, task_id, "SUCCESS")

    empty = post(dashboard, "/api/tasks/bulk", {"action": "revoke", "filter": {}})
    assert empty.status_code == 400 and "a bulk action needs at least one filter" in empty.json()["error"]
    bad = post(dashboard, "/api/tasks/bulk", {"action": "delete", "filter": flt})
    assert bad.status_code == 400 and "action: expected revoke or retry" in bad.json()["error"]
