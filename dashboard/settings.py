"""Every setting of the dashboard: its default, its unit, and how it is read.

Each option is a command-line flag and also an environment variable
``DASHBOARD_<NAME>`` (the broker also ``CELERY_BROKER_URL``). A bad value
stops start-up with a message naming the option and the value.
"""
from __future__ import annotations

import argparse
import json
import ipaddress
import math
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from typing import Any, Callable, Mapping, Sequence

from .links import TASK_PLACEHOLDERS, WORKER_PLACEHOLDERS, Link, LinkError, parse_link
from .prefix import PrefixError, normalize_prefix
from .redact import mask_url
from .rules import RuleError, load_alert_file
from .tomlfile import read_toml

#: Environment variable prefix for every option.
ENV_PREFIX = "DASHBOARD_"
#: The history file when --db is not given (the demo's is in its temporary folder instead).
DEFAULT_DB = "dashboard.db"

#: Async modes Flask-SocketIO may run in; eventlet is the production default.
ASYNC_MODES = ("eventlet", "threading")
#: How the event stream is read: the Redis fast path where it applies, or always Celery's receiver.
EVENT_READERS = ("auto", "kombu")


class SettingsError(ValueError):
    """A setting has a value the dashboard cannot use."""


@dataclass(frozen=True)
class Settings:
    """The dashboard's configuration, validated."""

    broker_url: str = "redis://localhost:6379/0"  # Celery broker to watch
    broker_transport_options: dict[str, Any] = field(default_factory=dict)  # kombu transport options
    event_reader: str = "auto"  # "auto": Redis fast path on redis:// and rediss://; "kombu": Celery's receiver
    address: str = "127.0.0.1"  # interface the web server binds
    port: int = 5555  # web server TCP port
    db: str = DEFAULT_DB  # SQLite history file (the demo keeps its own unless another file is named)
    queues: tuple[str, ...] = ()  # queues to watch besides the workers' own
    demo: bool = False  # run a self-contained demo cluster on filesystem://
    insecure_no_auth: bool = False  # serve on a non-loopback address although nobody has to log in
    read_only: bool = False  # every action (revoke, terminate) off
    auth_file: str | None = None  # users and API tokens (TOML); None: no login (loopback only)
    session_hours: float = 12.0  # a browser session's lifetime
    audit_seconds: float = 90 * 86400.0  # audit entries kept at least this long
    async_mode: str = "eventlet"  # Flask-SocketIO async mode
    max_tasks: int = 100_000  # tasks held in memory, least recently updated evicted
    flush_interval_seconds: float = 0.25  # how often coalesced changes are pushed
    heartbeat_slack_seconds: float = 2.0  # grace added to Celery's freq * 2 expiry
    max_field_chars: int = 4096  # longest args/kwargs/result string kept
    max_traceback_chars: int = 32_768  # longest traceback kept
    reconnect_max_seconds: float = 10.0  # ceiling of the broker reconnect backoff
    watchdog_min_seconds: float = 10.0  # silence before the broker is pinged
    broker_ping_timeout_seconds: float = 2.0  # timeout of that ping
    snapshot_tasks: int = 100  # recent tasks in a snapshot and the overview window
    inspect_interval_seconds: float = 30.0  # how often every worker is inspected again
    inspect_timeout_seconds: float = 1.0  # how long an inspect request waits for replies
    purge_offline_after_seconds: float = 3600.0  # offline/lost workers leave the main list after this
    webhooks: tuple[str, ...] = ()  # URLs POSTed a JSON document on worker and queue alerts
    max_tasks_stored: int = 1_000_000  # tasks kept in the history database, newest kept
    bulk_limit: int = 1_000  # most tasks one bulk action (revoke, retry) may touch
    max_age_seconds: float = 7 * 86400.0  # tasks older than this (by last update) are pruned
    keep_failed_seconds: float | None = None  # failed tasks kept this long instead, when set
    queue_interval_seconds: float = 1.0  # how often queue depths are sampled
    broker_api: str | None = None  # RabbitMQ management API URL, for unacknowledged counts
    app: str | None = None  # "module" or "module:attr" of the Celery app, for its configured queues
    queue_alerts: tuple[str, ...] = ()  # NAME=DEPTH[:SECONDS] backlog thresholds
    log_level: str = "INFO"  # logging level name
    max_event_bytes: int = 1 << 20  # largest event body accepted, after decompression
    max_workers: int = 5_000  # workers tracked; hostnames beyond are counted and ignored
    max_queues: int = 2_000  # queues watched; names beyond are counted and ignored
    allowed_origins: tuple[str, ...] = ()  # other sites' origins whose pages may open the live socket
    allowed_hosts: tuple[str, ...] = ()  # Host names accepted besides IP literals, loopback names and this machine's
    ping_interval_seconds: float = 25.0  # how often the server pings each live client
    ping_timeout_seconds: float = 20.0  # how long a live client may take to answer before it is dropped
    slow_client_timeout_seconds: float = 30.0  # how long a live client that does not read is held back, then dropped
    max_connections: int = 1_000  # HTTP and live connections served at once (eventlet)
    header_timeout_seconds: float = 10.0  # longest a client may take to send a request's line and headers
    metrics_max_task_names: int = 500  # task names labelled apart in /metrics and the analytics; more are "other"
    metrics_no_hostname: bool = False  # /metrics without the hostname label
    metrics_public: bool = False  # /metrics answers without credentials even when --auth-file is set
    alerts_file: str | None = None  # alert rules (TOML)
    alert_interval_seconds: float = 5.0  # how often the alert rules are checked
    task_links: tuple[Link, ...] = ()  # --task-link LABEL=URL: buttons on the task page
    worker_links: tuple[Link, ...] = ()  # --worker-link LABEL=URL: buttons on the worker page
    stale_after_seconds: float = 3600.0  # an unfinished task no worker holds after a gap is marked lost this old
    beat_db: str | None = None  # django-celery-beat's database: sqlite:///path, postgresql://..., mysql://...
    redbeat_url: str | None = None  # celery-redbeat's Redis
    redbeat_key_prefix: str = "redbeat:"  # celery-redbeat's redbeat_key_prefix
    periodic_grace_seconds: float | None = None  # a periodic run this late is missed; None: 10 % of its interval, >= 30 s
    behind_proxy: bool = False  # trust one proxy's X-Forwarded-For, -Proto and -Prefix
    url_prefix: str = ""  # serve everything under this path ("/celery"); "" for the root
    certfile: str | None = None  # serve HTTPS with this certificate (PEM, the chain after it) ...
    keyfile: str | None = None  # ... and this private key (PEM)
    leader_lock: str | None = None  # Redis of the lock that lets one of several processes sharing --db write it
    leader_ttl_seconds: float = 10.0  # how long the lock outlives its holder's last renewal
    message_queue: str | None = None  # Redis through which the leader's alerts reach every process's pages

    @property
    def actions_refused(self) -> str | None:
        """Why actions are off, or None when they are on."""
        if self.read_only:
            return "actions are off: the dashboard runs with --read-only"
        if self.insecure_no_auth and not self.auth_file:
            return "actions are off: the dashboard serves without a login (--insecure-no-auth)"
        return None

    @property
    def loopback_only(self) -> bool:
        """Whether the server binds a loopback address only (reachable from this machine alone)."""
        return is_loopback(self.address)

    @property
    def masked_broker_url(self) -> str:
        """The broker URL with its password masked, safe to show and log."""
        return mask_url(self.broker_url)


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP literal or ``localhost``) is a loopback address."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _positive_int(name: str) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"--{name}: expected a whole number, got {raw!r}") from None
        if value <= 0:
            raise SettingsError(f"--{name}: must be positive, got {raw!r}")
        return value
    return parse


