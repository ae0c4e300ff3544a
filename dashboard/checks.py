"""Validation of raw event bodies before anything else reads them.

Pure code: no I/O and no clocks. Everything in an event comes from outside
the dashboard, so types and ranges are checked here, oversized strings are
cut with a visible marker, and a bad event is rejected with a reason rather
than left to raise deep inside Celery's receiver or the state model.
"""
from __future__ import annotations

import math
from typing import Any

import orjson

#: Earliest and latest plausible event timestamp (epoch seconds: 2000-01-01 .. 2100-01-01).
MIN_TIMESTAMP = 946_684_800.0
MAX_TIMESTAMP = 4_102_444_800.0
#: Largest heartbeat interval accepted, in seconds (Celery's default is 2).
MAX_FREQ_SECONDS = 3600.0
#: Longest type, uuid, hostname or task name accepted, in characters.
MAX_NAME_CHARS = 255
#: Marker appended to a string that was cut; the number of characters removed follows it.
TRUNCATION_MARKER = "…[truncated "

#: Distinct short strings shared between events (a dict, not ``sys.intern``, so that it stays bounded).
MAX_SHARED_STRINGS = 20_000
#: Fields whose values repeat across tasks (task names, hostnames, queues): one copy each in memory.
_SHARED_FIELDS = frozenset(("hostname", "name", "queue", "exchange", "routing_key", "sw_ident", "sw_ver", "sw_sys"))
_shared: dict[str, str] = {}

#: Fields that carry task payloads and tracebacks: cut to the configured size.
_PAYLOAD_FIELDS = ("args", "kwargs", "result", "exception", "eta", "expires")
_TRACEBACK_FIELDS = ("traceback",)
#: Short string fields: rejected when not a string (or null), cut at MAX_NAME_CHARS.
_NAME_FIELDS = ("hostname", "name", "queue", "exchange", "routing_key", "parent_id",
                "root_id", "sw_ident", "sw_ver", "sw_sys")
#: Numeric fields that must be finite numbers when present.
_NUMBER_FIELDS = ("runtime", "utcoffset", "local_received")
#: Whole-number fields that must be non-negative integers when present.
_COUNT_FIELDS = ("retries", "active", "processed", "pid", "clock")
#: Largest whole number kept: SQLite's (and most JSON readers') 64-bit signed integers.
MAX_INT = (1 << 63) - 1
#: Every field Celery's own events carry; other fields (custom events' data) are bounded below.
KNOWN_FIELDS = frozenset((
    "type", "uuid", "timestamp", "utcoffset", "local_received", "clock", "pid", "hostname", "name",
    "args", "kwargs", "result", "exception", "traceback", "eta", "expires", "queue", "exchange",
    "routing_key", "parent_id", "root_id", "retries", "runtime", "freq", "active", "processed",
    "loadavg", "sw_ident", "sw_ver", "sw_sys", "terminated", "signum", "expired", "requeue",
))
#: Most other fields kept per event, and the longest name of one; more are dropped.
MAX_EXTRA_FIELDS = 32
MAX_EXTRA_NAME_CHARS = 64
#: Deepest nesting of a payload or other field kept as it is.
MAX_DEPTH = 32


class MalformedEvent(ValueError):
    """An event body that cannot be used; the message says why."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def truncate(value: str, limit: int) -> str:
    """Cut ``value`` to ``limit`` characters, ending with a marker saying how much was removed."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}{TRUNCATION_MARKER}{len(value) - limit} chars]"


#: What ``_usual_event`` checks of each field Celery's events carry (see ``_KINDS``).
_ANY, _NAME, _SHARED, _PAYLOAD, _TRACEBACK, _COUNT, _NUMBER, _TIMESTAMP, _OFFSET = range(9)
_KINDS: dict[str, int] = {
    **dict.fromkeys(KNOWN_FIELDS, _ANY), **dict.fromkeys(_NAME_FIELDS, _NAME),
    **dict.fromkeys(_SHARED_FIELDS, _SHARED), **dict.fromkeys(_PAYLOAD_FIELDS, _PAYLOAD),
    **dict.fromkeys(_TRACEBACK_FIELDS, _TRACEBACK), **dict.fromkeys(_COUNT_FIELDS, _COUNT),
    **dict.fromkeys(_NUMBER_FIELDS, _NUMBER), "timestamp": _TIMESTAMP, "utcoffset": _OFFSET,
}


