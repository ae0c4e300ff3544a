"""The benchmark's event generator (bench/generator.py): the streams it builds, without a broker."""
from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import generator  # noqa: E402
from generator import KINDS, WORKERS, Plan, Report, Run, Simulation, failure  # noqa: E402


class FakeSender:
    """Keeps every event instead of publishing it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.flushes = 0

    def send(self, hostname: str, type: str, fields: dict[str, Any]) -> None:
        self.events.append((hostname, type, dict(fields)))

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass


def publish(plan: Plan) -> tuple[Report, FakeSender]:
    sender = FakeSender()
    return Run(plan, sender).publish(), sender


def lives(events: list[tuple[str, str, dict[str, Any]]]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    by_task: dict[str, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)
    for event in events:
        if event[1].startswith("task-"):
            by_task[event[2]["uuid"]].append(event)
    return by_task


def test_every_task_lives_a_whole_life_cycle() -> None:
    _, sender = publish(Plan("memory://", tasks=2000, seed=5, pace=0.0))
    tasks = lives(sender.events)
    assert len(tasks) == 2000
    for uuid, events in tasks.items():
        types = [t for _, t, _ in events]
        assert types[:3] == ["task-sent", "task-received", "task-started"], uuid
        assert types[-1] in ("task-succeeded", "task-failed") and sum(t in ("task-succeeded", "task-failed")
                                                                       for t in types) == 1
        if "task-retried" in types:  # a retry: sent again by the worker, then a new attempt
            assert types == ["task-sent", "task-received", "task-started", "task-sent", "task-retried",
                             "task-received", "task-started", types[-1]]
            assert [f["retries"] for _, t, f in events if t == "task-received"] == [0, 1]
    outcomes = Counter(t for _, t, _ in sender.events)
    assert outcomes["task-failed"] > 0 and outcomes["task-retried"] > 0
    assert outcomes["task-succeeded"] > 10 * outcomes["task-failed"]


def test_events_carry_the_fields_celery_sends() -> None:
    _, sender = publish(Plan("memory://", tasks=500, seed=6, pace=0.0))
    for hostname, type, fields in sender.events:
        if type == "task-sent":
            assert {"queue", "exchange", "routing_key", "name", "args", "kwargs", "root_id", "parent_id"} <= set(fields)
            assert fields["routing_key"] == fields["queue"]
            assert 50 <= len(fields["args"]) <= 400 and 50 <= len(fields["kwargs"]) <= 400
        elif type == "task-succeeded":
            assert set(fields) == {"uuid", "result", "runtime"}
        elif type == "task-failed":
            assert set(fields) == {"uuid", "exception", "traceback"}
        if type in ("task-received", "task-started", "task-succeeded", "task-failed", "task-retried"):
            assert hostname.startswith("celery@worker-")
    names = {f["name"] for _, t, f in sender.events if t == "task-sent"}
    assert names == {kind.name for kind in KINDS}
    assert any(f["parent_id"] for _, t, f in sender.events if t == "task-sent")


def test_report_counts_what_was_sent() -> None:
    report, sender = publish(Plan("memory://", tasks=300, seed=7, pace=0.0))
    assert report.events == len(sender.events)
    assert report.by_type == Counter(t for _, t, _ in sender.events)
    assert report.tasks == len(report.finals) == 300
    assert set(report.finals) == set(lives(sender.events))
    assert all(report.started <= at <= report.ended for at in report.finals.values())
    assert sender.flushes >= report.events // generator.BATCH_MESSAGES


def test_workers_come_online_first_and_go_offline_last() -> None:
    _, sender = publish(Plan("memory://", tasks=50, seed=8, pace=0.0))
    first, last = sender.events[:WORKERS], sender.events[-WORKERS:]
    assert [t for _, t, _ in first] == ["worker-online"] * WORKERS
    assert [t for _, t, _ in last] == ["worker-offline"] * WORKERS
    assert {h for h, _, _ in first} == {f"celery@worker-{n}" for n in range(1, WORKERS + 1)}
    assert all(f["freq"] == generator.HEARTBEAT_SECONDS and len(f["loadavg"]) == 3 for _, _, f in first)
    assert sum(f["processed"] for _, _, f in last) >= 50


def test_heartbeats_repeat_every_freq_until_stopped() -> None:
    sim = Simulation(Plan("memory://", seed=9))
    sim.online(now=100.0)
    assert sim.due_beats(101.9) == []  # the first beats come one to two intervals after going online
    beats = sim.due_beats(100.0 + 3 * generator.HEARTBEAT_SECONDS - 1e-9)
    assert len(beats) == WORKERS * 2 and all(item[3] == "worker-heartbeat" for item in beats)
    by_host = defaultdict(list)
    for due, _, hostname, _, _, _ in beats:
        by_host[hostname].append(due)
    assert all(b - a == pytest.approx(generator.HEARTBEAT_SECONDS) for a, b in by_host.values())
    assert sim.heap == [] and sim.next_due() is not None  # heartbeats stay apart from task events
    sim.stop_beating()
    assert sim.beats == [] and sim.next_due() is None


def test_a_plan_is_shared_out_among_processes() -> None:
    plan = Plan("memory://", rate=9000.0, tasks=10, seed=2)
    parts = [plan.share(i, 3) for i in range(3)]
    assert [p.tasks for p in parts] == [4, 3, 3]
    assert all(p.rate == 3000.0 for p in parts)
    assert len({p.seed for p in parts}) == 3
    hosts = [{w.hostname for w in Simulation(plan.share(i, 2)).workers} for i in range(2)]
    assert not hosts[0] & hosts[1] and len(hosts[0] | hosts[1]) == WORKERS


def test_failures_carry_a_traceback_of_about_a_kilobyte() -> None:
    for kind in KINDS:
        exception, traceback = failure(kind.name, 3)
        assert traceback.startswith("Traceback (most recent call last):\n")
        assert 700 <= len(traceback) <= 1500
        name, message = traceback.rstrip("\n").rsplit("\n", 1)[1].split(": ", 1)
        assert exception == f"{name}({message!r})"


def test_pace_scales_the_delays_between_a_tasks_events() -> None:
    for pace, low, high in ((1.0, 0.001, 3.6), (0.0, 0.0, 0.0)):
        sim = Simulation(Plan("memory://", seed=11, pace=pace))
        for _ in range(200):
            sim.start_task(now=50.0)
        delays = [item[0] - 50.0 for item in sim.heap]
        assert low <= min(delays) and max(delays) <= high
        assert pace == 0.0 or max(delays) > 0.1  # some runtimes are long


def test_a_rate_is_held() -> None:
    # Well below what one process publishes here (over 10,000 events/s): the pacing is what is tested, not
    # the machine, which the rest of the suite keeps busy (at 3,000/s it once reached only 2,400).
    report, _ = publish(Plan("memory://", rate=1000.0, seconds=1.0, seed=10, pace=0.0))
    assert report.rate == pytest.approx(1000, rel=0.15)


def test_merged_reports_add_up() -> None:
    a = Report("batched", events=10, by_type=Counter({"task-sent": 10}), tasks=2, finals={"a": 1.0, "b": 2.0},
               started=1.0, ended=5.0, last_start=4.0, events_at_last_start=8, cpu_seconds=0.5)
    b = Report("batched", events=6, by_type=Counter({"task-sent": 6}), tasks=1, finals={"c": 3.0},
               started=0.5, ended=6.0, last_start=4.5, events_at_last_start=6, cpu_seconds=0.25)
    merged = a.merge(b)
    assert (merged.processes, merged.events, merged.tasks, merged.cpu_seconds) == (2, 16, 3, 0.75)
    assert merged.by_type == Counter({"task-sent": 16}) and set(merged.finals) == {"a", "b", "c"}
    assert (merged.started, merged.ended) == (0.5, 6.0)
    assert merged.rate == pytest.approx(14 / 4.0)
