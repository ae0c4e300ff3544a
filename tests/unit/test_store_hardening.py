"""Either store takes any task shape the model can hand it, and refuses query arguments it cannot bind."""
from __future__ import annotations

import base64
import json
import math
import sqlite3
from typing import Any

import pytest

from dashboard.store import HistoryStore, StoreQueryError, TaskStore, dumps
from test_store import T0, events_of, make_store, path, store, task  # noqa: F401  (fixtures: both backends)


def raw_rows(store: HistoryStore, sql: str) -> list[tuple[Any, ...]]:
    """Return rows with text as the bytes the store holds, to check they are valid UTF-8."""
    if not isinstance(store, TaskStore):  # PostgreSQL refuses to hold text that is not valid UTF-8
        return [tuple(v.encode() if isinstance(v, str) else v for v in row) for row in store._fetch(sql)]
    with sqlite3.connect(store.path) as conn:
        conn.text_factory = bytes
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("big", [1 << 63, -(1 << 63) - 1, 10 ** 400], ids=["2**63", "-2**63-1", "10**400"])
def test_integers_beyond_64_bits_are_stored_as_null(store: HistoryStore, big: int) -> None:
    shape = task("big", 1, retries=big, runtime=big, timestamp=big)
    events = [("big", {"type": "task-retried", "timestamp": big, "hostname": "celery@w1", "retries": big})]
    store.write_batch([shape, task("ok", 2, retries=(1 << 63) - 1)], events)
    stored = store.get("big")
    assert stored is not None
    assert (stored["retries"], stored["runtime"], stored["timestamp"]) == (None, None, None)
    assert stored["events"] == [{"type": "task-retried", "timestamp": big, "hostname": "celery@w1", "retries": big}]
    assert store.get("ok")["retries"] == (1 << 63) - 1  # the largest 64-bit integer is kept


def test_text_with_lone_surrogates_is_stored_as_valid_utf8(store: HistoryStore) -> None:
    shape = task("s\ud800", 1, name="billing.\udfff", args="('\ud800',)", worker="celery@\ud800",
                 progress={"note\ud800": "x\udc00"})
    events = [("s\ud800", {"type": "task-received", "timestamp": T0, "hostname": "celery@\ud800",
                           "args": "\ud800", "nan": math.nan}),
              ("other\ud800", {"type": "task-sent\ud800", "timestamp": T0, "hostname": "h"})]  # not in the batch
    store.write_batch([shape], events)
    for row in raw_rows(store, "SELECT * FROM tasks") + raw_rows(store, "SELECT * FROM events"):
        for value in row:
            if isinstance(value, bytes):
                value.decode("utf-8")  # raises on anything SQLite holds that is not UTF-8
    stored = store.get("s?")
    assert stored is not None
    assert (stored["name"], stored["args"], stored["worker"]) == ("billing.?", "('?',)", "celery@?")
    assert stored["progress"] == {"note?": "x?"}
    assert stored["events"] == [{"type": "task-received", "timestamp": T0, "hostname": "celery@?", "args": "?",
                                 "nan": None}]
    assert [e["type"] for e in store.get("other?")["events"]] == ["task-sent?"]
    assert [t["uuid"] for t in store.query(q="billing")["items"]] == ["s?"]


@pytest.mark.parametrize("value", [
    {"text": "\ud800", "n": math.nan, "inf": -math.inf, "big": 1 << 70},
    ["\udfff", {"k\ud800": [math.nan]}, (1 << 64,)],
    {("tuple", "key"): "\ud800", 7: 1 << 65, math.nan: 1, 1.5: 2, None: 3, True: 4},
], ids=["surrogate, nan, infinity, 2**70", "nested", "keys of every kind"])
def test_dumps_writes_valid_json_for_what_orjson_refuses(value: Any) -> None:
    text = dumps(value)
    text.encode("utf-8")  # no lone surrogate in the text
    decoded = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    json.dumps(decoded, ensure_ascii=False).encode("utf-8")  # nor escaped in it


def test_dumps_keeps_what_orjson_writes() -> None:
    assert dumps({"a": [1, 2.5, None, "é"], "nan": math.nan}) == '{"a":[1,2.5,null,"é"],"nan":null}'


