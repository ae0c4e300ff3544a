"""Unit tests of the task stores: schema, writes, every filter, search, paging, retention, recovery.

The tests taking ``store`` or ``make_store`` run against both backends, SQLite and PostgreSQL;
those of SQLite's own file handling (migrations, damage, rescue, statistics) take ``path``."""
from __future__ import annotations

import base64
import contextlib
import itertools
import logging
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from dashboard import create_app
from dashboard import pgstore as pgstore_module
from dashboard import store as store_module
from dashboard.pgstore import PgTaskStore
from dashboard.settings import Settings
from dashboard.store import (MIGRATIONS, SCHEMA_VERSION, HistoryStore, StoreClosed, StoreError, StoreQueryError,
                             TaskStore, open_store)
from helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_790_000_000.0


def task(uuid: str, n: int = 0, **fields: Any) -> dict[str, Any]:
    """Return a finished task's JSON shape received at T0 + n."""
    received = T0 + n
    shape: dict[str, Any] = {
        "uuid": uuid, "name": "billing.charge_card", "state": "SUCCESS", "worker": "celery@w1",
        "queue": "celery", "exchange": "", "routing_key": "celery", "sent": received - 0.01,
        "received": received, "started": received + 0.1, "succeeded": received + 0.5, "failed": None,
        "retried": None, "revoked": None, "rejected": None, "timestamp": received + 0.5, "runtime": 0.4,
        "retries": 0, "args": f"({n}, 'cus_{n:06d}')", "kwargs": "{}", "eta": None, "expires": None,
        "result": "'ok'", "exception": None, "traceback": None, "retry_errors": None, "parent_id": None, "root_id": uuid,
        "children": [], "orphaned": False, "lost": None, "progress": None,
    }
    shape.update(fields)
    return shape


def events_of(shape: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return the sent, received, started and final events of a task shape."""
    uuid, final = shape["uuid"], "task-failed" if shape["state"] == "FAILURE" else "task-succeeded"
    return [
        (uuid, {"type": "task-sent", "timestamp": shape["sent"], "hostname": "gen@web", "name": shape["name"]}),
        (uuid, {"type": "task-received", "timestamp": shape["received"], "hostname": shape["worker"]}),
        (uuid, {"type": "task-started", "timestamp": shape["started"], "hostname": shape["worker"]}),
        (uuid, {"type": final, "timestamp": shape["timestamp"], "hostname": shape["worker"]}),
    ]


@pytest.fixture(autouse=True)
def no_prune_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "PRUNE_PAUSE_SECONDS", 0.0)


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "history.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, path: str) -> Iterator[Callable[..., HistoryStore]]:
    """Return a function opening the history (with ``open_store``'s options) in an SQLite file or a
    PostgreSQL schema of this test; every store opened is closed in teardown."""
    db = path if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened: list[HistoryStore] = []

    def make(**options: Any) -> HistoryStore:
        opened.append(open_store(db, **options))
        return opened[-1]
    yield make
    for each in opened:
        each.close()


@pytest.fixture
def store(make_store: Callable[..., HistoryStore]) -> HistoryStore:
    return make_store()


@pytest.fixture
def sqlite_store(path: str) -> Iterator[TaskStore]:
    opened = TaskStore(path)
    yield opened
    opened.close()


def count_rows(store: HistoryStore, sql: str) -> int:
    """Run a one-number query on the store's own connection, whichever the backend."""
    if isinstance(store, TaskStore):
        return store._conn().execute(sql).fetchone()[0]
    row = store._one(sql)
    assert row is not None
    return int(row[0])


def uuids(result: dict[str, Any]) -> list[str]:
    return [item["uuid"] for item in result["items"]]


# -- schema ---------------------------------------------------------------------------
def test_new_file_gets_the_current_schema_in_wal_mode(sqlite_store: TaskStore, path: str) -> None:
    assert sqlite_store.stats() == {"tasks": 0, "path": path, "schema_version": SCHEMA_VERSION}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"tasks", "events", "tasks_fts", "tasks_state", "tasks_received"} <= names


def test_empty_file_is_a_version_0_database_and_is_migrated(path: str) -> None:
    Path(path).write_bytes(b"")
    with_store = TaskStore(path)
    assert with_store.stats()["schema_version"] == SCHEMA_VERSION
    with_store.close()


def test_older_schema_is_migrated_and_its_rows_indexed_for_search(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:  # a version 1 file: no full-text index yet
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO tasks (uuid, name, state, args, received) VALUES "
                 "('old-1', 'reports.build_pdf', 'SUCCESS', '(7, ''zebra'')', ?)", (T0,))
    conn.close()
    migrated = TaskStore(path)
    assert migrated.stats()["schema_version"] == SCHEMA_VERSION
    assert uuids(migrated.query(q="zebra")) == ["old-1"]
    migrated.close()


def test_a_version_3_history_gets_its_retried_exceptions_indexed(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:3]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO tasks (uuid, name, state, retried, received) VALUES "
                 "('r-1', 'fetch', 'SUCCESS', ?, ?)", (T0 + 1, T0))
    for at, error in ((T0 + 1, "ConnectionError('Timed out\nfetching https://a')"),
                      (T0 + 2, "ConnectionError('Timed out\nfetching https://a')"),
                      (T0 + 3, "HTTPError('502 gateway')")):
        conn.execute("INSERT INTO events (task_id, timestamp, life, type, hostname, body) "
                     "SELECT id, ?, 4, 'task-retried', 'w', json_object('type', 'task-retried', 'exception', ?) "
                     "FROM tasks WHERE uuid = 'r-1'", (at, error))
    conn.close()
    migrated = TaskStore(path)
    try:
        assert migrated.get("r-1")["retry_errors"] == ("ConnectionError('Timed out fetching https://a')\n"
                                                      "HTTPError('502 gateway')")
        assert uuids(migrated.query(q="timed out")) == uuids(migrated.query(q="gateway")) == ["r-1"]
        # Events written whole before ``refs`` read back as written, before and after their row changes.
        for name in ("fetch", "fetch_again"):
            if name != "fetch":
                migrated.write_batch([task("r-1", 0, name=name)], [])
            assert [(e["type"], e["exception"]) for e in migrated.get("r-1")["events"]] == [
                ("task-retried", "ConnectionError('Timed out\nfetching https://a')"),
                ("task-retried", "ConnectionError('Timed out\nfetching https://a')"),
                ("task-retried", "HTTPError('502 gateway')")]
    finally:
        migrated.close()


def test_a_schema_newer_than_the_code_is_refused_and_left_alone(path: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer"):
        TaskStore(path)
    assert os.path.exists(path) and not list(Path(path).parent.glob("*.corrupt-*"))


def test_garbage_file_is_moved_aside_and_a_fresh_store_created(
        path: str, caplog: pytest.LogCaptureFixture) -> None:
    Path(path).write_bytes(b"this is not a database, just bytes " * 200)
    with caplog.at_level(logging.WARNING, logger="dashboard.store"):
        fresh = TaskStore(path)
    moved = sorted(str(p) for p in Path(path).parent.glob("history.db.corrupt-*"))
    assert len(moved) == 1
    assert Path(moved[0]).read_bytes().startswith(b"this is not a database")
    assert fresh.stats()["schema_version"] == SCHEMA_VERSION
    fresh.write_batch([task("a")], [])
    assert fresh.get("a") is not None
    fresh.close()
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert path in record.getMessage() and moved[0] in record.getMessage()


def test_a_damaged_page_fails_quick_check_and_is_moved_aside(
        path: str, caplog: pytest.LogCaptureFixture) -> None:
    first = TaskStore(path)
    first.write_batch([task(f"t{n}", n, args="x" * 3000) for n in range(60)], [])
    first.close()
    data = bytearray(Path(path).read_bytes())
    page = 4096
    data[page * 3:page * 3 + 300] = b"\xff" * 300  # scribble over a b-tree page, keep the header intact
    Path(path).write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="dashboard.store"):
        fresh = TaskStore(path)
    rescued = fresh.stats()["tasks"]  # the task rows still readable (test_store_rescue.py)
    assert 0 < rescued <= 60
    assert list(Path(path).parent.glob("history.db.corrupt-*"))
    assert any("moved it to" in r.getMessage() for r in caplog.records)
    assert any(f"rescued {rescued} tasks" in r.getMessage() for r in caplog.records)
    fresh.close()


