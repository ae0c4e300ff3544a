"""Where each transport keeps a queue's messages, which reader a URL gets, and what its errors show."""
from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
import redis

from dashboard.broker import (FilesystemQueueReader, QueueSample, RabbitMQQueueReader, RedisQueueReader,
                              UnavailableQueueReader, make_reader, redis_queue_keys, refuses_scripts)
from helpers import free_port

SEP = "\x06\x16"


def test_default_keys_are_the_bare_queue_and_one_list_per_nonzero_step() -> None:
    assert redis_queue_keys("celery") == ["celery", f"celery{SEP}3", f"celery{SEP}6", f"celery{SEP}9"]


def test_custom_steps_and_separator() -> None:
    assert redis_queue_keys("q", sep=":", priority_steps=[0, 5]) == ["q", "q:5"]
    assert redis_queue_keys("q", priority_steps=list(range(10))) == ["q"] + [f"q{SEP}{n}" for n in range(1, 10)]


def test_steps_without_zero_never_name_the_bare_queue() -> None:
    # kombu's _q_for_pri maps each step to itself; only step 0 maps to the bare name.
    assert redis_queue_keys("q", sep=":", priority_steps=[1, 4]) == ["q:1", "q:4"]


def test_duplicate_steps_are_read_once() -> None:
    assert redis_queue_keys("q", sep=":", priority_steps=[0, 0, 3, 3]) == ["q", "q:3"]


def test_global_keyprefix_prefixes_every_key() -> None:
    assert redis_queue_keys("q", sep=":", global_keyprefix="app1:") == ["app1:q", "app1:q:3", "app1:q:6", "app1:q:9"]


def test_reader_keys_follow_the_transport_options() -> None:
    reader = make_reader("redis://127.0.0.1:6379/3",
                         {"sep": "|", "priority_steps": [0, 9], "global_keyprefix": "p/"})
    try:
        assert isinstance(reader, RedisQueueReader)
        assert reader.keys("jobs") == ["p/jobs", "p/jobs|9"]
    finally:
        reader.close()


@pytest.mark.parametrize(("url", "options", "kind"), [
    ("redis://localhost:6379/0", None, RedisQueueReader),
    ("redis://:pw@localhost", None, RedisQueueReader),
    ("rediss://:pw@localhost:6380/1?ssl_cert_reqs=required", None, RedisQueueReader),
    ("redis://a:6379/0;redis://b:6379/0", None, RedisQueueReader),
    ("sentinel://s1:26379;sentinel://s2:26379/2", {"master_name": "mymaster"}, RedisQueueReader),
    ("amqp://guest:guest@localhost:5672//", None, RabbitMQQueueReader),
    ("pyamqp://localhost//", None, RabbitMQQueueReader),
    ("amqps://guest:guest@localhost:5671//", None, RabbitMQQueueReader),
    ("filesystem://", {"data_folder_in": "/tmp/in"}, FilesystemQueueReader),
    ("memory://", None, UnavailableQueueReader),
    ("sqs://key:secret@", None, UnavailableQueueReader),
])
def test_url_selects_the_reader_without_connecting(url: str, options: dict | None, kind: type) -> None:
    reader = make_reader(url, options)
    try:
        assert type(reader) is kind
    finally:
        reader.close()


@pytest.mark.parametrize("scheme", ["memory", "sqs", "sqla+postgresql"])
def test_unsupported_transport_says_so_for_every_queue(scheme: str) -> None:
    reader = make_reader(f"{scheme}://user:hunter2@host/x")
    expected = QueueSample(None, None, error=f"depth is not available for the {scheme!r} transport")
    assert reader.sample(["a", "b"]) == {"a": expected, "b": expected}
    reader.close()


@pytest.mark.parametrize(("url", "options", "message"), [
    ("redis://:hunter2@127.0.0.1:6379/abc", None, "the Redis database in the broker URL must be a number, got 'abc'"),
    ("sentinel://:hunter2@127.0.0.1:26379/0", None, "sentinel:// needs the transport option 'master_name'"),
    ("redis://:hunter2@127.0.0.1:99999/0", None, "Port out of range 0-65535"),
    ("amqp://guest:hunter2@127.0.0.1:99999//", None, "Port out of range 0-65535"),
])
def test_unusable_configuration_becomes_an_error_sample(url: str, options: dict | None, message: str) -> None:
    reader = make_reader(url, options)
    assert reader.sample(["q"]) == {"q": QueueSample(None, None, error=message)}


