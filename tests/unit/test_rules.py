"""The alert rules: the file's checks, each kind with an injected clock, silences, and the API in-process."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dashboard import create_app
from dashboard.rules import AlertEngine, RuleError, load_alert_file, parse_alert_file
from dashboard.settings import Settings, SettingsError, load_settings
from dashboard.stats import FAILED, KINDS, SUCCEEDED
from helpers import strict_json

EXAMPLE = """
[notify]
webhooks = ["http://127.0.0.1:9/hook"]
slack = ["https://hooks.slack.com/services/T000/B000/XXXX"]

[[rule]]
kind = "worker-lost"
severity = "critical"

[[rule]]
name = "default backing up"
kind = "queue-depth"
queue = "default"
above = 100
for = 60

[[rule]]
kind = "queue-wait"
queue = "*"
seconds = 300

[[rule]]
name = "billing failing"
kind = "failure-rate"
task = "billing.*"
above = 5
window = 300
min_count = 20

[[rule]]
name = "stuck"
kind = "task-runtime"
seconds = 600

[[rule]]
name = "nightly report"
kind = "no-success"
task = "reports.nightly"
seconds = 90000

[[rule]]
kind = "event-stream"
seconds = 30
"""


def engine_for(text: str, started_at: float = 0.0) -> AlertEngine:
    import tomllib
    return AlertEngine(parse_alert_file(tomllib.loads(text)).rules, started_at=started_at)


def counts(succeeded: int, failed: int) -> list[int]:
    row = [0] * len(KINDS)
    row[SUCCEEDED], row[FAILED] = succeeded, failed
    return row


def test_the_example_file_parses_and_bad_files_say_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(EXAMPLE)
    rules = load_alert_file(str(path))
    assert [r.kind for r in rules.rules] == ["worker-lost", "queue-depth", "queue-wait", "failure-rate",
                                            "task-runtime", "no-success", "event-stream"]
    assert rules.slack and rules.webhooks
    assert rules.rules[1].describe() == {"name": "default backing up", "kind": "queue-depth", "severity": "warning",
                                         "for": 60, "queue": "default", "above": 100}
    for text, message in [
        ('[[rule]]\nkind = "disk-full"', "kind must be one of"),
        ('[[rule]]\nkind = "queue-depth"', "above is required"),
        ('[[rule]]\nkind = "queue-depth"\nabove = -1', "above must be a number of at least 0"),
        ('[[rule]]\nkind = "queue-depth"\nabove = 1\ncolour = "red"', "unknown field 'colour'"),
        ('[[rule]]\nkind = "failure-rate"\nabove = 150', "above is a percentage"),
        ('[[rule]]\nkind = "worker-lost"\n[[rule]]\nkind = "worker-lost"', "two rules are named 'worker-lost'"),
        ('[notify]\nslack = ["ftp://x"]', "slack must be a list of http"),
        ("[[rule]\n", "not valid TOML"),
    ]:
        path.write_text(text)
        with pytest.raises(RuleError, match=message):
            load_alert_file(str(path))
    with pytest.raises(SettingsError, match="kind must be one of"):
        path.write_text('[[rule]]\nkind = "disk-full"')
        load_settings(["--alerts", str(path)], {})


def test_a_queue_must_stay_deep_for_its_time_and_resolves_by_itself() -> None:
    engine = engine_for('[[rule]]\nkind = "queue-depth"\nqueue = "default"\nabove = 100\nfor = 60')
    deep = {"queues": {"default": (500, None), "other": (900, None)}}
    assert engine.check(1000.0, deep) == ([], [])
    assert engine.check(1059.0, deep) == ([], [])
    fired, _ = engine.check(1060.0, deep)
    assert [(a.subject, a.value) for a in fired] == [("default", 500.0)] and "500 messages" in fired[0].summary
    assert engine.check(1065.0, deep) == ([], [])  # fires once
    _, resolved = engine.check(1070.0, {"queues": {"default": (3, None)}})
    assert [a.subject for a in resolved] == ["default"] and resolved[0].resolved == 1070.0
    assert engine.check(1080.0, deep) == ([], [])  # the wait starts again


def test_queue_wait_worker_lost_and_a_stuck_task_while_it_runs() -> None:
    engine = engine_for('[[rule]]\nkind = "queue-wait"\nseconds = 300\n[[rule]]\nkind = "worker-lost"\n'
                        '[[rule]]\nkind = "task-runtime"\ntask = "app.*"\nseconds = 600')
    inputs: dict[str, Any] = {
        "queues": {"q": (5, 1000.0)},
        "workers": [("celery@a", "lost", 990.0), ("celery@b", "online", 1299.0)],
        "started": [("u1", "app.slow", "celery@b", 600.0), ("u2", "other.slow", "celery@b", 600.0),
                    ("u3", "app.fast", "celery@b", 1290.0)],
    }
    fired, _ = engine.check(1301.0, inputs)
    assert sorted((a.kind, a.subject) for a in fired) == [("queue-wait", "q"), ("task-runtime", "u1"),
                                                          ("worker-lost", "celery@a")]
    stuck = next(a for a in fired if a.kind == "task-runtime")
    assert stuck.link == "/tasks/u1" and "app.slow" in stuck.summary and "celery@b" in stuck.summary
    inputs["started"] = []  # the task ended
    _, resolved = engine.check(1310.0, inputs)
    assert [a.subject for a in resolved] == ["u1"]


def test_failure_rate_over_a_window_needs_its_minimum_count() -> None:
    engine = engine_for('[[rule]]\nkind = "failure-rate"\ntask = "billing.*"\nabove = 5\nwindow = 300\n'
                        'min_count = 20')
    assert engine.check(0.0, {"counts": {"billing.charge": counts(1000, 10)}}) == ([], [])
    # 10 more runs, 5 failed: 50 %, but under the minimum count
    assert engine.check(100.0, {"counts": {"billing.charge": counts(1005, 15)}}) == ([], [])
    fired, _ = engine.check(200.0, {"counts": {"billing.charge": counts(1020, 25), "mail.send": counts(0, 90)}})
    assert [(a.subject, round(a.value)) for a in fired] == [("billing.charge", 43)]  # 15 of 35; mail not matched
    # Five minutes of clean runs later, the failures have left the window.
    engine.check(450.0, {"counts": {"billing.charge": counts(1100, 25)}})
    _, resolved = engine.check(510.0, {"counts": {"billing.charge": counts(1200, 25)}})
    assert [a.subject for a in resolved] == ["billing.charge"]


def test_no_success_counts_from_start_for_a_type_never_seen_and_the_stream_rule() -> None:
    engine = engine_for('[[rule]]\nkind = "no-success"\ntask = "reports.nightly"\nseconds = 100\n'
                        '[[rule]]\nkind = "event-stream"\nseconds = 30', started_at=1000.0)
    online = [("celery@a", "online", 1000.0)]
    base = {"workers": online, "stream": {"connected": True, "silent_for": 1.0, "cuts": 0}}
    assert engine.check(1050.0, base) == ([], [])
    fired, _ = engine.check(1101.0, base)
    assert [a.summary for a in fired] == ["no reports.nightly succeeded since the dashboard started (limit 100 s)"]
    _, resolved = engine.check(1102.0, {**base, "last_success": {"reports.nightly": 1102.0}})
    assert [a.kind for a in resolved] == ["no-success"]
    cut = {**base, "last_success": {"reports.nightly": 1102.0}, "stream": {"connected": True, "silent_for": 0.1,
                                                                             "cuts": 1}}
    fired, _ = engine.check(1110.0, cut)
    assert [a.summary for a in fired] == ["the broker cut the event stream: events were lost"]
    _, resolved = engine.check(1150.0, cut)  # no new cut for longer than the rule's seconds
    assert [a.kind for a in resolved] == ["event-stream"]
    fired, _ = engine.check(1160.0, {**cut, "stream": {"connected": True, "silent_for": 45.0, "cuts": 1}})
    assert fired and "no event for 45 s" in fired[0].summary


def test_a_silence_covers_one_subject_or_all_and_ends() -> None:
    engine = engine_for('[[rule]]\nkind = "worker-lost"')
    inputs = {"workers": [("celery@a", "lost", 0.0), ("celery@b", "lost", 0.0)]}
    engine.silence("worker-lost", "celery@a", 1600.0, "alice", 1000.0)
    fired, _ = engine.check(1000.0, inputs)
    silenced = {a.subject: engine.is_silenced(a, 1000.0) for a in fired}
    assert silenced == {"celery@a": True, "celery@b": False}
    engine.silence("worker-lost", None, 1100.0, "alice", 1001.0)
    engine.check(1002.0, inputs)
    assert all(engine.is_silenced(a, 1002.0) for a in engine.active.values())
    engine.check(1200.0, inputs)
    assert [a.subject for a in engine.active.values() if engine.is_silenced(a, 1200.0)] == ["celery@a"]
    with pytest.raises(RuleError, match="no rule named"):
        engine.silence("nope", None, 2000.0, "alice", 1000.0)


def test_the_alerts_api_lists_rules_and_silences_them(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(EXAMPLE)
    app = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading", alerts_file=str(path)))
    client = app.test_client()
    body = strict_json(client.get("/api/alerts").data)
    assert len(body["rules"]) == 7 and body["active"] == [] and body["history"] == []
    assert body["notify"] == {"webhooks": 1, "slack": 1}
    answer = client.post("/api/alerts/silence", json={"rule": "stuck", "minutes": 30})
    assert answer.status_code == 200, answer.data
    assert [s["rule"] for s in strict_json(client.get("/api/alerts").data)["silences"]] == ["stuck"]
    assert client.post("/api/alerts/silence", json={"rule": "nope", "minutes": 30}).status_code == 404
    assert client.post("/api/alerts/silence", json={"rule": "stuck", "minutes": -1}).status_code == 400
    audit = strict_json(client.get("/api/audit").data)["items"]
    assert audit[0]["action"] == "silence" and audit[0]["target"] == "stuck"