def cursor(values: list[Any], row_id: Any, sort: str = "received") -> str:
    raw = json.dumps({"s": sort, "d": True, "v": values, "i": row_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(("bad", "sort"), [
    (cursor([1.0], 1 << 63), "received"),  # a row id SQLite cannot bind
    (cursor([1.0], -(1 << 63) - 1), "received"),
    (cursor([1 << 63], 1), "received"),  # a sort value beyond 64 bits
    (cursor([10 ** 400], 1), "received"),
    (base64.urlsafe_b64encode(b'{"s":"received","d":true,"v":[1e999],"i":1}').decode(), "received"),  # infinity
    (cursor(["name", 1 << 64], 1, sort="name"), "name"),
], ids=["row id 2**63", "row id -2**63-1", "value 2**63", "value 10**400", "value inf", "second value 2**64"])
def test_cursor_values_sqlite_cannot_bind_are_query_errors(store: HistoryStore, bad: str, sort: str) -> None:
    store.write_batch([task("a", 1)], [])
    with pytest.raises(StoreQueryError, match="^cursor: "):
        store.query(cursor=bad, sort=sort)


def test_the_largest_row_id_is_still_a_cursor(store: HistoryStore) -> None:
    store.write_batch([task("a", 1)], [])
    assert store.query(cursor=cursor([T0 + 10], (1 << 63) - 1))["items"][0]["uuid"] == "a"


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"q": "abc\0"}, "q"), ({"q": "\0"}, "q"),
    ({"since": 1 << 63}, "since"), ({"until": math.inf}, "until"), ({"since": math.nan}, "since"),
])
def test_unbindable_query_arguments_are_query_errors(store: HistoryStore, kwargs: dict[str, Any],
                                                     argument: str) -> None:
    with pytest.raises(StoreQueryError, match=f"^{argument}: "):
        store.query(**kwargs)


def test_nul_characters_are_kept_in_sqlite_and_replaced_in_postgresql(store: HistoryStore) -> None:
    shape = task("nul\0", 1, name="billing.\0charge", args="('\0',)", runtime=float("nan"), progress={"k": "\0"})
    store.write_batch([shape], [("nul\0", {"type": "task-received\0", "timestamp": T0, "hostname": "w\0"})])
    replaced = isinstance(store, TaskStore) and "\0" or "\ufffd"
    stored = store.get(f"nul{replaced}")
    assert stored is not None and stored["name"] == f"billing.{replaced}charge" and stored["runtime"] is None
    assert stored["progress"] == {"k": "\0"}  # JSON text writes it as an escape
    assert [e["hostname"] for e in stored["events"]] == ["w\0"]  # the event as JSON, whole
    assert [t["uuid"] for t in store.query(q="charge")["items"]] == [f"nul{replaced}"]


def test_events_of_a_normal_task_are_unchanged(store: HistoryStore) -> None:
    shape = task("plain", 1, args="('déjà vu',)")
    store.write_batch([shape], events_of(shape))
    stored = store.get("plain")
    assert stored["args"] == "('déjà vu',)" and [e["hostname"] for e in stored["events"]][0] == "gen@web"


def test_a_postgresql_connection_cut_is_a_storage_failure_and_the_next_call_reconnects(postgres_url: str) -> None:
    import psycopg

    from dashboard.pgstore import PgTaskStore
    from dashboard.store import is_storage_failure
    store = PgTaskStore(postgres_url)
    try:
        store.write_batch([task("before", 1)], [])
        pid = store._conn().info.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))  # as a server restart or a proxy would
        with pytest.raises(psycopg.Error) as cut:
            store.write_batch([task("during", 2)], [])
        assert is_storage_failure(cut.value)  # kept and retried by the history writer, never dropped
        store.write_batch([task("during", 2)], [])  # a fresh connection
        assert store.get("before") is not None and store.get("during") is not None
    finally:
        store.close()


def test_a_postgresql_connection_cut_while_a_command_was_on_its_way_is_replaced(postgres_url: str) -> None:
    """A cut that lands while a command is being sent can leave libpq believing that command still runs
    ("another command is already in progress") instead of marking the connection closed: the next call
    opens a fresh connection instead of failing on that one for ever."""
    from dashboard.pgstore import PgTaskStore
    store = PgTaskStore(postgres_url)
    try:
        store.write_batch([task("before", 1)], [])
        stale = store._conn()
        stale.pgconn.send_query(b"SELECT 1")  # sent, never read: the state such a cut leaves behind
        store.write_batch([task("after", 2)], [])
        assert store._conn() is not stale and stale.closed and stale not in store._connections
        assert store.get("before") is not None and store.get("after") is not None
    finally:
        store.close()


def test_a_statement_that_fails_on_its_own_keeps_its_postgresql_connection(postgres_url: str) -> None:
    """A statement timeout (an OperationalError too) says nothing about the connection: it is kept."""
    import psycopg

    from dashboard.pgstore import PgTaskStore
    store = PgTaskStore(postgres_url)
    try:
        conn = store._conn()
        conn.execute("SET statement_timeout = 50")
        with pytest.raises(psycopg.errors.QueryCanceled):
            store._fetch("SELECT pg_sleep(5)")
        assert store._conn() is conn and not conn.closed and store._connections == [conn]
        assert store._one("SELECT 1") == (1,)
    finally:
        store.close()
