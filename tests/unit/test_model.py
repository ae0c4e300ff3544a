"""A task's and a worker's fields are declared once: the store and the JSON shapes follow the declaration."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from dashboard.model import TASK_COLUMNS, TASK_FIELDS, WORKER_FIELDS, Task, Worker
from dashboard.state import ClusterState
from dashboard.store import TaskStore

SQLITE_TYPES = {"text": "TEXT", "real": "REAL", "integer": "INTEGER", "flag": "INTEGER", "json": "TEXT"}


def test_the_declared_columns_are_the_tables(tmp_path: Path) -> None:
    TaskStore(str(tmp_path / "h.db")).close()
    with sqlite3.connect(tmp_path / "h.db") as conn:
        table = {row[1]: row[2] for row in conn.execute("PRAGMA table_xinfo(tasks)") if row[5] == 0 or row[1] == "id"}
    conn.close()
    declared = {name: SQLITE_TYPES[kind] for name, kind in TASK_COLUMNS}
    assert {name: table[name] for name in declared} == declared
    stored_only = set(table) - set(declared) - {"id"}
    assert all(name.endswith("_sort") or name == "finished" for name in stored_only), stored_only


def test_the_json_shapes_are_the_declared_fields() -> None:
    assert list(Task("t").to_json(["c"])) == [*TASK_FIELDS, "children"]
    assert list(Worker("w").to_json()) == list(WORKER_FIELDS)
    assert "events" not in TASK_FIELDS and "history" not in WORKER_FIELDS and "offline_received" not in WORKER_FIELDS


def test_a_task_read_back_from_the_store_has_the_shape_it_was_written_with(tmp_path: Path) -> None:
    state = ClusterState()
    state.apply({"type": "task-received", "uuid": "t", "hostname": "w", "timestamp": 1e9, "name": "app.add",
                 "args": "(1, 2)", "retries": 0, "local_received": 1e9})
    state.apply({"type": "task-progress", "uuid": "t", "hostname": "w", "timestamp": 1e9 + 1, "current": 1,
                 "total": 2})
    shape = state.task_json("t")
    assert shape is not None
    store = TaskStore(str(tmp_path / "h.db"))
    try:
        store.write_batch([shape], [])
        stored = store.get("t")
    finally:
        store.close()
    assert stored is not None
    assert {k: stored[k] for k in shape} == shape


def test_the_exceptions_of_retried_attempts_stay_searchable_after_success(tmp_path: Path) -> None:
    state = ClusterState()
    for n, (kind, extra) in enumerate([
            ("task-received", {"name": "app.fetch"}),
            ("task-retried", {"exception": "ConnectionError('Timed out fetching https://a (attempt 1)')"}),
            ("task-retried", {"exception": "ConnectionError('Timed out fetching https://a (attempt 1)')"}),
            ("task-retried", {"exception": "HTTPError('502\nBad gateway')"}),
            ("task-succeeded", {"result": "'ok'", "runtime": 0.1})]):
        state.apply({"type": kind, "uuid": "t", "hostname": "w", "timestamp": 1e9 + n, **extra})
    shape = state.task_json("t")
    assert shape is not None and shape["exception"] is None and shape["state"] == "SUCCESS"
    assert shape["retry_errors"] == "ConnectionError('Timed out fetching https://a (attempt 1)')\nHTTPError('502 Bad gateway')"
    store = TaskStore(str(tmp_path / "h.db"))
    try:
        store.write_batch([shape], [])
        assert [t["uuid"] for t in store.query(q="timed out")["items"]] == ["t"]
        assert [t["uuid"] for t in store.query(q="bad gateway")["items"]] == ["t"]
    finally:
        store.close()
