"""Reconciliation after a gap: workers' inspect replies, result-backend records, and lost tasks."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from celery.exceptions import SecurityError

from dashboard import Dashboard, reconcile
from dashboard.control import INTERNAL_FAILURE
from dashboard.reconcile import FROM_BACKEND, LOST_REASON, Reconciler, event_from_meta, held_task_ids

NOW = 1_800_000_000.0


def received(uuid: str, at: float, state: str = "task-started", worker: str = "w1@h") -> list[dict[str, Any]]:
    events = [{"type": "task-received", "uuid": uuid, "name": "app.t", "args": "()", "kwargs": "{}",
               "timestamp": at, "hostname": worker, "local_received": at}]
    if state == "task-started":
        events.append({"type": "task-started", "uuid": uuid, "timestamp": at + 1, "hostname": worker,
                       "local_received": at + 1})
    return events


def test_held_ids_come_from_active_reserved_and_scheduled() -> None:
    replies = {"w1@h": {"active": [{"id": "a"}], "reserved": [{"id": "b"}, "junk"],
                        "scheduled": [{"eta": "x", "request": {"id": "c"}}, {"request": None}]},
               "w2@h": {"active": None}, "w3@h": {}}
    assert held_task_ids(replies) == {"a", "b", "c"}


@pytest.mark.parametrize(("meta", "expected"), [
    ({"status": "SUCCESS", "result": {"total": 3}, "date_done": "2027-01-15T08:00:00"},
     {"type": "task-succeeded", "result": "{'total': 3}", "timestamp": datetime(2027, 1, 15, 8, tzinfo=timezone.utc).timestamp()}),
    ({"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["card declined"]},
      "traceback": "Traceback ...\\nValueError: card declined", "date_done": datetime(2027, 1, 15, 8, tzinfo=timezone.utc)},
     {"type": "task-failed", "exception": "ValueError('card declined')", "traceback": "Traceback ...\\nValueError: card declined"}),
    ({"status": "REVOKED", "result": None, "date_done": None}, {"type": "task-revoked", "timestamp": NOW}),
])
def test_a_finished_backend_record_becomes_the_missed_event(meta: dict[str, Any], expected: dict[str, Any]) -> None:
    def rebuild(raw: Any) -> Any:
        return ValueError(*raw["exc_message"])
    event = event_from_meta("u1", meta, "w1@h", NOW, 1000, rebuild)
    assert event is not None and event["reconciled"] == FROM_BACKEND and event["uuid"] == "u1"
    assert event["hostname"] == "w1@h" and event["local_received"] == NOW
    assert {k: event[k] for k in expected} == expected


@pytest.mark.parametrize("status", ["PENDING", "STARTED", "RETRY", None, 3])
def test_an_unfinished_or_odd_backend_record_is_no_event(status: Any) -> None:
    assert event_from_meta("u1", {"status": status}, "w", NOW, 100, lambda raw: raw) is None


@pytest.mark.parametrize("error", [TypeError("not a dict"), ValueError("no exc_type"), SecurityError("os.system")])
def test_an_exception_the_backend_cannot_rebuild_shows_as_stored(error: Exception,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    def rebuild(raw: Any) -> Any:
        raise error
    with caplog.at_level(logging.DEBUG, logger="dashboard.reconcile"):
        event = event_from_meta("u1", {"status": "FAILURE", "result": "stored form"}, "w", NOW, 100, rebuild)
    assert event is not None and event["exception"] == "'stored form'"
    assert [r.levelno for r in caplog.records] == [logging.DEBUG] and caplog.records[0].exc_info is None


def test_a_bug_rebuilding_an_exception_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    def rebuild(raw: Any) -> Any:
        raise RuntimeError("a bug")
    with caplog.at_level(logging.DEBUG, logger="dashboard.reconcile"):
        event = event_from_meta("u1", {"status": "FAILURE", "result": "stored form"}, "w", NOW, 100, rebuild)
    assert event is not None and event["exception"] == "'stored form'"  # the record still becomes its event
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None and record.exc_info[0] is RuntimeError


def test_an_app_that_cannot_be_read_means_no_backend(dashboard: Dashboard, caplog: pytest.LogCaptureFixture) -> None:
    owner = SimpleNamespace(settings=SimpleNamespace(app="no_such_module_here:app"), collector=dashboard.collector)
    with caplog.at_level(logging.WARNING, logger="dashboard.reconcile"):
        reconciler = Reconciler(owner)  # type: ignore[arg-type]
    assert reconciler.backend_app is None and dashboard.collector.internal_errors == 0
    [record] = caplog.records
    assert "no result backend to reconcile with" in record.getMessage() and record.exc_info is None


def test_a_bug_reading_the_app_is_counted_and_logged_with_its_traceback(
        dashboard: Dashboard, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(app_path: str) -> Any:
        raise AttributeError("a bug")
    monkeypatch.setattr(reconcile, "load_user_app", broken)
    owner = SimpleNamespace(settings=SimpleNamespace(app="proj:app"), collector=dashboard.collector)
    with caplog.at_level(logging.WARNING, logger="dashboard.reconcile"):
        reconciler = Reconciler(owner)  # type: ignore[arg-type]
    assert reconciler.backend_app is None and dashboard.collector.internal_errors == 1
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is AttributeError
    assert "no result backend" not in record.getMessage()


class FakeBackend:
    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records
        self.asked: list[str] = []

    def get_task_meta(self, uuid: str) -> dict[str, Any]:
        self.asked.append(uuid)
        return self.records.get(uuid, {"status": "PENDING", "result": None})

    def exception_to_python(self, raw: Any) -> Any:
        return raw


def test_a_pass_keeps_held_tasks_moves_on_finished_ones_and_marks_stale_ones_lost(dashboard: Dashboard) -> None:
    clock = [NOW]
    reconciler = dashboard.reconciler
    reconciler.clock = lambda: clock[0]
    backend = FakeBackend({"done": {"status": "SUCCESS", "result": 7, "date_done": "2027-01-15T08:00:00"}})
    reconciler.backend_app = SimpleNamespace(backend=backend)
    dashboard.cluster.apply_events(received("held", NOW - 7200) + received("done", NOW - 7200)
                                   + received("gone", NOW - 7200) + received("young", NOW - 60)
                                   + [{"type": "task-sent", "uuid": "queued", "name": "app.t", "timestamp": NOW - 7200,
                                       "hostname": "producer", "local_received": NOW - 7200}])
    dashboard.cluster.apply_events([{"type": "worker-heartbeat", "hostname": "w1@h", "timestamp": NOW,
                                     "local_received": NOW, "freq": 2.0, "active": 1, "processed": 0}])
    dashboard.inspector.inspect = lambda hostnames: {"w1@h": {"active": [{"id": "held"}]}}  # type: ignore[method-assign]
    reconciler.after_gap({"start": NOW - 100, "end": NOW - 1, "cause": "dashboard stopped"})
    assert reconciler.suspects == {"held", "done", "gone", "young", "queued"}
    reconciler.check()
    tasks = {uuid: dashboard.cluster.task_detail(uuid)[0] for uuid in ("held", "done", "gone", "young", "queued")}
    assert tasks["held"]["state"] == "STARTED" and tasks["held"]["lost"] is None
    assert tasks["done"]["state"] == "SUCCESS" and tasks["done"]["result"] == "7"
    assert tasks["done"]["events"][-1]["reconciled"] == FROM_BACKEND
    assert tasks["gone"]["state"] == "STARTED" and tasks["gone"]["lost"] == LOST_REASON
    assert tasks["young"]["lost"] is None  # younger than --stale-after: checked again later
    assert tasks["queued"]["lost"] is None  # PENDING: it may still wait in its queue
    assert reconciler.suspects == {"young", "queued"}
    assert (reconciler.reconciled, reconciler.lost) == (1, 1)
    assert "gone" not in {t[0] for t in dashboard.cluster.rule_inputs()["started"]}  # no stuck-task alert
    clock[0] = NOW + 3600
    reconciler.check()
    assert dashboard.cluster.task_detail("young")[0]["lost"] == LOST_REASON
    health = dashboard.health()["reconciliation"]
    assert health == {"backend": True, "suspects": 1, "reconciled": 1, "lost": 2}


def test_a_task_whose_worker_does_not_answer_is_not_judged(dashboard: Dashboard) -> None:
    reconciler = dashboard.reconciler
    reconciler.clock = lambda: NOW
    dashboard.cluster.apply_events(received("silent", NOW - 7200))
    dashboard.cluster.apply_events([{"type": "worker-heartbeat", "hostname": "w1@h", "timestamp": NOW,
                                     "local_received": NOW, "freq": 2.0, "active": 1, "processed": 0}])
    dashboard.inspector.inspect = lambda hostnames: {"w1@h": {}}  # type: ignore[method-assign]
    reconciler.after_gap({"start": NOW - 100, "end": NOW - 1, "cause": "broker connection lost"})
    reconciler.check()
    assert dashboard.cluster.task_detail("silent")[0]["lost"] is None and reconciler.suspects == {"silent"}


def test_a_backend_that_is_down_is_asked_once_a_pass_and_warned_of_once(
        dashboard: Dashboard, caplog: pytest.LogCaptureFixture) -> None:
    reconciler = dashboard.reconciler
    reconciler.clock = lambda: NOW
    asked: list[str] = []

    class Down:
        def get_task_meta(self, uuid: str) -> dict[str, Any]:
            asked.append(uuid)
            raise ConnectionError("Error 111 connecting to cache:6379. Connection refused.")
    reconciler.backend_app = SimpleNamespace(backend=Down(), conf=SimpleNamespace(result_backend="redis://cache:6379/1"))
    for n in range(5):
        dashboard.cluster.apply_events(received(f"t{n}", NOW - 7200))
    dashboard.inspector.inspect = lambda hostnames: {}  # type: ignore[method-assign]
    reconciler.after_gap({"start": NOW - 100, "end": NOW - 1, "cause": "dashboard stopped"})
    with caplog.at_level(logging.WARNING, logger="dashboard.reconcile"):
        reconciler.check()
    assert len(asked) == 1  # not once per task, each waiting for the backend's connect timeout
    [warning] = [r for r in caplog.records if "result backend" in r.getMessage()]
    assert warning.levelno == logging.WARNING and warning.exc_info is None and "Connection refused" in warning.getMessage()
    assert dashboard.collector.internal_errors == 0
    # Without the backend's word, the tasks no worker holds are judged by their age as before.
    assert reconciler.lost == 5


def test_looking_up_a_result_without_a_backend_says_how_to_get_one(client: Any) -> None:
    response = client.post("/api/tasks/abc/result", json={})
    assert response.status_code == 404 and "--app" in response.get_json()["error"]


def test_looking_up_a_result_applies_a_finished_record(client: Any) -> None:
    dashboard = client.application.extensions["dashboard"]
    dashboard.reconciler.backend_app = SimpleNamespace(backend=FakeBackend({"t1": {"status": "SUCCESS", "result": "ok"}}))
    dashboard.cluster.apply_events(received("t1", NOW - 10))
    body = client.post("/api/tasks/t1/result", json={}).get_json()
    assert body["available"] is True and body["state"] == "SUCCESS" and body["applied"] is True
    assert client.get("/api/tasks/t1").get_json()["state"] == "SUCCESS"
    again = client.post("/api/tasks/t1/result", json={}).get_json()
    assert again["applied"] is False  # finished already: nothing to apply


def break_the_model(dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the model raises on every event, as a bug in it would."""
    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("a bug in the model")
    monkeypatch.setattr(dashboard.cluster._state, "apply", broken)


