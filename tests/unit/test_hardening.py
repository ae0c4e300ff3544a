"""No single event, client or connection can hurt anyone else: the pure parts, each defect by itself."""
from __future__ import annotations

import json
import logging
import queue
from typing import Any

import pytest
from celery.events import EventDispatcher
from kombu import Connection

from dashboard import create_app
from dashboard.redact import is_secret_key, mask_secrets, mask_text, mask_url
from dashboard.events import RECONNECT_START_SECONDS, EventCollector, SafeReceiver
from dashboard.hosts import HostPolicy
from dashboard.live import MAX_QUEUED_MESSAGES, LiveHub
from dashboard.logs import OneLineFormatter, escape_controls
from dashboard.queues import QueueBook
from dashboard.settings import Settings, SettingsError, load_settings
from dashboard.state import ClusterState


# -- liveness ---------------------------------------------------------------------------------
def heartbeat(timestamp: float, received: float, kind: str = "heartbeat", hostname: str = "w") -> dict[str, Any]:
    return {"type": f"worker-{kind}", "hostname": hostname, "timestamp": timestamp, "local_received": received,
            "freq": 2.0, "active": 0, "processed": 0}


def test_a_heartbeat_stamped_an_hour_ahead_changes_the_skew_never_the_status() -> None:
    state = ClusterState(heartbeat_slack_seconds=2.0)
    state.apply(heartbeat(1e9, 1e9))
    state.apply(heartbeat(1e9 + 3600 + 2, 1e9 + 2))  # one heartbeat from a clock an hour fast
    assert state.workers["w"].clock_skew == -3600
    for step in range(2, 60):  # then the worker's normal heartbeats, every 2 s
        state.apply(heartbeat(1e9 + 2 * step, 1e9 + 2 * step))
        assert state.expire_workers(1e9 + 2 * step + 1) == []
    assert state.workers["w"].status == "online"
    assert state.workers["w"].last_heartbeat == 1e9 + 2 * 59
    assert state.workers["w"].clock_skew == 0


def test_a_future_goodbye_does_not_keep_a_restarted_worker_offline() -> None:
    state = ClusterState(heartbeat_slack_seconds=2.0)
    state.apply(heartbeat(1e9 + 3600, 1e9, "offline"))  # stamped an hour ahead
    state.apply(heartbeat(1e9 + 1, 1e9 + 1))  # just after: could be a late delivery, ignored
    assert state.workers["w"].status == "offline"
    state.apply(heartbeat(1e9 + 30, 1e9 + 30))  # later heartbeats count, whatever the clock said
    assert state.workers["w"].status == "online"


# -- bounds -------------------------------------------------------------------------------------
def test_workers_beyond_the_limit_are_counted_and_ignored() -> None:
    state = ClusterState(max_workers=3)
    for n in range(10):
        state.apply(heartbeat(1e9, 1e9, hostname=f"w{n}"))
        state.apply(heartbeat(1e9 + 1, 1e9 + 1, hostname=f"w{n}"))
    assert sorted(state.workers) == ["w0", "w1", "w2"]
    assert len(state.ignored_workers) == 7


def test_queues_beyond_the_limit_are_counted_and_never_sampled() -> None:
    book = QueueBook(["celery"], max_queues=3)
    book.watch(f"made-up-{n}" for n in range(20_000))
    assert book.names() == ["celery", "made-up-0", "made-up-1"]
    assert len(book.ignored) == 19_998
    book.set_consumers({f"made-up-{n}": ["w"] for n in range(100)})
    assert set(book.consumers) <= set(book.names())


# -- hosts and origins --------------------------------------------------------------------------
@pytest.mark.parametrize("host, allowed", [
    ("127.0.0.1:5555", True), ("localhost:5555", True), ("[::1]:5555", True), ("10.1.2.3", True),
    ("app.localhost", True), ("evil.example", False), ("evil.example:5555", False), ("dash.corp.example", True),
    ("a.dash.example", True), ("dash.example", False), ("LOCALHOST.", True), (None, True),
])
def test_hosts_a_page_may_use(host: str | None, allowed: bool) -> None:
    policy = HostPolicy("127.0.0.1", ("dash.corp.example", "*.dash.example"))
    assert policy.allows_host(host) is allowed


