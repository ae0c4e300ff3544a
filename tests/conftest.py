"""Fixtures shared by the test suites: a throw-away redis-server, live clients, and logs on failure.

The integration fixtures start real parts as subprocesses (see ``helpers``)
and stop every one of them in teardown, whatever happened in the test.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard import Dashboard, create_app
from dashboard.settings import Settings
from helpers import REPO_ROOT, LiveClient, Proc, WebhookReceiver, deliver, free_port, start_redis

#: Events recorded from a real eventlet worker (``scripts/record_events.py``), as the readers deliver them.
RECORDED = REPO_ROOT / "tests" / "data" / "redis_eventlet_worker.jsonl"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start the list of processes whose logs go with this test's failure: those running now."""
    Proc.seen = list(Proc.running)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the log tail of every subprocess that ran during a failed test to its report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for proc in list(Proc.seen):
            report.sections.append((f"log of {proc.name} ({proc.log_path})", proc.log_tail()))


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server of this test session on a free port; modules use their own database number."""
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis-session"))
    yield port
    proc.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A database of this test session on the machine's PostgreSQL, dropped at the end; the tests
    that need it are skipped, saying why, when no server is reachable. ``DASHBOARD_TEST_POSTGRES``
    names another server than ``postgresql://postgres@127.0.0.1:5432/postgres`` (trust auth)."""
    psycopg = pytest.importorskip("psycopg")
    server = os.environ.get("DASHBOARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL reachable at {server}: {str(exc).strip()}")
    name = f"dashboard_test_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A ``--db`` URL of an empty schema of its own in the session's PostgreSQL database, dropped afterwards."""
    import psycopg
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_server}?options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def live_client() -> Iterator[Callable[[str], LiveClient]]:
    """Return a factory of connected ``/live`` clients; every one is disconnected in teardown."""
    clients: list[LiveClient] = []

    def connect(url: str) -> LiveClient:
        client = LiveClient(url)
        clients.append(client)
        return client.connect()

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """Where the processes a single test starts write their logs."""
    return tmp_path / "logs"


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A local HTTP server recording the JSON documents POSTed to it."""
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


# -- the app in-process (Flask's tutorial style): no subprocess, no broker ---------------------------

@pytest.fixture
def app(tmp_path: Path) -> Flask:
    """The dashboard built by ``create_app`` in the threading mode, with a temporary history; nothing started."""
    return create_app(Settings(db=str(tmp_path / "dashboard.db"), async_mode="threading"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def dashboard(app: Flask) -> Dashboard:
    return app.extensions["dashboard"]


@pytest.fixture
def feed(dashboard: Dashboard) -> Callable[[list[dict[str, Any]]], None]:
    """Return a fake event source: it hands raw event bodies to the collector as a reader does."""
    return lambda bodies: deliver(dashboard, bodies)


@pytest.fixture
def recorded() -> list[dict[str, Any]]:
    """The events of a real eventlet worker running tasks, with their receive times."""
    return [json.loads(line) for line in RECORDED.read_text().splitlines() if line]
