"""A damaged history file is moved aside after every task still readable in it is copied into the fresh one."""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from dashboard import store as store_module
from dashboard.store import TaskStore
from test_store import events_of, task

#: Tasks in the damaged file.
TASKS = 2_000
#: Bytes overwritten with garbage, from 40 % into the file.
DAMAGE_BYTES = 16 * 1024


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """A history of ``TASKS`` tasks with four events each, with ``DAMAGE_BYTES`` of garbage in the middle."""
    path = tmp_path / "history.db"
    first = TaskStore(str(path))
    shapes = [task(f"t{n:05d}", n, args=f"({n}, 'cus_{n:06d}', {'x' * 200!r})") for n in range(TASKS)]
    first.write_batch(shapes, [event for shape in shapes for event in events_of(shape)])
    first.close()
    data = bytearray(path.read_bytes())
    start = len(data) * 2 // 5
    data[start:start + DAMAGE_BYTES] = bytes((n * 7919 + 13) % 251 for n in range(DAMAGE_BYTES))
    path.write_bytes(bytes(data))
    with sqlite3.connect(path) as conn:
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            verdict = str(exc)
    assert verdict != "ok"
    return path


def test_readable_tasks_are_rescued_into_the_fresh_file(damaged: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dashboard.store"):
        fresh = TaskStore(str(damaged))
    try:
        [moved] = [p for p in damaged.parent.glob("history.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
        assert moved.stat().st_size > DAMAGE_BYTES
        rescued = fresh.stats()["tasks"]
        assert TASKS // 2 <= rescued < TASKS
        found = [fresh.get(f"t{n:05d}") for n in range(TASKS)]
        kept = [t for t in found if t is not None]
        assert len(kept) == rescued
        written = {t["uuid"]: [e for _, e in events_of(t)] for t in kept}  # read back whole, references included
        assert all(t["events"] == written[t["uuid"]] for t in kept)
        assert found[-1] is not None and found[0] is not None  # the damage was in the middle
        page = fresh.query(q="cus", limit=1000)  # the full-text index covers the rescued rows
        assert page["total"] == rescued and page["items"][0]["uuid"] == kept[-1]["uuid"]
        fresh.write_batch([task("after", TASKS)], [])  # and the store takes new tasks
        assert fresh.get("after") is not None
    finally:
        fresh.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("moved it to" in m for m in messages)
    assert any(f"rescued {rescued} tasks from {moved}" in m for m in messages)
    with sqlite3.connect(moved) as conn:  # the damaged file is left as it was
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION


def test_the_rescue_stops_at_its_time_limit(damaged: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(store_module, "RESCUE_MAX_SECONDS", 0.0)
    with caplog.at_level(logging.WARNING, logger="dashboard.store"):
        fresh = TaskStore(str(damaged))
    assert fresh.stats()["tasks"] == 0
    fresh.close()
    assert any("stopped rescuing after 0 s" in r.getMessage() for r in caplog.records)


def test_a_file_that_is_not_a_database_is_only_moved_aside(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"not a database at all " * 500)
    with caplog.at_level(logging.WARNING, logger="dashboard.store"):
        fresh = TaskStore(str(path))
    assert fresh.stats()["tasks"] == 0
    fresh.close()
    assert not any("rescue" in r.getMessage() for r in caplog.records)


def test_a_damaged_file_of_an_older_version_reads_its_missing_columns_as_null(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    for migration in store_module.MIGRATIONS[:12]:  # before the events' refs
        for statement in migration:
            conn.execute(statement)
    conn.execute("INSERT INTO tasks (uuid, name) VALUES ('t', 'a.b')")
    conn.execute("""INSERT INTO events (task_id, timestamp, life, type, hostname, body)
                    VALUES (1, 1.5, 2, 'task-started', 'w', '{"type":"task-started"}')""")
    select = store_module._rescue_select(conn, "events", store_module._EVENT_COLUMNS_SQL.split(", "))
    assert store_module._read_events(conn, select, [1]) == [(1, 1.5, 2, "task-started", "w",
                                                              '{"type":"task-started"}', None)]
    conn.close()
