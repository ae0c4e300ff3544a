"""Which task arguments are known exactly enough to retry a task with (pure), and what a failed action answers."""
from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from dashboard import control as control_module
from dashboard.control import INTERNAL_FAILURE, NotExact, TaskControl, exact_call
from dashboard.events import EventCollector
from dashboard.settings import Settings


@pytest.mark.parametrize("args, kwargs, expected", [
    ("(1, 2)", "{}", ([1, 2], {})),
    ("[1, 'a', None, True, 2.5]", "{'x': [1, {'y': 'z'}]}", ([1, "a", None, True, 2.5], {"x": [1, {"y": "z"}]})),
    ("()", "{}", ([], {})),
    ("('cus_000123', 42)", "{'currency': 'EUR'}", (["cus_000123", 42], {"currency": "EUR"})),
])
def test_plain_literals_are_exact(args: str, kwargs: str, expected: tuple) -> None:
    assert exact_call(args, kwargs) == expected


@pytest.mark.parametrize("args, kwargs, reason", [
    ("(1, ...)", "{}", "cut by the worker"),
    ("('abc…[truncated 500 chars]',)", "{}", "cut to --max-field-chars"),
    ("(<object at 0x7f>,)", "{}", "not Python literals"),
    ("(b'raw',)", "{}", "bytes, which JSON cannot carry"),
    ("({1, 2},)", "{}", "set, which JSON cannot carry"),
    ("(float('nan'),)", "{}", "not Python literals"),
    ("(1,)", "{1: 'x'}", "key that is not a string"),
    ("1", "{}", "not a list"),
    ("(1,)", "[]", "not a dict"),
    (None, "{}", "unknown"),
    ("__import__('os').system('id')", "{}", "not Python literals"),
    ("('" + "x" * 1018 + "...',)", "{}", "1,024"),
])
def test_anything_else_says_why(args: str | None, kwargs: str, reason: str) -> None:
    with pytest.raises(NotExact, match=reason.replace("(", r"\(")):
        exact_call(args, kwargs)


class Failing:
    """``app.control`` whose every call raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def revoke(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def control_raising(error: Exception, internal: list[int]) -> TaskControl:
    app = SimpleNamespace(conf=SimpleNamespace(), control=Failing(error))
    return TaskControl(app, "redis://:hunter2@broker:6379/0", lambda: (OSError,), lambda: internal.append(1))


def test_a_broker_that_fails_did_not_take_the_request(caplog: pytest.LogCaptureFixture) -> None:
    internal: list[int] = []
    control = control_raising(ConnectionRefusedError("redis://:hunter2@broker:6379/0 refused"), internal)
    with caplog.at_level(logging.WARNING, logger="dashboard.control"):
        answer = control.revoke("t1", who="alice")
    assert answer == {"ok": False, "replies": [], "error": "the broker did not take the request: "
                                                           "ConnectionRefusedError: redis://:****@broker:6379/0 refused"}
    assert internal == [] and not any(r.exc_info for r in caplog.records) and "hunter2" not in caplog.text


def test_a_bug_sending_an_action_is_said_logged_with_its_traceback_and_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    internal: list[int] = []
    control = control_raising(TypeError("a bug"), internal)
    with caplog.at_level(logging.WARNING, logger="dashboard.control"):
        answer = control.revoke_many(["t1", "t2"], who="alice")
    assert answer == {"ok": False, "replies": [], "error": f"{INTERNAL_FAILURE}: TypeError: a bug"}
    assert internal == [1]
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [TypeError]


class PurgingBroker:
    """A broker connection whose purge raises ``error``; it lists KeyError among its connection errors,
    as kombu's Redis transport does."""

    connection_errors = (KeyError, ConnectionError)
    channel_errors = ()
    error: Exception = KeyError("a bug")

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.default_channel = self

    def __enter__(self) -> "PurgingBroker":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def queue_purge(self, queue: str) -> int:
        raise self.error


@pytest.mark.parametrize("error, said, bug", [
    (KeyError("a bug"), f"{INTERNAL_FAILURE}: KeyError: 'a bug'", True),
    (ConnectionRefusedError("refused"), "the broker did not take the request: ConnectionRefusedError: refused", False),
])
def test_a_purge_tells_a_bug_from_the_broker_failing(error: Exception, said: str, bug: bool, tmp_path: Any,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    collector = EventCollector(Settings(db=str(tmp_path / "h.db"), broker_url="redis://broker:6379/0"))
    control = TaskControl(collector.app, "redis://broker:6379/0", collector.connection_errors,
                          collector.count_internal_error)
    monkeypatch.setattr(PurgingBroker, "error", error)
    monkeypatch.setattr(control_module, "Connection", PurgingBroker)
    with caplog.at_level(logging.WARNING, logger="dashboard.control"):
        answer = control.purge("celery", {}, who="alice")
    assert answer == {"ok": False, "purged": None, "error": said}
    assert collector.internal_errors == int(bug)
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == ([KeyError] if bug else [])
