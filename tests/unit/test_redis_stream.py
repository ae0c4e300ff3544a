"""The Redis fast path decodes recorded wire traffic exactly as Celery's receiver does."""
from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path
from typing import Any, Callable

import hiredis
import orjson
import pytest
from celery import Celery
from celery.events.receiver import EventReceiver
from celery.utils.time import utcoffset
from kombu import Connection

from dashboard import redis_stream
from dashboard.events import PACE_LEAD_SECONDS, EventCollector, until_tick
from dashboard.live import READER_POLL_SECONDS, READER_WAIT_SECONDS, LiveHub
from dashboard.redis_stream import (MAX_BATCH_EVENTS, Backlog, Localizer, RedisEventStream, UndecodableMessage,
                                    decode_envelope, fanout_pattern, serves)
from dashboard.settings import Settings

WIRE = Path(__file__).resolve().parent.parent / "data" / "redis_wire.jsonl"
NOW = 1_795_620_000.25


def wire_messages() -> list[bytes]:
    """Pub/sub payloads recorded from an eventlet and a prefork worker (the latter sends event lists)."""
    return [json.loads(line)["data"].encode() for line in WIRE.read_text().splitlines() if line]


def celery_receiver() -> EventReceiver:
    app = Celery(set_as_current=False)
    return EventReceiver(Connection("memory://"), app=app, accept=["json"])


def kombu_bodies(messages: list[bytes]) -> list[Any]:
    """Decode each message through kombu's own Message, as Celery's consumer does."""
    channel = Connection("memory://").default_channel
    bodies = []
    for data in messages:
        message = channel.message_to_python(json.loads(data))
        message.accept = ["application/json"]
        bodies.append(message.decode())
    return bodies


def events_of(bodies: list[Any]) -> list[dict[str, Any]]:
    return [event for body in bodies for event in (body if isinstance(body, list) else [body])]


def with_offset(data: bytes, hours: float) -> bytes:
    """Re-encode a message as if its worker ran ``hours`` away from UTC, without a clock field."""
    envelope = json.loads(data)
    body = json.loads(base64.b64decode(envelope["body"]))
    for event in body if isinstance(body, list) else [body]:
        event["utcoffset"] = hours
        event.pop("clock", None)
    envelope["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps(envelope).encode()


@pytest.mark.parametrize("variant", ["recorded", "other-timezone-no-clock"])
def test_fast_path_yields_exactly_the_receivers_events(variant: str) -> None:
    messages = wire_messages()
    if variant != "recorded":
        messages = [with_offset(m, -5.0) if i % 3 == 0 else m for i, m in enumerate(messages)]
    receiver = celery_receiver()
    expected = [receiver.event_from_message(event, now=lambda: NOW) for event in events_of(kombu_bodies(messages))]
    localize = Localizer(Celery(set_as_current=False).clock)
    here = utcoffset()
    got = [localize(event, NOW, here) for event in events_of([decode_envelope(m) for m in messages])]
    assert len(got) == len(expected) > 400
    assert got == expected
    batched = Localizer(Celery(set_as_current=False).clock)  # as the collector calls it: once per batch
    batched.begin()
    assert [batched(event, NOW, here) for event in events_of([decode_envelope(m) for m in messages])] == expected
    batched.end()
    assert batched.clock.value == localize.clock.value == receiver.app.clock.value


def test_kombu_json_types_go_through_kombus_decoder() -> None:
    body = b'{"type": "task-received", "uuid": "u1", "eta": {"__type__": "datetime", "__value__": "2026-11-25T10:00:00"}}'
    envelope = {"body": base64.b64encode(body).decode(), "content-type": "application/json",
                "content-encoding": "utf-8", "headers": {},
                "properties": {"body_encoding": "base64", "delivery_tag": "t1", "delivery_info": {}}}
    data = json.dumps(envelope).encode()
    [expected] = kombu_bodies([data])
    assert decode_envelope(data) == expected
    assert not isinstance(expected["eta"], dict)


@pytest.mark.parametrize("data, reason", [
    (b"not json", "not JSON"),
    (b'["a list"]', "not a kombu envelope"),
    (b'{"body": "x", "content-type": "application/x-python-serialize"}', "is not accepted"),
    (b'{"body": "!!!", "content-type": "application/json", "properties": {"body_encoding": "base64"}}',
     "cannot be decoded"),
    (b'{"body": "bm90IGpzb24=", "content-type": "application/json", "properties": {"body_encoding": "base64"}}',
     "cannot be decoded"),
])
def test_undecodable_messages_raise_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UndecodableMessage, match=reason):
        decode_envelope(data)


