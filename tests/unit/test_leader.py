"""The leader lock on a real redis-server: one holder, renewal, take-over after the TTL, a clean release."""
from __future__ import annotations

import time
from typing import Iterator

import pytest
import redis

from dashboard.leader import Leadership, lock_key
from helpers import wait_until

TTL = 1.0


@pytest.fixture
def key(redis_port: int) -> Iterator[str]:
    name = f"test-leader:{time.monotonic_ns()}"
    yield name
    redis.Redis(port=redis_port).delete(name, name + ":renewed")


def contender(redis_port: int, key: str, changes: list[tuple[str, bool, float | None]], name: str) -> Leadership:
    return Leadership(f"redis://127.0.0.1:{redis_port}/0", key, TTL, time.sleep,
                      lambda leading, previous: changes.append((name, leading, previous)))


def test_one_holder_renews_and_another_takes_over_after_the_ttl(redis_port: int, key: str) -> None:
    changes: list[tuple[str, bool, float | None]] = []
    a, b = contender(redis_port, key, changes, "a"), contender(redis_port, key, changes, "b")
    assert a.step() is True and b.step() is False
    assert b.holder == a.token and changes == [("a", True, None)]
    renewed = float(redis.Redis(port=redis_port).get(key + ":renewed"))
    assert a.step() is True and b.step() is False  # renewed within the TTL: still a's
    last = float(redis.Redis(port=redis_port).get(key + ":renewed"))
    assert last >= renewed
    # a stops renewing (a kill -9): b takes over once the TTL has run out, told when a last renewed
    wait_until(lambda: b.step(), TTL * 3, message="b never took over")
    assert changes[-1] == ("b", True, last)
    assert a.step() is False and changes[-1] == ("a", False, None)  # a sees b's token: it stops writing
    assert b.to_json()["holder"] == b.token and b.to_json()["since"] is not None


def test_a_clean_release_hands_over_at_once(redis_port: int, key: str) -> None:
    changes: list[tuple[str, bool, float | None]] = []
    a, b = contender(redis_port, key, changes, "a"), contender(redis_port, key, changes, "b")
    assert a.step() and not b.step()
    a.stop()
    a.release()
    assert b.step() is True and a.leader is False


def test_a_leader_that_cannot_reach_redis_stops_before_the_ttl_runs_out(
        redis_port: int, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    changes: list[tuple[str, bool, float | None]] = []
    a = contender(redis_port, key, changes, "a")
    assert a.step()

    def unreachable(**_: object) -> None:
        raise redis.ConnectionError("Error 111 connecting to redis://:s3cret@127.0.0.1:6379")
    monkeypatch.setattr(a, "_renew", unreachable)
    assert a.step() is True  # one failed renewal, well within the TTL: still leading
    assert a.error is not None and "s3cret" not in a.error
    a.renewed_at -= TTL * 2 / 3 + 0.01  # two thirds of the TTL without a renewal
    assert a.step() is False and changes[-1] == ("a", False, None)


def test_an_unreachable_redis_is_an_error_not_a_crash(free_redis_url: str) -> None:
    lonely = Leadership(free_redis_url, "k", TTL, time.sleep)
    assert lonely.step() is False and lonely.error and lonely.to_json()["lock"] == free_redis_url


def test_the_key_follows_the_history_and_never_holds_its_password() -> None:
    assert lock_key("postgresql://u:one@db/h") == lock_key("postgresql://u:two@db/h")
    assert lock_key("postgresql://u@db/h") != lock_key("postgresql://u@db/other")
    assert "one" not in lock_key("postgresql://u:one@db/h")


@pytest.fixture
def free_redis_url() -> str:
    from helpers import free_port
    return f"redis://127.0.0.1:{free_port()}/0"


def test_a_failing_take_over_handler_does_not_end_the_election(redis_port: int, key: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    steps: list[bool] = []
    internal: list[int] = []

    def broken(leading: bool, previous: float | None) -> None:
        raise RuntimeError("a bug in the take-over")
    leadership = Leadership(f"redis://127.0.0.1:{redis_port}/0", key, TTL, lambda _: steps.append(True), broken,
                            lambda: internal.append(1))

    def sleep(_: float) -> None:  # two rounds, then stop
        steps.append(leadership.leader)
        if len(steps) == 2:
            leadership.stopping = True
    leadership.sleep = sleep
    leadership.run()
    assert steps == [True, True] and "the step failed" in caplog.text  # it holds the lock and keeps renewing
    assert internal == [1]  # the take-over's bug, counted once: the renewal after it succeeded
    leadership.release()
