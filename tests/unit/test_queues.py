"""The queue model: remembered queues, stale depths, growth, backlog alerts (no I/O)."""
from __future__ import annotations

import pytest

from dashboard.broker import QueueSample
from dashboard.cluster import Cluster
from dashboard.queues import SPARKLINE_SECONDS, SPARKLINE_STEP_SECONDS, QueueAlertRule, QueueBook
from dashboard.state import ClusterState

T0 = 1_000_000_000.0


def sample(depth: int | None, consumers: int | None = None, error: str | None = None) -> QueueSample:
    return QueueSample(depth=depth, consumers=consumers, error=error)


def test_queues_are_remembered_after_their_consumers_are_gone() -> None:
    book = QueueBook(configured=["celery"])
    book.set_consumers({"celery": ["w1@h"], "images": ["w2@h"]})
    assert book.names() == ["celery", "images"]
    book.set_consumers({})
    book.apply(T0, {"celery": sample(3), "images": sample(0)})
    assert book.names() == ["celery", "images"]
    images = book.to_json("images", None, T0)
    assert (images["depth"], images["consumers"], images["workers"]) == (0, 0, [])
    celery = book.to_json("celery", T0 - 30, T0)
    assert celery["no_consumer"] is True and celery["oldest_age"] == 30.0


def test_a_failed_sample_keeps_the_last_depth_marked_stale() -> None:
    book = QueueBook(configured=["celery"])
    book.apply(T0, {"celery": sample(7)})
    book.apply(T0 + 1, {"celery": sample(None, error="redis://:****@h:6379/0: ConnectionError")})
    shape = book.to_json("celery", None, T0 + 1)
    assert shape["depth"] == 7 and shape["stale"] is True and "ConnectionError" in shape["error"]
    book.apply(T0 + 2, {"celery": sample(0)})
    shape = book.to_json("celery", T0, T0 + 2)
    assert shape["stale"] is False and shape["error"] is None and shape["oldest_age"] is None


def test_growing_needs_a_steady_rise() -> None:
    book = QueueBook(configured=["q"])
    for i in range(10):
        book.apply(T0 + i, {"q": sample(i)})
    assert book.to_json("q", None, T0 + 10)["growing"] is True
    book.apply(T0 + 10, {"q": sample(2)})
    assert book.to_json("q", None, T0 + 11)["growing"] is False


def test_backlog_alert_after_its_duration_and_cleared() -> None:
    book = QueueBook(rules=[QueueAlertRule.parse("celery=10:5")])
    assert book.names() == ["celery"]
    book.apply(T0, {"celery": sample(11)})
    book.apply(T0 + 4, {"celery": sample(12)})
    assert book.drain_alerts() == []
    book.apply(T0 + 5, {"celery": sample(13)})
    (alert,) = book.drain_alerts()
    assert alert["event"] == "queue-backlog" and alert["since"] == T0 and alert["depth"] == 13
    book.apply(T0 + 6, {"celery": sample(14)})
    assert book.drain_alerts() == []  # once per episode
    book.apply(T0 + 7, {"celery": sample(3)})
    assert [a["event"] for a in book.drain_alerts()] == ["queue-backlog-cleared"]


@pytest.mark.parametrize("raw", ["celery", "=5", "celery=x", "celery=5:y", "celery=-1"])
def test_bad_alert_rules_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="NAME=DEPTH"):
        QueueAlertRule.parse(raw)


def test_history_is_downsampled_for_sparklines() -> None:
    book = QueueBook(configured=["q"])
    for i in range(60):
        book.apply(T0 + i, {"q": sample(i % 7)})
    spark = book.history_json("q")
    assert len(spark["t"]) == 6 and max(spark["depth"]) == 6
    hour = book.history_json("q", full=True)
    assert len(hour["t"]) == 4 or len(hour["t"]) == 5


def test_unchanged_samples_are_pushed_at_most_every_refresh() -> None:
    book = QueueBook(configured=["q"])
    book.drain_changes()
    book.apply(T0, {"q": sample(4)})
    assert book.drain_changes() == ["q"]
    book.apply(T0 + 1, {"q": sample(4)})
    assert book.drain_changes() == []
    book.apply(T0 + 2, {"q": sample(5)})
    assert book.drain_changes() == ["q"]
    book.apply(T0 + 12.5, {"q": sample(5)})
    assert book.drain_changes() == ["q"]


