"""--task-link and --worker-link: parsing at start-up, and filling in values URL-encoded."""
from __future__ import annotations

from typing import Any

import pytest

from dashboard.links import TASK_PLACEHOLDERS, LinkError, parse_link, task_links, worker_links
from dashboard.settings import SettingsError, load_settings


def test_placeholders_are_filled_url_encoded_and_hostile_values_stay_in_their_place() -> None:
    link = parse_link("Logs=https://logs.example/search?q={uuid}&task={name}&from={started}", "task-link",
                      TASK_PLACEHOLDERS)
    task = {"uuid": "abc", "name": "evil&admin=1#x/../y?z", "started": 1_800_000_000.1234, "worker": "w@h"}
    [rendered] = task_links((link,), task)
    assert rendered == {"label": "Logs", "url": "https://logs.example/search?q=abc&task=evil%26admin%3D1%23x%2F..%2Fy%3Fz"
                                                   "&from=1800000000123"}


def test_a_link_whose_value_is_unknown_is_left_out() -> None:
    link = parse_link("Trace=https://trace.example/{root_id}/{finished}", "task-link", TASK_PLACEHOLDERS)
    assert task_links((link,), {"uuid": "a", "root_id": "r"}) == []  # not finished yet
    assert task_links((link,), {"uuid": "a", "root_id": "r", "failed": 2.5})[0]["url"] == "https://trace.example/r/2500"


def test_worker_links_fill_the_hostname() -> None:
    link = parse_link("Host=https://grafana.example/d/node?var-host={hostname}", "worker-link", ("hostname",))
    assert worker_links((link,), "celery@web 1") == [
        {"label": "Host", "url": "https://grafana.example/d/node?var-host=celery%40web%201"}]


@pytest.mark.parametrize(("raw", "message"), [
    ("https://logs.example/{uuid}", "expected LABEL=URL"),
    ("Logs=javascript:alert(1)//{uuid}", "only http:// and https://"),
    ("Logs=ftp://logs.example/{uuid}", "only http:// and https://"),
    ("Logs=/relative/{uuid}", "only http:// and https://"),
    ("Logs=https://logs.example/{password}", "unknown placeholder {password}"),
    ("Logs=https://logs.example/{uuid!r}", "unknown placeholder"),
    ("Logs=https://logs.example/{}", "unknown placeholder {}"),
    ("Logs=https://{hostname}.example/", "may not stand in the host"),
    ("Logs=https://logs.example/{uuid", "write a literal brace"),
])
def test_bad_templates_are_start_up_errors_naming_the_flag(raw: str, message: str) -> None:
    with pytest.raises(LinkError, match="--task-link") as caught:
        parse_link(raw, "task-link", TASK_PLACEHOLDERS)
    assert message in str(caught.value)
    with pytest.raises(SettingsError, match="--task-link"):
        load_settings(["--task-link", raw])


def test_links_come_from_flags_the_environment_and_the_config_file(tmp_path: Any) -> None:
    settings = load_settings(["--task-link", "A=https://a.example/{uuid}", "--task-link", "B=https://b.example/{name}"])
    assert [link.label for link in settings.task_links] == ["A", "B"]
    environ = {"DASHBOARD_WORKER_LINK": "Host=https://g.example/?h={hostname}&x=1,2\nOther=https://o.example/{hostname}"}
    assert [link.template for link in load_settings([], environ).worker_links] == [
        "https://g.example/?h={hostname}&x=1,2", "https://o.example/{hostname}"]
    config = tmp_path / "dashboard.toml"
    config.write_text('task-link = ["Logs=https://logs.example/?q={uuid}&a=1,2"]\n')
    assert [link.template for link in load_settings(["--config", str(config)], {}).task_links] == [
        "https://logs.example/?q={uuid}&a=1,2"]


def test_the_api_carries_the_links(tmp_path: Any) -> None:
    from dashboard import create_app
    from dashboard.settings import Settings
    from dashboard.links import parse_link as parse
    settings = Settings(db=str(tmp_path / "d.db"), async_mode="threading",
                        task_links=(parse("Logs=https://logs.example/?q={uuid}", "task-link", TASK_PLACEHOLDERS),),
                        worker_links=(parse("Host=https://g.example/?h={hostname}", "worker-link", ("hostname",)),))
    app = create_app(settings)
    dashboard = app.extensions["dashboard"]
    dashboard.cluster.apply_events([
        {"type": "task-received", "uuid": "t1", "name": "app.t", "timestamp": 1.0, "hostname": "w@h", "local_received": 1.0},
        {"type": "worker-heartbeat", "hostname": "w@h", "timestamp": 1.0, "local_received": 1.0, "freq": 2.0, "active": 0,
         "processed": 0}])
    client = app.test_client()
    assert client.get("/api/tasks/t1").get_json()["links"] == [{"label": "Logs", "url": "https://logs.example/?q=t1"}]
    assert client.get("/api/workers/w@h").get_json()["links"] == [{"label": "Host", "url": "https://g.example/?h=w%40h"}]