def test_collector_batches_reach_the_same_state_as_the_receiver() -> None:
    messages = wire_messages()
    reference = EventCollector(Settings(), sleep=lambda s: None)
    receiver = celery_receiver()
    for body in kombu_bodies(messages):
        reference.apply_events(reference.take([body], receiver.event_from_message))
    fast = EventCollector(Settings(), sleep=lambda s: None)
    decoded = [decode_envelope(m) for m in messages]
    for start in range(0, len(decoded), 37):
        fast.on_batch(decoded[start:start + 37])

    def view(collector: EventCollector) -> dict[str, Any]:
        cluster = collector.cluster
        tasks = {t["uuid"]: cluster.task_detail(t["uuid"])[0] for t in cluster.snapshot(1_000_000)[1] if t}
        for task in tasks.values():
            for entry in task["events"]:
                entry.pop("local_received", None)
        workers = {w["hostname"]: {k: v for k, v in w.items() if k not in ("last_heartbeat", "clock_skew")}
                   for w in cluster.workers()}
        return {"tasks": tasks, "workers": workers, "counters": cluster.counters()}

    assert fast.received == reference.received > 400
    assert fast.malformed == reference.malformed == 0
    assert view(fast) == view(reference)
    assert {w["status"] for w in view(fast)["workers"].values()} == {"offline"}


def test_pattern_is_the_one_kombus_receiver_subscribes_to() -> None:
    with Connection("redis://127.0.0.1:6379/7") as connection:
        assert fanout_pattern(connection.default_channel, "celeryev") == "/7.celeryev/*"
    options = {"global_keyprefix": "prod:", "fanout_prefix": "team."}
    with Connection("redis://127.0.0.1:6379/2", transport_options=options) as connection:
        assert fanout_pattern(connection.default_channel, "celeryev") == "prod:team.celeryev/*"


@pytest.mark.parametrize("url, options, expected", [
    ("redis://localhost:6379/0", {}, True),
    ("rediss://:secret@cache:6380/1", {}, True),
    ("sentinel://a:26379", {}, False),
    ("redis://localhost/0", {"sentinel_fanout_compat": True}, False),
    ("amqp://guest:guest@localhost//", {}, False),
    ("filesystem://", {}, False),
])
def test_fast_path_serves_plain_redis_only(url: str, options: dict[str, Any], expected: bool) -> None:
    assert serves(url, options) is expected


def resp_pmessage(channel: bytes, data: bytes) -> bytes:
    parts = [b"pmessage", b"/0.celeryev/*", channel, data]
    return b"*4\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 70_000])
def test_backlog_feeds_every_message_across_slice_boundaries(chunk: int) -> None:
    messages = wire_messages()
    stream_bytes = b"".join(resp_pmessage(b"/0.celeryev/task.sent", m) for m in messages)
    backlog = Backlog()
    for start in range(0, len(stream_bytes), chunk):
        backlog.add(stream_bytes[start:start + chunk])
    assert backlog.size == len(stream_bytes)
    undecodable: list[str] = []
    stream = RedisEventStream(Connection("memory://"), "celeryev", on_batch=lambda b: None,
                              on_subscribed=lambda: None, should_stop=lambda: False,
                              on_undecodable=undecodable.append)
    reader = hiredis.Reader()
    bodies: list[Any] = []
    while batch := stream._parse(reader, backlog):
        assert len(batch) <= MAX_BATCH_EVENTS
        bodies.extend(batch)
    assert backlog.size == 0 and not undecodable
    assert bodies == [decode_envelope(m) for m in messages]