def test_an_apps_configured_queues_are_watched() -> None:
    from dashboard.sampler import build_queue_book, configured_queues
    from dashboard.settings import Settings

    assert configured_queues("dashboard.demo.tasks") == ["celery", "high_priority", "low_priority"]
    assert configured_queues("dashboard.demo.tasks:app")[0] == "celery"
    book = build_queue_book(Settings(app="dashboard.demo.tasks", queues=("extra",), queue_alerts=("alerts=5",)))
    assert book.names() == ["extra", "celery", "high_priority", "low_priority", "alerts"]
    with pytest.raises(ValueError, match="no Celery app"):
        configured_queues("dashboard.demo:nothing_here")


def test_a_sparkline_keeps_one_highest_depth_per_step_over_the_window_however_long_it_runs() -> None:
    book = QueueBook(configured=["q"])
    for second in range(2 * 3600):  # two hours of samples, one a second
        book.apply(T0 + second, {"q": sample(second % 7)})
    spark = book.history_json("q")
    assert len(spark["t"]) <= SPARKLINE_SECONDS // SPARKLINE_STEP_SECONDS + 2
    assert all(isinstance(t, int) and t % SPARKLINE_STEP_SECONDS == 0 for t in spark["t"])
    assert spark["t"][-1] == int(T0 + 2 * 3600 - 1) // SPARKLINE_STEP_SECONDS * SPARKLINE_STEP_SECONDS
    assert T0 + 2 * 3600 - spark["t"][0] <= SPARKLINE_SECONDS + 2 * SPARKLINE_STEP_SECONDS
    assert set(spark["depth"]) == {6}  # each 10 s holds the 6 of a 7-second cycle
    assert book.highest("q") == 6


def test_the_highest_depth_follows_the_sparklines_window_as_peaks_come_and_go() -> None:
    """Kept as samples come, it always equals the highest depth the sparkline holds: a spike raises it, and it
    falls back to the next highest once the spike's step leaves the 15-minute window (samples at uneven times)."""
    import random

    rng = random.Random(7)
    book = QueueBook(configured=["q"])
    assert book.highest("q") == 0
    now = T0
    for n in range(3000):
        now += rng.choice((0.4, 1.0, 3.0, 11.0, 95.0))  # bursts of samples and gaps
        depth = rng.choice((0, 1, 2, 3, 40)) if n % 500 else 900  # an occasional spike
        book.apply(now, {"q": sample(depth)})
        assert book.highest("q") == max(book.history_json("q")["depth"], default=0), n
    book.apply(now + SPARKLINE_SECONDS * 3, {"q": sample(2)})  # everything before left the window
    assert book.highest("q") == 2 and book.history_json("q")["depth"] == [2]


def test_growing_is_the_same_steady_rise_whichever_test_comes_first() -> None:
    book = QueueBook(configured=["q"])
    for i, depth in enumerate([0, 1, 1, 2, 3, 3, 4, 4, 5, 5]):  # rose by 5 in ten samples, never fell
        book.apply(T0 + i, {"q": sample(depth)})
    assert book.to_json("q", None, T0 + 10)["growing"] is True
    book.apply(T0 + 10, {"q": sample(9)})  # the last ten, 1 to 9: up by 8, never falling
    assert book.to_json("q", None, T0 + 11)["growing"] is True
    book.apply(T0 + 11, {"q": sample(6)})  # a fall at the end
    assert book.to_json("q", None, T0 + 12)["growing"] is False
    flat = QueueBook(configured=["f"])
    for i, depth in enumerate([3, 9, 4, 9, 4, 9, 4, 9, 4, 7]):  # up by 4 only, and not steady
        flat.apply(T0 + i, {"f": sample(depth)})
    assert flat.to_json("f", None, T0 + 10)["growing"] is False


def test_a_snapshot_carries_the_sparklines_of_the_queues_that_matter_most() -> None:
    book = QueueBook(max_queues=5000)
    cluster = Cluster(ClusterState(), book)
    names = [f"q-{n:04d}" for n in range(1000)]
    book.watch(names)
    cluster.apply_samples(T0, {name: sample(n, consumers=1) for n, name in enumerate(names)})
    cluster.apply_samples(T0 + 1, {**{name: sample(0, consumers=1) for name in names},
                                   "q-0001": sample(5, consumers=0)})  # a backlog without a consumer
    full = cluster.queues(T0 + 1)
    assert len(full) == 1000 and all("history" in q for q in full)
    shown = {q["name"] for q in cluster.queues(T0 + 1, histories=10) if "history" in q}
    # the flagged one, then the deepest over the window (each queue once held its number), not the deepest now
    assert shown == {"q-0001"} | {f"q-{n:04d}" for n in range(991, 1000)}

