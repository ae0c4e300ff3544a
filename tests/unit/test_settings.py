"""Settings: defaults, environment, and loud failures naming the option."""
from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.redact import mask_url
from dashboard.settings import Settings, SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings([], {})
    assert settings == Settings()
    assert (settings.broker_url, settings.port, settings.max_tasks) == ("redis://localhost:6379/0", 5555, 100_000)
    assert settings.flush_interval_seconds <= 0.25


def test_flags_win_over_environment() -> None:
    env = {"DASHBOARD_PORT": "6000", "CELERY_BROKER_URL": "amqp://guest:guest@rabbit//", "DASHBOARD_MAX_TASKS": "5"}
    assert load_settings([], env).port == 6000
    assert load_settings([], env).broker_url == "amqp://guest:guest@rabbit//"
    assert load_settings(["--port", "7000", "--broker", "redis://r:6379/1"], env).port == 7000
    assert load_settings(["--broker", "redis://r:6379/1"], env).broker_url == "redis://r:6379/1"
    assert load_settings([], {**env, "DASHBOARD_BROKER": "redis://x//"}).broker_url == "redis://x//"


def test_queues_are_comma_separated_and_repeatable() -> None:
    settings = load_settings(["--queues", "a,b", "--queues", "c", "--queues", "a"], {})
    assert settings.queues == ("a", "b", "c")


@pytest.mark.parametrize("argv, message", [
    (["--port", "abc"], "--port: expected a whole number, got 'abc'"),
    (["--port", "70000"], "--port: must be at most 65535"),
    (["--max-tasks", "0"], "--max-tasks: must be positive"),
    (["--flush-interval", "nan"], "--flush-interval"),
    (["--broker", "localhost"], "--broker: expected a URL"),
    (["--broker-transport-options", "[1]"], "expected a JSON object"),
    (["--async-mode", "gevent"], "--async-mode: expected one of eventlet, threading"),
    (["--leader-lock", "postgresql://db/x"], "--leader-lock: expected a Redis URL"),
    (["--leader-lock", "redis://:pw@h/0", "--leader-ttl", "0"], "--leader-ttl: must be a positive number"),
    (["--message-queue", "redis://h/0"], "--message-queue carries the leader's alerts to every process: it needs "
                                         "--leader-lock"),
])
def test_bad_values_name_the_option_and_the_value(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_settings(argv, {})


@pytest.mark.parametrize("url, masked", [
    ("redis://:s3cret@host:6379/0", "redis://:****@host:6379/0"),
    ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:****@127.0.0.1:5672//"),
    ("redis://host:6379/0", "redis://host:6379/0"),
    ("sentinel://:a@h1:26379;sentinel://:b@h2:26379", "sentinel://:****@h1:26379;sentinel://:****@h2:26379"),
])
def test_passwords_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert Settings(broker_url=url).masked_broker_url == masked


def test_a_bad_broker_url_is_reported_masked() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(["--broker", "user:hunter2@host"], {})
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("raw, seconds", [("7d", 604800), ("12h", 43200), ("30m", 1800), ("90", 90), ("1.5h", 5400)])
def test_retention_durations(raw: str, seconds: float) -> None:
    assert load_settings(["--max-age", raw], {}).max_age_seconds == seconds


def test_bad_durations_are_refused() -> None:
    with pytest.raises(SettingsError, match="--max-age: expected a positive duration"):
        load_settings(["--max-age", "soon"], {})
    assert load_settings(["--keep-failed-days", "30"], {}).keep_failed_seconds == 30 * 86400


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_need_nothing_more(address: str) -> None:
    assert load_settings(["--address", address], {}).loopback_only


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.1.2.3", "dash.example.com"])
def test_a_reachable_address_without_a_login_is_refused_unless_accepted(address: str) -> None:
    with pytest.raises(SettingsError, match="not a loopback address.*--insecure-no-auth"):
        load_settings(["--address", address], {})
    assert load_settings(["--address", address, "--insecure-no-auth"], {}).insecure_no_auth
    assert load_settings([], {"DASHBOARD_ADDRESS": address, "DASHBOARD_INSECURE_NO_AUTH": "1"}).address == address


def test_allowed_origins_are_origins() -> None:
    settings = load_settings(["--allowed-origins", "https://Grafana.example.com/,http://status:3000"], {})
    assert settings.allowed_origins == ("https://grafana.example.com", "http://status:3000")
    for bad in ("grafana.example.com", "https://x.example/path", "ftp://x", "https://user:pw@x"):
        with pytest.raises(SettingsError, match="--allowed-origins"):
            load_settings(["--allowed-origins", bad], {})


def test_a_config_file_is_the_lowest_layer_under_the_environment_and_the_flags(tmp_path: Path) -> None:
    path = tmp_path / "dashboard.toml"
    path.write_text('broker = "redis://file:6379/0"\nport = 6000\nmax_tasks = 500\nread-only = true\n'
                    'queues = ["a", "b"]\nwebhook = ["https://hooks.example.com/x"]\n'
                    'broker-transport-options = {visibility_timeout = 60}\nmetrics-max-task-names = 50\n')
    settings = load_settings(["--config", str(path)], {})
    assert (settings.broker_url, settings.port, settings.max_tasks, settings.read_only) == \
        ("redis://file:6379/0", 6000, 500, True)
    assert settings.queues == ("a", "b") and settings.webhooks == ("https://hooks.example.com/x",)
    assert settings.broker_transport_options == {"visibility_timeout": 60} and settings.metrics_max_task_names == 50
    env = {"DASHBOARD_PORT": "7000", "DASHBOARD_CONFIG": str(path)}
    assert load_settings([], env).port == 7000  # the environment wins over the file
    assert load_settings(["--port", "8000"], env).port == 8000  # and the flags over both
    for text, message in [("colour = 1", "unknown option 'colour'"), ("read-only = 1", "takes true or false"),
                          ("queues = [1]", "takes text or a list"), ("port = [1]", "takes text or a number"),
                          ("port = ", "not valid TOML")]:
        path.write_text(text)
        with pytest.raises(SettingsError, match=message):
            load_settings(["--config", str(path)], {})
    with pytest.raises(SettingsError, match="cannot read it"):
        load_settings(["--config", str(tmp_path / "missing.toml")], {})
