"""The live batch of a large cluster stays small: workers and queues wait their turn, tasks are the newest."""
from __future__ import annotations

import json
from typing import Any

from dashboard.cluster import LIVE_BATCH_BYTES, ROUTINE_WORKER_SECONDS, Cluster
from dashboard.queues import QueueBook
from dashboard.shapes import Change
from dashboard.state import ClusterState

T0 = 1_790_000_000.0
WORKERS = 1000


def beat(hostname: str, at: float, kind: str = "worker-heartbeat", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "hostname": hostname, "timestamp": at, "local_received": at, "freq": 2.0, "active": 0,
            "processed": 0, "loadavg": [0.1, 0.1, 0.1], "sw_ident": "py-celery", "sw_ver": "5.7.0",
            "sw_sys": "Linux", **fields}


def task(uuid: str, at: float, hostname: str = "celery@w-0000") -> dict[str, Any]:
    return {"type": "task-received", "uuid": uuid, "name": "reports.build_pdf", "hostname": hostname,
            "timestamp": at, "local_received": at, "args": "(%r,)" % ("x" * 600), "kwargs": "{}"}


def size(changes: list[Change]) -> int:
    return len(json.dumps(changes, separators=(",", ":")))


def hosts(n: int = WORKERS) -> list[str]:
    return [f"celery@w-{i:04d}" for i in range(n)]


def online_cluster() -> Cluster:
    """A cluster whose 1,000 workers came online and were all pushed once."""
    cluster = Cluster(ClusterState(max_workers=5000), QueueBook())
    cluster.follow_changes()
    cluster.apply_events([beat(h, T0, "worker-online") for h in hosts()])
    pushed: set[str] = set()
    for _ in range(100):
        common = cluster.changes(set(), set(), 100, T0).common
        if not common:
            break
        pushed.update(c["key"] for c in common if c["kind"] == "worker")
    assert pushed == set(hosts())
    return cluster


def test_a_thousand_workers_coming_online_are_pushed_within_the_budget_over_several_batches() -> None:
    cluster = Cluster(ClusterState(max_workers=5000), QueueBook())
    cluster.follow_changes()
    cluster.apply_events([beat(h, T0, "worker-online") for h in hosts()])
    batches = []
    while common := cluster.changes(set(), set(), 100, T0)[0]:
        batches.append(common)
    assert len(batches) > 1 and all(size(b) <= LIVE_BATCH_BYTES for b in batches)
    keys = [c["key"] for b in batches for c in b]
    assert sorted(keys) == hosts() and keys == hosts()  # each once, in the order they came online


def test_heartbeats_of_every_worker_wait_their_turn_longest_waiting_first() -> None:
    cluster = online_cluster()
    cluster.apply_events([beat(h, T0 + 2, processed=1) for h in hosts()])
    first = cluster.changes(set(), set(), 100, T0 + 2)[0]
    assert 0 < len(first) < WORKERS and size(first) <= LIVE_BATCH_BYTES
    cluster.apply_events([beat(h, T0 + 4, processed=2) for h in hosts()])  # everyone beats again meanwhile
    second = cluster.changes(set(), set(), 100, T0 + 4)[0]
    assert second[0]["key"] == hosts()[len(first)]  # those that waited go first, and keep their place
    assert second[0]["data"]["processed"] == 2  # with the worker's state now, not when it first waited
    seen = {c["key"] for c in first + second}
    now = T0 + 4
    while common := cluster.changes(set(), set(), 100, now := now + ROUTINE_WORKER_SECONDS)[0]:
        seen.update(c["key"] for c in common)
    assert seen == set(hosts())


def test_routine_worker_changes_go_at_most_once_a_second_and_a_status_change_at_once() -> None:
    cluster = online_cluster()
    cluster.apply_events([beat(h, T0 + 2) for h in hosts(3)])
    assert [c["key"] for c in cluster.changes(set(), set(), 100, T0 + 2)[0]] == hosts(3)
    cluster.apply_events([beat(h, T0 + 2.25) for h in hosts(3)])
    assert cluster.changes(set(), set(), 100, T0 + 2.25)[0] == []  # heartbeats only: they wait
    cluster.apply_events([beat("celery@w-0002", T0 + 2.5, "worker-offline")])
    assert [c["key"] for c in cluster.changes(set(), set(), 100, T0 + 2.5)[0]] == ["celery@w-0002"]
    assert cluster.changes(set(), {"celery@w-0001"}, 100, T0 + 2.75)[0] == []  # nothing new for it either
    cluster.apply_events([beat("celery@w-0001", T0 + 2.8)])
    assert [c["key"] for c in cluster.changes(set(), {"celery@w-0001"}, 100, T0 + 2.8)[0]] == ["celery@w-0001"]
    assert [c["key"] for c in cluster.changes(set(), set(), 100, T0 + 3)[0]] == ["celery@w-0000"]  # its turn


