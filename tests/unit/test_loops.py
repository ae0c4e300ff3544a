"""Every background loop outlives a bug in one of its rounds: counted, logged with its traceback, and it goes on."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from dashboard import Dashboard

#: Each loop: the dashboard's attribute holding it, its loop method, the step a round calls, and what
#: that step returns when it works.
LOOPS = [
    ("collector", "watch", "watch_step", 1.0),
    ("hub", "run", "flush", None),
    ("sampler", "run", "step", None),
    ("inspector", "run", "due", []),
    ("alerting", "run", "check", ([], [])),
    ("reconciler", "run", "check", None),
    ("periodic", "run", "refresh", None),
    ("history", "run", "flush", True),
]


@pytest.mark.parametrize(("part", "loop", "step", "result"), LOOPS, ids=[f"{p}.{lp}" for p, lp, _, _ in LOOPS])
def test_a_loop_survives_a_bug_in_one_round(part: str, loop: str, step: str, result: Any, dashboard: Dashboard,
                                            monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    owner = getattr(dashboard, part)
    rounds: list[int] = []

    def buggy_once(*args: Any) -> Any:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("a bug")
        owner.stop()  # the round after the bug ran: the loop ends after it, whether it sleeps first or last
        return result

    monkeypatch.setattr(owner, step, buggy_once)
    monkeypatch.setattr(dashboard.collector, "sleep", lambda seconds: None)
    monkeypatch.setattr(dashboard.socketio, "sleep", lambda seconds: None)
    dashboard.collector.broker.set("connected")  # the reconciler checks only while the stream is up
    dashboard.reconciler.suspects = {"t1"}  # and only when a gap left tasks to check
    with caplog.at_level(logging.ERROR, logger="dashboard"):
        getattr(owner, loop)()  # returns: the bug did not end the loop
    assert len(rounds) == 2 and dashboard.collector.internal_errors == 1
    traced = [r for r in caplog.records if r.exc_info]
    assert len(traced) == 1 and traced[0].exc_info is not None and traced[0].exc_info[0] is RuntimeError
