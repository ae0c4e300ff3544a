"""A page's short reads of an SQLite history are made on the calling thread; the rest leave it.

Under eventlet ``run_blocking`` hands a call to a native thread and back, which costs two thread wake-ups
(8 ms at p50 on a busy machine) where one task or one unfiltered page costs 0.1-1 ms read here.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import pytest
from flask import Flask

from dashboard import create_app
from dashboard.settings import Settings
from dashboard.store import TaskStore
from helpers import deliver, strict_json

ROOT = Path(__file__).resolve().parents[2]


def recording_app(db: str) -> tuple[Flask, list[str]]:
    """The dashboard in-process, with a ``run_blocking`` that runs each call here and notes its name."""
    handed: list[str] = []

    def run_blocking(function: Callable[..., Any], *args: Any) -> Any:
        handed.append(getattr(function, "__name__", repr(function)))
        return function(*args)

    return create_app(Settings(db=db, async_mode="threading"), run_blocking), handed


def stored(app: Flask, bodies: list[dict[str, Any]]) -> Any:
    """Hand recorded event bodies to the app's collector as a reader does and write them; return the dashboard."""
    dashboard = app.extensions["dashboard"]
    deliver(dashboard, bodies)
    assert dashboard.history.flush()  # the finished tasks' timelines now come from the store
    return dashboard


def handed_for(app: Flask, handed: list[str], path: str) -> list[str]:
    """The calls a GET of ``path`` handed to ``run_blocking`` (it must answer 200)."""
    handed.clear()
    response = app.test_client().get(path)
    assert response.status_code == 200, response.data
    return list(handed)


def test_a_page_short_reads_of_an_sqlite_history_stay_on_the_calling_thread(
        tmp_path: Path, recorded: list[dict[str, Any]]) -> None:
    app, handed = recording_app(str(tmp_path / "dashboard.db"))
    dashboard = stored(app, recorded)
    task_id = next(e["uuid"] for e in recorded if e["type"] == "task-succeeded")
    assert dashboard.cluster.task_detail(task_id)[0]["events"] is None

    for path in ("/api/tasks", "/api/tasks?sort=runtime&limit=5", "/api/tasks?sort=-name", f"/api/tasks/{task_id}"):
        assert handed_for(app, handed, path) == [], path
    detail = strict_json(app.test_client().get(f"/api/tasks/{task_id}").data)
    assert detail["events"][-1]["type"] == "task-succeeded" and detail["retried_as"] == []
    page = strict_json(app.test_client().get("/api/tasks?limit=2").data)
    following = strict_json(app.test_client().get(f"/api/tasks?limit=2&cursor={page['next']}").data)
    assert handed_for(app, handed, f"/api/tasks?limit=2&cursor={page['next']}") == []
    assert not {i["uuid"] for i in page["items"]} & {i["uuid"] for i in following["items"]}

    # Filters and words may read far more of the history: away from the event loop.
    for path in ("/api/tasks?state=FAILURE", "/api/tasks?q=add", "/api/tasks?name=x", "/api/tasks?since=0",
                 "/api/tasks?worker=w&sort=runtime"):
        assert handed_for(app, handed, path) == ["_query_store"], path


def test_a_postgresql_history_is_always_read_from_a_native_thread(
        postgres_url: str, recorded: list[dict[str, Any]]) -> None:
    app, handed = recording_app(postgres_url)
    dashboard = stored(app, recorded)
    task_id = next(e["uuid"] for e in recorded if e["type"] == "task-succeeded")
    assert handed_for(app, handed, "/api/tasks") == ["_query_store"]
    assert handed_for(app, handed, f"/api/tasks/{task_id}") == ["get", "links"]
    dashboard.close()


# Under eventlet each request is a green thread of the event loop's native thread: they share that thread's
# connections (a ``threading.local`` would give each its own), and a native thread of tpool has its own.
GREEN_READERS = """
import eventlet
eventlet.monkey_patch()
import json, sys, threading
from eventlet import tpool
from dashboard.store import TaskStore

store = TaskStore(sys.argv[1])
store.write_batch([{"uuid": "t1", "name": "add", "state": "SUCCESS", "timestamp": 1.0}], [])
found = []

def request():
    for _ in range(3):
        found.append(store.get("t1")["name"])
        eventlet.sleep(0)

pool = [eventlet.spawn(request) for _ in range(5)]
for green in pool:
    green.wait()
found.append(tpool.execute(store.get, "t1")["name"])
here = threading.get_native_id()
readers = [ident for role, ident in store._thread_conns if role == "reader"]
print(json.dumps({"found": found, "here": readers.count(here), "elsewhere": len(readers) - readers.count(here)}))
store.close()
tpool.killall()
"""


def test_green_threads_share_their_native_thread_s_connection(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", GREEN_READERS,
                             str(tmp_path / "green.db")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures == {"found": ["add"] * 16, "here": 1, "elsewhere": 1}


@pytest.mark.parametrize("role", ["reader", "conn"])
def test_each_native_thread_reads_through_its_own_connection(tmp_path: Path, role: str) -> None:
    store = TaskStore(str(tmp_path / "threads.db"))
    try:
        opened: dict[str, Any] = {}
        pick = store._reader if role == "reader" else store._conn
        worker = threading.Thread(target=lambda: opened.setdefault("other", pick()))
        worker.start()
        worker.join(10)
        assert pick() is pick() and opened["other"] is not pick()
    finally:
        store.close()


def test_the_connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    """The threading mode's server runs each client connection in a thread of its own: each thread's reading
    connections are closed once it has ended, instead of staying open (two files each) for good."""
    store = TaskStore(str(tmp_path / "threads.db"))
    try:
        store.write_batch([{"uuid": "t1", "name": "add", "state": "SUCCESS", "timestamp": 1.0}], [])
        for _ in range(30):  # one request per client connection, one after the other
            reader = threading.Thread(target=lambda: (store.get("t1"), store.links("t1")))
            reader.start()
            reader.join(10)
        assert store.get("t1") is not None
        assert len(store._thread_conns) <= 3, sorted(store._thread_conns)
        assert len(store._connections) <= 5  # those and the writer's, the check's
    finally:
        store.close()
