"""Queue depths read from real brokers: Redis priority lists, RabbitMQ declares, filesystem files, outages.

Messages are sent by a real Celery app to queues nobody consumes. Queue names
are unique per test; the Redis tests share one database of the session's
redis-server (it has the default 16, so 20+ is out of range) and delete their keys.
"""
from __future__ import annotations

import base64
import json
import threading
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis
from celery import Celery
from kombu import Connection, Consumer, Exchange, Queue

from dashboard.broker import QueueSample, RedisQueueReader, make_reader
from helpers import free_port, port_open, start_redis, wait_until

pytestmark = pytest.mark.integration

#: The session redis-server's database for this module (0-15 exist; see the module docstring).
REDIS_DB = 14
#: Priorities sent to every Redis queue, and how many tasks of each.
PRIORITIES, PER_PRIORITY = (0, 3, 6, 9), 3
RABBITMQ_HOST, RABBITMQ_PORT, RABBITMQ_API_PORT = "127.0.0.1", 5672, 15672
RABBITMQ_URL = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}//"


def unique(prefix: str = "depth") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def send(broker_url: str, options: dict[str, Any], queue: str, priorities: list[int]) -> None:
    """Send one task per priority to ``queue`` through a real Celery app, on a connection of its own."""
    app = Celery("sender", broker=broker_url, set_as_current=False)
    app.conf.broker_transport_options = options
    try:
        with app.connection_for_write() as connection, app.amqp.Producer(connection) as producer:
            for priority in priorities:
                app.send_task("x.y", queue=queue, priority=priority, producer=producer)
    finally:
        app.close()


# -- Redis ------------------------------------------------------------------------

@pytest.fixture
def redis_url(redis_port: int) -> str:
    return f"redis://127.0.0.1:{redis_port}/{REDIS_DB}"


@pytest.fixture
def redis_queues() -> list[str]:
    """The Redis queues a test names (``queue_for``); their keys are deleted in teardown."""
    return []


@pytest.fixture
def redis_client(redis_port: int, redis_queues: list[str]) -> Iterator[redis.Redis]:
    """A plain client on the module's database; deletes the keys of every queue the test named."""
    client = redis.Redis(host="127.0.0.1", port=redis_port, db=REDIS_DB, decode_responses=True)
    yield client
    for queue in redis_queues:
        keys = client.keys(f"*{queue}*")
        if keys:
            client.delete(*keys)
    client.close()


@contextmanager
def own_redis_reader(log_dir: Path, name: str, queue: str, priorities: list[int]) -> Iterator[tuple[int, Any]]:
    """A redis-server of the test's own (it is flushed or has clients killed), ``queue`` holding a message per
    priority in ``priorities``, and a reader of it: yields (port, reader)."""
    port = free_port()
    server = start_redis(port, log_dir, name=name)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        send(url, {}, queue, priorities)
        reader = make_reader(url)
        try:
            yield port, reader
        finally:
            reader.close()
    finally:
        server.stop()


def queue_for(names: list[str], prefix: str = "depth") -> str:
    """Return a unique queue name, remembered for clean-up."""
    names.append(name := unique(prefix))
    return name


@pytest.mark.parametrize("options", [
    {},  # kombu's defaults: sep "\x06\x16", steps [0, 3, 6, 9]
    {"priority_steps": [0, 3, 6, 9], "sep": ":", "queue_order_strategy": "priority"},
], ids=["kombu-defaults", "custom-sep"])
def test_depth_sums_every_priority_list_and_drops_to_zero_when_drained(
        redis_url: str, redis_client: redis.Redis, redis_queues: list[str], options: dict[str, Any]) -> None:
    queue = queue_for(redis_queues)
    send(redis_url, options, queue, [p for p in PRIORITIES for _ in range(PER_PRIORITY)])
    reader = make_reader(redis_url, options)
    try:
        assert isinstance(reader, RedisQueueReader)
        # The keys read are exactly the lists kombu wrote, three messages in each.
        written = {k for k in redis_client.keys(f"*{queue}*") if not k.startswith("_kombu.")}  # not bindings
        assert written == set(reader.keys(queue))
        assert all(redis_client.llen(key) == PER_PRIORITY for key in written)
        assert reader.sample([queue]) == {queue: QueueSample(len(PRIORITIES) * PER_PRIORITY, None)}

        with Connection(redis_url, transport_options=options) as connection:
            inbox = connection.SimpleQueue(queue)
            for _ in range(len(PRIORITIES) * PER_PRIORITY):
                inbox.get(block=True, timeout=5).ack()
            inbox.close()
        assert not redis_client.exists(*reader.keys(queue))  # emptied lists vanish from Redis
        assert reader.sample([queue]) == {queue: QueueSample(0, None)}
    finally:
        reader.close()


