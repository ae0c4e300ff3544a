"""Event checks and decoding, by property: whatever a producer sends, what is kept is storable, bounded, valid JSON."""
from __future__ import annotations

import bz2
import math
import sqlite3
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dashboard import jsonio
from dashboard.envelope import MAX_DEPTH, UndecodableMessage, decode_body, loads, repair_text
from dashboard.checks import KNOWN_FIELDS, MAX_EXTRA_FIELDS, MAX_INT, MalformedEvent, clean_event
from dashboard.store import TaskStore
from dashboard.state import ClusterState
from dashboard.cluster import Cluster
from dashboard.queues import QueueBook
from helpers import strict_json

MAX_FIELD = 200
MAX_TRACEBACK = 400

#: Any JSON-like value a producer could send, including what strict JSON refuses.
scalars = (st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=300))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=4), max_leaves=20)
field_names = st.sampled_from(["type", "uuid", "hostname", "timestamp", "utcoffset", "clock", "pid", "retries",
                               "name", "args", "kwargs", "result", "exception", "traceback", "runtime", "freq",
                               "loadavg", "active", "processed", "queue", "current", "total"]) | st.text(max_size=70)
event_types = st.sampled_from(["task-received", "task-started", "task-succeeded", "task-failed", "task-retried",
                               "task-progress", "worker-heartbeat", "worker-online", "custom"])


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = draw(st.dictionaries(field_names, values, max_size=12))
    if draw(st.booleans()):
        event["type"] = draw(event_types)
        event.setdefault("uuid", draw(st.text(min_size=1, max_size=20)))
        event.setdefault("hostname", draw(st.text(min_size=1, max_size=20)))
    return event


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_events())
def test_a_kept_event_is_bounded_and_its_json_is_strict_json(raw: dict[str, Any]) -> None:
    try:
        event = clean_event(raw, MAX_FIELD, MAX_TRACEBACK)
    except MalformedEvent:
        return
    text = jsonio.dumps(event)
    strict_json(text)  # no NaN or Infinity, valid UTF-8 (orjson refuses to write anything else)
    assert len(text) < 64 * 1024  # bounded, however large the fields were
    assert len([k for k in event if k not in KNOWN_FIELDS]) <= MAX_EXTRA_FIELDS
    for key in ("retries", "clock", "pid", "active", "processed"):
        if event.get(key) is not None:
            assert 0 <= event[key] <= MAX_INT
    for key in ("timestamp", "runtime", "utcoffset"):
        if event.get(key) is not None:
            assert math.isfinite(event[key])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(raw_events(), min_size=1, max_size=8))
def test_whatever_passes_the_checks_is_stored(tmp_path_factory: pytest.TempPathFactory,
                                             raws: list[dict[str, Any]]) -> None:
    """The model and the store take every event the checks let through (no OverflowError, no encoding error)."""
    state = ClusterState()
    cluster = Cluster(state, QueueBook())
    cluster.keep_history()
    for index, raw in enumerate(raws):
        try:
            event = clean_event(raw, MAX_FIELD, MAX_TRACEBACK)
        except MalformedEvent:
            continue
        event["local_received"] = 1e9 + index
        state.apply(event)
    tasks, events = cluster.drain_unsaved()[:2]
    store = TaskStore(str(tmp_path_factory.mktemp("prop") / "h.db"))
    try:
        store.write_batch(tasks, events)
        for task in tasks:
            strict_json(jsonio.dumps(store.get(task["uuid"])))
    finally:
        store.close()
    strict_json(jsonio.dumps([w.to_json() for w in state.workers.values()]))


def test_overflowing_retries_is_rejected_and_the_task_after_it_stored(tmp_path: Any) -> None:
    with pytest.raises(MalformedEvent, match="retries is larger"):
        clean_event({"type": "task-retried", "uuid": "x", "retries": 9223372036854775808}, MAX_FIELD, MAX_TRACEBACK)
    ok = clean_event({"type": "task-retried", "uuid": "y", "retries": MAX_INT, "timestamp": 1e9}, MAX_FIELD,
                     MAX_TRACEBACK)
    state = ClusterState()
    cluster = Cluster(state, QueueBook())
    cluster.keep_history()
    state.apply(ok)
    store = TaskStore(str(tmp_path / "h.db"))
    try:
        store.write_batch(*cluster.drain_unsaved()[:2])
        assert store.get("y")["retries"] == MAX_INT
    finally:
        store.close()


@pytest.mark.parametrize("body, content_type, compression, reason", [
    (5, "application/json", None, "is a int"),
    (b"{}", "application/x-python-serialize", None, "not accepted"),
    (b"junk", "application/json", "application/x-gzip", "cannot be decompressed"),
    (b"junk", "application/json", "application/x-bz2", "cannot be decompressed"),
    (b"junk", "application/json", "application/x-lzma", "cannot be decompressed"),
    (b"junk", "application/json", 7, "not a string"),
    (b"junk", "application/json", "application/x-brotli", "not supported"),
    (zlib.compress(b" " * 5000), "application/json", "application/x-gzip", "over --max-event-bytes"),
    (bz2.compress(b" " * 5000), "application/json", "application/x-bz2", "over --max-event-bytes"),
    (b"[" * 2000 + b"]" * 2000, "application/json", None, "nested"),
    (b"[" * 100 + b"NaN" + b"]" * 100, "application/json", None, "nested"),
    (b'{"__type__": "datetime", "__value__": 5}', "application/json", None, "cannot be decoded"),
])
def test_undecodable_bodies_are_refused_with_a_reason(body: Any, content_type: str, compression: Any,
                                                      reason: str) -> None:
    with pytest.raises(UndecodableMessage, match=reason):
        decode_body(body, content_type, "utf-8", compression, 4096)


def test_decompression_is_capped_not_refused_when_small() -> None:
    body = zlib.compress(b'{"type": "task-received", "uuid": "u"}')
    assert decode_body(body, "application/json", "utf-8", "application/x-gzip", 4096)["uuid"] == "u"


def test_nan_infinity_and_lone_surrogates_are_repaired_the_same_on_both_decoders() -> None:
    text = b'{"a": NaN, "b": -Infinity, "c": "\\ud800x", "d": ["\\udcff"], "e": 1.5}'
    assert loads(text) == {"a": None, "b": None, "c": "\ufffdx", "d": ["\ufffd"], "e": 1.5}
    assert loads(b'{"ok": "\\u00e9"}') == {"ok": "é"}  # orjson's path
    assert repair_text("fine é") == "fine é"
    nested = b"[" * (MAX_DEPTH + 1) + b"NaN" + b"]" * (MAX_DEPTH + 1)
    with pytest.raises(UndecodableMessage):
        loads(nested)


def test_json_output_is_strict_whatever_it_is_given() -> None:
    value = {"nan": float("nan"), "inf": float("inf"), "s": "\ud800", "big": 1 << 80, "deep": [[[[1]]]],
             3: "int key", "set": {1}}
    parsed = strict_json(jsonio.dumps(value))
    assert parsed["nan"] is None and parsed["inf"] is None
    assert parsed["s"] == "\ufffd" and parsed["big"] == str(1 << 80) and parsed["3"] == "int key"
    assert orjson.loads(jsonio.dumps({"ok": 1})) == {"ok": 1}


def test_sqlite_range_is_what_the_checks_allow() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (n INTEGER)")
    conn.execute("INSERT INTO t VALUES (?)", (MAX_INT,))
    with pytest.raises(OverflowError):
        conn.execute("INSERT INTO t VALUES (?)", (MAX_INT + 1,))