def clean_event(body: Any, max_field_chars: int, max_traceback_chars: int) -> dict[str, Any]:
    """Return a checked copy of a raw event body, or raise MalformedEvent naming the problem."""
    if type(body) is dict:
        event = _usual_event(body, max_field_chars, max_traceback_chars)
        if event is not None:
            return event
    return checked_event(body, max_field_chars, max_traceback_chars)


def _usual_event(body: dict[str, Any], max_field_chars: int, max_traceback_chars: int) -> dict[str, Any] | None:
    """``checked_event``'s answer for an event that needs nothing cut or turned into text, in one pass over
    its fields; None for any other (a field it does not know, a value to cut, convert or refuse), which
    ``checked_event`` then takes as a whole, so a refusal reads the same either way. Over half of the
    checks' cost went on looking up each field any event may carry, one at a time."""
    event_type = body.get("type")
    if type(event_type) is not str or not event_type or len(event_type) > MAX_NAME_CHARS:
        return None
    event = body.copy()
    for key, value in body.items():
        kind = _KINDS.get(key)
        if kind is None:
            return None
        if value is None or kind == _ANY:
            continue
        value_type = type(value)
        if kind <= _SHARED:
            if value_type is not str or len(value) > MAX_NAME_CHARS:
                return None
            if kind == _SHARED:
                event[key] = share(value)
        elif kind == _PAYLOAD or kind == _TRACEBACK:
            if value_type is not str or len(value) > (max_field_chars if kind == _PAYLOAD else max_traceback_chars):
                return None
        elif value_type is int:
            if not (0 if kind == _COUNT else -MAX_INT - 1) <= value <= MAX_INT:
                return None
        elif value_type is not float or kind == _COUNT or not math.isfinite(value):
            return None
        if kind == _TIMESTAMP:
            if not MIN_TIMESTAMP <= value <= MAX_TIMESTAMP:
                return None
        elif kind == _OFFSET and not -24 <= value <= 24:
            return None
    if event_type.startswith("task-"):
        uuid = event.get("uuid")
        if type(uuid) is not str or not uuid or len(uuid) > MAX_NAME_CHARS:
            return None
    elif event_type.startswith("worker-"):
        _check_worker(event_type, event)
    event["type"] = share(event_type)
    return event


def checked_event(body: Any, max_field_chars: int, max_traceback_chars: int) -> dict[str, Any]:
    """``clean_event`` for any body: each check in turn, cutting what is too long and turning payloads that
    are not text into their repr."""
    if not isinstance(body, dict):
        raise MalformedEvent(f"event is a {type(body).__name__}, not an object")
    event_type = body.get("type")
    if not isinstance(event_type, str) or not event_type or len(event_type) > MAX_NAME_CHARS:
        raise MalformedEvent("event has no valid 'type'")
    event = dict(body)
    timestamp = event.get("timestamp")
    if timestamp is not None:
        if not _is_number(timestamp) or not MIN_TIMESTAMP <= timestamp <= MAX_TIMESTAMP:
            raise MalformedEvent(f"{event_type}: bad timestamp")
    for key in _NUMBER_FIELDS:
        value = event.get(key)
        if value is not None and not _is_number(value):
            raise MalformedEvent(f"{event_type}: {key} is not a number")
    offset = event.get("utcoffset")
    if offset is not None and not -24 <= offset <= 24:
        raise MalformedEvent(f"{event_type}: utcoffset out of range")
    for key in _COUNT_FIELDS:
        value = event.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not 0 <= value <= MAX_INT):
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_INT:
                raise MalformedEvent(f"{event_type}: {key} is larger than {MAX_INT}")
            raise MalformedEvent(f"{event_type}: {key} is not a non-negative integer")
    for key in _NAME_FIELDS:
        value = event.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise MalformedEvent(f"{event_type}: {key} is not a string")
            value = truncate(value, MAX_NAME_CHARS)
            event[key] = share(value) if key in _SHARED_FIELDS else value
    event["type"] = share(event_type)
    if event_type.startswith("task-"):
        uuid = event.get("uuid")
        if not isinstance(uuid, str) or not uuid or len(uuid) > MAX_NAME_CHARS:
            raise MalformedEvent(f"{event_type}: no valid uuid")
    elif event_type.startswith("worker-"):
        _check_worker(event_type, event)
    for key in _PAYLOAD_FIELDS:
        value = event.get(key)
        if value is not None:
            event[key] = truncate(value if isinstance(value, str) else _text(event_type, key, value), max_field_chars)
    for key in _TRACEBACK_FIELDS:
        value = event.get(key)
        if value is not None:
            event[key] = truncate(value if isinstance(value, str) else _text(event_type, key, value),
                                  max_traceback_chars)
    if not KNOWN_FIELDS.issuperset(event):  # no set built for the usual event, which has only Celery's fields
        _bound_extra_fields(event, event.keys() - KNOWN_FIELDS, max_field_chars)
    return event


