"""Unit tests of the demo cluster's pieces that need no subprocess: config, tasks run eagerly, transport, pruning."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from dashboard.demo import tasks
from dashboard.demo.cluster import DemoCluster, prune_stale_event_messages
from dashboard.demo.transport import PARTIAL_SUFFIX, Transport, _is_finished


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "_pause", lambda low, high: None)
    monkeypatch.setattr(tasks, "PROGRESS_STEP_SECONDS", 0.0)


def test_config_defaults_to_filesystem_broker_without_backend() -> None:
    config = tasks.build_config({})
    assert config["broker_url"] == "filesystem://"
    assert config["broker_transport_options"] == {}
    assert config["result_backend"] is None
    assert config["accept_content"] == ["json"]
    assert [q.name for q in config["task_queues"]] == ["celery", "high_priority", "low_priority"]


def test_config_reads_transport_options_and_demo_dir(tmp_path: Path) -> None:
    env = {"DASHBOARD_DEMO_TRANSPORT_OPTIONS": '{"polling_interval": 0.05}', "DASHBOARD_DEMO_DIR": str(tmp_path)}
    config = tasks.build_config(env)
    assert config["broker_transport_options"] == {"polling_interval": 0.05}
    assert config["result_backend"] == f"file://{tmp_path.resolve()}/results"
    assert (tmp_path / "results").is_dir()


def test_explicit_result_backend_wins(tmp_path: Path) -> None:
    env = {"CELERY_RESULT_BACKEND": "redis://localhost/1", "DASHBOARD_DEMO_DIR": str(tmp_path)}
    assert tasks.result_backend_from_env(env) == "redis://localhost/1"


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]"])
def test_bad_transport_options_name_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="DASHBOARD_DEMO_TRANSPORT_OPTIONS"):
        tasks.transport_options_from_env({"DASHBOARD_DEMO_TRANSPORT_OPTIONS": raw})


def test_routes_send_email_and_resize_image() -> None:
    routes = tasks.app.conf.task_routes
    assert routes["dashboard.demo.tasks.send_email"] == {"queue": "high_priority"}
    assert routes["dashboard.demo.tasks.resize_image"] == {"queue": "low_priority"}


def test_quick_tasks_return_their_results() -> None:
    assert tasks.add.apply((2, 3)).get() == 5
    assert tasks.echo.apply((1, "a"), {"k": [2]}).get() == {"args": [1, "a"], "kwargs": {"k": [2]}}
    assert tasks.send_email.apply(("a@example.com", "Hi")).get()["status"] == "sent"
    assert tasks.resize_image.apply(("/srv/media/x.jpg", 128)).get()["path"] == "/srv/media/x-128w.jpg"


def test_fail_payment_fails_with_the_order_id() -> None:
    result = tasks.fail_payment.apply(("ORD-123456",))
    assert result.failed()
    assert isinstance(result.result, ValueError)
    assert "ORD-123456" in str(result.result)


def test_flaky_fetch_succeeds_after_one_or_two_retries() -> None:
    result = tasks.flaky_fetch.apply(("https://api.partner.example.com/v1/items/7",))
    assert result.successful()
    assert result.get()["attempts"] in (2, 3)


def test_progress_job_sends_one_progress_event_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(tasks.progress_job, "send_event", lambda type_, **fields: sent.append((type_, fields)))
    assert tasks.progress_job.apply((3,)).get() == {"current": 3, "total": 3}
    assert sent == [("task-progress", {"current": i, "total": 3}) for i in (1, 2, 3)]


def test_cluster_settings_point_into_its_directory(tmp_path: Path) -> None:
    cluster = DemoCluster(str(tmp_path))
    options = cluster.transport_options
    assert cluster.broker_url == "filesystem://"
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "data")
    assert options["control_folder"] == str(tmp_path / "control")
    env = cluster.environment
    assert json.loads(env["DASHBOARD_DEMO_TRANSPORT_OPTIONS"]) == options
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(Path(tasks.__file__).resolve().parents[2])
    cluster.stop()  # never started: a no-op that keeps a directory it did not create
    assert tmp_path.is_dir()


def test_prepare_creates_empty_exchange_tables(tmp_path: Path) -> None:
    cluster = DemoCluster(str(tmp_path))
    cluster.prepare()
    assert json.loads((tmp_path / "control" / "celeryev.exchange").read_text()) == []
    assert (tmp_path / "data").is_dir() and (tmp_path / "logs").is_dir()


def test_transport_round_trips_messages_without_partial_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    options = {"data_folder_in": str(data), "data_folder_out": str(data), "control_folder": str(tmp_path / "control")}
    queue = Queue("jobs", Exchange("jobs", type="direct"), routing_key="jobs")
    with Connection(transport=Transport, transport_options=options) as conn:
        conn.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key="jobs", declare=[queue])
        assert not [name for name in os.listdir(data) if name.endswith(PARTIAL_SUFFIX)]
        message = queue(conn.default_channel).get(accept=["json"])
        assert message is not None and message.payload == {"n": 1}
        message.ack()
    assert os.listdir(data) == []


def test_unfinished_message_files_are_skipped(tmp_path: Path) -> None:
    empty = tmp_path / "1_a.jobs.msg"
    empty.write_bytes(b"")
    assert not _is_finished(str(empty))
    locked = tmp_path / "2_b.jobs.msg"
    with locked.open("wb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        writer.write(b'{"half": ')
        writer.flush()
        assert not _is_finished(str(locked))
    assert _is_finished(str(locked))
    assert not _is_finished(str(tmp_path / "gone.jobs.msg"))


def test_prune_deletes_only_old_event_messages(tmp_path: Path) -> None:
    names = ["1000_a.celeryev.x.msg", "99000_b.celeryev.x.msg", "1000_c.celery.msg", "1000_d.celeryev.x.msg.partial"]
    for name in names:
        (tmp_path / name).write_text("{}")
    assert prune_stale_event_messages(tmp_path, max_age_seconds=60, now_monotonic=100.0) == 1
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])