def test_origins_must_be_the_dashboards_own() -> None:
    policy = HostPolicy("127.0.0.1", ())
    assert policy.allows_origin(None, "localhost:5555")  # a script
    assert policy.allows_origin("http://localhost:5555", "localhost:5555")
    assert not policy.allows_origin("http://evil.example:5555", "localhost:5555")
    assert not policy.allows_origin("http://evil.example:5555", "evil.example:5555")  # DNS rebinding
    assert not policy.allows_origin("null", "localhost:5555")


def test_rebinding_requests_are_refused_in_front_of_everything(tmp_path: Any) -> None:
    app = create_app(Settings(db=str(tmp_path / "h.db"), async_mode="threading"))
    client = app.test_client()
    evil = {"Host": "evil.example:5555", "Origin": "http://evil.example:5555"}
    for path in ("/api/workers", "/", "/socket.io/?EIO=4&transport=polling"):
        response = client.get(path, headers=evil)
        assert response.status_code == 421, path
        assert "evil.example" in response.get_json()["error"]
    assert client.post("/api/workers/w/inspect", headers=evil, json={}).status_code == 421
    own = {"Host": "localhost:5555", "Origin": "http://evil.example"}
    assert client.post("/api/workers/w/inspect", headers=own, json={}).status_code == 403
    assert client.get("/api/workers", headers={"Host": "localhost:5555"}).status_code == 200
    allowed = create_app(Settings(db=str(tmp_path / "a.db"), async_mode="threading", allowed_hosts=("evil.example",)))
    assert allowed.test_client().get("/api/workers", headers=evil).status_code == 200


def test_allowed_hosts_flag() -> None:
    assert load_settings(["--allowed-hosts", "Dash.Example.com,*.corp.example", "--allowed-hosts", "x.test"]
                         ).allowed_hosts == ("dash.example.com", "*.corp.example", "x.test")
    with pytest.raises(SettingsError, match="--allowed-hosts"):
        load_settings(["--allowed-hosts", "http://dash.example.com:5555"])


