"""The hostile corpus through both event readers: the stream goes on, nothing after it is lost, one model.

Each message of ``tests/data/hostile_messages.jsonl`` (written by
``scripts/hostile_corpus.py``) is published on the real Redis fanout, each
followed by a normal task. Two dashboards read the same stream, one through
the Redis fast path and one through Celery's receiver.
"""
from __future__ import annotations

import base64
import json
import time
from typing import Any, Iterator

import pytest
import redis

from helpers import (REPO_ROOT, DashboardProc, event_envelope, holds_throughout, start_dashboard, strict_json,
                     wait_broker_connected, wait_until)

pytestmark = pytest.mark.integration

REDIS_DB = 9
CORPUS = REPO_ROOT / "tests" / "data" / "hostile_messages.jsonl"
#: The corpus's oversized shapes are over this, and its 40 KB field under it.
MAX_EVENT_BYTES = "65536"


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line]


def normal_task(task_id: str, now: float) -> list[tuple[str, bytes]]:
    """The pub/sub messages of one task that runs and succeeds, as a worker sends them."""
    events = [("task.received", {"type": "task-received", "name": "tests.after", "args": "()", "kwargs": "{}"}),
              ("task.started", {"type": "task-started"}),
              ("task.succeeded", {"type": "task-succeeded", "result": "'ok'", "runtime": 0.01})]
    return [(key, event_envelope({"uuid": task_id, "hostname": "after@test", "timestamp": now + step * 0.001,
                                  "utcoffset": 0, "pid": 1, "clock": 1, **fields}, key))
            for step, (key, fields) in enumerate(events)]


@pytest.fixture(scope="module")
def readers(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProc, DashboardProc]]:
    """The fast path and Celery's receiver, side by side on one stream."""
    url = f"redis://127.0.0.1:{redis_port}/{REDIS_DB}"
    log_dir = tmp_path_factory.mktemp("hostile")
    fast = start_dashboard(url, log_dir / "fast", extra_args=("--max-event-bytes", MAX_EVENT_BYTES))
    try:
        kombu = start_dashboard(url, log_dir / "kombu", extra_args=("--max-event-bytes", MAX_EVENT_BYTES,
                                                                    "--event-reader", "kombu"))
        try:
            for dashboard in (fast, kombu):
                wait_broker_connected(dashboard)
            yield fast, kombu
        finally:
            kombu.stop()
    finally:
        fast.stop()


