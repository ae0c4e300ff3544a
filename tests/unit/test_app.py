"""The web layer in-process: create_app, Flask's test client and Flask-SocketIO's, fed recorded events."""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard import Dashboard, create_app
from dashboard.settings import Settings
from helpers import strict_json

Feed = Callable[[list[dict[str, Any]]], None]


def live_messages(socket_client: Any, name: str) -> list[dict[str, Any]]:
    return [m["args"][0] for m in socket_client.get_received("/live") if m["name"] == name]


def task_event(kind: str, uuid: str, at: float, hostname: str = "w@test", **fields: Any) -> dict[str, Any]:
    return {"type": f"task-{kind}", "uuid": uuid, "hostname": hostname, "timestamp": at, "local_received": at,
            **fields}


# -- REST --------------------------------------------------------------------------------------------
def test_recorded_events_reach_every_read_path(client: FlaskClient, feed: Feed,
                                               recorded: list[dict[str, Any]], dashboard: Dashboard) -> None:
    feed(recorded)
    workers = strict_json(client.get("/api/workers").data)
    assert [w["hostname"] for w in workers] == ["rec@demo-host"]
    detail = strict_json(client.get("/api/workers/rec@demo-host").data)
    assert detail["hostname"] == "rec@demo-host"
    outcomes = {kind: sum(1 for e in recorded if e["type"] == f"task-{kind}") for kind in ("succeeded", "failed", "retried")}
    assert outcomes["succeeded"] and outcomes["failed"]
    assert {kind: workers[0][kind] for kind in outcomes} == {kind: detail[kind] for kind in outcomes} == outcomes
    assert detail["active"] == workers[0]["active"] == 0 and detail["active_tasks"] is None  # a number; the list apart
    dashboard.cluster.apply_inspect({"rec@demo-host": {"active": [{"id": "t1", "name": "add"}]}}, {}, 1e9)
    detail = strict_json(client.get("/api/workers/rec@demo-host").data)
    assert detail["active"] == 0 and detail["active_tasks"] == [{"id": "t1", "name": "add"}]
    task_id = next(e["uuid"] for e in recorded if e["type"] == "task-succeeded")
    detail = strict_json(client.get(f"/api/tasks/{task_id}").data)
    assert detail["state"] == "SUCCESS" and [e["type"] for e in detail["events"]][-1] == "task-succeeded"
    assert dashboard.history.flush()
    listed = strict_json(client.get("/api/tasks?limit=1000").data)
    assert task_id in {item["uuid"] for item in listed["items"]}
    assert client.get(f"/tasks/{task_id}").status_code == 200
    assert client.get("/workers/rec@demo-host").status_code == 200



def test_go_to_task_id_takes_the_first_characters_of_an_id_and_any_case(client: FlaskClient, feed: Feed,
                                                                         dashboard: Dashboard) -> None:
    """The lists show a task id's first 8 characters: "Go to task id" leads from them (or from the id in capitals)
    to the task; from characters several ids start with, to the search that lists them; else to the 404 page."""
    ids = ["b2c2b1f0-1111-4aaa-8aaa-000000000001", "b2c2b1f0-2222-4bbb-8bbb-000000000002",
           "c3d4e5f6-3333-4ccc-8ccc-000000000003"]
    feed([task_event("received", uuid, 1e9 + n, name="app.add") for n, uuid in enumerate(ids)])
    assert dashboard.history.flush()

    def lands(value: str) -> tuple[int, str]:
        answer = client.get("/tasks", query_string={"uuid": value})
        return answer.status_code, answer.headers.get("Location", "")
    assert lands(ids[2]) == (302, f"/tasks/{ids[2]}")
    assert lands(ids[2].upper()) == (302, f"/tasks/{ids[2]}")
    assert lands("C3D4E5F6") == (302, f"/tasks/{ids[2]}")  # one stored id starts with it
    assert lands("b2c2b1f0-2") == (302, f"/tasks/{ids[1]}")
    assert lands("b2c2b1f0") == (302, "/tasks?q=b2c2b1f0")  # two do: the search lists them
    assert lands("deadbeef") == (302, "/tasks/deadbeef")  # none: the unknown id's page, with its own box
    assert lands("not an id") == (302, "/tasks/not%20an%20id")
    assert client.get("/tasks/deadbeef").status_code == 404