def test_global_keyprefix_is_read_where_kombu_writes(redis_url: str, redis_client: redis.Redis,
                                                     redis_queues: list[str]) -> None:
    queue = queue_for(redis_queues)
    options = {"global_keyprefix": f"{queue}-pfx:"}
    send(redis_url, options, queue, [p for p in PRIORITIES for _ in range(PER_PRIORITY)])
    prefixed, bare = make_reader(redis_url, options), make_reader(redis_url)
    try:
        assert all(k.startswith(f"{queue}-pfx:") for k in redis_client.keys(f"*{queue}*"))
        assert prefixed.sample([queue]) == {queue: QueueSample(12, None)}
        assert bare.sample([queue]) == {queue: QueueSample(0, None)}  # without the prefix: other keys
        redis_client.delete(*redis_client.keys(f"{queue}-pfx:{queue}*"))
        assert prefixed.sample([queue]) == {queue: QueueSample(0, None)}
    finally:
        prefixed.close()
        bare.close()


def test_fifty_queues_are_read_in_one_round_trip(redis_url: str, redis_client: redis.Redis, redis_queues: list[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    queues = [queue_for(redis_queues, f"many{i:02d}") for i in range(50)]
    for i, queue in enumerate(queues[:10]):
        send(redis_url, {}, queue, list(PRIORITIES[:i % 4 + 1]))
    reader = make_reader(redis_url)
    try:
        reader.sample(queues[:1])  # connect and load the script (neither is part of a sample's cost)
        sends: list[bytes] = []  # every write to a Redis socket, the reader's and redis_client's
        original = redis.connection.Connection.send_packed_command

        def counting(self: redis.connection.Connection, command: Any, check_health: bool = True) -> None:
            sends.append(command if isinstance(command, bytes) else b"".join(command))
            original(self, command, check_health)

        monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
        llen_before = redis_client.info("commandstats").get("cmdstat_llen", {}).get("calls", 0)
        samples = reader.sample(queues)
        llen_after = redis_client.info("commandstats")["cmdstat_llen"]["calls"]
    finally:
        reader.close()
    script_writes = [data.count(b"EVALSHA") for data in sends if b"EVALSHA" in data or b"LLEN" in data]
    assert script_writes == [1], f"script calls per socket write: {script_writes}"  # one command, summed in Redis
    assert llen_after - llen_before == 50 * len(PRIORITIES)  # every list of every queue, inside the script
    assert [samples[q].depth for q in queues] == [i % 4 + 1 for i in range(10)] + [0] * 40
    assert all(s.error is None and s.consumers is None for s in samples.values())


def test_a_server_that_refuses_scripts_is_read_list_by_list(log_dir: Path) -> None:
    port = free_port()
    server = start_redis(port, log_dir, name="redis-noscript")
    try:
        admin = redis.Redis(port=port)
        admin.acl_setuser("sampler", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all", "-@scripting"])
        url = f"redis://sampler:s3cret@127.0.0.1:{port}/0"
        send(f"redis://127.0.0.1:{port}/0", {}, "refused", [0, 3, 9])
        admin.set("odd", "not a list")
        reader = make_reader(url)
        try:
            first = reader.sample(["refused", "odd", "empty"])
            assert isinstance(reader, RedisQueueReader) and reader.scripting is False
            second = reader.sample(["refused", "odd", "empty"])
        finally:
            reader.close()
        for samples in (first, second):
            assert samples["refused"] == QueueSample(3, None) and samples["empty"] == QueueSample(0, None)
            assert samples["odd"].depth is None and "WRONGTYPE" in (samples["odd"].error or "")
            assert all("s3cret" not in (s.error or "") for s in samples.values())
    finally:
        server.stop()


def test_a_restarted_server_gets_the_script_again(log_dir: Path) -> None:
    with own_redis_reader(log_dir, "redis-flush", "again", [0, 9]) as (port, reader):
        assert reader.sample(["again"])["again"] == QueueSample(2, None)
        redis.Redis(port=port).script_flush()  # as a restart does
        assert reader.sample(["again"])["again"] == QueueSample(2, None)
        assert isinstance(reader, RedisQueueReader) and reader.scripting is True


def test_a_connection_the_server_closed_is_opened_again_within_the_round(
        log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with own_redis_reader(log_dir, "redis-killed", "kept", [0, 3]) as (port, reader):
        assert reader.sample(["kept"])["kept"] == QueueSample(2, None)
        assert redis.Redis(port=port).client_kill_filter(_type="normal", skipme=True) >= 1  # as an idle timeout does
        assert reader.sample(["kept"])["kept"] == QueueSample(2, None)  # no round lost to it
        original, failures = redis.connection.Connection.send_packed_command, [redis.ConnectionError("reset")]

        def dropped_once(self: redis.connection.Connection, command: Any, check_health: bool = True) -> None:
            if failures:  # the connection breaks between being handed out and the write
                self.disconnect()
                raise failures.pop()
            original(self, command, check_health)

        monkeypatch.setattr(redis.connection.Connection, "send_packed_command", dropped_once)
        assert reader.sample(["kept"])["kept"] == QueueSample(2, None) and not failures


def test_a_passing_error_reply_fails_one_round_and_the_script_stays(
        log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with own_redis_reader(log_dir, "redis-busy", "kept", [0, 9]) as (_, reader):
        assert isinstance(reader, RedisQueueReader)
        assert reader.sample(["kept"])["kept"] == QueueSample(2, None)
        original, busy = redis.connection.Connection.read_response, [redis.ResponseError("BUSY Redis is busy")]

        def busy_once(self: redis.connection.Connection, *args: Any, **kwargs: Any) -> Any:
            reply = original(self, *args, **kwargs)  # read whole, as a real error reply is
            if busy:
                raise busy.pop()
            return reply

        monkeypatch.setattr(redis.connection.Connection, "read_response", busy_once)
        failed = reader.sample(["kept"])["kept"]
        assert failed.depth is None and "BUSY" in (failed.error or "")
        assert reader.scripting is True  # not refused for good: the next round reads through the script
        assert reader.sample(["kept"])["kept"] == QueueSample(2, None) and reader.scripting is True


def test_the_keys_and_calls_of_a_round_are_built_once_for_the_same_queues(
        redis_url: str, redis_queues: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    queues = [queue_for(redis_queues) for _ in range(3)]
    send(redis_url, {}, queues[0], [0, 9])
    reader = make_reader(redis_url)
    assert isinstance(reader, RedisQueueReader)
    built: list[str] = []
    keys = reader.keys

    def counted(queue: str) -> list[str]:
        built.append(queue)
        return keys(queue)

    monkeypatch.setattr(reader, "keys", counted)
    try:
        for _ in range(3):
            assert [s.depth for s in reader.sample(queues[:2]).values()] == [2, 0]
        assert built == queues[:2]
        send(redis_url, {}, queues[2], [3])
        assert [s.depth for s in reader.sample(queues).values()] == [2, 0, 1]  # a new queue: built again
        assert built == queues[:2] + queues
    finally:
        reader.close()


def test_a_key_that_is_not_a_list_fails_only_its_queue(redis_url: str, redis_client: redis.Redis,
                                                       redis_queues: list[str]) -> None:
    good, odd = queue_for(redis_queues), queue_for(redis_queues)
    send(redis_url, {}, good, [0, 9])
    redis_client.set(odd, "not a list")
    reader = make_reader(redis_url)
    try:
        samples = reader.sample([good, odd])
    finally:
        reader.close()
    assert samples[good] == QueueSample(2, None)
    assert samples[odd].depth is None and "WRONGTYPE" in (samples[odd].error or "")


def test_closed_port_gives_error_samples_with_the_password_masked() -> None:
    port = free_port()
    reader = make_reader(f"redis://:secret@127.0.0.1:{port}/0")
    try:
        samples = reader.sample(["a", "b", "c"])
    finally:
        reader.close()
    assert set(samples) == {"a", "b", "c"}
    for sample in samples.values():
        assert sample.depth is None and sample.consumers is None
        assert sample.error and "secret" not in sample.error
        assert f"redis://:****@127.0.0.1:{port}/0" in sample.error


def test_reader_reconnects_after_the_server_comes_back(log_dir: Path) -> None:
    port = free_port()
    reader = make_reader(f"redis://:secret@127.0.0.1:{port}/0")
    server = None
    try:
        assert reader.sample(["q"])["q"].error
        server = start_redis(port, log_dir, name="redis-depths")
        assert reader.sample(["q"]) == {"q": QueueSample(0, None)}
        server.stop()
        failed = reader.sample(["q"])["q"]
        assert failed.depth is None and failed.error and "secret" not in failed.error
        server = start_redis(port, log_dir, name="redis-depths-again")
        assert reader.sample(["q"]) == {"q": QueueSample(0, None)}
    finally:
        reader.close()
        if server is not None:
            server.stop()


# -- filesystem -----------------------------------------------------------------------

def test_filesystem_depth_counts_what_celery_wrote(tmp_path: Path) -> None:
    folder = tmp_path / "broker"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder),
               "control_folder": str(tmp_path / "control")}  # kombu's default is ./control
    send("filesystem://", options, "fs.jobs", [0] * 5)
    send("filesystem://", options, "fs", [0] * 2)
    reader = make_reader("filesystem://", options)
    assert reader.sample(["fs.jobs", "fs", "none"]) == {
        "fs.jobs": QueueSample(5, None), "fs": QueueSample(2, None), "none": QueueSample(0, None)}


# -- RabbitMQ ---------------------------------------------------------------------------

@pytest.fixture
def rabbit_queue() -> Iterator[str]:
    """A queue of this test alone on the shared RabbitMQ; deleted (with its exchange) afterwards."""
    if not port_open(RABBITMQ_HOST, RABBITMQ_PORT):
        pytest.skip(f"RabbitMQ not reachable at {RABBITMQ_HOST}:{RABBITMQ_PORT}")
    name = unique()
    yield name
    with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
        channel = connection.channel()
        Queue(name, Exchange(name), routing_key=name).bind(channel).delete()
        Exchange(name).bind(channel).delete()


class FakeManagementAPI:
    """A real HTTP server answering ``/api/queues/%2F/<queue>`` like RabbitMQ's management plugin (404 otherwise)."""

    def __init__(self, queue: str, unacked: int) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Authorization header)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append((self.path, self.headers.get("Authorization", "")))
                if self.path != f"/api/queues/%2F/{queue}":
                    self.send_error(404)
                    return
                body = json.dumps({"name": "x", "messages_unacknowledged": unacked}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://guest:guest@127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.mark.rabbitmq
def test_rabbitmq_depth_consumers_and_unknown_queues(rabbit_queue: str) -> None:
    sent, prefetch = 10, 3
    send(RABBITMQ_URL, {}, rabbit_queue, [0] * sent)
    api = FakeManagementAPI(rabbit_queue, unacked=prefetch)
    reader = make_reader(RABBITMQ_URL, broker_api_url=api.url)
    missing = unique("missing")
    try:
        wait_until(lambda: reader.sample([rabbit_queue])[rabbit_queue].depth == sent, 10,
                   message=lambda: f"depth never {sent}: {reader.sample([rabbit_queue])}")
        # Unknown queues on both sides: the channel the broker closes is reopened for the next one.
        samples = reader.sample([missing, rabbit_queue, missing + "-2"])
        assert samples == {missing: QueueSample(0, 0), rabbit_queue: QueueSample(sent, 0, unacked=prefetch),
                           missing + "-2": QueueSample(0, 0)}  # the API's 404s leave unacked unknown
        assert [path for path, _ in api.requests[-3:]] == [
            f"/api/queues/%2F/{name}" for name in (missing, rabbit_queue, missing + "-2")]
        assert all(base64.b64decode(auth.split()[1]) == b"guest:guest" for _, auth in api.requests)

        with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
            channel = connection.channel()
            channel.basic_qos(0, prefetch, False)
            consumer = Consumer(channel, [Queue(rabbit_queue, Exchange(rabbit_queue), routing_key=rabbit_queue)],
                                callbacks=[lambda body, message: None], no_ack=False)
            consumer.consume()  # never acks: the broker hands over `prefetch` messages and waits

            def attached() -> QueueSample | None:
                found = reader.sample([rabbit_queue])[rabbit_queue]
                return found if (found.depth, found.consumers) == (sent - prefetch, 1) else None

            assert wait_until(attached, 10, message=lambda: f"{reader.sample([rabbit_queue])}").error is None
            consumer.cancel()
        wait_until(lambda: reader.sample([rabbit_queue])[rabbit_queue] == QueueSample(sent, 0, unacked=prefetch),
                   10, message=lambda: f"unacked messages not back: {reader.sample([rabbit_queue])}")
    finally:
        reader.close()
        api.close()


@pytest.mark.rabbitmq
def test_rabbitmq_management_api_failure_only_leaves_unacked_unknown(rabbit_queue: str) -> None:
    send(RABBITMQ_URL, {}, rabbit_queue, [0, 0])
    reader = make_reader(RABBITMQ_URL, broker_api_url=f"http://guest:guest@127.0.0.1:{free_port()}/api/")
    try:
        wait_until(lambda: reader.sample([rabbit_queue]) == {rabbit_queue: QueueSample(2, 0)}, 10,
                   message=lambda: f"{reader.sample([rabbit_queue])}")
    finally:
        reader.close()


@pytest.mark.rabbitmq
def test_rabbitmq_management_api_reports_unacked(rabbit_queue: str) -> None:
    if not port_open(RABBITMQ_HOST, RABBITMQ_API_PORT):
        pytest.skip(f"RabbitMQ management API not reachable at {RABBITMQ_HOST}:{RABBITMQ_API_PORT}")
    send(RABBITMQ_URL, {}, rabbit_queue, [0] * 4)
    reader = make_reader(RABBITMQ_URL, broker_api_url=f"http://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_API_PORT}/")
    try:
        with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
            channel = connection.channel()
            channel.basic_qos(0, 1, False)
            Consumer(channel, [Queue(rabbit_queue, Exchange(rabbit_queue), routing_key=rabbit_queue)],
                     callbacks=[lambda body, message: None], no_ack=False).consume()
            # The management plugin's statistics lag by up to its collection interval (5 s by default).
            wait_until(lambda: reader.sample([rabbit_queue])[rabbit_queue] == QueueSample(3, 1, unacked=1), 20,
                       message=lambda: f"{reader.sample([rabbit_queue])}")
    finally:
        reader.close()


@pytest.mark.rabbitmq
def test_rabbitmq_closed_port_masks_the_password() -> None:
    port = free_port()
    reader = make_reader(f"amqp://guest:secret@127.0.0.1:{port}//")
    try:
        samples = reader.sample(["a", "b"])
    finally:
        reader.close()
    assert all(s.depth is None and s.error and "secret" not in s.error for s in samples.values())