def test_a_record_the_model_cannot_apply_on_look_up_is_a_bug_logged_with_its_traceback(
        client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    dashboard = client.application.extensions["dashboard"]
    dashboard.reconciler.backend_app = SimpleNamespace(backend=FakeBackend({"t1": {"status": "SUCCESS", "result": "ok"}}))
    dashboard.cluster.apply_events(received("t1", NOW - 10))
    break_the_model(dashboard, monkeypatch)
    with caplog.at_level(logging.ERROR, logger="dashboard.reconcile"):
        body = client.post("/api/tasks/t1/result", json={}).get_json()
    assert body["available"] is True and body["state"] == "SUCCESS" and body["applied"] is False
    assert dashboard.collector.internal_errors == 1 and dashboard.reconciler.reconciled == 0
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError and "t1" in record.getMessage()


def test_a_record_the_model_cannot_apply_in_a_pass_is_a_bug_logged_with_its_traceback(
        dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    reconciler = dashboard.reconciler
    reconciler.clock = lambda: NOW
    reconciler.backend_app = SimpleNamespace(backend=FakeBackend({"done": {"status": "SUCCESS", "result": 7}}))
    dashboard.cluster.apply_events(received("done", NOW - 60))
    dashboard.inspector.inspect = lambda hostnames: {}  # type: ignore[method-assign]
    reconciler.after_gap({"start": NOW - 100, "end": NOW - 1, "cause": "dashboard stopped"})
    break_the_model(dashboard, monkeypatch)
    with caplog.at_level(logging.ERROR, logger="dashboard.reconcile"):
        reconciler.check()
    assert dashboard.collector.internal_errors == 1 and reconciler.reconciled == 0
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError and "done" in record.getMessage()


class FailingBackend:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_task_meta(self, uuid: str) -> dict[str, Any]:
        raise self.error


def look_up_failing(client: Any, caplog: pytest.LogCaptureFixture, error: Exception, url: str) -> Any:
    """POST a result look-up to a backend whose client raises ``error``; return the answer."""
    client.application.extensions["dashboard"].reconciler.backend_app = SimpleNamespace(
        backend=FailingBackend(error), conf=SimpleNamespace(result_backend=url))
    with caplog.at_level(logging.WARNING, logger="dashboard.reconcile"):
        return client.post("/api/tasks/t1/result", json={})


def test_a_backend_that_fails_is_a_503_with_its_password_masked(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    response = look_up_failing(client, caplog, ConnectionError("Error connecting to redis://:hunter2@cache:6379/1"),
                               "redis://:hunter2@cache:6379/1")
    assert response.status_code == 503 and "hunter2" not in response.get_data(as_text=True)
    assert response.get_json()["error"].startswith("the result backend did not answer: ConnectionError: ")
    dashboard = client.application.extensions["dashboard"]
    assert dashboard.collector.internal_errors == 0 and not any(r.exc_info for r in caplog.records)


class OperationalError(Exception):
    """What SQLAlchemy raises when a ``db+postgresql://`` backend is down: a type no list of ours names."""


def test_any_error_of_the_backends_own_client_is_the_backend_failing(client: Any,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    response = look_up_failing(client, caplog, OperationalError("could not connect to server at db:5432"),
                               "db+postgresql://app:hunter2@db/results")
    assert response.status_code == 503
    assert response.get_json()["error"] == ("the result backend did not answer: OperationalError: could not connect "
                                            "to server at db:5432")
    dashboard = client.application.extensions["dashboard"]
    assert dashboard.collector.internal_errors == 0 and not any(r.exc_info for r in caplog.records)


def test_a_bug_calling_the_backend_is_said_as_a_bug_not_as_the_backend_failing(
        client: Any, caplog: pytest.LogCaptureFixture) -> None:
    response = look_up_failing(client, caplog, AttributeError("'NoneType' object has no attribute 'get'"),
                               "redis://cache:6379/1")
    assert response.status_code == 503
    assert response.get_json()["error"].startswith(f"{INTERNAL_FAILURE}: AttributeError: ")
    assert client.application.extensions["dashboard"].collector.internal_errors == 1
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [AttributeError]


def test_a_bug_looking_up_a_result_is_a_503_that_says_so(client: Any, caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    dashboard = client.application.extensions["dashboard"]
    dashboard.reconciler.backend_app = SimpleNamespace(backend=FakeBackend({}),
                                                       conf=SimpleNamespace(result_backend="redis://cache:6379/1"))

    def broken(uuids: Any) -> Any:
        raise TypeError("a bug")
    monkeypatch.setattr(dashboard.cluster, "unfinished", broken)  # the backend answered; the model failed
    with caplog.at_level(logging.WARNING, logger="dashboard.reconcile"):
        response = client.post("/api/tasks/t1/result", json={})
    assert response.status_code == 503  # never a 500
    assert response.get_json()["error"] == f"{INTERNAL_FAILURE}: TypeError: a bug"
    assert dashboard.collector.internal_errors == 1
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is TypeError


def test_a_workers_processed_count_keeps_its_value_at_first_sight(dashboard: Dashboard) -> None:
    def beat(processed: int, at: float) -> None:
        dashboard.cluster.apply_events([{"type": "worker-heartbeat", "hostname": "quiet@h", "timestamp": at,
                                         "local_received": at, "freq": 2.0, "active": 0, "processed": processed}])

    def worker() -> dict[str, Any]:
        return next(w for w in dashboard.cluster.workers() if w["hostname"] == "quiet@h")
    beat(40, NOW)
    beat(45, NOW + 2)
    assert (worker()["processed_base"], worker()["processed"]) == (40, 45)
    beat(1, NOW + 4)  # restarted: its count starts again
    assert (worker()["processed_base"], worker()["processed"]) == (1, 1)
