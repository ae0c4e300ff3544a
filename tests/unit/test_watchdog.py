"""The collector's watcher: lost workers, hung brokers, and which one it is (the broker ping faked)."""
from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from dashboard import events
from dashboard.events import (READ_LAG_MAX_SECONDS, READ_WAIT_SECONDS, WATCH_INTERVAL_SECONDS, WATCH_MAX_SECONDS,
                              EventCollector)
from dashboard.settings import Settings

T0 = 1_000_000_000.0


class Collector(EventCollector):
    """A collector whose broker ping answers as the test says, counting the pings."""

    def __init__(self, answers: bool) -> None:
        super().__init__(Settings(broker_url="redis://127.0.0.1:1/0", heartbeat_slack_seconds=1.0,
                                  watchdog_min_seconds=10.0), sleep=lambda s: None)
        self.answers = answers
        self.pings = 0
        self.broker.set("connected")
        self.listening_since = T0 - 100

    def ping_broker(self) -> bool:
        self.pings += 1
        return self.answers

    def beat(self, hostname: str, at: float) -> None:
        self.last_event_at = at  # monotonic and wall clocks coincide in these tests
        self.apply_events([{"type": "worker-heartbeat", "hostname": hostname, "timestamp": at,
                            "local_received": at, "freq": 1.0}])
        self.last_event_at = at

    def status(self, hostname: str) -> Any:
        return next(w["status"] for w in self.cluster.workers() if w["hostname"] == hostname)


def test_a_killed_worker_is_lost_while_others_beat_without_pinging(caplog: pytest.LogCaptureFixture) -> None:
    collector = Collector(answers=True)
    collector.beat("dead", T0)
    with caplog.at_level(logging.WARNING, logger="dashboard.events"):
        for second in range(1, 5):
            collector.beat("alive", T0 + second)
            collector.watch_step(T0 + second + 0.1, T0 + second + 0.1)
    assert collector.status("dead") == "lost" and collector.status("alive") == "online"
    assert collector.pings == 0
    # the dead worker's own silence (3.1 s), not the time since any event (0.1 s)
    assert [r.getMessage() for r in caplog.records] == ["worker dead lost: no heartbeat for 3.1 s"]


def test_total_silence_with_a_broker_that_answers_means_the_worker_died() -> None:
    collector = Collector(answers=True)
    collector.beat("only", T0)
    collector.watch_step(T0 + 3.1, T0 + 3.1)
    assert collector.status("only") == "lost" and collector.pings == 1
    assert collector.broker.status == "connected"


def test_total_silence_with_a_hung_broker_blames_the_broker_and_restarts_the_receiver() -> None:
    collector = Collector(answers=False)
    collector.beat("a", T0)
    collector.beat("b", T0)
    collector.watch_step(T0 + 3.1, T0 + 3.1)
    assert collector.broker.status == "unresponsive" and not collector.broker.connected
    assert collector.status("a") == collector.status("b") == "online"
    assert not collector.restart_requested
    collector.watch_step(T0 + 10.1, T0 + 10.1)  # max(--watchdog-min 10, 3 x freq 1)
    assert collector.restart_requested
    assert collector.status("a") == "online"
    assert collector.health()["status"] == "degraded"


def test_events_after_a_short_hang_clear_the_unresponsive_state() -> None:
    collector = Collector(answers=False)
    collector.beat("a", T0)
    collector.watch_step(T0 + 3.1, T0 + 3.1)
    assert collector.broker.status == "unresponsive"
    collector.beat("a", T0 + 4)
    assert collector.broker.status == "connected" and collector.status("a") == "online"


def test_the_watcher_sleeps_until_the_next_window_ends_and_no_longer_than_a_second() -> None:
    collector = Collector(answers=True)
    collector.beat("a", T0)  # freq 1 s and 1 s of slack: lost after T0 + 3
    assert collector.watch_step(T0 + 0.5, T0 + 0.5) == pytest.approx(WATCH_MAX_SECONDS)
    assert collector.watch_step(T0 + 2.6, T0 + 2.6) == pytest.approx(0.4)  # wakes as the window ends
    assert collector.watch_step(T0 + 3.01, T0 + 3.01) <= WATCH_INTERVAL_SECONDS
    assert collector.status("a") == "lost"
    collector.broker.set("reconnecting", "ConnectionError")
    assert collector.watch_step(T0 + 4, T0 + 4) == WATCH_INTERVAL_SECONDS  # the stream is down: keep looking


