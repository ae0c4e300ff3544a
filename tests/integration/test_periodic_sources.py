"""Schedules kept outside the app, each with its real package and storage: django-celery-beat's tables
(made by its own migrations and models) in SQLite, PostgreSQL and MariaDB, and celery-redbeat's keys in
Redis written by a real ``celery beat -S redbeat.RedBeatScheduler`` whose runs a real worker executes."""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers import (PYTHON, REPO_ROOT, DashboardProc, Proc, start_dashboard, start_worker, wait_broker_connected,
                     wait_until, wait_worker_online)

pytestmark = pytest.mark.integration

#: What tests/beat_db_setup.py makes, as /api/periodic shows it: name -> (task, schedule, enabled, error?).
EXPECTED = {
    "add every 2 s": ("dashboard.demo.tasks.add", "every 2 seconds", True, False),
    "broken args": ("x.y", "unreadable", True, True),
    "launch": ("ops.launch", "once at 2030-01-01 09:00 UTC", True, False),
    "lights": ("home.lights", "at sunset (48.85, 2.35)", True, False),
    "paused": ("reports.paused", "every 2 seconds", False, False),
    "weekly report": ("reports.weekly", "at 07:30 on Monday (Europe/Berlin)", True, False),
}


def make_beat_db(url: str) -> None:
    """django-celery-beat's migrations and a few entries, through its own models, in another process."""
    done = subprocess.run([PYTHON, "tests/beat_db_setup.py", url], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def check_entries(entries: list[dict[str, Any]]) -> None:
    """``entries`` as /api/periodic lists them."""
    shown = {e["name"]: (e["task"], e["schedule"], e["enabled"], bool(e["error"])) for e in entries}
    assert shown == EXPECTED


def test_django_celery_beat_on_sqlite_through_the_dashboard(redis_port: int, log_dir: Path) -> None:
    path = log_dir / "beat.sqlite3"
    log_dir.mkdir(parents=True, exist_ok=True)
    make_beat_db(f"sqlite:///{path}")
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/4", log_dir, extra_args=(
        "--beat-db", f"sqlite:///{path}"))
    try:
        body = wait_until(lambda: (b := dashboard.get("/api/periodic").json())["entries"] and b, 15,
                          message="the database's entries are not listed")
        assert body["configured"] is True and body["errors"] == []
        check_entries(body["entries"])
        assert {e["source"] for e in body["entries"]} == {"django-celery-beat"}
        weekly = next(e for e in body["entries"] if e["name"] == "weekly report")
        assert weekly["kwargs"] == "{'full': True}" and weekly["status"] == "unknown"
        assert next(e for e in body["entries"] if e["name"] == "broken args")["error"].startswith("JSONDecodeError")
    finally:
        dashboard.stop()


def test_an_unreadable_beat_db_is_said_on_the_page_and_the_rest_goes_on(redis_port: int, log_dir: Path) -> None:
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/4", log_dir, extra_args=(
        "--beat-db", "postgresql://celery:s3cret-pw@127.0.0.1:1/nowhere"))
    try:
        body = wait_until(lambda: (b := dashboard.get("/api/periodic").json())["errors"] and b, 20,
                          message="no error for the unreachable database")
        assert body["entries"] == [] and body["errors"][0].startswith("--beat-db postgresql://celery:****@")
        assert "s3cret-pw" not in dashboard.get("/api/periodic").text
        assert dashboard.health()["status"] == "ok"  # the rest of the dashboard goes on
    finally:
        dashboard.stop()


@pytest.fixture
def server_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on this machine's PostgreSQL or MariaDB, dropped afterwards; skipped when unreachable."""
    kind = request.param
    name = f"test_beat_{uuid.uuid4().hex[:8]}"
    if kind == "postgresql":
        psycopg = pytest.importorskip("psycopg")
        try:
            admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3)
        except psycopg.OperationalError as exc:
            pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {exc}")
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
            admin.close()
    else:
        pymysql = pytest.importorskip("pymysql")
        try:
            admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", connect_timeout=3,
                                    autocommit=True)
        except pymysql.err.OperationalError as exc:
            pytest.skip(f"no MariaDB or MySQL on 127.0.0.1:3306: {exc}")
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        try:
            yield f"mysql://root@127.0.0.1:3306/{name}"
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE {name}")
            admin.close()


@pytest.mark.parametrize("server_database", ["postgresql", "mysql"], indirect=True)
def test_django_celery_beat_on_a_database_server(server_database: str) -> None:
    from dashboard.periodic_sources import read_beat_db
    make_beat_db(server_database)
    check_entries([{"name": e.name, "task": e.task, "schedule": e.words, "enabled": e.enabled, "error": e.error}
                   for e in read_beat_db(server_database, None)])


def test_redbeat_with_a_real_beat_and_worker(redis_port: int, log_dir: Path) -> None:
    import redis as redis_client
    from redbeat import RedBeatSchedulerEntry
    from celery.schedules import crontab

    from dashboard.demo.tasks import app as demo_app
    broker = f"redis://127.0.0.1:{redis_port}/4"
    redbeat_url = f"redis://127.0.0.1:{redis_port}/3"
    redis_client.Redis.from_url(redbeat_url).flushdb()
    demo_app.conf.redbeat_redis_url = redbeat_url
    RedBeatSchedulerEntry("nightly cleanup", "ops.cleanup", crontab(hour=2, minute=0), kwargs={"days": 30},
                          app=demo_app).save()  # a dynamic entry, as an app adds them at run time
    worker = start_worker(broker, "redbeat", log_dir, concurrency=4)
    beat = Proc("beat-redbeat", [PYTHON, "-m", "celery", "-A", "tests.redbeat_app", "beat", "-S",
                                 "redbeat.RedBeatScheduler", "-l", "info"], log_dir,
                env={"CELERY_BROKER_URL": broker, "REDBEAT_URL": redbeat_url})
    dashboard: DashboardProc | None = None
    try:
        dashboard = start_dashboard(broker, log_dir, extra_args=("--redbeat-url", redbeat_url))  # no --app at all
        wait_broker_connected(dashboard)
        wait_worker_online(dashboard, "redbeat@test", worker=worker)

        def ran() -> dict[str, Any] | None:
            entries = {e["name"]: e for e in dashboard.get("/api/periodic").json()["entries"]}
            static = entries.get("static add every 2s")
            return entries if static and static["last_run"] and static["last_run"]["state"] == "SUCCESS" else None
        entries = wait_until(ran, 40, message=lambda: f"no redbeat run seen: {dashboard.get('/api/periodic').text}")
        static, nightly = entries["static add every 2s"], entries["nightly cleanup"]
        assert (static["source"], static["schedule"], static["args"]) == ("redbeat", "every 2 seconds", "(20, 22)")
        assert static["status"] == "ok" and static["last_run"]["matched_by"] == "arguments"
        assert (nightly["task"], nightly["schedule"], nightly["kwargs"]) == ("ops.cleanup", "at 02:00 every day",
                                                                            "{'days': 30}")
    finally:
        for proc in (dashboard, beat, worker):
            if proc is not None:
                proc.end()
        demo_app.conf.redbeat_redis_url = None