def comparable(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    if detail is not None:
        for entry in detail["events"]:
            entry.pop("local_received", None)
    return detail


def test_every_hostile_message_is_skipped_and_both_readers_build_the_same_model(
        redis_port: int, readers: tuple[DashboardProc, DashboardProc]) -> None:
    fast, kombu = readers
    assert fast.health()["events"]["reader"] == "redis" and kombu.health()["events"]["reader"] == "kombu"
    before = {d.url: d.health() for d in readers}
    client = redis.Redis(host="127.0.0.1", port=redis_port)
    now = time.time()
    after_ids = []
    for index, message in enumerate(corpus()):
        channel = f"/{REDIS_DB}.celeryev/{message['routing_key']}"
        assert client.publish(channel, base64.b64decode(message["data_b64"])) == 2, "both readers subscribe"
        task_id = f"after-{index:03d}"
        after_ids.append(task_id)
        for routing_key, data in normal_task(task_id, now + index):
            client.publish(f"/{REDIS_DB}.celeryev/{routing_key}", data)
    client.close()

    for dashboard in readers:  # every task published after a hostile message arrived, on both readers
        wait_until(lambda d=dashboard: all((t := d.task(i)) and t["state"] == "SUCCESS" for i in after_ids), 20,
                   message=lambda d=dashboard: f"tasks after hostile messages missing on {d.url}: "
                                               f"{[i for i in after_ids if not d.task(i)]}")
    for dashboard in readers:
        health = strict_json(dashboard.get("/api/health").text)
        assert health["broker"]["connected"] is True
        assert health["broker"]["since"] == before[dashboard.url]["broker"]["since"], "the subscription restarted"
        assert health["broker"]["stream_cuts"] == 0
        assert health["errors"]["internal"] == 0
        assert health["events"]["malformed"] - before[dashboard.url]["events"]["malformed"] >= 24
        assert health["events"]["last_malformed"]

    hostile_ids = [f"hostile-{n:04d}" for n in range(1, 16)]
    for task_id in hostile_ids + after_ids:
        assert comparable(fast.task(task_id)) == comparable(kombu.task(task_id)), task_id
    assert {w["hostname"] for w in fast.get("/api/workers").json()} == \
        {w["hostname"] for w in kombu.get("/api/workers").json()}

    # What was kept is bounded and valid.
    assert fast.task("hostile-0009") is None  # retries beyond 64 bits: rejected, not stored
    progress = strict_json(fast.get("/api/tasks/hostile-0012").text)
    assert progress["name"] == "hostile.progress" and progress["events"][0]["x"] is None  # NaN became null
    failed = strict_json(fast.get("/api/tasks/hostile-0013").text)
    assert failed["state"] == "FAILURE" and "\ufffd" in failed["traceback"]  # lone surrogates repaired
    blob = fast.task("hostile-0014")
    assert blob is not None and "…[truncated " in blob["events"][0]["blob"] and len(blob["events"][0]["blob"]) < 5000
    fields = fast.task("hostile-0015")
    assert fields is not None and sum(k.startswith("field_") for k in fields["events"][0]) == 32
    wait_until(lambda: {"hostile-0012", "hostile-0013"} <= {item["uuid"] for item in strict_json(
        fast.get("/api/tasks", params={"limit": 1000}).text)["items"]}, 10, message="hostile tasks not stored")


def test_outside_text_cannot_forge_log_lines(readers: tuple[DashboardProc, DashboardProc]) -> None:
    """The corpus's hostname with a newline and an escape sequence is logged on one line, escaped."""
    fast, _ = readers
    evil = "evil\n2026-01-01 INFO forged\x1b[2J@test"
    wait_until(lambda: any(w["hostname"] == evil and w["status"] == "lost" for w in fast.get("/api/workers").json()),
               20, message="the worker with a hostile hostname was never marked lost")
    log = wait_until(lambda: (text := fast.proc.log_path.read_text(errors="replace")) and "forged" in text and text,
                     5, message="the lost worker was not logged")
    assert "\\n2026-01-01 INFO forged\\x1b[2J@test" in log
    assert not any(line.startswith("2026-01-01 INFO forged") for line in log.splitlines())
    assert "\x1b" not in log


def test_a_heartbeat_from_the_future_leaves_the_worker_online(redis_port: int,
                                                             readers: tuple[DashboardProc, DashboardProc]) -> None:
    """One heartbeat stamped an hour ahead, then the worker's normal ones: online throughout, skew shown."""
    client = redis.Redis(host="127.0.0.1", port=redis_port)
    hostname = "skewed@test"

    def beat(offset: float) -> None:
        body = {"type": "worker-heartbeat", "hostname": hostname, "timestamp": time.time() + offset, "utcoffset": 0,
                "pid": 1, "clock": 1, "freq": 0.5, "active": 0, "processed": 0}
        client.publish(f"/{REDIS_DB}.celeryev/worker.heartbeat", event_envelope(body, "worker.heartbeat"))

    def status(dashboard: DashboardProc) -> dict[str, Any] | None:
        return next((w for w in dashboard.get("/api/workers").json() if w["hostname"] == hostname), None)

    try:
        beat(3600)
        for dashboard in readers:
            wait_until(lambda d=dashboard: (w := status(d)) and w["clock_skew"] < -3500, 5,
                       message="the future heartbeat did not arrive")
        def beats_and_stays_online() -> None:
            beat(0)
            for dashboard in readers:
                assert status(dashboard)["status"] == "online"

        # 6 s, each 0.5 s (the worker's own heartbeat interval): 2 × freq + slack is 3 s, long enough to be
        # lost if the clock counted
        holds_throughout(beats_and_stays_online, 6, interval=0.5)
        for dashboard in readers:
            assert abs(status(dashboard)["clock_skew"]) < 5
    finally:
        client.close()