def test_a_status_change_and_a_watched_worker_go_before_routine_heartbeats() -> None:
    cluster = online_cluster()
    cluster.apply_events([beat(h, T0 + 2) for h in hosts()])
    cluster.apply_events([beat("celery@w-0999", T0 + 2.5, "worker-offline")])
    common = cluster.changes(set(), {"celery@w-0500"}, 100, T0 + 3)[0]
    assert [c["key"] for c in common[:2]] == ["celery@w-0500", "celery@w-0999"]
    assert common[1]["data"]["status"] == "offline"


def test_the_newest_tasks_fill_their_share_and_the_rest_go_to_the_rooms_that_ask() -> None:
    cluster = online_cluster()
    cluster.apply_events([task(f"t{n:03d}", T0 + 5 + n / 1000) for n in range(100)])
    common, common_json, extra, rooms = cluster.changes({"t000"}, set(), 100, T0 + 6)
    assert json.loads(common_json) == common  # what the pusher sends, encoded once
    sent = [c["key"] for c in common if c["kind"] == "task"]
    assert 0 < len(sent) < 100 and size(common) <= LIVE_BATCH_BYTES
    assert sent == [f"t{n:03d}" for n in range(99, 99 - len(sent), -1)]  # newest first
    assert list(extra) == ["t000"] and rooms["t000"][0] == "task:t000"  # its page still gets it


def test_a_small_cluster_gets_every_change_in_every_batch() -> None:
    cluster = Cluster(ClusterState(), QueueBook())
    cluster.follow_changes()
    cluster.apply_events([beat(h, T0, "worker-online") for h in hosts(8)])
    cluster.apply_events([task(f"t{n}", T0 + 1, "celery@w-0001") for n in range(20)])
    common = cluster.changes(set(), set(), 100, T0 + 1)[0]
    assert sum(c["kind"] == "worker" for c in common) == 8 and sum(c["kind"] == "task" for c in common) == 20


def test_lost_workers_go_first_and_a_removal_never_waits() -> None:
    cluster = online_cluster()
    cluster.apply_events([beat(h, T0 + 5) for h in hosts() if h != "celery@w-0999"])
    assert [h for h, _ in cluster.expire(T0 + 7, 0.0)] == ["celery@w-0999"]  # the others beat; it did not
    common = cluster.changes(set(), set(), 100, T0 + 7)[0]
    assert common[0]["key"] == "celery@w-0999" and common[0]["data"]["status"] == "lost"
    cluster.apply_events([beat(h, T0 + 4000) for h in hosts() if h != "celery@w-0999"])
    cluster.purge(T0 + 4000, 3600)
    common = cluster.changes(set(), set(), 100, T0 + 4000)[0]
    assert common[0] == {"kind": "worker", "op": "remove", "key": "celery@w-0999", "data": None}
    assert size(common) <= LIVE_BATCH_BYTES


def test_queues_that_changed_wait_their_turn_too() -> None:
    book = QueueBook(max_queues=5000)
    cluster = Cluster(ClusterState(), book)
    cluster.follow_changes()
    names = [f"q-{n:04d}" for n in range(2000)]
    book.watch(names)
    from dashboard.broker import QueueSample

    cluster.apply_samples(T0, {name: QueueSample(depth=n % 20, consumers=None) for n, name in enumerate(names)})
    seen: list[str] = []
    while common := cluster.changes(set(), set(), 100, T0)[0]:
        assert size(common) <= LIVE_BATCH_BYTES
        seen += [c["key"] for c in common if c["kind"] == "queue"]
    assert sorted(seen) == sorted(set(seen)) and set(seen) >= set(names[1:])