def _text(event_type: str, key: str, value: Any) -> str:
    """Return the repr of a payload value that is not a string, refusing one nested too deeply."""
    if _deeper_than(value, MAX_DEPTH):
        raise MalformedEvent(f"{event_type}: {key} is nested more than {MAX_DEPTH} levels deep")
    return repr(value)


def _deeper_than(value: Any, limit: int) -> bool:
    """Return whether lists and dicts in ``value`` nest more than ``limit`` levels (without recursion)."""
    if not isinstance(value, (list, tuple, dict)):
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, tuple, dict)))
    return False


def _bound_extra_fields(event: dict[str, Any], names: set[str], max_field_chars: int) -> None:
    """Keep at most MAX_EXTRA_FIELDS fields Celery does not define, each a bounded, storable value.

    Numbers stay numbers when JSON and SQLite can hold them; anything else larger than
    ``max_field_chars`` once written as JSON is kept as that text, cut with the marker.
    """
    kept = 0
    for name in sorted(names, key=str):
        value = event[name]
        if kept >= MAX_EXTRA_FIELDS or not isinstance(name, str) or len(name) > MAX_EXTRA_NAME_CHARS:
            del event[name]
            continue
        kept += 1
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, float):
            event[name] = value if math.isfinite(value) else None
        elif isinstance(value, int):
            event[name] = value if -MAX_INT - 1 <= value <= MAX_INT else truncate(str(value), max_field_chars)
        elif isinstance(value, str):
            event[name] = truncate(value, max_field_chars)
        elif _deeper_than(value, MAX_DEPTH):
            event[name] = f"{TRUNCATION_MARKER}nested more than {MAX_DEPTH} levels]"
        else:
            try:
                text = orjson.dumps(value, default=str).decode()
            except (TypeError, orjson.JSONEncodeError):  # integers beyond 64 bits, say
                text = repr(value)
            if len(text) > max_field_chars:
                event[name] = truncate(text, max_field_chars)


def share(value: str) -> str:
    """Return the one copy kept of a short string that many tasks repeat (a task name, a hostname)."""
    found = _shared.get(value)
    if found is None:
        if len(_shared) >= MAX_SHARED_STRINGS:
            _shared.clear()  # bounded: unusual churn of names costs copies, never unbounded memory
        found = _shared[value] = value
    return found


def _check_worker(event_type: str, event: dict[str, Any]) -> None:
    if not event.get("hostname"):
        raise MalformedEvent(f"{event_type}: no hostname")
    freq = event.get("freq")
    if freq is not None and (not _is_number(freq) or not 0 < freq <= MAX_FREQ_SECONDS):
        raise MalformedEvent(f"{event_type}: freq must be a number of seconds in (0, {MAX_FREQ_SECONDS:g}]")
    loadavg = event.get("loadavg")
    if loadavg is not None and (
            not isinstance(loadavg, (list, tuple)) or len(loadavg) > 3
            or not all(_is_number(v) for v in loadavg)):
        raise MalformedEvent(f"{event_type}: loadavg is not a list of up to 3 numbers")