def test_replies_hiredis_holds_after_a_full_batch_are_read_without_waiting_for_more_data() -> None:
    """A read whose last messages reach hiredis before the batch fills (the backlog is fed to it a slice at a
    time): what hiredis still holds is parsed at once, not left until the socket brings more (which, at the
    end of a burst, may be seconds away)."""
    messages = [resp_pmessage(b"/0.celeryev/worker.heartbeat", orjson.dumps({
        "body": base64.b64encode(orjson.dumps({"type": "worker-heartbeat", "hostname": f"w{n}@h"})).decode(),
        "content-type": "application/json", "content-encoding": "utf-8", "properties": {"body_encoding": "base64"},
    })) for n in range(MAX_BATCH_EVENTS + 2)]
    ours, theirs = socket.socketpair()
    ours.settimeout(0.2)
    bodies: list[Any] = []
    paced: list[bool] = []
    deadline = time.monotonic() + 3.0
    stream = RedisEventStream(Connection("memory://"), "celeryev", on_batch=bodies.extend,
                              on_subscribed=lambda: None,
                              should_stop=lambda: len(bodies) > MAX_BATCH_EVENTS or time.monotonic() > deadline,
                              on_undecodable=lambda reason: None, pace=paced.append)
    try:
        theirs.sendall(b"".join(messages))
        stream._read(ours, hiredis.Reader())
    finally:
        ours.close()
        theirs.close()
    assert [body["hostname"] for body in bodies] == [f"w{n}@h" for n in range(MAX_BATCH_EVENTS + 2)]
    assert paced == [True, False]  # the full batch said more was read; the rest, nothing more


def _heartbeats(count: int) -> list[bytes]:
    return [resp_pmessage(b"/0.celeryev/worker.heartbeat", orjson.dumps({
        "body": base64.b64encode(orjson.dumps({"type": "worker-heartbeat", "hostname": f"w{n}@h"})).decode(),
        "content-type": "application/json", "content-encoding": "utf-8", "properties": {"body_encoding": "base64"},
    })) for n in range(count)]


def _read_reporting(ours: socket.socket, reader: hiredis.Reader, reports_wanted: int,
                    recv: Callable[[RedisEventStream], Callable[[socket.socket], bytes | None]] | None = None,
                    ) -> tuple[list[Any], list[tuple[float, int]]]:
    """Run the reader until it has told ``reports_wanted`` times how far it has read; return the bodies it
    handed on and each report with the bodies handed on by then."""
    bodies: list[Any] = []
    reports: list[tuple[float, int]] = []
    deadline = time.monotonic() + 5.0
    stream = RedisEventStream(Connection("memory://"), "celeryev", on_batch=bodies.extend,
                              on_subscribed=lambda: None,
                              should_stop=lambda: len(reports) >= reports_wanted or time.monotonic() > deadline,
                              on_undecodable=lambda reason: None,
                              on_read_through=lambda at: reports.append((at, len(bodies))))
    if recv is not None:
        stream._recv = recv(stream)  # type: ignore[method-assign]
    stream._read(ours, reader)
    return bodies, reports