# -- secrets and logs ---------------------------------------------------------------------------
@pytest.mark.parametrize("url, masked", [
    ("https://0123456789abcdef@o1.ingest.sentry.io/42", "https://****@o1.ingest.sentry.io/42"),
    ("https://hooks.slack.com/services/T0000/B0000/abcdefghijklmnopqrstuvwx",
     "https://hooks.slack.com/services/****"),
    ("https://discord.com/api/webhooks/1234/abc", "https://discord.com/api/webhooks/****"),
    ("https://example.com/hook/a1b2c3d4e5f6a7b8c9d0e1f2a3b4", "https://example.com/hook/****"),
    ("https://api.example.com/v1?api_key=s3cret&page=2", "https://api.example.com/v1?api_key=****&page=2"),
    ("redis://:pw@redis:6379/0", "redis://:****@redis:6379/0"),
    ("redis://redis:6379/0", "redis://redis:6379/0"),
])
def test_urls_lose_their_secrets(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_inspect_replies_lose_dsns_and_webhooks() -> None:
    conf = {"sentry_dsn": "https://key@sentry.io/1", "SLACK_WEBHOOK": "https://hooks.slack.com/services/T/B/x",
            "note": "posts to https://hooks.slack.com/services/T1/B1/secretsecret and https://u:p@h/",
            "broker_url": "amqp://guest:guest@rabbit//", "timezone": "UTC"}
    masked = mask_secrets(conf)
    assert masked["sentry_dsn"] == masked["SLACK_WEBHOOK"] == "********"
    assert "secretsecret" not in masked["note"] and ":p@" not in masked["note"]
    assert masked["broker_url"] == "amqp://guest:****@rabbit//" and masked["timezone"] == "UTC"
    assert mask_text("no url here") == "no url here"


def test_outside_text_stays_on_one_log_line() -> None:
    assert escape_controls("evil\n2026 INFO forged\x1b[2J\r\u2028\ttab") == "evil\\n2026 INFO forged\\x1b[2J\\r\\u2028\ttab"
    record = logging.LogRecord("dashboard.events", logging.WARNING, __file__, 1, "worker %s lost", ("a\nb\x1b",), None)
    line = OneLineFormatter("%(levelname)s %(message)s").format(record)
    assert line == "WARNING worker a\\nb\\x1b lost"


# -- the live hub -------------------------------------------------------------------------------
class FakeEngineSocket:
    def __init__(self, sid: str, server: "FakeServer") -> None:
        self.sid, self.server = sid, server
        self.queue: queue.Queue[Any] = queue.Queue()
        self.closed = self.closing = False

    def close(self, wait: bool = True, abort: bool = False, reason: str | None = None) -> None:
        assert not wait, "waiting for a client that does not read blocks the pusher for ever"
        self.closed = True
        self.server.disconnected.append(self.sid)


class FakeServer:
    """python-socketio's server as far as the hub looks at it: sids to engine.io sockets and their queues."""

    def __init__(self) -> None:
        self.sockets: dict[str, FakeEngineSocket] = {}
        self.manager = self
        self.eio = self
        self.disconnected: list[str] = []
        self.sent: list[tuple[str, str, dict[str, Any]]] = []  # (event, engine.io sid, its argument)

    def eio_sid_from_sid(self, sid: str, namespace: str) -> str | None:
        return sid if sid in self.sockets else None

    class reason:  # noqa: N801 (engine.io's naming)
        SERVER_DISCONNECT = "server disconnect"

    def _send_packet(self, eio_sid: str, packet: Any) -> None:
        data = packet.encode()
        assert data.startswith(('2/live,["changes",{"seq":', '2/live,["snapshot",{"seq":'))
        event, body = json.loads(data[len("2/live,"):])  # a whole Socket.IO event packet
        self.sent.append((event, eio_sid, body))
        self.sockets[eio_sid].queue.put(data)


class FakeSocketIO:
    def __init__(self) -> None:
        self.server = FakeServer()
        self.sent: list[tuple[str, str | None, dict[str, Any]]] = []

    def emit(self, event: str, data: dict[str, Any], namespace: str, to: str | None = None,
             ignore_queue: bool = False) -> None:
        self.sent.append((event, to, data))
        if to in self.server.sockets:
            self.server.sockets[to].queue.put(event)


def test_a_client_that_does_not_read_is_held_back_then_resynced_or_dropped(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Any) -> None:
    app = create_app(Settings(db=str(tmp_path / "h.db"), async_mode="threading"))
    dashboard = app.extensions["dashboard"]
    socketio = FakeSocketIO()
    hub = LiveHub(socketio, dashboard.collector, dashboard.settings)  # type: ignore[arg-type]
    for sid in ("reader", "sleeper"):
        socketio.server.sockets[sid] = FakeEngineSocket(sid, socketio.server)
        hub.connect(sid)
    assert [sent[:2] for sent in socketio.server.sent] == [("snapshot", "reader"), ("snapshot", "sleeper")]
    clock = [1000.0]
    monkeypatch.setattr("dashboard.live.time.monotonic", lambda: clock[0])

    def flush_with_change(n: int) -> None:
        dashboard.collector.apply_events([{"type": "task-received", "uuid": f"t{n}", "timestamp": 1e9 + n,
                                           "local_received": 1e9 + n, "hostname": "w"}])
        hub.flush()
        socketio.server.sockets["reader"].queue = queue.Queue()  # the reader reads everything at once

    for n in range(MAX_QUEUED_MESSAGES + 5):
        flush_with_change(n)
        clock[0] += 0.25
    sleeper = hub.clients["sleeper"]
    assert sleeper.stale and sleeper.seq == MAX_QUEUED_MESSAGES  # held back once its queue was full
    assert hub.clients["reader"].seq == MAX_QUEUED_MESSAGES + 5  # the other client never noticed

    socketio.server.sockets["sleeper"].queue = queue.Queue()  # it woke up and read its queue
    flush_with_change(100)
    assert socketio.server.sent[-1][:2] == ("snapshot", "sleeper") and not sleeper.stale  # a fresh start, not a gap

    for n in range(MAX_QUEUED_MESSAGES + 1):  # asleep again, now for good
        flush_with_change(200 + n)
    clock[0] += Settings().slow_client_timeout_seconds + 1  # 30 s by default
    flush_with_change(300)
    flush_with_change(301)
    assert socketio.server.disconnected == ["sleeper"] and "sleeper" not in hub.clients
    assert hub.dropped_clients == 1 and "reader" in hub.clients


# -- the collector ------------------------------------------------------------------------------
class OneOutage:
    """A broker connection that subscribes, then fails: every connection attempt of the collector."""

    def __init__(self, collector: EventCollector) -> None:
        self.collector = collector

    def __enter__(self) -> "OneOutage":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    connection_errors = (OSError,)
    channel_errors = ()

    def ensure_connection(self, **kwargs: Any) -> None:
        return None

    def release(self) -> None:
        return None


def test_the_reconnect_backoff_starts_afresh_after_each_successful_subscribe(tmp_path: Any) -> None:
    delays: list[float] = []
    collector = EventCollector(Settings(db=str(tmp_path / "h.db")), sleep=delays.append)
    collector.app.connection_for_read = lambda: OneOutage(collector)  # type: ignore[method-assign]

    def subscribe_then_fail(connection: Any) -> None:
        if len(delays) >= 4:
            collector.stop()
        collector.on_subscribed()
        raise ConnectionError("Redis restarted")

    collector._capture_redis = subscribe_then_fail  # type: ignore[method-assign]
    collector.ping_broker = lambda: False  # type: ignore[method-assign]
    collector.run()
    assert len(delays) == 4
    assert all(RECONNECT_START_SECONDS * 0.79 <= d <= RECONNECT_START_SECONDS * 1.21 for d in delays), delays


def test_an_unforeseen_error_in_one_event_is_counted_and_the_rest_kept(tmp_path: Any) -> None:
    collector = EventCollector(Settings(db=str(tmp_path / "h.db")))

    def localize(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if event["uuid"] == "bad":
            raise RecursionError("maximum recursion depth exceeded")
        return event["type"], event

    events = collector.take([{"type": "task-received", "uuid": "a"}, {"type": "task-received", "uuid": "bad"},
                             [{"type": "task-received", "uuid": "b"}]], localize)
    assert [e["uuid"] for e in events] == ["a", "b"]
    assert collector.malformed == 1 and "RecursionError" in (collector.last_malformed or "")


def test_a_bug_in_the_receiver_is_reported_as_a_bug_not_as_a_broker_outage(tmp_path: Any,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    delays: list[float] = []
    collector = EventCollector(Settings(db=str(tmp_path / "h.db")), sleep=delays.append)
    collector.app.connection_for_read = lambda: OneOutage(collector)  # type: ignore[method-assign]

    def buggy(connection: Any) -> None:
        if delays:
            collector.stop()
        collector.on_subscribed()
        raise AttributeError("'NoneType' object has no attribute 'feed'")

    collector._capture_redis = buggy  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="dashboard.events"):
        collector.run()
    assert collector.internal_errors == 1 and collector.health()["errors"]["internal"] == 1
    assert collector.broker.status == "connected" and collector.broker.error is None  # the broker is not blamed
    assert any(r.exc_info and "event receiver failed" in r.getMessage() for r in caplog.records)
    assert len(delays) == 1  # and it subscribes again after the backoff


def test_a_bug_applying_a_received_message_is_a_bug_not_a_bad_message(tmp_path: Any,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    collector = EventCollector(Settings(db=str(tmp_path / "h.db"), broker_url="memory://"))

    def broken(events: list[dict[str, Any]]) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(collector, "apply_events", broken)
    with Connection("memory://") as connection, caplog.at_level(logging.ERROR, logger="dashboard.events"):
        receiver = SafeReceiver(connection, collector, app=collector.app, accept=["json"])
        receiver.queue(connection.default_channel).declare()  # bound before anything is sent
        with Connection("memory://") as worker:
            dispatcher = EventDispatcher(worker, hostname="w1@h", app=collector.app)
            for uuid in ("t1", "t2"):
                dispatcher.send("task-received", uuid=uuid)
        receiver.capture(limit=2, timeout=5, wakeup=False)  # through kombu's drain_events, as the collector reads
    assert collector.received == 2 and collector.internal_errors == 2
    assert "in the transport" not in (collector.last_malformed or "")
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [KeyError]  # once per kind


@pytest.mark.parametrize("key, secret", [
    ("password", True), ("broker_password", True), ("PASSWORD", True), ("redisPassword", True), ("passwd", True),
    ("secret_key", True), ("client_secret", True), ("api_key", True), ("apiKey", True), ("APIKEY", True),
    ("aws_access_key_id", True), ("private_key", True), ("auth_token", True), ("sentry_dsn", True),
    ("SLACK_WEBHOOK_URL", True), ("signature", True),
    ("passive", False), ("passthrough", False), ("tokenizer_name", False), ("keys_count", False),
    ("author", False), ("oauth_scopes", False), ("private", False), ("durable", False), ("dsn_count", True),
])
def test_secret_keys_are_whole_words(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret
    masked = mask_secrets({key: "value"})[key]
    assert (masked == "********") is secret


def test_an_error_no_check_foresaw_is_a_bug_logged_once_per_kind(tmp_path: Any,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    collector = EventCollector(Settings(db=str(tmp_path / "h.db")))

    def localize(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise AttributeError("a bug")

    with caplog.at_level(logging.ERROR, logger="dashboard.events"):
        collector.take([{"type": "task-received", "uuid": str(n)} for n in range(3)], localize)
    assert collector.malformed == 3 and collector.internal_errors == 3
    assert [r.exc_info is not None for r in caplog.records] == [True]  # one traceback, not one per message


def test_a_model_that_fails_on_every_event_logs_one_traceback(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    collector = EventCollector(Settings(db=str(tmp_path / "h.db")))

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(collector.cluster._state, "apply", broken)
    with caplog.at_level(logging.ERROR, logger="dashboard.events"):
        collector.apply_events([{"type": "task-received", "uuid": str(n)} for n in range(3)])
    assert collector.malformed == 3 and collector.internal_errors == 3
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError]  # not one per event


def test_a_store_call_that_fails_on_a_bug_is_counted(dashboard: Any, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    import sqlite3

    def broken(now: float) -> int:
        raise TypeError("a bug")

    monkeypatch.setattr(dashboard.store, "prune", broken)
    with caplog.at_level(logging.WARNING, logger="dashboard.history"):
        dashboard.history.prune()
    assert dashboard.collector.internal_errors == 1 and caplog.records[-1].exc_info is not None

    def full(now: float) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(dashboard.store, "prune", full)
    dashboard.history.prune()
    assert dashboard.collector.internal_errors == 1  # the disk is not a bug: a warning only
    assert "database or disk is full" in caplog.records[-1].getMessage()


def test_an_integrity_check_that_fails_is_logged_and_never_ends_in_silence(
        dashboard: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def unreadable() -> str:
        raise OSError("disk I/O error")

    monkeypatch.setattr(dashboard.store, "check_integrity", unreadable)
    with caplog.at_level(logging.WARNING, logger="dashboard.history"):
        dashboard._check_integrity()
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    assert "checking the integrity of" in warning.getMessage() and "disk I/O error" in warning.getMessage()
    assert dashboard.collector.internal_errors == 0  # the disk is not a bug

    def broken() -> str:
        raise TypeError("a bug")

    monkeypatch.setattr(dashboard.store, "check_integrity", broken)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dashboard.history"):
        dashboard._check_integrity()
    [error] = caplog.records
    assert error.exc_info is not None and error.exc_info[0] is TypeError
    assert dashboard.collector.internal_errors == 1
