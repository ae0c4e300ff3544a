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
from dashboard.checks import KNOWN_FIELDS, MAX_EXTRA_FIELDS, MAX_INT, MalformedEvent, checked_event, clean_event
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


#: Fields as Celery's task and worker events carry them, each with a few values that pass the checks
#: and a few that must be cut, converted or refused.
_USUAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "hostname": st.sampled_from(["celery@worker-1", "", "h" * 255, "h" * 256]) | st.none() | st.integers(),
    "name": st.sampled_from(["billing.charge_card", "n" * 300]) | st.none() | st.lists(st.integers(), max_size=2),
    "queue": st.sampled_from(["celery", "high_priority"]) | st.none() | st.booleans(),
    "uuid": st.sampled_from(["0b8f1c9e-1111-2222-3333-444455556666", "", "u" * 256]) | st.integers(),
    "args": st.sampled_from(["(1, 2)", "a" * MAX_FIELD, "a" * (MAX_FIELD + 1)]) | st.none() | st.lists(st.integers()),
    "traceback": st.sampled_from(["Traceback ...", "t" * MAX_TRACEBACK, "t" * (MAX_TRACEBACK + 1)]) | st.none(),
    "timestamp": st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1.7e9, 1_700_000_000, True]),
    "utcoffset": st.sampled_from([0, -1, 0.0, 24, 25, -24.5, None, "0"]),
    "local_received": st.sampled_from([1.7e9, 2, 1 << 64, float("nan"), "x", None]),
    "runtime": st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0, -1, 1 << 63, False]),
    "retries": st.sampled_from([0, 3, -1, 1.0, True, MAX_INT, MAX_INT + 1, None, "1"]),
    "clock": st.sampled_from([0, 12, -5, 2.5, None]),
    "freq": st.sampled_from([2.0, 0, -1, 4000, "2", None]),
    "loadavg": st.sampled_from([[0.5, 0.4, 0.3], [1, 2, 3, 4], ["x"], None, "0.5"]),
    "custom_field": st.integers() | st.text(max_size=5),
}


@st.composite
def usual_events(draw: st.DrawFn) -> dict[str, Any]:
    """A Celery-like event: a task or worker event type and some of its fields, most of them as Celery sends them."""
    event: dict[str, Any] = {"type": draw(st.sampled_from(["task-received", "task-succeeded", "task-failed",
                                                         "worker-heartbeat", "worker-online", "custom", "", 5]))}
    for name in draw(st.lists(st.sampled_from(sorted(_USUAL_FIELDS)), max_size=9, unique=True)):
        event[name] = draw(_USUAL_FIELDS[name])
    return event


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(usual_events() | raw_events())
def test_the_one_pass_over_a_usual_event_answers_as_every_check_in_turn_does(raw: dict[str, Any]) -> None:
    """``clean_event`` takes a usual event in one pass and leaves any other to ``checked_event``: the
    answer (the event kept, or the refusal and its reason) is the same either way."""
    def outcome(check: Any) -> tuple[str, Any]:
        try:
            return "kept", check(dict(raw), MAX_FIELD, MAX_TRACEBACK)
        except MalformedEvent as exc:
            return "refused", str(exc)

    fast, slow = outcome(clean_event), outcome(checked_event)
    assert fast == slow
    if fast[0] == "kept":
        assert list(fast[1]) == list(slow[1])  # the same fields in the same order


def test_the_one_pass_takes_celerys_own_events() -> None:
    """The events Celery's workers send need nothing cut: the one pass answers for them itself."""
    from dashboard.checks import _usual_event
    received = {"hostname": "celery@worker-1", "utcoffset": 0, "pid": 1234, "clock": 55, "type": "task-received",
                "uuid": "0b8f1c9e-1111-2222-3333-444455556666", "name": "billing.charge_card", "args": "(1, 2)",
                "kwargs": "{}", "root_id": "0b8f1c9e-1111-2222-3333-444455556666", "parent_id": None,
                "retries": 0, "eta": None, "expires": None, "timestamp": 1796152521.35, "local_received": 1.8e9}
    heartbeat = {"hostname": "celery@worker-1", "utcoffset": -1, "pid": 7, "clock": 9, "freq": 2.0, "active": 1,
                 "processed": 10, "loadavg": [0.5, 0.4, 0.3], "sw_ident": "py-celery", "sw_ver": "5.5.3",
                 "sw_sys": "Linux", "timestamp": 1796152521.0, "type": "worker-heartbeat"}
    for event in (received, heartbeat):
        assert _usual_event(event, MAX_FIELD, MAX_TRACEBACK) == checked_event(event, MAX_FIELD, MAX_TRACEBACK)