def test_a_window_that_ended_after_what_was_read_waits_for_the_reader() -> None:
    # The dashboard stalled from T0 + 0.5: the heartbeats sent since wait unread when the watcher wakes.
    collector = Collector(answers=True)
    alerts: list[Any] = []
    collector.alert = alerts.append
    collector.beat("a", T0)
    collector.read_through = T0 + 0.5
    assert collector.watch_step(T0 + 8, T0 + 8) == READ_WAIT_SECONDS  # ended by the clock: look again soon
    assert collector.status("a") == "online" and alerts == []
    collector.beat("a", T0 + 7.5)  # the reader catches up: the worker beat all along
    collector.read_through = T0 + 8.1
    collector.watch_step(T0 + 8.2, T0 + 8.2)
    assert collector.status("a") == "online"
    collector.read_through = T0 + 10.6  # read through the end of its window (T0 + 10.5) without a beat
    collector.watch_step(T0 + 10.7, T0 + 10.7)
    assert collector.status("a") == "lost"
    assert [(a["event"], a["time"]) for a in alerts] == [("worker-lost", T0 + 10.7)]  # when it was found lost


def test_a_reader_that_stays_behind_still_finds_a_dead_worker_later() -> None:
    collector = Collector(answers=True)
    collector.beat("a", T0)  # lost after T0 + 3 by the clock
    collector.read_through = T0 + 1
    collector.watch_step(T0 + 3 + READ_LAG_MAX_SECONDS - 0.1, T0 + 3 + READ_LAG_MAX_SECONDS - 0.1)
    assert collector.status("a") == "online"
    collector.watch_step(T0 + 3 + READ_LAG_MAX_SECONDS + 0.1, T0 + 3 + READ_LAG_MAX_SECONDS + 0.1)
    assert collector.status("a") == "lost"


def test_a_stall_longer_than_the_lag_allowed_blames_no_worker_either() -> None:
    # Stopped for 30 s from T0 + 0.5: the lag allowed counts only the time the dashboard ran.
    collector = Collector(answers=True)
    collector.beat("a", T0)
    collector.read_through = T0 + 0.5
    collector.stalls.append((T0 + 30.5, 30.0))
    collector.watch_step(T0 + 30.6, T0 + 30.6)
    assert collector.status("a") == "online"
    collector.watch_step(T0 + 30.5 + READ_LAG_MAX_SECONDS - 0.1, T0 + 30.5 + READ_LAG_MAX_SECONDS - 0.1)
    assert collector.status("a") == "online"
    collector.watch_step(T0 + 30.5 + READ_LAG_MAX_SECONDS + 0.6, T0 + 30.5 + READ_LAG_MAX_SECONDS + 0.6)
    assert collector.status("a") == "lost"  # the reader never caught up: judged by the clock, stall left out


def test_stalls_do_not_reset_the_lag_allowed() -> None:
    # Behind for 9 s of running time, then a 2 s stall, then 1.5 s more: 10.5 s of running time behind.
    collector = Collector(answers=True)
    collector.beat("a", T0)  # lost after T0 + 3 by the clock
    collector.read_through = T0 + 1
    collector.stalls.append((T0 + 12, 2.0))
    collector.watch_step(T0 + 13.5, T0 + 13.5)
    assert collector.status("a") == "lost"


def test_stream_time_is_the_clock_where_the_reader_cannot_tell() -> None:
    collector = Collector(answers=True)
    assert collector.stream_time(T0) == T0  # Celery's receiver (AMQP, filesystem)
    collector.read_through = T0 - 2
    assert collector.stream_time(T0) == T0 - 2
    collector.read_through = T0 + 1  # read just after the watcher took the time
    assert collector.stream_time(T0) == T0


def test_the_watcher_notes_a_stall_when_it_wakes_much_later_than_it_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [T0 + 0.4]
    monkeypatch.setattr(events, "time", SimpleNamespace(time=lambda: clock[0], monotonic=lambda: clock[0]))
    naps: list[float] = []

    def sleep(seconds: float) -> None:  # the first nap overruns by 20 s, as in a stop of the process
        naps.append(seconds)
        clock[0] += seconds + (20.0 if len(naps) == 1 else 0.0)
        collector.stopping = len(naps) >= 2

    collector = Collector(answers=True)
    collector.beat("a", T0)
    collector.read_through = T0 + 0.4  # its heartbeats of the stall wait unread
    collector.sleep = sleep  # type: ignore[method-assign]
    collector.watch()
    assert list(collector.stalls) == [(T0 + 0.4 + WATCH_INTERVAL_SECONDS + 20.0, pytest.approx(20.0))]
    assert collector.status("a") == "online"  # the round that noticed the stall spared it
