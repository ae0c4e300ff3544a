"""A follower's history writer (``--leader-lock``): it writes nothing, keeps what it saw for the lock's
TTL, and writes that when it takes over; a leader that loses the lock keeps what it had not written."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from dashboard import run_inline
from dashboard.events import EventCollector
from dashboard.history import HistoryWriter
from dashboard.settings import Settings
from dashboard.store import TaskStore
from test_history_quarantine import apply_task, stored_uuids
from test_store import path, sqlite_store  # noqa: F401  (fixtures)


@pytest.fixture
def store(sqlite_store: TaskStore) -> TaskStore:
    return sqlite_store


class Lead:
    def __init__(self) -> None:
        self.leading = False

    def __call__(self) -> bool:
        return self.leading


@pytest.fixture
def lead() -> Lead:
    return Lead()


@pytest.fixture
def follower(store: TaskStore, lead: Lead) -> HistoryWriter:
    writer = HistoryWriter(EventCollector(Settings(db=store.path)), store, run_inline)
    writer.shared, writer.leads, writer.replay_seconds = True, lead, 60.0
    writer.collector.first_subscribed_at = time.time() - 30
    return writer


def test_a_follower_writes_nothing_and_its_take_over_writes_what_it_saw(
        follower: HistoryWriter, store: TaskStore, lead: Lead) -> None:
    follower.warm()
    apply_task(follower, "seen-1")
    apply_task(follower, "seen-2")
    assert follower.flush() is True and stored_uuids(store) == set()
    assert follower.health()["writes"] is False
    assert [e["type"] for e in follower.unwritten_events("seen-1")] == ["task-received", "task-started",
                                                                          "task-succeeded"]
    lead.leading = True
    follower.promote(time.time() - 5)  # the old leader renewed 5 s ago; this process saw everything since
    assert follower.flush() is True
    assert stored_uuids(store) == {"seen-1", "seen-2"} and len(store.get("seen-1")["events"]) == 3
    assert [g for g in follower.collector.broker.gaps if g["cause"] == "no leader"] == []
    assert follower.health()["writes"] is True


def test_what_a_follower_did_not_see_is_marked_as_a_gap(follower: HistoryWriter, lead: Lead) -> None:
    follower.collector.first_subscribed_at = time.time() - 2  # subscribed after the old leader's last renewal
    lead.leading = True
    renewed = time.time() - 8
    follower.promote(renewed)
    gaps = [g for g in follower.collector.broker.gaps if g["cause"] == "no leader"]
    assert len(gaps) == 1 and gaps[0]["start"] == renewed


def test_only_the_last_seconds_are_kept_while_following(follower: HistoryWriter) -> None:
    follower.replay_seconds = 0.0
    apply_task(follower, "old")
    follower.flush()
    apply_task(follower, "new")
    follower.flush()
    kept = {task["uuid"] for followed in follower.followed for task in followed.tasks}
    assert "old" not in kept and follower.followed_from is not None


def test_a_leader_that_loses_the_lock_keeps_what_it_had_not_written(
        follower: HistoryWriter, store: TaskStore, lead: Lead) -> None:
    lead.leading = True
    follower.pending_tasks["unwritten"] = {"uuid": "unwritten", "state": "SUCCESS", "timestamp": time.time()}
    lead.leading = False
    follower.demote()
    assert follower.pending_tasks == {} and stored_uuids(store) == set()
    lead.leading = True
    follower.promote(None)
    follower.flush()
    assert stored_uuids(store) == {"unwritten"}


def test_a_clean_stop_of_a_follower_marks_nothing(follower: HistoryWriter, store: TaskStore) -> None:
    assert follower.close() is True
    assert store.last_seen_running() is None  # neither alive_at nor stopped_at: the leader writes those


def test_a_follower_shows_its_alerts_and_the_leader_alone_stores_and_delivers_them(tmp_path: Path) -> None:
    from dashboard import create_app
    rules = tmp_path / "alerts.toml"
    rules.write_text('[notify]\nwebhooks = ["http://127.0.0.1:9/hook"]\n\n[[rule]]\nkind = "event-stream"\nseconds = 30\n')
    app = create_app(Settings(db=str(tmp_path / "shared.db"), async_mode="threading", alerts_file=str(rules),
                              leader_lock="redis://127.0.0.1:1/0"))  # never reached: leadership is set by hand
    dashboard = app.extensions["dashboard"]
    leadership, alerting, store = dashboard.leadership, dashboard.alerting, dashboard.store
    assert leadership is not None and dashboard.leads is False
    alerting._load(write=False)
    fired, _ = alerting.check()  # the stream is not connected: the rule fires
    assert [a.rule for a in fired] == ["event-stream"] and alerting.active()
    assert store.open_alerts() == [] and not dashboard.webhooks.pending  # a follower stores and sends nothing
    leadership.leader = True
    dashboard.on_leadership(True, None)  # takes over: goes on from what the (absent) leader stored
    fired, _ = alerting.check()
    assert [a.rule for a in fired] == ["event-stream"]
    assert [a["rule"] for a in store.open_alerts()] == ["event-stream"] and dashboard.webhooks.pending
    stored = store.open_alerts()[0]["id"]
    leadership.leader = False  # another process takes over and resumes from the store: nothing fires twice
    other = create_app(Settings(db=str(tmp_path / "shared.db"), async_mode="threading", alerts_file=str(rules),
                                leader_lock="redis://127.0.0.1:1/0")).extensions["dashboard"]
    other.leadership.leader = True
    other.on_leadership(True, None)
    assert [a["id"] for a in other.alerting.active()] == [stored]
    assert other.alerting.check() == ([], []) and len(store.open_alerts()) == 1
    store.close()
    other.store.close()
