"""Which workers the inspector asks, and when (the model only; no broker)."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from dashboard.control import INTERNAL_FAILURE
from dashboard.inspector import UNANSWERED_RETRY_SECONDS, WorkerInspector
from dashboard.redact import mask_secrets
from dashboard.events import EventCollector
from dashboard.settings import Settings

T0 = 1_000_000_000.0
STATS = {"stats": {"pool": {"implementation": "celery.concurrency.eventlet:TaskPool", "max-concurrency": 4}}}


def collector_with(*hostnames: str) -> EventCollector:
    collector = EventCollector(Settings(broker_url="redis://127.0.0.1:1/0", inspect_interval_seconds=30.0),
                               sleep=lambda s: None)
    collector.broker.set("connected")
    for hostname in hostnames:
        collector.apply_events([{"type": "worker-online", "hostname": hostname, "timestamp": T0, "local_received": T0}])
    return collector


def asked(inspector: WorkerInspector, hostnames: list[str], at: float) -> None:
    for hostname in hostnames:
        inspector._asked[hostname] = at


def test_a_worker_that_did_not_answer_is_asked_again_soon() -> None:
    collector = collector_with("a@h")
    inspector = WorkerInspector(collector)
    assert inspector.due(0.0) == ["a@h"]
    asked(inspector, ["a@h"], 0.0)
    collector.cluster.apply_inspect({"a@h": {}}, {"a@h": "not answering inspect"}, T0)
    assert inspector.due(UNANSWERED_RETRY_SECONDS - 0.1) == []
    assert inspector.due(UNANSWERED_RETRY_SECONDS) == ["a@h"]


def test_a_worker_that_never_answers_is_asked_less_and_less_often_up_to_the_interval() -> None:
    collector = collector_with("a@h")
    inspector = WorkerInspector(collector)
    waits = []
    now = 0.0
    for _ in range(6):
        asked(inspector, ["a@h"], now)
        inspector._misses["a@h"] = inspector._misses.get("a@h", 0) + 1  # as inspect() counts a round unanswered
        collector.cluster.apply_inspect({"a@h": {}}, {"a@h": "not answering inspect"}, T0)
        wait = next(w for w in (x / 10 for x in range(1, 400)) if inspector.due(now + w))
        waits.append(wait)
        now += wait
    assert waits == [2 * UNANSWERED_RETRY_SECONDS, 4 * UNANSWERED_RETRY_SECONDS, 8 * UNANSWERED_RETRY_SECONDS,
                     30.0, 30.0, 30.0]  # 2 s doubled per silent round, never beyond --inspect-interval


def test_an_answered_worker_waits_the_interval_unless_it_comes_back() -> None:
    collector = collector_with("a@h")
    inspector = WorkerInspector(collector)
    asked(inspector, ["a@h"], 0.0)
    collector.cluster.apply_inspect({"a@h": STATS}, {}, T0)
    assert inspector.due(10.0) == [] and inspector.due(30.0) == ["a@h"]
    collector.cluster.expire(T0 + 60, 0.0)
    collector.apply_events([{"type": "worker-online", "hostname": "a@h", "timestamp": T0 + 61, "local_received": T0 + 61}])
    assert inspector.due(5.0) == ["a@h"]  # restarted: its pool and queues may differ


def test_nothing_is_asked_while_the_broker_is_down() -> None:
    collector = collector_with("a@h")
    collector.broker.set("reconnecting", "ConnectionError")
    assert WorkerInspector(collector).due(0.0) == []


def test_secrets_in_replies_are_masked() -> None:
    reply = {"broker": {"password": "pw", "hostname": "h"}, "conf": {"result_backend": "redis://:pw@h:6379/1",
                                                                       "api_key": "k", "empty_secret": None}}
    assert mask_secrets(reply) == {"broker": {"password": "********", "hostname": "h"},
                                   "conf": {"result_backend": "redis://:****@h:6379/1", "api_key": "********",
                                            "empty_secret": None}}


@pytest.mark.parametrize(("error", "bug"), [(TypeError("a bug"), True),
                                            (ConnectionRefusedError("connection refused"), False)])
def test_a_failed_inspect_blames_the_dashboard_only_for_its_own_bugs(error: Exception, bug: bool,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    collector = collector_with("a@h")
    outcomes: list[dict[str, str | None]] = []

    def broken(**options: Any) -> Any:
        raise error

    monkeypatch.setattr(collector.app.control, "inspect", broken)
    monkeypatch.setattr(collector.cluster, "apply_inspect", lambda replies, errors, now: outcomes.append(errors))
    with caplog.at_level(logging.ERROR, logger="dashboard.inspector"):
        WorkerInspector(collector).inspect(["a@h"])
    [outcome] = outcomes
    reason = outcome["a@h"] or ""
    assert reason.startswith(INTERNAL_FAILURE) is bug and f"stats: {type(error).__name__}" in reason
    assert collector.internal_errors == int(bug) and len(caplog.records) == int(bug)