@pytest.mark.parametrize("path, status, message", [
    ("/api/tasks?limit=0", 400, "limit: must be between 1 and 1000"),
    ("/api/task-names?limit=0", 400, "limit: must be between 1 and 1000"),
    ("/api/task-names?prefix=a%00", 400, "prefix: contains a NUL character"),
    ("/api/tasks?state=DONE", 400, "state: unknown DONE"),
    ("/api/tasks?sort=color", 400, "sort: expected one of"),
    ("/api/tasks?since=yesterday", 400, "since: expected epoch seconds"),
    ("/api/tasks?cursor=zzz", 400, "cursor: not a cursor"),
    ("/api/tasks?q=%00", 400, "q: contains a NUL character"),
    ("/api/workers?all=maybe", 400, "all: expected 1 or 0"),
    ("/api/queues/nope?hours=0", 400, "hours: must be between"),
    ("/api/tasks/unknown-id", 404, "unknown task"),
    ("/api/workers/nobody", 404, "unknown worker"),
    ("/api/queues/nope", 404, "unknown queue"),
    ("/api/nothing-here", 404, "not found: /api/nothing-here"),
])
def test_api_errors_are_json_with_a_message(client: FlaskClient, path: str, status: int, message: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_healthcheck_answers_ok_as_flowers_does(client: FlaskClient) -> None:
    response = client.get("/healthcheck")
    assert response.status_code == 200 and response.data == b"OK" and response.mimetype == "text/plain"


def test_a_new_history_is_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dashboard.store"):
        create_app(Settings(db=str(tmp_path / "new.db"), async_mode="threading"))
    assert [r.getMessage() for r in caplog.records] == [f"created a new history at {tmp_path / 'new.db'}"]


def test_405_and_the_error_pages(client: FlaskClient) -> None:
    response = client.delete("/api/workers")
    assert response.status_code == 405 and "method DELETE not allowed" in response.get_json()["error"]
    page = client.get("/tasks/unknown-id")
    assert page.status_code == 404 and b'id="bootstrap"' in page.data
    assert client.get("/no/such/page").status_code == 404
    assert client.post("/api/workers/nobody/inspect", data="x", content_type="text/plain").status_code == 415


# -- live ----------------------------------------------------------------------------------------------
def test_snapshot_then_numbered_changes_then_resync(app: Flask, dashboard: Dashboard, feed: Feed,
                                                    recorded: list[dict[str, Any]]) -> None:
    socket = dashboard.socketio.test_client(app, namespace="/live")
    (snapshot,) = live_messages(socket, "snapshot")
    assert snapshot["seq"] == 0 and snapshot["tasks"] == [] and snapshot["workers"] == []

    half = len(recorded) // 2
    feed(recorded[:half])
    dashboard.hub.flush()
    feed(recorded[half:])
    dashboard.hub.flush()
    batches = live_messages(socket, "changes")
    assert [b["seq"] for b in batches] == [1, 2]
    keys = {(c["kind"], c["key"]) for b in batches for c in b["changes"]}
    assert ("worker", "rec@demo-host") in keys
    assert all(c["data"]["uuid"] == c["key"] for b in batches for c in b["changes"] if c["kind"] == "task")

    socket.emit("resync", namespace="/live")
    (fresh,) = live_messages(socket, "snapshot")
    assert fresh["seq"] == 2 and fresh["tasks"] and fresh["workers"][0]["hostname"] == "rec@demo-host"
    socket.disconnect(namespace="/live")
    assert dashboard.hub.clients == {}


def test_task_and_worker_rooms_get_changes_beyond_the_overview(tmp_path: Path) -> None:
    app = create_app(Settings(db=str(tmp_path / "h.db"), async_mode="threading", snapshot_tasks=2))
    dashboard: Dashboard = app.extensions["dashboard"]
    watcher = dashboard.socketio.test_client(app, namespace="/live")
    by_task = dashboard.socketio.test_client(app, namespace="/live")
    by_worker = dashboard.socketio.test_client(app, namespace="/live")
    assert by_task.emit("subscribe", {"room": "task:t0"}, namespace="/live", callback=True) == \
        {"ok": True, "error": None}
    assert by_worker.emit("subscribe", {"room": "worker:b@test"}, namespace="/live", callback=True)["ok"]
    assert not by_worker.emit("subscribe", {"room": "queue:x"}, namespace="/live", callback=True)["ok"]
    for client in (watcher, by_task, by_worker):
        client.get_received("/live")

    events = [task_event("received", f"t{n}", 1e9 + n, hostname="a@test" if n % 2 else "b@test") for n in range(6)]
    collector = dashboard.collector
    collector.apply_events(collector.take(events, lambda event: (event["type"], event)))
    dashboard.hub.flush()

    def tasks_seen(client: Any) -> set[str]:
        return {c["key"] for b in live_messages(client, "changes") for c in b["changes"] if c["kind"] == "task"}

    overview = {"t4", "t5"}  # the two most recently changed
    assert tasks_seen(watcher) == overview
    assert tasks_seen(by_task) == overview | {"t0"}
    assert tasks_seen(by_worker) == overview | {"t0", "t2"}  # b@test ran t0, t2 and t4


# -- the history writer ----------------------------------------------------------------------------
def test_a_disk_failure_is_kept_and_retried(dashboard: Dashboard, feed: Feed, monkeypatch: pytest.MonkeyPatch) -> None:
    feed([task_event("succeeded", "kept", 1e9, result="1")])
    real = dashboard.store.write_batch
    calls = []

    def full_once(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database or disk is full")
        real(*args)

    monkeypatch.setattr(dashboard.store, "write_batch", full_once)
    assert dashboard.history.flush() is False
    assert dashboard.history.health()["error"] == "OperationalError: database or disk is full"
    assert dashboard.history.flush() is True
    assert dashboard.store.get("kept")["state"] == "SUCCESS"
    assert dashboard.history.health()["error"] is None and dashboard.history.health()["quarantined"] == 0


def test_a_bug_in_the_write_path_is_logged_counted_and_not_retried_for_ever(
        dashboard: Dashboard, feed: Feed, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    feed([task_event("succeeded", "good", 1e9, result="1"), task_event("succeeded", "bad", 1e9, result="2")])
    real = dashboard.store.write_batch

    def type_error_on_bad(tasks: list[dict[str, Any]], events: list[Any]) -> None:
        if any(task["uuid"] == "bad" for task in tasks):
            raise TypeError("unsupported type in a row")
        real(tasks, events)

    monkeypatch.setattr(dashboard.store, "write_batch", type_error_on_bad)
    with caplog.at_level(logging.ERROR, logger="dashboard.history"):
        assert dashboard.history.flush() is True
    assert dashboard.store.get("good") is not None and dashboard.store.get("bad") is None
    health = dashboard.health()
    assert health["errors"]["internal"] == 1 and dashboard.history.health()["quarantined"] == 1
    assert any(r.exc_info and "task bad cannot be written" in r.getMessage() for r in caplog.records)
    assert dashboard.history.flush() is True  # nothing left to retry


def test_name_prefix_filter_and_name_completion(client: FlaskClient, feed: Feed, dashboard: Dashboard) -> None:
    names = ["app.payments.charge", "app.payments.refund", "app.payments.refund", "app.emails.send", "other"]
    feed([{"type": "task-received", "uuid": f"t{i}", "hostname": "w", "timestamp": 1e9 + i, "name": name}
          for i, name in enumerate(names)])
    assert dashboard.history.flush()
    listed = strict_json(client.get("/api/tasks?name=app.payments.*").data)
    assert sorted(t["uuid"] for t in listed["items"]) == ["t0", "t1", "t2"] and listed["total"] == 3
    assert strict_json(client.get("/api/tasks?name=app.payments.refund").data)["total"] == 2  # exact as before
    assert strict_json(client.get("/api/task-names").data) == {
        "names": ["app.emails.send", "app.payments.charge", "app.payments.refund", "other"]}
    assert strict_json(client.get("/api/task-names?prefix=app.pay&limit=1").data) == {"names": ["app.payments.charge"]}
    assert strict_json(client.get("/api/task-names?prefix=zzz").data) == {"names": []}


def test_without_a_login_every_page_says_so_and_api_answers_are_not_cached(tmp_path: Path) -> None:
    insecure = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading", address="0.0.0.0",
                                   insecure_no_auth=True))
    try:
        page = insecure.test_client().get("/", headers={"Host": "127.0.0.1"})
        assert b"data-insecure" in page.data and b"No authentication" in page.data
    finally:
        insecure.extensions["dashboard"].close()
    secure = create_app(Settings(db=str(tmp_path / "e.db"), async_mode="threading"))
    try:
        client = secure.test_client()
        assert b"data-insecure" not in client.get("/").data
        answer = client.get("/api/workers")
        assert answer.headers["Cache-Control"] == "no-store" and answer.headers["X-Content-Type-Options"] == "nosniff"
        assert "Access-Control-Allow-Origin" not in answer.headers
    finally:
        secure.extensions["dashboard"].close()


@pytest.mark.parametrize("flags", [{"read_only": True}, {"address": "0.0.0.0", "insecure_no_auth": True}])
def test_every_action_is_refused_when_actions_are_off(tmp_path: Path, flags: dict[str, Any]) -> None:
    app = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading", **flags))
    try:
        client = app.test_client()
        for path in ("/api/tasks/t1/revoke", "/api/tasks/t1/retry", "/api/workers/w@h/ping", "/api/workers/w@h/shutdown",
                     "/api/queues/celery/purge"):
            answer = client.post(path, json={}, headers={"Host": "127.0.0.1"})
            assert answer.status_code == 403 and "actions are off" in answer.get_json()["error"], path
        assert b'"actions":false' in client.get("/", headers={"Host": "127.0.0.1"}).data
    finally:
        app.extensions["dashboard"].close()


def test_a_retry_preflight_says_why_a_task_cannot_be_retried(client: FlaskClient, feed: Feed,
                                                            dashboard: Dashboard) -> None:
    feed([{"type": "worker-heartbeat", "hostname": "w@h", "timestamp": 1e9, "freq": 2.0, "active": 0},
          {"type": "task-failed", "uuid": "cut", "hostname": "w@h", "timestamp": 1e9, "name": "app.add",
           "args": "(1, ...)", "kwargs": "{}", "exception": "E"},
          {"type": "task-failed", "uuid": "odd", "hostname": "w@h", "timestamp": 1e9, "name": "app.gone",
           "args": "(1,)", "kwargs": "{}", "exception": "E"},
          {"type": "task-failed", "uuid": "ok", "hostname": "w@h", "timestamp": 1e9, "name": "app.add",
           "args": "(1,)", "kwargs": "{}", "exception": "E"},
          {"type": "task-succeeded", "uuid": "done", "hostname": "w@h", "timestamp": 1e9, "name": "app.add"}])
    def preflight(uuid: str) -> dict[str, Any]:
        return strict_json(client.get(f"/api/tasks/{uuid}/retry").data)
    assert "no online worker has reported its registered tasks yet" in preflight("ok")["reason"]
    dashboard.cluster.apply_inspect({"w@h": {"registered": ["app.add [rate_limit=10/m]"]}}, {}, 1e9)
    assert preflight("ok") == {"retryable": True, "reason": None, "name": "app.add", "args": [1], "kwargs": {},
                               "queue": None}
    assert "its arguments are not known exactly: the args were cut by the worker" in preflight("cut")["reason"]
    assert preflight("odd")["reason"] == "no online worker has app.gone registered"
    assert "a SUCCESS task is not retried" in preflight("done")["reason"]
    answer = client.post("/api/tasks/cut/retry", json={"args": [1, 2]})
    assert answer.status_code == 409 and "not known exactly" in answer.get_json()["error"]
    assert client.get("/api/tasks/nope/retry").status_code == 404


def test_a_bulk_action_beyond_the_limit_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    app = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading", bulk_limit=2))
    dashboard = app.extensions["dashboard"]
    try:
        collector = dashboard.collector
        collector.apply_events(collector.take(
            [{"type": "task-received", "uuid": f"b{n}", "hostname": "w", "timestamp": 1e9 + n, "name": "app.bulk"}
             for n in range(3)], lambda event: (event["type"], event)))
        assert dashboard.history.close()
        answer = app.test_client().post("/api/tasks/bulk", json={"action": "revoke", "filter": {"name": "app.bulk"}})
        assert answer.status_code == 400
        assert answer.get_json()["error"] == "the filter matches 3 tasks, more than --bulk-limit 2: narrow it"
        bad = app.test_client().post("/api/tasks/bulk", json={"action": "revoke", "filter": {"sort": "name"}})
        assert bad.status_code == 400 and "filter: unknown sort" in bad.get_json()["error"]
    finally:
        dashboard.store.close()


@pytest.mark.parametrize("site, status", [("cross-site", 403), ("same-site", 403), ("same-origin", 404), (None, 404)])
def test_a_post_from_another_site_is_refused_by_what_the_browser_says(client: FlaskClient, site: str | None,
                                                                       status: int) -> None:
    headers = {"Host": "127.0.0.1", **({"Sec-Fetch-Site": site} if site else {})}
    assert client.post("/api/tasks/unknown/revoke", json={}, headers=headers).status_code == status