def test_large_files_are_checked_in_the_background_after_an_unclean_shutdown(
        path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(store_module, "QUICK_CHECK_MAX_BYTES", 0)  # every file counts as large
    first = TaskStore(path)
    first.write_batch([task(f"t{n}", n, args="x" * 3000) for n in range(60)], [])
    first.close()
    data = bytearray(Path(path).read_bytes())
    data[4096 * 3:4096 * 3 + 300] = b"\xff" * 300
    Path(path).write_bytes(bytes(data))
    clean = TaskStore(path)  # closed cleanly last time: opened without reading every page, no check due
    assert clean.check_pending is False
    clean.close()
    assert not list(Path(path).parent.glob("history.db.corrupt-*"))
    Path(path + "-wal").write_bytes(b"")  # as a crash leaves it
    crashed = TaskStore(path)  # opens at once: the check is left to check_integrity
    assert crashed.check_pending is True and crashed.integrity is None
    assert not list(Path(path).parent.glob("history.db.corrupt-*"))
    with caplog.at_level(logging.ERROR, logger="dashboard.store"):
        verdict = crashed.check_integrity()
    assert verdict != "ok" and crashed.integrity == verdict and crashed.check_pending is False
    assert Path(path + ".damaged").read_text().strip() == verdict
    assert any("failed its integrity check" in r.getMessage() for r in caplog.records)
    crashed.close()
    again = TaskStore(path)  # the mark makes this open check in full: moved aside, readable tasks rescued
    [moved] = Path(path).parent.glob("history.db.corrupt-*[0-9]")
    assert Path(str(moved) + ".damaged").exists() and not Path(path + ".damaged").exists()
    assert 0 < again.stats()["tasks"] <= 60
    again.close()


def test_a_sound_file_passes_the_background_check_and_a_stale_mark_is_cleared(
        path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "QUICK_CHECK_MAX_BYTES", 0)
    first = TaskStore(path)
    first.write_batch([task("a", 1)], [])
    first.close()
    Path(path + "-wal").write_bytes(b"")
    crashed = TaskStore(path)
    assert crashed.check_integrity() == "ok" and crashed.integrity == "ok"
    assert not Path(path + ".damaged").exists()
    crashed.close()
    Path(path + ".damaged").write_text("an earlier verdict\n")  # checked in full on open, and it passes
    marked = TaskStore(path)
    assert marked.get("a") is not None and not Path(path + ".damaged").exists()
    assert not list(Path(path).parent.glob("history.db.corrupt-*"))
    marked.close()


def test_closing_the_store_interrupts_a_running_check(path: str) -> None:
    store = TaskStore(path)
    store.close()
    assert store.check_integrity() == "interrupted" and store.integrity is None


# -- writes -----------------------------------------------------------------------------
def test_batch_writes_are_idempotent_and_upsert_the_latest_shape(store: TaskStore) -> None:
    shape = task("a", 1, state="STARTED", succeeded=None, runtime=None, result=None)
    store.write_batch([shape], events_of(shape)[:3])
    store.write_batch([shape], events_of(shape)[:3])
    done = task("a", 1)
    store.write_batch([done], events_of(done))
    store.write_batch([done], events_of(done))
    detail = store.get("a")
    assert detail is not None
    assert detail["state"] == "SUCCESS" and detail["runtime"] == 0.4
    assert [e["type"] for e in detail["events"]] == [
        "task-sent", "task-received", "task-started", "task-succeeded"]
    assert store.stats()["tasks"] == 1
    assert store.query(q="ok")["total"] == 1  # the FTS row followed the update, no stale duplicate


def test_round_trip_keeps_the_task_shape(store: TaskStore) -> None:
    shape = task("a", 1, orphaned=True, progress={"current": 3, "total": 10}, eta="2026-01-01T00:00:00",
                 kwargs="{'x': 1}")
    store.write_batch([shape], [])
    detail = store.get("a")
    assert detail is not None
    assert set(detail) == {*shape, "events"}
    assert {k: v for k, v in detail.items() if k != "events"} == shape


def test_an_event_of_a_task_not_in_the_batch_is_kept_under_a_placeholder(store: TaskStore) -> None:
    store.write_batch([], [("lone", {"type": "task-revoked", "timestamp": T0, "hostname": "w"})])
    detail = store.get("lone")
    assert detail is not None and detail["state"] == "PENDING"
    assert detail["events"] == [{"type": "task-revoked", "timestamp": T0, "hostname": "w"}]


# -- queries ----------------------------------------------------------------------------
@pytest.fixture
def filled(store: TaskStore) -> TaskStore:
    shapes = [
        task("s1", 1),
        task("f1", 2, state="FAILURE", succeeded=None, failed=T0 + 3, result=None,
             exception="ValueError('card declined')", traceback="Traceback ...", worker="celery@w2"),
        task("s2", 3, name="emails.send_welcome", queue="high_priority", runtime=2.5),
        task("r1", 4, state="RECEIVED", received=T0 + 4, started=None, succeeded=None, runtime=None,
             timestamp=T0 + 4, result=None, worker="celery@w2"),
        task("p1", 5, sent=T0 + 5, received=None, started=None, succeeded=None, state="PENDING",
             runtime=None, worker=None, timestamp=T0 + 5, result=None, kwargs="{'note': 'AND (x) \"y\" *'}"),
    ]
    store.write_batch(shapes, [e for s in shapes for e in events_of(s)])
    return store


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, ["p1", "r1", "s2", "f1", "s1"]),
    ({"states": {"FAILURE"}}, ["f1"]),
    ({"states": {"SUCCESS", "RECEIVED"}}, ["r1", "s2", "s1"]),
    ({"name": "emails.send_welcome"}, ["s2"]),
    ({"worker": "celery@w2"}, ["r1", "f1"]),
    ({"queue": "high_priority"}, ["s2"]),
    ({"since": T0 + 2, "until": T0 + 4}, ["r1", "s2", "f1"]),
    ({"since": T0 + 4.9}, ["p1"]),  # received_sort falls back to sent
    ({"since": T0 + 1.05, "until": T0 + 2.2, "time_field": "started"}, ["f1", "s1"]),
    ({"since": T0 + 3, "time_field": "finished"}, ["s2", "f1"]),
    ({"states": {"SUCCESS"}, "worker": "celery@w1", "queue": "celery"}, ["s1"]),
    ({"sort": "runtime"}, ["s2", "f1", "s1", "p1", "r1"]),  # runtime-less tasks last; ties newest stored first
    ({"sort": "runtime", "descending": False}, ["s1", "f1", "s2", "r1", "p1"]),  # shortest first; unfinished last
    ({"sort": "name", "descending": False}, ["s1", "f1", "r1", "p1", "s2"]),  # name ties: by received time
    ({"sort": "timestamp"}, ["p1", "r1", "s2", "f1", "s1"]),
])
def test_filters_and_sorts(filled: TaskStore, kwargs: dict[str, Any], expected: list[str]) -> None:
    result = filled.query(**kwargs)
    assert uuids(result) == expected
    assert result["total"] >= len(expected) and result["total_is_estimate"] is False


@pytest.mark.parametrize(("q", "expected"), [
    ("declined", {"f1"}),
    ("DECL", {"f1"}),  # a prefix, case-insensitive
    ("valueerror declined", {"f1"}),  # words ANDed
    ("valueerror welcome", set()),
    ("cus_000003", {"s2"}),  # punctuation inside a word: adjacent tokens
    ("emails", {"s2"}),  # the task name is searched too
    ('"', {"p1", "r1", "s2", "f1", "s1"}),  # no letter or digit: no text filter
    ('AND', {"p1"}),
    ('(x)', {"p1"}),
    ('"y" *', {"p1"}),
    ('NEAR( OR NOT', set()),
    ('"unterminated', set()),
    ('x* ^y -z :w', set()),
])
def test_text_search_treats_input_as_plain_words(filled: TaskStore, q: str, expected: set[str]) -> None:
    assert set(uuids(filled.query(q=q))) == expected


def test_uuid_fragment_and_text_matching_the_same_task_appear_once(store: TaskStore) -> None:
    store.write_batch([task("abcd1234-0000", 1, args="('abcd1234',)"),
                       task("ffff", 2, args="('abcd1234x',)")], [])
    result = store.query(q="abcd1234")
    assert sorted(uuids(result)) == ["abcd1234-0000", "ffff"] and result["total"] == 2