@pytest.mark.parametrize("count, ahead", [(3, None), (3 * MAX_BATCH_EVENTS + 5, None), (3 * MAX_BATCH_EVENTS + 5, 4096)])
def test_the_reader_says_how_far_it_has_read_only_once_all_that_came_before_is_applied(
        count: int, ahead: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher judges heartbeats by ``on_read_through``: a time is reported only after everything that reached
    the socket before it was handed on, in several batches, and with a drain cut short by ``MAX_AHEAD_BYTES``.
    A wait that ends without data is no proof that none came (after the process stalled, the wait's timer
    fires before the socket is looked at): the socket is looked at first."""
    if ahead is not None:
        monkeypatch.setattr(redis_stream, "MAX_AHEAD_BYTES", ahead)

    def wait_timed_out_first(stream: RedisEventStream) -> Callable[[socket.socket], bytes | None]:
        real, waits = stream._recv, []

        def recv(sock: socket.socket) -> bytes | None:
            if not waits:
                waits.append(sock)
                return None  # as after a stall, with the messages in the socket
            return real(sock)
        return recv

    ours, theirs = socket.socketpair()
    ours.settimeout(0.2)
    try:
        sent = time.time()
        theirs.sendall(b"".join(_heartbeats(count)))
        bodies, reports = _read_reporting(ours, hiredis.Reader(), 2, wait_timed_out_first)
    finally:
        ours.close()
        theirs.close()
    assert len(bodies) == count
    assert [applied for _, applied in reports] == [count, count]  # after the last drain, then after a wait
    assert sent <= reports[0][0] <= reports[1][0] <= time.time()


def test_messages_hiredis_holds_at_the_start_are_applied_before_the_reader_says_it_has_read_through() -> None:
    """Messages that came in the same read as the reply to PSUBSCRIBE are in hiredis, not in the socket."""
    reader = hiredis.Reader()
    reader.feed(b"".join(_heartbeats(2)))
    ours, theirs = socket.socketpair()
    ours.settimeout(0.2)
    try:
        bodies, reports = _read_reporting(ours, reader, 1)
    finally:
        ours.close()
        theirs.close()
    assert [body["hostname"] for body in bodies] == ["w0@h", "w1@h"] and reports[0][1] == 2


def test_until_tick_lands_just_before_the_next_multiple_of_the_interval() -> None:
    assert until_tick(0.25, 100.0) == pytest.approx(0.25)  # on a tick: the next one
    assert until_tick(0.25, 100.1) == pytest.approx(0.15)
    assert until_tick(0.25, 100.1, lead=0.02) == pytest.approx(0.13)
    assert until_tick(0.25, 100.23, lead=0.02) == pytest.approx(0.25)  # 20 ms before this tick is now
    assert all(0.001 < until_tick(0.25, 100 + n / 997, 0.02) <= 0.251 for n in range(1000))


def test_the_stream_is_read_once_per_push_just_before_it_and_at_once_while_a_read_is_worked_through(
        monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    collector = EventCollector(Settings(), sleep=waits.append)
    interval = Settings().flush_interval_seconds
    heartbeat = {"type": "worker-heartbeat", "hostname": "a@h", "timestamp": 1.0, "clock": 1, "freq": 2.0}
    for size, now in ((1, 100.1), (5_000, 100.2), (1, 100.248)):  # an idle cluster and a busy one alike
        collector.on_batch([dict(heartbeat) for _ in range(size)])
        assert collector.behind  # while it applies
        monkeypatch.setattr("dashboard.events.time.monotonic", lambda: now)
        collector.pace(more=False)
        assert waits[-1] == pytest.approx(until_tick(interval, now, PACE_LEAD_SECONDS))  # 5 ms before the push
        assert not collector.behind  # nothing read waits: the push need not wait for the reader
    assert waits[-3:] == pytest.approx([0.145, 0.045, 0.247])  # at 100.245 the read before 100.25 is now: the next
    collector.pace(more=True)
    assert waits[-1] == 0 and collector.behind  # more was read than one batch: go on at once, and the push waits


class _Sleeps:
    """A socketio stand-in whose sleeps are noted; the reader catches up during the ``flip``-th after the first."""

    def __init__(self, collector: EventCollector, flip: int) -> None:
        self.collector, self.flip, self.sleeps = collector, flip, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) > self.flip:
            self.collector.behind = False


@pytest.mark.parametrize("flip, polls", [(0, 0), (4, 4), (10_000, round(READER_WAIT_SECONDS / READER_POLL_SECONDS))])
def test_a_push_waits_for_the_reader_to_apply_what_it_read_for_it_at_most_a_while(flip: int, polls: int) -> None:
    collector = EventCollector(Settings())
    collector.behind = flip > 0
    socketio = _Sleeps(collector, flip)
    hub = LiveHub(socketio, collector, Settings())  # type: ignore[arg-type]
    pushed: list[bool] = []

    def flush() -> None:
        pushed.append(collector.behind)
        hub.stopping = True

    hub.flush = flush  # type: ignore[method-assign]
    hub.run()
    assert socketio.sleeps[1:] == [READER_POLL_SECONDS] * polls  # after the sleep to the tick
    assert pushed == [flip == 10_000]  # pushed once the reader caught up, or once the wait ran out


def test_a_reader_that_ends_while_behind_leaves_no_push_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    collector = EventCollector(Settings())

    class Cut:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def run(self) -> None:
            collector.behind = True  # a read half applied when the connection failed
            raise ConnectionError("Redis closed the event subscription")

    monkeypatch.setattr("dashboard.events.redis_stream.RedisEventStream", Cut)
    with pytest.raises(ConnectionError):
        collector._capture_redis(Connection("memory://"))
    assert not collector.behind