@pytest.mark.parametrize("url", [
    "redis://:hunter2@127.0.0.1:{port}/0",
    "redis://user:hun%40ter2@127.0.0.1:{port}/0",
    "amqp://guest:hunter2@127.0.0.1:{port}//",
])
def test_connection_error_hides_the_password(url: str) -> None:
    url = url.format(port=free_port())  # nothing listens there: the connection is refused at once
    reader = make_reader(url)
    try:
        samples = reader.sample(["a", "b"])
        assert samples == reader.sample(["a", "b"])  # still failing, still not raising
    finally:
        reader.close()
    assert set(samples) == {"a", "b"}
    for sample in samples.values():
        assert sample.depth is None and sample.consumers is None and sample.error
        assert "hunter2" not in sample.error and "hun%40ter2" not in sample.error and "hun@ter2" not in sample.error
        assert ":****@127.0.0.1" in sample.error


class _ClosingFails:
    """A kombu connection stand-in whose release raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def release(self) -> None:
        raise self.error


def test_a_connection_that_fails_to_close_is_dropped_quietly(caplog: pytest.LogCaptureFixture) -> None:
    reader = RabbitMQQueueReader("amqp://guest:hunter2@127.0.0.1:5672//", {}, None)
    reader._connection = _ClosingFails(ConnectionResetError("reset by peer"))  # type: ignore[assignment]
    with caplog.at_level(logging.DEBUG, logger="dashboard.broker"):
        reader.close()
    assert reader._connection is None
    assert [r.levelno for r in caplog.records] == [logging.DEBUG] and caplog.records[0].exc_info is None
    assert "reset by peer" in caplog.text and "hunter2" not in caplog.text


def test_a_bug_while_closing_a_connection_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    internal: list[int] = []
    reader = RabbitMQQueueReader("amqp://guest:guest@127.0.0.1:5672//", {}, None, lambda: internal.append(1))
    reader._connection = _ClosingFails(TypeError("a bug"))  # type: ignore[assignment]
    with caplog.at_level(logging.DEBUG, logger="dashboard.broker"):
        reader.close()  # never raises: the connection is gone either way
    assert reader._connection is None and internal == [1]
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert caplog.records[0].exc_info is not None and caplog.records[0].exc_info[0] is TypeError


def test_no_queues_means_no_samples() -> None:
    reader = make_reader(f"redis://127.0.0.1:{free_port()}/0")
    assert reader.sample([]) == {}
    reader.close()


def test_filesystem_counts_message_files_by_kombu_name(tmp_path: Path) -> None:
    def message(queue: str) -> str:
        return f"1712345678901_{uuid.uuid4()}.{queue}.msg"

    names = [message("jobs") for _ in range(3)] + [message("jobs.high"), message("other"),
                                                    "notes.txt", f"{uuid.uuid4()}.jobs.msg.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"{}")
    (tmp_path / message("jobs")).write_bytes(b'{"body": "half writ')  # still being written: counts
    reader = make_reader("filesystem://", {"data_folder_in": str(tmp_path)})
    assert reader.sample(["jobs", "jobs.high", "other", "none"]) == {
        "jobs": QueueSample(4, None), "jobs.high": QueueSample(1, None),
        "other": QueueSample(1, None), "none": QueueSample(0, None)}


def test_filesystem_missing_folder_is_an_error_sample(tmp_path: Path) -> None:
    reader = make_reader("filesystem://", {"data_folder_in": str(tmp_path / "absent")})
    sample = reader.sample(["jobs"])["jobs"]
    assert sample.depth is None and "cannot list the filesystem broker folder" in (sample.error or "")


@pytest.mark.parametrize(("api_url", "message"), [
    ("ftp://guest:hunter2@127.0.0.1:15672/", "expected http:// or https://"),
    ("http://guest:hunter2@127.0.0.1:99999/", "out of range"),
])
def test_unusable_management_api_url_is_named_without_its_password(api_url: str, message: str) -> None:
    reader = make_reader("amqp://guest:hunter2@127.0.0.1:5672//", broker_api_url=api_url)
    error = reader.sample(["q"])["q"].error or ""
    assert message in error and "broker API URL" in error and "hunter2" not in error


@pytest.mark.parametrize(("error", "for_good"), [
    (redis.exceptions.NoPermissionError("this user has no permissions to run the 'evalsha' command"), True),
    (redis.ResponseError("unknown command 'EVALSHA', with args beginning with: "), True),  # renamed away
    (redis.ResponseError("BUSY Redis is busy running a script. You can only call SCRIPT KILL"), False),
    (redis.ResponseError("LOADING Redis is loading the dataset in memory"), False),
    (redis.exceptions.NoScriptError("No matching script. Please use EVAL."), False),  # flushed again
])
def test_only_a_server_without_scripts_turns_the_sampler_to_llen_for_good(error: redis.ResponseError,
                                                                           for_good: bool) -> None:
    assert refuses_scripts(error) is for_good
