"""Checks on raw event bodies: the traps that kill a naive receive loop."""
from __future__ import annotations

from typing import Any

import pytest

from dashboard.checks import TRUNCATION_MARKER, MalformedEvent, clean_event, truncate

GOOD_HEARTBEAT = {"type": "worker-heartbeat", "hostname": "w@h", "timestamp": 1.7e9, "clock": 3,
                  "freq": 2.0, "active": 0, "processed": 5, "loadavg": [0.1, 0.2, 0.3], "utcoffset": 0}


def check(body: Any) -> dict[str, Any]:
    return clean_event(body, max_field_chars=100, max_traceback_chars=200)


@pytest.mark.parametrize("body, reason", [
    ([], "not an object"),
    ({"hostname": "w"}, "no valid 'type'"),
    ({"type": 7}, "no valid 'type'"),
    ({**GOOD_HEARTBEAT, "timestamp": "x"}, "bad timestamp"),
    ({**GOOD_HEARTBEAT, "timestamp": True}, "bad timestamp"),
    ({**GOOD_HEARTBEAT, "timestamp": float("nan")}, "bad timestamp"),
    ({**GOOD_HEARTBEAT, "timestamp": 1e300}, "bad timestamp"),
    ({**GOOD_HEARTBEAT, "clock": "y"}, "clock"),
    ({**GOOD_HEARTBEAT, "freq": "x"}, "freq"),
    ({**GOOD_HEARTBEAT, "freq": 1e9}, "freq"),
    ({**GOOD_HEARTBEAT, "freq": 0}, "freq"),
    ({**GOOD_HEARTBEAT, "loadavg": "high"}, "loadavg"),
    ({**GOOD_HEARTBEAT, "hostname": None}, "hostname"),
    ({**GOOD_HEARTBEAT, "hostname": ["a"]}, "hostname"),
    ({**GOOD_HEARTBEAT, "utcoffset": 99}, "utcoffset"),
    ({**GOOD_HEARTBEAT, "processed": -1}, "processed"),
    ({"type": "task-received", "timestamp": 1.7e9}, "uuid"),
    ({"type": "task-received", "uuid": 12}, "uuid"),
])
def test_malformed_bodies_are_rejected_with_a_reason(body: Any, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        check(body)


def test_a_good_heartbeat_passes_unchanged() -> None:
    assert check(dict(GOOD_HEARTBEAT)) == GOOD_HEARTBEAT


def test_huge_payloads_are_cut_with_a_visible_marker() -> None:
    event = check({"type": "task-received", "uuid": "u", "args": "x" * 5_000_000,
                   "traceback": "t" * 1000, "result": {"a": 1}})
    assert len(event["args"]) < 200 and event["args"].endswith(f"{TRUNCATION_MARKER}4999900 chars]")
    assert event["traceback"].startswith("t" * 200) and TRUNCATION_MARKER in event["traceback"]
    assert event["result"] == "{'a': 1}"


def test_truncate_leaves_short_strings_alone() -> None:
    assert truncate("abc", 3) == "abc"