def test_common_words_walk_the_sort_index_and_estimate_the_total(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = sqlite_store
    monkeypatch.setattr(store_module, "FTS_DRIVEN_MAX", 5)
    monkeypatch.setattr(store_module, "EXACT_TOTAL_CAP", 20)
    shapes = [task(f"t{n:03d}", n, args="('common',)" if n % 3 else "('rare',)") for n in range(120)]
    store.write_batch(shapes, [])
    expected = [s["uuid"] for s in reversed(shapes) if "common" in s["args"]]
    seen: list[str] = []
    cursor = None
    while True:
        result = store.query(q="common", limit=7, cursor=cursor)
        seen.extend(uuids(result))
        cursor = result["next"]
        if cursor is None:
            break
    assert seen == expected
    first = store.query(q="common", limit=7)
    assert first["total_is_estimate"] is True and 60 <= first["total"] <= 100
    everything = store.query(q="common", limit=100)
    assert everything["total"] == 80 and everything["total_is_estimate"] is False


def test_a_walk_whose_matches_thin_out_ends_in_a_few_steps(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A word in the newest tasks only (an incident's error): the page is one match short after the first
    chunk, and the rest of the walk, which finds none, grows its chunks rather than walking a page at a time."""
    store = sqlite_store
    monkeypatch.setattr(store_module, "FTS_DRIVEN_MAX", 5)
    store.write_batch([task(f"t{n:04d}", n, args="('timeout',)" if n >= 2950 else "('ok',)") for n in range(3000)], [])
    reads: list[str] = []
    store._reader().set_trace_callback(lambda sql: reads.append(sql) if sql.startswith("SELECT tasks.id") else None)
    result = store.query(q="timeout", limit=50)
    assert len(uuids(result)) == 50 and result["next"] is None and result["total"] == 50
    assert len(reads) <= 8, len(reads)


@pytest.mark.parametrize("probe_factor", [0, 10 ** 9])  # every chunk probed id by id / over its id range
@pytest.mark.parametrize(("sort", "descending"), [("runtime", True), ("runtime", False), ("name", False)])
@pytest.mark.parametrize("q", ["common", "abc"])  # "abc": a word and a uuid prefix at once
def test_walking_a_common_word_gives_the_pages_the_text_index_gives(
        store: TaskStore, monkeypatch: pytest.MonkeyPatch, probe_factor: int, sort: str, descending: bool,
        q: str) -> None:
    shapes = [task(f"{'abc' if n % 7 == 0 else 'fed'}{n:03d}", n, runtime=(n * 37) % 11 / 10 if n % 5 else None,
                   name=f"app.t{n % 4}", args="('common', 'abc')" if n % 3 else "('rare',)") for n in range(150)]
    store.write_batch(shapes, [])

    def pages() -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            result = store.query(q=q, sort=sort, descending=descending, limit=7, cursor=cursor)
            seen.extend(uuids(result))
            cursor = result["next"]
            if cursor is None:
                return seen
    driven = pages()  # few matches: read from the text index, then sorted
    monkeypatch.setattr(store_module, "FTS_DRIVEN_MAX", 5)
    monkeypatch.setattr(store_module, "PROBE_FACTOR", probe_factor)
    assert pages() == driven and len(driven) > 90


def test_large_totals_are_estimated_from_a_sample(sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = sqlite_store
    monkeypatch.setattr(store_module, "EXACT_TOTAL_CAP", 50)
    monkeypatch.setattr(store_module, "ESTIMATE_SAMPLES", 200)
    store.write_batch([task(f"t{n:04d}", n, state="FAILURE" if n % 10 == 0 else "SUCCESS")
                       for n in range(2000)], [])
    everything = store.query(limit=5)
    assert everything["total_is_estimate"] is True and everything["total"] == 2000
    failed = store.query(states={"FAILURE"}, limit=5)  # periodic ids must not alias with the probes
    assert failed["total_is_estimate"] is True and 120 <= failed["total"] <= 300
    small = store.query(states={"FAILURE"}, until=T0 + 300, limit=5)
    assert small == {**small, "total": 31, "total_is_estimate": False}


def test_an_estimate_reuses_its_recent_probes_scaled_to_the_ids_of_the_moment(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 2,000 probes were most of an unfiltered list page's work (2-3 ms over 100,000 tasks): a filter's
    share of the id range is reused for a few seconds, times the id range of the moment, and neither the
    probes nor the count up to the cap run again."""
    store = sqlite_store
    monkeypatch.setattr(store_module, "EXACT_TOTAL_CAP", 50)
    monkeypatch.setattr(store_module, "ESTIMATE_SAMPLES", 200)
    store.write_batch([task(f"t{n:04d}", n, state="FAILURE" if n % 10 == 0 else "SUCCESS")
                       for n in range(1000)], [])
    ran: list[str] = []  # "probes" and "count" (up to the cap), in order

    def trace(sql: str) -> None:
        ran.extend(kind for kind, part in (("probes", "json_each"), ("count", "count(*) FROM (SELECT 1"))
                   if part in sql)
    store._reader().set_trace_callback(trace)
    assert store.query(limit=5)["total"] == 1000 and ran == ["count", "probes"]
    failed = store.query(states={"FAILURE"}, limit=5)["total"]  # one filter's probes are not another's
    assert 60 <= failed <= 150 and ran == ["count", "probes"] * 2
    ran.clear()
    store.write_batch([task(f"u{n:04d}", 1000 + n) for n in range(1000)], [])
    everything = store.query(limit=5)  # 200 of 200 probes matched a moment ago: 2,000 ids now
    assert everything["total"] == 2000 and everything["total_is_estimate"] is True and ran == []
    # About 20 probes matched: too few to skip the count up to the cap, but the probes are not run again.
    assert store.query(states={"FAILURE"}, limit=5)["total"] == store_module.round_estimate(failed * 2, 51)
    assert ran == ["count"]
    monkeypatch.setattr(store_module, "ESTIMATE_REUSE_SECONDS", -1.0)  # every estimate is out of date
    ran.clear()
    assert store.query(limit=5)["total"] == 2000 and ran == ["count", "probes"]


def test_a_filtered_total_far_past_the_cap_is_estimated_without_counting_to_the_cap(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting up to the cap reads that many rows (tens of ms over a million tasks with two filters) only to
    learn there are more: past a short count, a sure estimate skips it and gives the total the count would
    have led to; a selective filter's total is still counted exactly, and cheaply."""
    store = sqlite_store
    monkeypatch.setattr(store_module, "EXACT_TOTAL_CAP", 50)
    monkeypatch.setattr(store_module, "COUNT_FIRST", 10)
    monkeypatch.setattr(store_module, "ESTIMATE_SAMPLES", 400)
    store.write_batch([task(f"t{n:04d}", n, state="FAILURE" if n % 2 == 0 else "SUCCESS")
                       for n in range(2000)], [])
    counted: list[int] = []  # the cap of each count run

    def trace(sql: str) -> None:
        if "count(*) FROM (SELECT 1 FROM tasks" in sql:
            counted.append(int(sql.rsplit("LIMIT", 1)[1].strip(" )")))
    store._reader().set_trace_callback(trace)
    failed = store.query(states={"FAILURE"}, limit=5)  # 1,000: 200 probes of 400 match, 20 times the cap
    assert failed["total_is_estimate"] is True and 800 <= failed["total"] <= 1200
    assert counted == [11]  # never up to the cap
    monkeypatch.setattr(store_module, "ESTIMATE_MIN_HITS", 10 ** 6)  # never sure: counted to the cap
    assert store.query(states={"FAILURE"}, limit=5)["total"] == failed["total"] and counted[1:] == [11, 51]
    monkeypatch.setattr(store_module, "ESTIMATE_MIN_HITS", 40)
    counted.clear()
    few = store.query(states={"FAILURE"}, until=T0 + 150, limit=5)  # 76 of them: near the cap, so counted
    assert few["total_is_estimate"] is True and counted == [11, 51]
    counted.clear()
    exact = store.query(states={"FAILURE"}, until=T0 + 60, limit=5)  # 31: exact
    assert exact == {**exact, "total": 31, "total_is_estimate": False} and counted == [11, 51]
    counted.clear()
    selective = store.query(states={"FAILURE"}, until=T0 + 10, limit=5)  # 6: the short count says it all
    assert selective == {**selective, "total": 6, "total_is_estimate": False} and counted == [11]


def test_a_walked_words_total_scales_a_sampled_count_of_the_other_filters(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A common word with other filters: its total is the share of matches among the rows walked times the
    rows passing the other filters, an estimate either way. That count only scales it, so past the short
    count it is sampled, never counted up to the cap (the failures of the smallest of three queues over a
    million tasks: 100,000 rows read)."""
    store = sqlite_store
    monkeypatch.setattr(store_module, "FTS_DRIVEN_MAX", 5)
    monkeypatch.setattr(store_module, "EXACT_TOTAL_CAP", 2000)
    monkeypatch.setattr(store_module, "COUNT_FIRST", 10)
    monkeypatch.setattr(store_module, "ESTIMATE_SAMPLES", 400)
    store.write_batch([task(f"t{n:04d}", n, state="FAILURE" if n % 2 == 0 else "SUCCESS",
                            args="('declined',)" if n % 4 == 0 else "('ok',)") for n in range(2000)], [])
    counted: list[int] = []  # the cap of each count run

    def trace(sql: str) -> None:
        if "count(*) FROM (SELECT 1 FROM tasks" in sql:
            counted.append(int(sql.rsplit("LIMIT", 1)[1].strip(" )")))
    store._reader().set_trace_callback(trace)
    declined = store.query(states={"FAILURE"}, q="declined", limit=5)  # 500 of the 1,000 failures
    assert declined["total_is_estimate"] is True and 350 <= declined["total"] <= 650
    assert counted == [11] and len(uuids(declined)) == 5


def test_totals_past_the_cap_are_flagged_as_estimates(store: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "EXACT_TOTAL_CAP", 50)
    store.write_batch([task(f"t{n:04d}", n, state="FAILURE" if n % 10 == 0 else "SUCCESS")
                       for n in range(500)], [])
    store.analyze(force=True)
    everything = store.query(limit=5)
    assert everything["total_is_estimate"] is True and 51 <= everything["total"] <= 1000
    small = store.query(states={"FAILURE"}, until=T0 + 300, limit=5)
    assert small == {**small, "total": 31, "total_is_estimate": False}


@pytest.mark.parametrize("sort", ["received", "runtime", "name", "timestamp"])
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("q", [None, "cus"])
@pytest.mark.parametrize("filters", [{}, {"name": "b.y", "worker": "celery@w2"}])  # the keyset hint's case
def test_cursor_paging_returns_every_row_once_despite_ties(
        store: TaskStore, sort: str, descending: bool, q: str | None, filters: dict[str, Any]) -> None:
    # Ties everywhere: 3 received times, 2 runtimes, 2 names, some runtimes missing.
    shapes = [task(f"t{n:02d}", n % 3, runtime=None if n % 7 == 0 else float(n % 2),
                   name=("a.x", "b.y")[n % 2], worker=("celery@w1", "celery@w2")[n % 5 < 3],
                   timestamp=T0 + n % 4) for n in range(40)]
    store.write_batch(shapes, [])
    whole = uuids(store.query(sort=sort, descending=descending, limit=100, q=q, **filters))
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        result = store.query(sort=sort, descending=descending, limit=6, cursor=cursor, q=q, **filters)
        seen.extend(uuids(result))
        assert len(result["items"]) <= 6 and result["total"] == len(whole)
        cursor = result["next"]
        if cursor is None:
            break
    assert seen == whole and len(seen) == len(set(seen))
    expected = [s["uuid"] for s in shapes if all(s[k] == v for k, v in filters.items())]
    assert sorted(seen) == sorted(expected)


@pytest.mark.parametrize("sort", ["runtime", "name"])
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("q", [None, "cus"])  # no word, or a word in every task
@pytest.mark.parametrize("walk_seconds", [store_module.SORT_WALK_SECONDS, -1.0])  # -1: each walk gives up at once
def test_a_common_filter_sorted_by_runtime_or_name_walks_the_sort_index(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch, sort: str, descending: bool, q: str | None,
        walk_seconds: float) -> None:
    store = sqlite_store
    monkeypatch.setattr(store_module, "EXACT_TOTAL_CAP", 20)  # so that half of 400 tasks is a certain estimate
    monkeypatch.setattr(store_module, "FTS_DRIVEN_MAX", 10)  # and the word's 400 matches are common
    monkeypatch.setattr(store_module, "FTS_SORTED_MAX", 100)
    monkeypatch.setattr(store_module, "SORT_WALK_SECONDS", walk_seconds)
    monkeypatch.setattr(store_module, "SORT_WALK_CHECK_STEPS", 10)  # pages of a few rows take few steps
    walks: list[str] = []
    time_limit = store_module._time_limit

    @contextlib.contextmanager
    def spied(conn: sqlite3.Connection, seconds: float) -> Iterator[None]:
        try:
            with time_limit(conn, seconds):
                yield
        except store_module._TookTooLong:
            walks.append("given up")
            raise
        walks.append("walked")
    monkeypatch.setattr(store_module, "_time_limit", spied)
    # Ties everywhere: 4 runtimes and some missing, 3 names, 10 received times.
    store.write_batch([task(f"t{n:03d}", n % 10, runtime=None if n % 9 == 0 else float(n % 4),
                            name=("a.x", "b.y", "c.z")[n % 3], worker=("celery@w1", "celery@w2")[n % 2])
                       for n in range(400)], [])
    columns = store_module.SORT_COLUMNS[sort] if descending else store_module.ASCENDING_SORT_COLUMNS.get(
        sort, store_module.SORT_COLUMNS[sort])
    direction = "DESC" if descending else "ASC"
    whole = [row[0] for row in store._conn().execute(
        f"SELECT uuid FROM tasks WHERE worker = 'celery@w2' "
        f"ORDER BY {', '.join(f'{c} {direction}' for c in (*columns, 'id'))}")]
    seen: list[str] = []
    cursor = None
    # Shortest first: the pages that start among the tasks without a runtime, which no walk reads.
    rest = {row[0] for row in store._conn().execute("SELECT uuid FROM tasks WHERE runtime IS NULL")}
    in_rest = 0
    for _ in range(40):
        result = store.query(worker="celery@w2", q=q, sort=sort, descending=descending, limit=7, cursor=cursor)
        in_rest += sort == "runtime" and not descending and bool(seen) and seen[-1] in rest
        seen.extend(uuids(result))
        cursor = result["next"]
        if cursor is None:
            break
    assert seen == whole and len(whole) == 200
    assert result["total_is_estimate"] is True and 150 <= result["total"] <= 250
    # Every page walked the index, or gave the walk up and sorted.
    assert walks == ["walked" if walk_seconds > 0 else "given up"] * (29 - in_rest)


@pytest.mark.parametrize("word, window, walks", [
    ("declined", False, False),  # in 60 of the 400 tasks: read those rather than sort the worker's 200
    ("cus", False, True),  # in every task: walked
    ("declined", True, True),  # the worker's 40 tasks of one second are fewer, and checked over their id range
])
def test_a_word_rarer_than_the_filtered_rows_drives_a_sort_other_than_by_time(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch, word: str, window: bool, walks: bool) -> None:
    store = sqlite_store
    monkeypatch.setattr(store_module, "FTS_DRIVEN_MAX", 10)
    monkeypatch.setattr(store_module, "FTS_SORTED_MAX", 100)
    walked: list[int] = []
    walk = TaskStore._walk_common

    def spied(self: TaskStore, *args: Any, **kwargs: Any) -> Any:
        walked.append(1)
        return walk(self, *args, **kwargs)
    monkeypatch.setattr(TaskStore, "_walk_common", spied)
    store.write_batch([task(f"t{n:03d}", n % 10, runtime=float(n % 4), worker=("celery@w1", "celery@w2")[n % 2],
                            exception="CardError('card declined')" if n % 20 < 3 else None)
                       for n in range(400)], [])
    bounds = {"since": T0 + 1, "until": T0 + 1.5} if window else {}
    whole = [row[0] for row in store._conn().execute(
        "SELECT uuid FROM tasks WHERE worker = 'celery@w2' AND received_sort BETWEEN ? AND ? AND id IN "
        "(SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ?) ORDER BY runtime_sort DESC, id DESC",
        (bounds.get("since", 0), bounds.get("until", T0 + 100), f'"{word}"*'))]
    seen: list[str] = []
    cursor = None
    for _ in range(40):
        result = store.query(worker="celery@w2", q=word, sort="runtime", limit=7, cursor=cursor, **bounds)
        seen.extend(uuids(result))
        if not walks:
            assert result == {**result, "total": len(whole), "total_is_estimate": False}
        cursor = result["next"]
        if cursor is None:
            break
    assert seen == whole and len(whole) == {"declined": 20, "cus": 200}[word]
    assert bool(walked) is walks


def test_query_statistics_are_taken_when_the_history_doubles_or_halves(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = sqlite_store
    monkeypatch.setattr(store_module, "ANALYZE_MIN_TASKS", 10)
    store.write_batch([task(f"a{n}", n) for n in range(5)], [])
    assert store.analyze() is False  # too few to matter
    store.write_batch([task(f"b{n}", n) for n in range(15)], [])
    assert store.analyze() is True and store.analyze() is False
    store.write_batch([task(f"c{n}", n) for n in range(25)], [])  # 45 > 2 x 20
    assert store.analyze() is True
    store._conn().execute("ANALYZE tasks")
    whole = sorted(store._conn().execute("SELECT idx, stat FROM sqlite_stat1").fetchall())
    indexes = [row[0] for row in store._conn().execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' ORDER BY name")]
    store._conn().execute("DELETE FROM sqlite_stat1")
    # One index per transaction (so writes wait for one index at a time), on the writing connection: another
    # connection writing sqlite_stat1 would have SQLite empty the writer's whole page cache, and the C heap
    # grew by the pages freed and allocated anew. The same statistics as ANALYZE tasks in one go.
    statements: list[str] = []
    assert store._writer is not None
    store._writer.set_trace_callback(statements.append)
    opened: list[Any] = []
    connect = sqlite3.connect

    def counted(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(args)
        return connect(*args, **kwargs)
    monkeypatch.setattr(store_module.sqlite3, "connect", counted)
    pauses: list[float] = []
    monkeypatch.setattr(store_module.time, "sleep", pauses.append)
    assert store.analyze(force=True) is True
    assert pauses == [store_module.PRUNE_PAUSE_SECONDS] * (len(indexes) - 1)  # the history's writes go in between
    store._writer.set_trace_callback(None)
    statements = [sql for sql in statements if not sql.startswith("--")]  # SQLite's own reload of the statistics
    assert statements == [sql for index in indexes for sql in ("BEGIN IMMEDIATE", f'ANALYZE "{index}"', "COMMIT")]
    assert len(indexes) == 10 and opened == []
    assert sorted(store._conn().execute("SELECT idx, stat FROM sqlite_stat1").fetchall()) == whole


def test_the_stop_ends_a_statistics_pass_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The dashboard stops between two indexes' passes: the store's close waits for the pass, which ends at
    its next call with StoreClosed, before any connection closes; the history logs it as no failure."""
    app = create_app(Settings(db=str(tmp_path / "h.db"), async_mode="threading"))
    dashboard = app.extensions["dashboard"]
    store = dashboard.store
    monkeypatch.setattr(store_module, "ANALYZE_MIN_TASKS", 10)
    store.write_batch([task(f"a{n}", n) for n in range(20)], [])
    paused, closed = threading.Event(), threading.Event()
    worker = threading.Thread(target=dashboard.history.analyze)
    sleep = store_module.time.sleep

    def pause(seconds: float) -> None:  # the pass's pause between two indexes
        if threading.current_thread() is not worker:
            return sleep(seconds)
        paused.set()
        closed.wait(5)
    monkeypatch.setattr(store_module.time, "sleep", pause)
    with caplog.at_level(logging.DEBUG, logger="dashboard"):
        worker.start()
        assert paused.wait(5)
        closer = threading.Thread(target=store.close)
        closer.start()
        wait_until(lambda: store._closed, 5)
        assert closer.is_alive() and store._writer is not None  # close() waits for the pass
        closed.set()  # the pause ends; the pass's next index meets the closed store
        worker.join(5)
        closer.join(5)
    assert not worker.is_alive() and not closer.is_alive() and store._connections == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert dashboard.collector.internal_errors == 0
    with pytest.raises(StoreClosed):
        store.analyze(force=True)



def test_ids_starting_with_some_characters(store: HistoryStore) -> None:
    ids = ["ab12-0001", "ab12-0002", "ab13-0003", "zz"]
    store.write_batch([task(uuid, n) for n, uuid in enumerate(ids)], [])
    assert store.uuids_starting("ab12", 5) == ["ab12-0001", "ab12-0002"]
    assert store.uuids_starting("ab1", 2) == ["ab12-0001", "ab12-0002"]
    assert store.uuids_starting("ab13-0003", 2) == ["ab13-0003"]
    assert store.uuids_starting("ac", 2) == [] and store.uuids_starting("a%", 2) == []


def test_a_connection_opened_while_the_store_closes_is_closed_too(store: HistoryStore,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread opens its first connection just as the dashboard stops: close() has gone over the open
    connections before this one was added, so the thread closes it itself and gets StoreClosed."""
    module = store_module.sqlite3 if isinstance(store, TaskStore) else pgstore_module.psycopg
    connect = module.connect
    opened: list[Any] = []

    def closing_meanwhile(*args: Any, **kwargs: Any) -> Any:
        opened.append(connect(*args, **kwargs))
        store.close()  # the stop runs between the connection's opening and its being listed
        return opened[-1]
    monkeypatch.setattr(module, "connect", closing_meanwhile)
    raised: list[BaseException] = []

    def first_use() -> None:
        try:
            store._conn()
        except BaseException as exc:
            raised.append(exc)
    thread = threading.Thread(target=first_use)
    thread.start()
    thread.join(10)
    assert [type(exc) for exc in raised] == [StoreClosed] and len(opened) == 1
    if isinstance(store, TaskStore):
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            opened[0].execute("SELECT 1")
    else:
        assert opened[0].closed

def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "%%%",  # not base64
    b64(b"not json"),
    b64(b"{}"),  # no keys
    b64(b"[]"),
    b64(b'{"s":"received","d":true,"v":["x"],"i":1}'),  # a text value for a time sort
    b64(b'{"s":"received","d":true,"v":[1.5],"i":"1"}'),  # a text row id
    b64(b'{"s":"name","d":true,"v":["a",1],"i":1}'),  # another sort's cursor
])
def test_malformed_cursor_is_a_query_error(filled: TaskStore, cursor: str) -> None:
    with pytest.raises(StoreQueryError, match="cursor"):
        filled.query(cursor=cursor)


def test_bad_sort_time_field_and_limit_are_query_errors(store: TaskStore) -> None:
    for kwargs in ({"sort": "size"}, {"time_field": "eta"}, {"limit": 0}):
        with pytest.raises(StoreQueryError) as info:
            store.query(**kwargs)
        assert isinstance(info.value, ValueError) and next(iter(kwargs)) in str(info.value)


def test_get_returns_events_in_timeline_order_and_children(store: TaskStore) -> None:
    parent = task("parent", 1)
    kids = [task("kid-b", 3, parent_id="parent"), task("kid-a", 2, parent_id="parent"), task("other", 4)]
    shuffled = events_of(parent)[::-1]
    same_time = [("parent", {"type": "task-received", "timestamp": T0 + 9, "hostname": "w"}),
                 ("parent", {"type": "task-sent", "timestamp": T0 + 9, "hostname": "gen"})]
    store.write_batch([parent, *kids], shuffled + same_time)
    detail = store.get("parent")
    assert detail is not None
    assert [e["type"] for e in detail["events"]] == [
        "task-sent", "task-received", "task-started", "task-succeeded", "task-sent", "task-received"]
    assert detail["children"] == ["kid-b", "kid-a"]  # in the order first stored
    assert uuids(store.query(limit=1)) == ["other"] and store.get("missing") is None


def test_events_read_back_exactly_though_their_columns_are_left_out_of_the_body(store: HistoryStore) -> None:
    """The type, hostname and timestamp are stored once, in the row's columns, when those hold them
    exactly; whatever else an event carries (absent, null, an integer, an empty or odd string) reads back as written."""
    written = [
        {"type": "task-received", "hostname": "w1", "timestamp": T0 + 1.5, "args": "(1,)"},
        {"type": "task-started", "hostname": "w1", "timestamp": T0 + 2},  # nothing left in the body
        {"type": "task-progress", "timestamp": T0 + 3},  # no hostname
        {"type": "task-progress", "hostname": None, "timestamp": T0 + 4},
        {"type": "task-progress", "hostname": "", "timestamp": T0 + 5},
        {"type": "task-progress", "hostname": "w1", "timestamp": int(T0) + 6},  # an integer
        {"type": "task-progress", "hostname": "w\0nul", "timestamp": T0 + 7},
        {"type": "task-progress", "hostname": "w7"},  # no timestamp (one key per event: hostnames differ)
        {"type": "task-progress", "hostname": "w8", "timestamp": None},
        {"type": "task-progress", "hostname": "w9", "timestamp": 0.0},
        {"type": "task-progress", "hostname": "w10", "timestamp": "soon"},
        {"hostname": "w1", "timestamp": T0 + 11},  # no type
        {"type": "", "hostname": "w1", "timestamp": T0 + 12},
        {"type": 5, "hostname": 7, "timestamp": T0 + 13},
        {"type": "task-succeeded", "hostname": "wörker", "timestamp": T0 + 14, "big": 2 ** 70},
    ]
    for n, event in enumerate(written):
        event["n"] = n
    store.write_batch([task("odd", 1)], [("odd", event) for event in written])
    detail = store.get("odd")
    assert detail is not None
    assert sorted(detail["events"], key=lambda e: e["n"]) == written
    if isinstance(store, TaskStore):  # what the file holds for ordinary events: the rest of the event alone
        bodies = [row[0] for row in store._conn().execute(
            "SELECT body FROM events WHERE type IN ('task-received', 'task-started') ORDER BY timestamp")]
        assert bodies == ['{"args":"(1,)","n":0}', '{"n":1}']


def test_an_event_refers_to_its_task_rows_values_and_keeps_them_when_the_row_changes(store: HistoryStore) -> None:
    """Fields equal to the task row's are read from the row, and a later write that changes the row (a retry
    with new arguments and eta, an exception cleared by the success) leaves the earlier events as they were."""
    first = task("r", 1, state="RETRY", succeeded=None, result=None, args="(1,)", eta="2026-11-30T10:00:00",
                 exception="Timeout('slow')", traceback="Traceback ...\nTimeout: slow", root_id="r")
    head = {"name": first["name"], "args": "(1,)", "kwargs": "{}", "eta": "2026-11-30T10:00:00", "root_id": "r",
            "parent_id": None, "retries": 0}
    sent = {"type": "task-sent", "hostname": "gen@web", "timestamp": T0, "queue": "celery", "exchange": "",
            "routing_key": "celery", **head}
    received = {"type": "task-received", "hostname": "celery@w1", "timestamp": T0 + 1, **head}
    retried = {"type": "task-retried", "hostname": "celery@w1", "timestamp": T0 + 2,
               "exception": "Timeout('slow')", "traceback": "Traceback ...\nTimeout: slow"}
    other = {"type": "task-progress", "hostname": "celery@w1", "timestamp": T0 + 2.5, "args": "(9,)", "name": 7}
    store.write_batch([first], [("r", dict(e)) for e in (sent, received, retried, other)])
    # The received event is stored as its columns and references to the row, and what the row does not hold.
    sql = "SELECT body, refs FROM events WHERE type = 'task-received'"
    stored = store._conn().execute(sql).fetchone() if isinstance(store, TaskStore) else store._one(sql)
    assert stored is not None and tuple(stored) == ('{"parent_id":null,"retries":0}', 1 + 16 + 32 + 64 + 4096)
    assert store.get("r")["events"] == [sent, received, retried, other]

    second = dict(first, state="SUCCESS", succeeded=T0 + 9, result="'done'", args="(2,)", eta="2026-11-30T10:05:00",
                  exception=None, traceback=None, retries=1)
    again = dict(received, timestamp=T0 + 8, args="(2,)", eta="2026-11-30T10:05:00", retries=1)
    done = {"type": "task-succeeded", "hostname": "celery@w1", "timestamp": T0 + 9, "result": "'done'"}
    store.write_batch([second], [("r", dict(again)), ("r", dict(done))])
    assert store.get("r")["events"] == [sent, received, retried, other, again, done]
    store.write_batch([dict(second, name="renamed", result="'other'")], [])  # a later shape changes more
    events = store.get("r")["events"]
    assert events == [sent, received, retried, other, again, done]


def test_events_read_back_as_written_whatever_their_tasks_rows_become(store: HistoryStore) -> None:
    """Random writes of three tasks whose fields and events draw from the same few values (so that events
    often equal their row, and rows change back and forth): every event reads back exactly as written."""
    rng = random.Random(7)
    pools = {"name": ["a.x", "a.y", None], "args": ["(1,)", "(2,)", None], "kwargs": ["{}", "{'k': 1}"],
             "eta": ["2026-01-01", None], "result": ["'ok'", "'no'", None], "exception": ["E()", None],
             "traceback": ["Traceback\nE", None], "root_id": ["t0", "t1", None], "queue": ["q1", "q2"]}
    written: dict[str, list[dict[str, Any]]] = {f"t{n}": [] for n in range(3)}
    clock = T0
    for _ in range(40):
        uuid = rng.choice(list(written))
        shape = task(uuid, 1, **{name: rng.choice(pool) for name, pool in pools.items()})
        if rng.random() < 0.2:  # a shape that lets go of its payloads: the stored ones are kept
            for name in ("args", "kwargs", "result", "exception", "traceback"):
                del shape[name]
        events = []
        for _ in range(rng.randrange(4)):
            clock += 1
            event = {"type": rng.choice(["task-sent", "task-received", "task-retried", "task-succeeded"]),
                     "hostname": "celery@w1", "timestamp": clock}
            event.update({name: rng.choice(pool) for name, pool in pools.items() if rng.random() < 0.6})
            events.append(event)
            written[uuid].append(dict(event))
        store.write_batch([shape], [(uuid, event) for event in events])
    for uuid, events in written.items():
        stored = store.get(uuid)
        assert (stored["events"] if stored else []) == events


def test_recent_returns_the_latest_updated_tasks_with_their_events(store: TaskStore) -> None:
    shapes = [task(f"t{n}", n) for n in range(5)]
    store.write_batch(shapes, [e for s in shapes for e in events_of(s)])
    late = task("t0", 0, timestamp=T0 + 100)
    store.write_batch([late], [])
    recent = store.recent(3)
    assert [t["uuid"] for t, _ in recent] == ["t0", "t4", "t3"]
    assert all(len(events) == 4 for _, events in recent)


def test_recent_can_leave_finished_tasks_events_in_the_store(store: TaskStore) -> None:
    shapes = [task("done", 1), task("running", 2, state="STARTED", succeeded=None, result=None)]
    store.write_batch(shapes, [e for s in shapes for e in events_of(s)])
    recent = dict((t["uuid"], events) for t, events in store.recent(10, finished_events=False))
    assert recent["done"] is None and len(recent["running"]) == 4


# -- retention --------------------------------------------------------------------------
def test_prune_by_age_removes_tasks_events_and_search_rows(make_store: Callable[..., HistoryStore],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "PRUNE_CHUNK_TASKS", 3)
    aged = make_store(max_age_seconds=100)
    shapes = [task(f"t{n:02d}", n * 10) for n in range(20)]  # updated at T0 + n*10 + 0.5
    aged.write_batch(shapes, [e for s in shapes for e in events_of(s)])
    assert aged.prune(now=T0 + 150) == 5  # updated before T0 + 50
    assert aged.stats()["tasks"] == 15 and aged.get("t04") is None and aged.get("t05") is not None
    assert aged.query(q="cus_000040")["total"] == 0 and aged.query(q="cus_000050")["total"] == 1
    assert count_rows(aged, "SELECT count(*) FROM events") == 15 * 4
    if isinstance(aged, TaskStore):
        with sqlite3.connect(aged.path) as conn:
            conn.execute("INSERT INTO tasks_fts (tasks_fts) VALUES ('integrity-check')")


def test_prune_by_count_keeps_the_newest(make_store: Callable[..., HistoryStore],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "PRUNE_CHUNK_TASKS", 4)
    capped = make_store(max_tasks_stored=5)
    capped.write_batch([task(f"t{n:02d}", n) for n in range(17)], [])
    assert capped.prune(now=T0 + 20) == 12
    assert sorted(t["uuid"] for t, _ in capped.recent(100)) == [f"t{n}" for n in range(12, 17)]


def test_failed_tasks_are_kept_longer_when_asked(make_store: Callable[..., HistoryStore]) -> None:
    keeper = make_store(max_age_seconds=100, keep_failed_seconds=1000)
    failed = dict(state="FAILURE", succeeded=None, failed=T0 + 1)
    keeper.write_batch([task("ok-old", 0), task("bad-old", 1, **failed), task("bad-ancient", -2000, **failed),
                        task("ok-new", 500)], [])
    assert keeper.prune(now=T0 + 600) == 2
    assert sorted(t["uuid"] for t, _ in keeper.recent(10)) == ["bad-old", "ok-new"]


# -- threads ------------------------------------------------------------------------------
def test_close_makes_further_calls_fail_clearly(make_store: Callable[..., HistoryStore]) -> None:
    closing = make_store()
    closing.close()
    with pytest.raises(StoreError, match="closed"):
        closing.query()


def test_store_works_from_eventlet_tpool_threads_without_deadlock(make_store: Callable[..., HistoryStore]) -> None:
    """Under eventlet, threading locks are green and deadlock across native threads; the store uses none."""
    pytest.importorskip("eventlet")
    opened = make_store()  # the schema made, and the place to open again in the subprocess
    db = opened.url if isinstance(opened, PgTaskStore) else opened.path
    script = textwrap.dedent(f"""
        import warnings; warnings.simplefilter("ignore")
        import eventlet; eventlet.monkey_patch()
        from eventlet import tpool
        from dashboard import store as store_module
        from dashboard.store import open_store
        store = open_store({db!r})
        def write(k):
            for i in range(20):
                store.write_batch([{{"uuid": f"{{k}}-{{i}}", "state": "SUCCESS", "timestamp": float(i)}}], [])
        def read(k):
            return sum(len(store.query(limit=5)["items"]) for _ in range(20))
        def prune(k):
            return store.prune(now=0.0)  # nothing old enough; exercises the pause between chunks
        threads = [eventlet.spawn(tpool.execute, (read, write, prune)[k % 3], k) for k in range(6)]
        with eventlet.Timeout(20):
            [t.wait() for t in threads]
        counted = store.stats()["tasks"]
        store.max_tasks_stored, store_module.PRUNE_CHUNK_TASKS = 5, 3  # green sleeps between chunks
        store_module.PRUNE_PAUSE_SECONDS = 0.01
        with eventlet.Timeout(20):
            pruned = tpool.execute(store.prune, 0.0)
        print(counted, pruned, store.stats()["tasks"])
        store.close()
        tpool.killall()
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["40", "35", "5"]


def test_queue_depth_history_keeps_each_minutes_highest_depth(store: TaskStore) -> None:
    now = 1_800_000_000.0
    store.write_queue_depths([("celery", now - 120, 5), ("celery", now - 60, 9), ("other", now - 60, 1)])
    store.write_queue_depths([("celery", now - 60, 4), ("celery", now, 2)])  # a lower depth does not win
    assert store.queue_depths("celery", now - 90) == {"t": [now - 60, now], "depth": [9, 2]}
    assert store.queue_depths("celery", now - 3600)["depth"] == [5, 9, 2]
    store.max_age_seconds = 90
    store.prune(now)
    assert store.queue_depths("celery", 0)["depth"] == [9, 2]


def test_queue_minutes_are_handed_to_the_store_once() -> None:
    from dashboard.broker import QueueSample
    from dashboard.queues import QueueBook

    book = QueueBook(configured=["q"])
    t0 = 1_800_000_000.0  # a whole minute
    for second, depth in ((0, 3), (30, 8), (61, 1)):
        book.apply(t0 + second, {"q": QueueSample(depth, None)})
    assert book.drain_minutes() == [("q", t0, 8), ("q", t0 + 60, 1)]
    assert book.drain_minutes() == []


def test_tasks_are_rescued_from_a_damaged_file_of_an_older_version(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    for migration in MIGRATIONS[:3]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO tasks (uuid, name, state, received) VALUES ('v3-1', 'app.add', 'SUCCESS', ?)", (T0,))
    conn.close()
    store = TaskStore(str(tmp_path / "new.db"))
    try:
        store._rescue(str(old))  # what opening a damaged file does after moving it aside
        rescued = store.get("v3-1")
        assert rescued is not None and rescued["name"] == "app.add" and rescued["retry_errors"] is None
    finally:
        store.close()


def test_a_last_word_is_a_prefix_from_two_characters_on(store: TaskStore) -> None:
    store.write_batch([task("a", 1, args="('ORD-43',)"), task("b", 2, args="('ORD-4242',)"), task("c", 3, args="('ORD-4',)"),
                       task("d", 4, args="('ORD-5',)")], [])
    assert sorted(uuids(store.query(q="ORD-4"))) == ["c"]  # one character: the whole word (every task's "4*" is slow)
    assert sorted(uuids(store.query(q="ORD-42"))) == ["b"]
    assert sorted(uuids(store.query(q="ORD-43"))) == ["a"]
    assert sorted(uuids(store.query(q="ord"))) == ["a", "b", "c", "d"]
    assert uuids(store.query(q="o")) == [] and uuids(store.query(q="4 ord")) == ["c"]  # any word, first or last
    store.write_batch([task("e", 5, args="('東京駅',)")], [])
    assert uuids(store.query(q="東")) == ["e"]  # a run of CJK text is one token: its first character is a prefix


def test_each_word_becomes_a_quoted_phrase_a_prefix_from_two_characters_on_in_both_stores() -> None:
    from dashboard.pgstore import _tsquery
    from dashboard.store import _match_expression

    assert _match_expression(["c", "ORD-4", "ORD-42", "東"]) == '"c" AND "ORD-4" AND "ORD-42"* AND "東"*'
    assert _tsquery(["c", "ORD-4", "ORD-42", "東"]) == "('c') & ('ORD' <-> '4') & ('ORD' <-> '42':*) & ('東':*)"


@pytest.mark.parametrize("walks", [True, False], ids=["in two parts", "sorted"])
@pytest.mark.parametrize("query", [{}, {"worker": "celery@w2"}, {"q": "cus"}, {"worker": "celery@w2", "q": "cus"}],
                         ids=["all", "filtered", "a word", "both"])
def test_shortest_runtime_first_pages_through_every_task_once_unfinished_last(
        store: HistoryStore, monkeypatch: pytest.MonkeyPatch, query: dict[str, Any], walks: bool) -> None:
    """SQLite reads this order from the one runtime index, the runtimes above -1 and then the rest, or sorts the
    rows its filters pass: pages cross from one part to the other, their totals count both, and tasks arriving
    meanwhile repeat nothing."""
    monkeypatch.setattr(TaskStore, "_walks_runtime", lambda *args: walks)
    store.write_batch([task(f"t{n:02d}", n, runtime=None if n % 3 == 0 else (n * 7) % 5 / 2,
                            worker=("celery@w1", "celery@w2")[n % 2], state="STARTED" if n % 3 == 0 else "SUCCESS")
                       for n in range(40)], [])
    every = [t for t in store.query(sort="runtime", descending=False, limit=1000, **query)["items"]]
    finished = [t for t in every if t["runtime"] is not None]
    assert every[:len(finished)] == finished and len(finished) < len(every)  # unfinished last
    assert [t["runtime"] for t in finished] == sorted(t["runtime"] for t in finished)
    assert [t["uuid"] for t in every[len(finished):]] == sorted(t["uuid"] for t in every[len(finished):])
    seen: list[str] = []
    page = store.query(sort="runtime", descending=False, limit=3, **query)
    arrived = 0
    while True:
        assert page["total"] == len(every) + arrived and page["total_is_estimate"] is False
        seen += uuids(page)
        if page["next"] is None:
            break
        if len(seen) in (6, 12):  # tasks arrive, finished and not: each part takes some before and after the cursor
            store.write_batch([task(f"n{len(seen)}{k}", 100 + k, runtime=(None, 0.0, 9.0)[k], worker="celery@w2",
                                    state=("STARTED", "SUCCESS", "SUCCESS")[k]) for k in range(3)], [])
            arrived += sum(1 for k in range(3) if query.get("worker") in (None, "celery@w2"))
        page = store.query(sort="runtime", descending=False, limit=3, cursor=page["next"], **query)
    assert len(seen) == len(set(seen)) and set(seen) >= {t["uuid"] for t in every}
    now = store.query(sort="runtime", descending=False, limit=1000, **query)["items"]
    last_finished = [t for t in now if t["runtime"] is not None][-1]["uuid"]
    after = store.query(sort="runtime", descending=False, limit=2, after=last_finished, **query)
    assert all(item["runtime"] is None for item in after["items"])  # the page after the longest: unfinished ones
    first_rest = uuids(after)[0]
    assert store.query(sort="runtime", descending=False, limit=2, after=first_rest, **query)["items"][0]["uuid"] \
        == uuids(after)[1]


@pytest.mark.parametrize("counted", [True, False], ids=["matches counted", "too many to count"])
@pytest.mark.parametrize("walks", [True, False], ids=["in two parts", "sorted"])
@pytest.mark.parametrize("filters", [{}, {"worker": "celery@w1"}], ids=["all", "filtered"])
def test_shortest_runtime_first_counts_a_common_word_found_only_in_unfinished_tasks(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch, filters: dict[str, Any], walks: bool,
        counted: bool) -> None:
    """The word's matches are walked (more than ``FTS_DRIVEN_MAX``), and none is among the tasks with a runtime:
    each page's total still counts the tasks without one that it shows (with more matches than
    ``FTS_SORTED_MAX``, an estimate never below them)."""
    monkeypatch.setattr(store_module, "FTS_DRIVEN_MAX", 5)
    if not counted:
        monkeypatch.setattr(store_module, "FTS_SORTED_MAX", 6)
    monkeypatch.setattr(TaskStore, "_walks_runtime", lambda *args: walks)
    sqlite_store.write_batch([task(f"f{n:02d}", n, args="('plain',)") for n in range(40)]
                             + [task(f"u{n:02d}", 40 + n, args="('needle',)", runtime=None, state="STARTED")
                                for n in range(20)], [])
    seen: list[str] = []
    cursor = None
    while True:
        page = sqlite_store.query(q="needle", sort="runtime", descending=False, limit=7, cursor=cursor, **filters)
        if counted:
            assert 15 <= page["total"] <= 25 and (page["total_is_estimate"] or page["total"] == 20), page["total"]
        else:
            assert page["total"] >= len(page["items"]) and (page["total_is_estimate"] or page["total"] == 20)
        seen += uuids(page)
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"u{n:02d}" for n in range(20)]


def test_shortest_runtime_first_pages_alike_when_the_plan_changes_between_pages(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page read from the runtime index and the next one sorted from the filters' rows (new statistics, a
    filter grown common) continue one order: the cursor holds the runtime alone."""
    sqlite_store.write_batch([task(f"t{n:02d}", n, runtime=None if n % 3 == 0 else (n * 7) % 5 / 2,
                                   state="STARTED" if n % 3 == 0 else "SUCCESS") for n in range(40)], [])
    whole = uuids(sqlite_store.query(worker="celery@w1", sort="runtime", descending=False, limit=1000))
    modes = itertools.cycle([True, False])
    monkeypatch.setattr(TaskStore, "_walks_runtime", lambda *args: next(modes))
    seen: list[str] = []
    cursor = None
    while True:
        page = sqlite_store.query(worker="celery@w1", sort="runtime", descending=False, limit=4, cursor=cursor)
        assert page["total"] == 40
        seen += uuids(page)
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == whole and len(whole) == 40


@pytest.mark.parametrize(("filters", "walks"), [({}, True), ({"worker": "celery@w1"}, True),
                                                ({"worker": "celery@w1"}, False)],
                         ids=["all, in two parts", "filtered, in two parts", "filtered, sorted"])
def test_a_runtime_of_minus_one_or_below_sorts_among_the_tasks_without_one(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch, filters: dict[str, Any], walks: bool) -> None:
    """Celery never sends one; in SQLite shortest first puts it with the rest (``RUNTIME_REST``), in runtime order,
    whether the page is read from the runtime index or the filters' rows are sorted."""
    monkeypatch.setattr(TaskStore, "_walks_runtime", lambda *args: walks)
    sqlite_store.write_batch([task("a", 1, runtime=0.5), task("b", 2, runtime=-3.0), task("c", 3, runtime=None),
                              task("d", 4, runtime=0.0), task("e", 5, runtime=-0.5),
                              task("x", 6, worker="celery@w9")], [])
    expected = ["e", "d", "x", "a", "b", "c"] if not filters else ["e", "d", "a", "b", "c"]
    assert uuids(sqlite_store.query(sort="runtime", descending=False, **filters)) == expected
    pages, cursor = [], None
    while True:
        page = sqlite_store.query(sort="runtime", descending=False, limit=2, cursor=cursor, **filters)
        pages += uuids(page)
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == expected
    assert uuids(sqlite_store.query(sort="runtime", **filters))[-3:] == ["e", "c", "b"]


def test_paging_while_tasks_arrive_never_repeats_or_skips_one(store: TaskStore) -> None:
    """A first page that took live rows (pushing older rows off it) goes on after the row it shows last."""
    store.write_batch([task(f"old{n:02d}", n) for n in range(10)], [])
    first = store.query(limit=4)
    shown = uuids(first)  # old09..old06
    store.write_batch([task(f"new{n}", 20 + n) for n in range(3)], [])  # arrive live, newest first on the page
    shown = [f"new{n}" for n in (2, 1, 0)] + shown[:1]  # the page keeps 4 rows: old08..old06 were pushed off
    seen = list(shown)
    page = store.query(limit=4, after=shown[-1])
    assert page["cursor"] and store.query(limit=4, cursor=page["cursor"])["items"] == page["items"]
    while True:
        seen += uuids(page)
        if page["next"] is None:
            break
        page = store.query(limit=4, cursor=page["next"])
    assert len(seen) == len(set(seen)) == 13  # every task once: the pushed-off rows come next, none twice
    with pytest.raises(StoreQueryError, match="after: no stored task"):
        store.query(after="nope")
    with pytest.raises(StoreQueryError, match="either a cursor or a task id"):
        store.query(after="old01", cursor=first["next"])


@pytest.mark.parametrize(("common", "fence"), [(-1.0, 10_000), (-1.0, 3), (2.0, 10_000)],
                         ids=["every word common", "common, counted from a sample", "every word rare"])
def test_postgresql_plans_for_common_and_rare_words_give_the_same_pages(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch, common: float, fence: int) -> None:
    from dashboard import pgstore
    store = pgstore.PgTaskStore(postgres_url)
    shapes = [task(f"{'abc' if n % 7 == 0 else 'fed'}{n:03d}", n, runtime=(n * 37) % 11 / 10 if n % 5 else None,
                   name=f"app.t{n % 4}", args="('common', 'abc')" if n % 3 else "('rare',)") for n in range(150)]
    store.write_batch(shapes, [])

    def pages(**query: Any) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            result = store.query(limit=7, cursor=cursor, **query)
            seen.extend(uuids(result))
            cursor = result["next"]
            if cursor is None:
                return seen
    queries = [{"q": "common"}, {"q": "rare", "sort": "runtime"}, {"q": "common", "name": "app.t1"},
               {"q": "abc", "sort": "name", "descending": False}, {"q": "rare", "states": {"SUCCESS"}}]
    expected = [pages(**query) for query in queries]
    monkeypatch.setattr(pgstore, "COMMON_TEXT", common)
    monkeypatch.setattr(pgstore, "FENCE_ROWS", fence)
    assert [pages(**query) for query in queries] == expected and all(expected)
    if fence == 10_000:  # every match counted
        assert store.query(q="common", name="app.t1")["total"] == len(expected[2])
    store.close()


def test_a_shape_without_its_payloads_keeps_the_stored_ones(store: HistoryStore) -> None:
    full = task("t1", 1, exception="ValueError('x')", traceback="Traceback ...", state="FAILURE")
    store.write_batch([full, task("t2", 2)], [])
    late = {k: v for k, v in full.items() if k not in ("args", "kwargs", "result", "exception", "traceback")}
    late.update(queue="slow", eta="2026-11-29T12:00:00")
    cleared = {k: v for k, v in task("t2", 2).items() if k not in ("args", "kwargs")}
    cleared.update(result=None, exception=None)  # present: written as they are, None included
    store.write_batch([late, cleared, {k: v for k, v in task("new").items() if k != "args"}], [])
    got = store.get("t1")
    assert got is not None and got["queue"] == "slow" and got["eta"] == "2026-11-29T12:00:00"
    assert (got["args"], got["kwargs"], got["result"]) == (full["args"], "{}", "'ok'")
    assert (got["exception"], got["traceback"]) == ("ValueError('x')", "Traceback ...")
    got = store.get("t2")
    assert got is not None and got["args"] == task("t2", 2)["args"] and got["result"] is None
    assert uuids(store.query(q="cus_000001")) == ["t1"]
    got = store.get("new")
    assert got is not None and got["args"] is None and got["kwargs"] == "{}"  # nothing stored to keep
    # a task first seen at its end knows little: what it leaves out stays as stored
    store.write_batch([{"uuid": "t1", "state": "SUCCESS", "succeeded": T0 + 9, "result": "'late'", "children": []}], [])
    got = store.get("t1")
    assert got is not None and (got["state"], got["result"], got["succeeded"]) == ("SUCCESS", "'late'", T0 + 9)
    assert (got["name"], got["received"], got["queue"]) == (full["name"], full["received"], "slow")


def _resident_through_maps_kib(path: str) -> int:
    """KiB of the file ``path`` resident in this process through memory maps (Linux's /proc/self/smaps)."""
    target, mapped, total = os.path.realpath(path), None, 0
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            mapped = fields[5] if len(fields) > 5 else ""
        elif fields and fields[0] == "Rss:" and mapped == target:
            total += int(fields[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_writing_maps_none_of_the_file_and_queries_map_what_they_read(sqlite_store: TaskStore, path: str) -> None:
    shapes = [task(f"t{n:05d}", n, args="x" * 400) for n in range(3000)]
    for start in range(0, len(shapes), 500):
        batch = shapes[start:start + 500]
        sqlite_store.write_batch(batch, [event for shape in batch for event in events_of(shape)])
    sqlite_store.write_batch([{**shape, "state": "FAILURE"} for shape in shapes[::7]], [])  # updates read old rows
    assert sqlite_store._writer is not None and sqlite_store._writer.execute("PRAGMA mmap_size").fetchone()[0] == 0
    assert sqlite_store._conn().execute("PRAGMA mmap_size").fetchone()[0] == 0
    assert _resident_through_maps_kib(path) == 0  # what writes read stays in the OS's cache, not in this process
    sqlite_store._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # as every WAL_CHECKPOINT_PAGES
    assert len(sqlite_store.query(limit=20)["items"]) == 20 and sqlite_store.get("t00042") is not None
    assert sqlite_store._reader().execute("PRAGMA mmap_size").fetchone()[0] == store_module.MMAP_BYTES
    assert _resident_through_maps_kib(path) > 0  # the pages' queries read through the map


def test_a_batch_is_written_from_staged_rows_a_chunk_per_statement(sqlite_store: TaskStore,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """FTS5 writes what it holds pending to disk as a new segment at the end of each statement that wrote to
    it: a statement per task (executemany) wrote and later merged a segment per task, over half a write's
    CPU. The batch is staged in temporary tables and written by one statement per chunk, with the same result."""
    store = sqlite_store
    monkeypatch.setattr(store_module, "STAGED_ROWS", 8)  # 41 tasks: 6 chunks; their 160 events: 5
    store.write_batch([task("first", 0)], [])
    assert store._writer is not None
    statements: list[str] = []
    store._writer.set_trace_callback(statements.append)
    shapes = [task(f"t{n:02d}", n, args=f"('order-{n}',)") for n in range(40)]
    late = {**task("first", 0, state="FAILURE", args="('retyped',)"), "exception": "KeyError('x')"}
    store.write_batch([*shapes, late], [event for shape in shapes for event in events_of(shape)])
    # Every write into tasks and events reads the staged rows (SQLite traces it again at each row's trigger).
    written = [sql for sql in statements if sql.startswith(("INSERT INTO tasks", "INSERT OR IGNORE INTO events"))]
    assert written and all("FROM temp.staged_" in sql for sql in written)
    assert sum(sql == "DELETE FROM temp.staged_tasks" for sql in statements) == 6
    assert sum(sql == "DELETE FROM temp.staged_events" for sql in statements) == 5
    assert sum(sql.startswith("INSERT INTO temp.staged_tasks") for sql in statements) == 41
    assert uuids(store.query(q="order-17", limit=5)) == ["t17"]  # the text index follows every row
    assert uuids(store.query(q="retyped", limit=5)) == ["first"] == uuids(store.query(q="KeyError", limit=5))
    assert store.query(q="order", limit=100)["total"] == 40
    assert [len(store.get(shape["uuid"])["events"]) for shape in shapes] == [len(events_of(shape)) for shape in shapes]
    statements.clear()  # the temporary tables are empty again: a second write stages only its own rows
    store.write_batch([task("t00", 0, state="RETRY")], [])
    assert store.get("t00")["state"] == "RETRY" and store.query(limit=100)["total"] == 41


def test_the_writer_copies_its_log_back_every_wal_checkpoint_pages(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live cluster's writes touch the same pages again and again: the log is copied back into the file
    every WAL_CHECKPOINT_PAGES pages rather than SQLite's 1,000, so each page is copied less often."""
    wal = Path(path + "-wal")
    sizes, default = {}, store_module.WAL_CHECKPOINT_PAGES
    for pages in (default, 40):
        monkeypatch.setattr(store_module, "WAL_CHECKPOINT_PAGES", pages)
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        opened = TaskStore(path)
        try:
            opened.write_batch([task("first", 0)], [])
            assert opened._writer is not None
            assert opened._writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == pages
            largest = 0
            for batch in range(30):
                shapes = [task(f"b{batch}-{n}", batch * 50 + n, args=f"('order-{batch}-{n}', {'x' * 200!r})")
                          for n in range(50)]
                opened.write_batch(shapes, [event for shape in shapes for event in events_of(shape)])
                largest = max(largest, wal.stat().st_size)
            sizes[pages] = largest
            assert opened.query(limit=1)["total"] == 1 + 30 * 50
        finally:
            opened.close()
    assert sizes[40] < 200 * 4096 < 1_000 * 4096 < sizes[default]  # copied back early, or left to grow past SQLite's 1,000


def test_writes_from_many_threads_go_through_one_connection_and_keep_every_row(sqlite_store: TaskStore) -> None:
    # One writing connection keeps its page cache; one per thread emptied and refilled it at every batch.
    opened = len(sqlite_store._connections)
    failures: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for batch in range(10):
                shapes = [task(f"w{thread}-{batch}-{n}", thread * 1000 + batch * 10 + n) for n in range(20)]
                sqlite_store.write_batch(shapes, [event for shape in shapes for event in events_of(shape)])
                sqlite_store.mark("alive_at", float(batch))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == [] and not any(thread.is_alive() for thread in threads)
    assert sqlite_store.stats()["tasks"] == 4 * 10 * 20
    assert len(sqlite_store._connections) - opened <= 2  # the writer, and this thread's for stats()