def _positive_float(name: str) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"--{name}: expected a number, got {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise SettingsError(f"--{name}: must be a positive number, got {raw!r}")
        return value
    return parse


#: Units a duration may end with, in seconds.
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(name: str) -> Callable[[str], float]:
    number = _positive_float(name)

    def parse(raw: str) -> float:
        text = raw.strip().lower()
        unit = _DURATION_UNITS.get(text[-1:])
        try:
            return number(text[:-1] if unit else text) * (unit or 1)
        except SettingsError:
            raise SettingsError(f"--{name}: expected a positive duration such as 7d, 12h, 30m or 3600, "
                                f"got {raw!r}") from None
    return parse


def _port(raw: str) -> int:
    value = _positive_int("port")(raw)
    if value > 65535:
        raise SettingsError(f"--port: must be at most 65535, got {raw!r}")
    return value


def _json_object(name: str) -> Callable[[str], dict[str, Any]]:
    def parse(raw: str) -> dict[str, Any]:
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise SettingsError(f"--{name}: not valid JSON ({exc}): {raw!r}") from None
        if not isinstance(value, dict):
            raise SettingsError(f"--{name}: expected a JSON object, got {raw!r}")
        return value
    return parse


def _choice(name: str, choices: Sequence[str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise SettingsError(f"--{name}: expected one of {', '.join(choices)}, got {raw!r}")
        return raw
    return parse


def _broker(raw: str) -> str:
    if "://" not in raw:
        shown = "a value with credentials" if "@" in raw else repr(raw)
        raise SettingsError(f"--broker: expected a URL such as redis://host:6379/0, got {shown}")
    return raw


def _redis_url(flag: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not raw.startswith(("redis://", "rediss://", "unix://")):
            shown = "a value with credentials" if "@" in raw else repr(raw)
            raise SettingsError(f"--{flag}: expected a Redis URL such as redis://host:6379/0, got {shown}")
        return raw
    return parse


def _url_prefix(raw: str) -> str:
    try:
        return normalize_prefix(raw)
    except PrefixError as exc:
        raise SettingsError(str(exc)) from None


def _check_tls(certfile: str, keyfile: str) -> None:
    """Load the certificate and key once, so a wrong path or a key that does not match stops start-up."""
    import ssl
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except FileNotFoundError as exc:
        raise SettingsError(f"--certfile/--keyfile: no such file: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError(f"--certfile {certfile} / --keyfile {keyfile}: cannot be used ({exc})") from None


def _webhook(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise SettingsError(f"--webhook: expected an http:// or https:// URL, got {mask_url(raw)!r}")
    return raw


def _queue_alert(raw: str) -> str:
    from .queues import QueueAlertRule  # pure, tiny; imported here to keep settings first in the graph
    try:
        QueueAlertRule.parse(raw)
    except ValueError as exc:
        raise SettingsError(f"--queue-alert: {exc}") from None
    return raw


def _host_pattern(raw: str) -> str:
    name = raw.strip().lower().rstrip(".")
    bare = name[2:] if name.startswith("*.") else name
    if name != "*" and (not bare or any(c in bare for c in "/:@ *?#")):
        raise SettingsError(f"--allowed-hosts: expected host names such as dash.example.com or *.example.com "
                            f"(no scheme or port), got {raw!r}")
    return name


def _origin(raw: str) -> str:
    """``https://grafana.example.com`` or ``http://host:3000``: a scheme, a host and maybe a port, nothing else."""
    origin = raw.strip().lower().rstrip("/")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise SettingsError(f"--allowed-origins: expected origins such as https://grafana.example.com "
                            f"(a scheme, a host and maybe a port), got {raw!r}")
    return origin


def _queue_list(values: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    return tuple(names)


#: (flag, Settings field, parser) for every option that takes a value.
_OPTIONS: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("broker", "broker_url", _broker),
    ("broker-transport-options", "broker_transport_options", _json_object("broker-transport-options")),
    ("event-reader", "event_reader", _choice("event-reader", EVENT_READERS)),
    ("address", "address", str),
    ("port", "port", _port),
    ("db", "db", str),
    ("async-mode", "async_mode", _choice("async-mode", ASYNC_MODES)),
    ("max-tasks", "max_tasks", _positive_int("max-tasks")),
    ("flush-interval", "flush_interval_seconds", _positive_float("flush-interval")),
    ("heartbeat-slack", "heartbeat_slack_seconds", _positive_float("heartbeat-slack")),
    ("max-field-chars", "max_field_chars", _positive_int("max-field-chars")),
    ("reconnect-max", "reconnect_max_seconds", _positive_float("reconnect-max")),
    ("watchdog-min", "watchdog_min_seconds", _positive_float("watchdog-min")),
    ("inspect-interval", "inspect_interval_seconds", _positive_float("inspect-interval")),
    ("inspect-timeout", "inspect_timeout_seconds", _positive_float("inspect-timeout")),
    ("purge-offline-after", "purge_offline_after_seconds", _positive_float("purge-offline-after")),
    ("max-tasks-stored", "max_tasks_stored", _positive_int("max-tasks-stored")),
    ("bulk-limit", "bulk_limit", _positive_int("bulk-limit")),
    ("auth-file", "auth_file", str),
    ("session-hours", "session_hours", _positive_float("session-hours")),
    ("audit-days", "audit_seconds", lambda raw: _positive_float("audit-days")(raw) * 86400),
    ("max-age", "max_age_seconds", _duration("max-age")),
    ("keep-failed-days", "keep_failed_seconds", lambda raw: _positive_float("keep-failed-days")(raw) * 86400),
    ("queue-interval", "queue_interval_seconds", _positive_float("queue-interval")),
    ("broker-api", "broker_api", str),
    ("app", "app", str),
    ("log-level", "log_level", _choice("log-level", ("DEBUG", "INFO", "WARNING", "ERROR"))),
    ("max-event-bytes", "max_event_bytes", _positive_int("max-event-bytes")),
    ("max-workers", "max_workers", _positive_int("max-workers")),
    ("max-queues", "max_queues", _positive_int("max-queues")),
    ("ping-interval", "ping_interval_seconds", _positive_float("ping-interval")),
    ("ping-timeout", "ping_timeout_seconds", _positive_float("ping-timeout")),
    ("slow-client-timeout", "slow_client_timeout_seconds", _positive_float("slow-client-timeout")),
    ("max-connections", "max_connections", _positive_int("max-connections")),
    ("header-timeout", "header_timeout_seconds", _positive_float("header-timeout")),
    ("metrics-max-task-names", "metrics_max_task_names", _positive_int("metrics-max-task-names")),
    ("alerts", "alerts_file", str),
    ("alert-interval", "alert_interval_seconds", _positive_float("alert-interval")),
    ("periodic-grace", "periodic_grace_seconds", _positive_float("periodic-grace")),
    ("stale-after", "stale_after_seconds", _duration("stale-after")),
    ("url-prefix", "url_prefix", _url_prefix),
    ("certfile", "certfile", str),
    ("keyfile", "keyfile", str),
    ("beat-db", "beat_db", str),
    ("redbeat-url", "redbeat_url", str),
    ("redbeat-key-prefix", "redbeat_key_prefix", str),
    ("leader-lock", "leader_lock", _redis_url("leader-lock")),
    ("leader-ttl", "leader_ttl_seconds", _positive_float("leader-ttl")),
    ("message-queue", "message_queue", _redis_url("message-queue")),
)
#: (flag, Settings field, help) of every option that is on or off.
_SWITCHES: tuple[tuple[str, str, str], ...] = (
    ("demo", "demo", "run a self-contained demo cluster on the filesystem:// broker"),
    ("read-only", "read_only", "turn every action (revoke, terminate) off"),
    ("insecure-no-auth", "insecure_no_auth",
     "serve on a non-loopback --address although the dashboard has no login: anyone "
     "who reaches it reads every task's arguments and results"),
    ("metrics-no-hostname", "metrics_no_hostname", "leave the hostname label out of /metrics"),
    ("behind-proxy", "behind_proxy", "trust the X-Forwarded-For and X-Forwarded-Proto headers of one reverse proxy "
     "in front (client addresses in the log and the login limit; Secure cookies behind a TLS proxy)"),
    ("metrics-public", "metrics_public", "let /metrics answer without credentials when --auth-file is set "
     "(it carries task names, hostnames and queue names, never arguments or results)"),
)


def env_name(flag: str) -> str:
    """The environment variable that sets option ``--flag``."""
    return ENV_PREFIX + flag.upper().replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser (values stay raw strings until validated)."""
    parser = argparse.ArgumentParser(
        prog="run.py", description="Live monitoring dashboard for Celery clusters.")
    for flag, attr, _ in _OPTIONS:
        parser.add_argument(f"--{flag}", dest=attr, default=None,
                            help=f"{_meaning(flag)} (env {env_name(flag)}; default {getattr(Settings(), attr)!r})")
    parser.add_argument("--queues", action="append", default=None,
                        help="comma-separated queue names to watch; may be repeated")
    parser.add_argument("--webhook", action="append", default=None, dest="webhooks",
                        help="URL to POST worker lost / back online alerts to; may be repeated")
    parser.add_argument("--queue-alert", action="append", default=None, dest="queue_alerts",
                        help="NAME=DEPTH[:SECONDS]: alert when a queue stays deeper than DEPTH; may be repeated")
    parser.add_argument("--allowed-origins", action="append", default=None, dest="allowed_origins",
                        help="comma-separated origins of other sites whose pages may open the live socket "
                             "(still with credentials when --auth-file is set); may be repeated")
    parser.add_argument("--task-link", action="append", default=None, dest="task_links",
                        help="LABEL=URL: a button on the task page, the URL's {uuid}, {name}, {hostname}, {queue}, "
                             "{root_id}, {started} and {finished} (epoch ms) filled in, URL-encoded; may be repeated")
    parser.add_argument("--worker-link", action="append", default=None, dest="worker_links",
                        help="LABEL=URL: a button on the worker page, the URL's {hostname} filled in; may be repeated")
    parser.add_argument("--allowed-hosts", action="append", default=None, dest="allowed_hosts",
                        help="comma-separated Host names the dashboard answers to besides IP addresses, "
                             "localhost and this machine's name (*.example.com for a domain, * for any); "
                             "may be repeated")
    for flag, attr, text in _SWITCHES:
        parser.add_argument(f"--{flag}", dest=attr, action="store_true", default=None,
                            help=f"{text} (env {env_name(flag)}=1)")
    parser.add_argument("--config", default=None,
                        help="a TOML file of options (flag = value); flags and environment variables win over it")
    return parser


#: Options that may be repeated, each value a list in a configuration file (comma-separated in the environment).
_LISTS = ("queues", "webhook", "queue-alert", "allowed-origins", "allowed-hosts", "task-link", "worker-link")
#: Repeatable options whose values may hold commas (URLs): one per line in the environment.
_LINE_LISTS = ("task-link", "worker-link")


def config_environment(path: str) -> dict[str, str]:
    """Read a ``--config`` TOML file of ``flag = value`` lines into the environment variables they stand for.

    Keys are the flags without ``--`` (``max-tasks``; ``max_tasks`` too); a switch takes true or false,
    a repeatable option a list. An unknown key or a value of the wrong kind is a SettingsError.
    """
    data = read_toml(path, "config", SettingsError)
    known = {flag for flag, _, _ in _OPTIONS} | {flag for flag, _, _ in _SWITCHES} | set(_LISTS)
    environment: dict[str, str] = {}
    for key, value in data.items():
        flag = key.replace("_", "-")
        if flag not in known:
            raise SettingsError(f"--config {path}: unknown option {key!r}")
        if flag in _LISTS:
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(item, str) for item in items):
                raise SettingsError(f"--config {path}: {key} takes text or a list of text")
            environment[env_name(flag)] = ("\n" if flag in _LINE_LISTS else ",").join(items)
        elif any(flag == switch for switch, _, _ in _SWITCHES):
            if not isinstance(value, bool):
                raise SettingsError(f"--config {path}: {key} takes true or false")
            environment[env_name(flag)] = "1" if value else ""
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            environment[env_name(flag)] = str(value)
        elif isinstance(value, dict) and flag == "broker-transport-options":
            environment[env_name(flag)] = json.dumps(value)
        else:
            raise SettingsError(f"--config {path}: {key} takes text or a number")
    return environment


def load_settings(argv: Sequence[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from flags, then environment, then ``--config``'s file, then defaults; raise
    SettingsError on a bad value."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(list(argv) if argv is not None else [])
    config = args.config or environ.get(env_name("config"))
    if config:  # the file is the lowest layer: the environment, then the flags, win over it
        environ = {**config_environment(config), **environ}
    values: dict[str, Any] = {}
    for flag, attr, parse in _OPTIONS:
        raw = getattr(args, attr)
        if raw is None:
            raw = environ.get(env_name(flag))
        if raw is None and attr == "broker_url":
            raw = environ.get("CELERY_BROKER_URL")
        if raw is not None:
            values[attr] = parse(raw)
    queues = args.queues or ([environ[ENV_PREFIX + "QUEUES"]] if environ.get(ENV_PREFIX + "QUEUES") else [])
    values["queues"] = _queue_list(queues)
    webhooks = args.webhooks or [u for u in environ.get(env_name("webhook"), "").split(",") if u.strip()]
    values["webhooks"] = tuple(_webhook(u.strip()) for u in webhooks)
    alerts = args.queue_alerts or [a for a in environ.get(env_name("queue-alert"), "").split(",") if a.strip()]
    values["queue_alerts"] = tuple(_queue_alert(a.strip()) for a in alerts)
    hosts = args.allowed_hosts or ([environ[env_name("allowed-hosts")]] if environ.get(env_name("allowed-hosts")) else [])
    values["allowed_hosts"] = tuple(_host_pattern(h) for h in _queue_list(hosts))
    origins = args.allowed_origins or ([environ[env_name("allowed-origins")]]
                                       if environ.get(env_name("allowed-origins")) else [])
    values["allowed_origins"] = tuple(_origin(o) for o in _queue_list(origins))
    for flag, attr, placeholders in (("task-link", "task_links", TASK_PLACEHOLDERS),
                                     ("worker-link", "worker_links", WORKER_PLACEHOLDERS)):
        raw_links = getattr(args, attr) or [line for line in environ.get(env_name(flag), "").split("\n") if line.strip()]
        try:
            values[attr] = tuple(parse_link(raw, flag, placeholders) for raw in raw_links)
        except LinkError as exc:
            raise SettingsError(str(exc)) from None
    for flag, attr, _ in _SWITCHES:
        values[attr] = bool(getattr(args, attr) or environ.get(env_name(flag), "").lower() in ("1", "true", "yes"))
    insecure = values["insecure_no_auth"]
    address = values.get("address", Settings.address)
    if not is_loopback(address) and not insecure and not values.get("auth_file"):
        raise SettingsError(
            f"--address {address}: not a loopback address, and no login is configured: anyone who can reach it "
            f"would read every task's arguments and results. Give users and tokens with --auth-file PATH "
            f"(see ./dashboard.sh auth), or pass --insecure-no-auth to accept this")
    if bool(values.get("certfile")) != bool(values.get("keyfile")):
        raise SettingsError("--certfile and --keyfile go together: give both to serve HTTPS, or neither")
    if values.get("certfile"):
        _check_tls(values["certfile"], values["keyfile"])
    if values.get("message_queue") and not values.get("leader_lock"):
        raise SettingsError("--message-queue carries the leader's alerts to every process: it needs --leader-lock "
                            "(without it, every process would send its own to every page)")
    if values.get("alerts_file"):
        try:
            load_alert_file(values["alerts_file"])  # a bad rule stops start-up with its message
        except RuleError as exc:
            raise SettingsError(str(exc)) from None
    return Settings(**values)


#: The README's options table, one row per option (or pair of options): the flags as written there,
#: the default in words, and what it does. ``options_table()`` renders it (``./dashboard.sh options`` prints
#: it for the README), and a test keeps the two the same and every flag of the parser in it.
OPTION_DOCS: tuple[tuple[str, str, str], ...] = (
    ('`--config`',
     'none',
     'A TOML file of options, below the environment and the flags (see above)'),
    ('`--broker`',
     '`redis://localhost:6379/0`',
     'Broker to watch (`redis://`, `rediss://`, `sentinel://`, `amqp://`, `filesystem://`)'),
    ('`--broker-transport-options`',
     '`{}`',
     'kombu transport options as a JSON object (as `broker_transport_options` in your Celery config)'),
    ('`--event-reader`',
     '`auto`',
     "`auto`: on `redis://` and `rediss://` brokers read the event stream through the Redis fast path (see How it behaves); everywhere else, and with `kombu`, through Celery's own `EventReceiver`"),
    ('`--address`',
     '`127.0.0.1`',
     "Interface to serve on. A non-loopback address (`0.0.0.0`, a LAN address) is refused at start (exit status 2, with a message naming `--auth-file` and `--insecure-no-auth`) unless one of them is given: without a login anyone who could reach it would read every task's arguments and results"),
    ('`--auth-file`',
     'none',
     'Users and API tokens with their roles (see Users, tokens and roles below); with it every page, API call and the live socket need credentials, and the dashboard may serve on any address'),
    ('`--session-hours`',
     '`12`',
     "How long a browser's login lasts"),
    ('`--audit-days`',
     '`90`',
     'Audit log entries are kept at least this long (task retention does not touch them)'),
    ('`--insecure-no-auth`',
     'off',
     'Serve on a non-loopback `--address` without `--auth-file`; every page then shows a red "No authentication" bar, and actions are off'),
    ('`--bulk-limit`',
     '`1000`',
     'Most tasks one bulk action (`POST /api/tasks/bulk`) may touch; a filter matching more is refused'),
    ('`--read-only`',
     'off',
     "Turn every action (revoke, terminate, retry, bulk actions, worker control, queue purge, and the dashboard's own markers and alert silences) off for everyone: the action endpoints answer 403 and the pages show no controls"),
    ('`--port`',
     '`5555`',
     'Port to serve on'),
    ('`--db`',
     '`dashboard.db`',
     'The task history: an SQLite file (created when missing; WAL mode), or a PostgreSQL database, `postgresql://user:pass@host/db` (psycopg; `?options=-csearch_path%3Dname` for a schema other than `public`), that several dashboard processes can share. The demo keeps its own file in its temporary folder unless another is named'),
    ('`--max-tasks-stored`',
     '`1000000`',
     'Tasks kept in the history; the oldest beyond it are pruned'),
    ('`--max-age`',
     '`7d`',
     'Tasks whose last update is older than this are pruned (`7d`, `12h`, `30m` or seconds)'),
    ('`--keep-failed-days`',
     'none',
     'Keep failed tasks this many days instead of `--max-age`'),
    ('`--queues`',
     'none',
     "Queue names to watch besides the workers' own and those tasks are sent to; comma-separated, may be repeated"),
    ('`--demo`',
     'off',
     'Run the self-contained demo cluster'),
    ('`--max-tasks`',
     '`100000`',
     'Tasks held in memory; the least recently updated are evicted'),
    ('`--flush-interval`',
     '`0.25`',
     'Seconds between two live pushes of coalesced changes'),
    ('`--heartbeat-slack`',
     '`2.0`',
     "Seconds added to Celery's `freq * 2` before a silent worker is `lost`"),
    ('`--max-field-chars`',
     '`4096`',
     'Longest args, kwargs, result or exception string kept (longer ones are cut with a visible `…[truncated N chars]`); tracebacks keep 32,768'),
    ('`--reconnect-max`',
     '`10`',
     'Ceiling, in seconds, of the broker reconnect backoff (it starts at 0.5 s and doubles, with ±20 % jitter)'),
    ('`--watchdog-min`',
     '`10`',
     'Seconds without any event (while workers are alive) before the broker is pinged; the real limit is the larger of this and 3 × the largest heartbeat interval'),
    ('`--async-mode`',
     '`eventlet`',
     '`run.py` serves with eventlet; `python -m dashboard` serves the same app with `threading` (no eventlet at all)'),
    ('`--inspect-interval`',
     '`30`',
     'Seconds between two inspections of every worker (new workers and workers back online are inspected at once)'),
    ('`--inspect-timeout`',
     '`1`',
     'Seconds an inspect request waits for replies; a worker that does not answer is shown as "not answering inspect"'),
    ('`--purge-offline-after`',
     '`3600`',
     'Seconds after which an offline or lost worker leaves the main list (it stays in `GET /api/workers?all=1` and on `/workers` under "departed")'),
    ('`--webhook`',
     'none',
     'URL to POST a JSON document to when a worker is lost or comes back; may be repeated (env: comma-separated)'),
    ('`--task-link`',
     'none',
     "`LABEL=URL`: a button on each task page, e.g. `'Logs=https://logs.example/search?q={uuid}'`; may be repeated. Placeholders: `{uuid}`, `{name}`, `{hostname}` (its worker), `{queue}`, `{root_id}`, `{started}` and `{finished}` (epoch milliseconds), each URL-encoded; a link whose value is unknown (not finished yet) is left out. Only `http` and `https` URLs, with no placeholder in the host; anything else stops start-up with a message naming the flag. In the environment, one link per line"),
    ('`--worker-link`',
     'none',
     "`LABEL=URL`: a button on each worker page, its `{hostname}` filled in URL-encoded, e.g. `'Host=https://grafana.example/d/node?var-host={hostname}'`; may be repeated, with the same rules as `--task-link`"),
    ('`--queue-interval`',
     '`1`',
     "Seconds between two samples of every queue's depth"),
    ('`--broker-api`',
     'none',
     'RabbitMQ management API URL (e.g. `http://user:password@rabbit:15672/`), for unacknowledged counts; masked everywhere'),
    ('`--app`',
     'none',
     'Your Celery app, as `module` or `module:attribute`: its configured queues (`task_default_queue`, `task_queues`) are watched, and its `beat_schedule` is shown on `/periodic` (see Periodic tasks below)'),
    ('`--queue-alert`',
     'none',
     '`NAME=DEPTH[:SECONDS]`, e.g. `celery=1000:60`: alert (banner, notification, webhooks) when the queue stays deeper than DEPTH for SECONDS; may be repeated (env: comma-separated)'),
    ('`--log-level`',
     '`INFO`',
     '`DEBUG`, `INFO`, `WARNING` or `ERROR`'),
    ('`--max-event-bytes`',
     '`1048576`',
     'Largest event message accepted, in bytes, measured after decompression (a compressed "bomb" is stopped as soon as it passes this); larger ones are counted as malformed and skipped'),
    ('`--max-workers`',
     '`5000`',
     'Workers tracked; heartbeats of further hostnames are counted in `/api/health` (`limits.workers_ignored`), logged once and shown as a warning banner, never tracked'),
    ('`--max-queues`',
     '`2000`',
     'Queues watched and sampled; further names are counted (`limits.queues_ignored`), logged and shown the same way'),
    ('`--allowed-origins`',
     'none',
     "Origins of other sites (`https://grafana.example.com`) whose pages may open the live socket, e.g. a status page embedding it; comma-separated, may be repeated. They still need credentials when `--auth-file` is set, and they get nothing else: the API keeps taking POSTs from the dashboard's own pages only"),
    ('`--allowed-hosts`',
     'none',
     "Host names the dashboard answers to besides IP addresses, `localhost` and this machine's own name: `dash.example.com`, `*.example.com` for its subdomains, `*` for any name; comma-separated, may be repeated. Needed when users reach it by a DNS name (see Other sites below)"),
    ('`--ping-interval`',
     '`25`',
     'Seconds between two pings of each live page'),
    ('`--ping-timeout`',
     '`20`',
     'Seconds a live page may take to answer a ping before it is dropped (a laptop gone to sleep, say)'),
    ('`--slow-client-timeout`',
     '`30`',
     'Seconds a live page that answers pings but does not read its messages (a slow link) is held back before its connection is closed; it reconnects by itself and starts afresh (see Live pages that fall behind)'),
    ('`--max-connections`',
     '`1000`',
     'HTTP and live connections served at once (`run.py`); further ones wait to be accepted'),
    ('`--metrics-max-task-names`',
     '`500`',
     'Task names counted apart in `/metrics` and the analytics; further names are counted together as `other` (bounds memory and Prometheus label cardinality whatever the cluster sends)'),
    ('`--metrics-no-hostname`',
     'off',
     'Leave the `hostname` label out of the task series of `/metrics` (`celery_task_*`); the worker gauges keep it'),
    ('`--metrics-public`',
     'off',
     "Let `/metrics` answer without credentials when `--auth-file` is set (it carries task names, hostnames and queue names, never arguments or results); otherwise a scraper sends a viewer's token (`authorization` in Prometheus' scrape config)"),
    ('`--behind-proxy`',
     'off',
     "Trust the `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Prefix` headers of one reverse proxy in front (werkzeug's `ProxyFix`): the client's address goes into the log, the audit log and the failed-login limit, behind a proxy that terminates TLS the session cookie gets `Secure`, and a proxy that strips a path prefix may say which in `X-Forwarded-Prefix`. Without it those headers are ignored, since any client could send them"),
    ('`--url-prefix`',
     'none',
     'Serve everything (pages, API, static files, the live socket at `<prefix>/socket.io`) under this path, e.g. `/celery`, for a reverse proxy that passes the path through (see Deploying). `/celery` and `/celery/` both serve the overview; `/` redirects there; any other path outside it is a 404 saying where the dashboard is. Links in alerts and webhooks carry it. A plain path only (no `?`, `#`, `%`, `..`, spaces)'),
    ('`--certfile`, `--keyfile`',
     'none',
     'Serve HTTPS directly with this certificate (PEM, its chain after it) and private key (PEM); the session cookie is then `Secure`. Both or neither; a missing file or a key that does not match its certificate stops start-up with a message naming the flags. Plain HTTP is not served then'),
    ('`--alerts`',
     'none',
     'Alert rules, a TOML file (see Alert rules below); a file that does not parse or a rule that makes no sense stops start-up with a message naming the rule and the field'),
    ('`--alert-interval`',
     '`5`',
     'Seconds between two checks of the alert rules'),
    ('`--stale-after`',
     '`1h`',
     'After a gap, how old an unfinished task that no worker holds and the result backend does not know as finished must be before it is marked lost (`90m`, `2h` or seconds)'),
    ('`--beat-db`',
     'none',
     "django-celery-beat's database, read-only, for `/periodic`: `sqlite:///path/to/db.sqlite3`, `postgresql://user:pass@host/db` (psycopg) or `mysql://user:pass@host/db` (PyMySQL; MariaDB too). Read again every 30 s; sooner while it and `--redbeat-url` answer without error and hold no entry (2 s later, then 4, 8, 16, up to 30)"),
    ('`--redbeat-url`',
     'none',
     "celery-redbeat's Redis, for `/periodic` (its `redbeat_redis_url`); read again every 30 s; sooner while it and `--beat-db` answer without error and hold no entry (2 s later, then 4, 8, 16, up to 30)"),
    ('`--redbeat-key-prefix`',
     '`redbeat:`',
     "celery-redbeat's `redbeat_key_prefix`"),
    ('`--periodic-grace`',
     '10 % of the interval, at least 30',
     "Seconds after a periodic task's expected time within which its run may still come; later, the run is missed"),
    ('`--leader-lock`',
     'none',
     "Redis URL (`redis://host:6379/0`) of the lock that lets several dashboard processes share one `--db` (PostgreSQL): all of them watch the events and serve pages, exactly one of them (the leader) writes the history, stores alerts and sends webhooks, and another takes over when it stops or dies. Without it the process is the only writer"),
    ('`--leader-ttl`',
     '`10`',
     "Seconds the leader lock outlives its holder's last renewal (renewed every third of it): how long writing may pause when the leader dies"),
    ('`--message-queue`',
     'none',
     "With `--leader-lock` (required): a Redis URL (Flask-SocketIO's message queue; its messages are JSON) through which the leader's alerts (worker lost and back, queue backlogs, the alert rules') reach the pages of every process, once each, so that every page shows the same alerts, numbered as they are stored. Without it each process shows the alerts it raises itself"),
    ('`--header-timeout`',
     '`10`',
     "Seconds a client may take to send a request's line and headers, and an idle kept-alive connection may wait for its next request, before it is closed (`run.py`)"),
)


def _meaning(flag: str) -> str:
    """The option's meaning from ``OPTION_DOCS``, as plain text for ``--help`` (argparse's % escaped)."""
    for flags, _, meaning in OPTION_DOCS:
        if f"`--{flag}`" in flags:
            return meaning.replace("`", "").replace("%", "%%")
    return ""


def options_table() -> str:
    """The README's options table, in Markdown."""
    return "\n".join(["| Flag | Default | Meaning |", "|---|---|---|",
                      *(f"| {flags} | {default} | {meaning} |" for flags, default, meaning in OPTION_DOCS)])

