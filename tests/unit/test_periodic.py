"""The beat schedule: reading entries, expected times (across DST), matching runs, and statuses on an injected clock."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from celery.schedules import crontab, solar

from dashboard import periodic, periodic_service, periodic_sources
from dashboard.events import EventCollector
from dashboard.periodic import PeriodicWatch, describe, next_after, read_app_schedule
from dashboard.periodic_service import PeriodicService
from dashboard.settings import Settings
from dashboard.rules import AlertEngine, PERIODIC_DEFAULTS

T0 = datetime(2026, 3, 28, 2, 0, tzinfo=timezone.utc).timestamp()  # 03:00 in Berlin, the day before DST starts


def app_with(schedule: dict[str, Any], tz: str = "Europe/Berlin") -> Celery:
    app = Celery("periodic-test", set_as_current=False)
    app.conf.timezone = tz
    app.conf.beat_schedule = schedule
    return app


def run(uuid: str, at: float, name: str = "app.ping", state: str = "SUCCESS", args: str = "[]",
        kwargs: str = "{}") -> dict[str, Any]:
    return {"uuid": uuid, "name": name, "state": state, "received": at, "sent": None, "args": args, "kwargs": kwargs}


def test_entries_are_read_with_their_schedule_in_words() -> None:
    entries = read_app_schedule(app_with({
        "ping": {"task": "app.ping", "schedule": 5.0, "args": (1, "a")},
        "tick": {"task": "app.tick", "schedule": timedelta(minutes=5), "kwargs": {"deep": True}},
        "nightly": {"task": "app.nightly", "schedule": crontab(hour=2, minute=0)},
        "quarter": {"task": "app.q", "schedule": crontab(minute="*/15")},
        "weekly": {"task": "app.w", "schedule": crontab(hour=7, minute=30, day_of_week="mon,fri")},
        "odd": {"task": "app.odd", "schedule": crontab(minute="5-10", hour="*/2")},
        "dusk": {"task": "app.lights", "schedule": solar("sunset", 48.85, 2.35)},
        "broken": {"task": "app.x", "schedule": "every tuesday"},
    }))
    words = {e.name: e.words for e in entries}
    assert words == {"ping": "every 5 seconds", "tick": "every 5 minutes", "nightly": "at 02:00 every day",
                     "quarter": "every 15 minutes", "weekly": "at 07:30 on Monday, Friday",
                     "odd": "cron 5-10 */2 * * *", "dusk": "at sunset (48.85, 2.35)", "broken": "unreadable"}
    by_name = {e.name: e for e in entries}
    assert by_name["ping"].args == (1, "a") and by_name["tick"].kwargs == {"deep": True}
    assert by_name["broken"].error and by_name["broken"].schedule is None
    assert all(e.error is None for e in entries if e.name != "broken")


def test_expected_times_follow_celery_across_a_dst_change() -> None:
    [nightly] = read_app_schedule(app_with({"n": {"task": "t", "schedule": crontab(hour=3, minute=0)}}))
    after = next_after(nightly.schedule, T0)  # 03:00 CET on the 28th -> 03:00 CEST on the 29th: 23 hours
    assert after - T0 == 23 * 3600
    assert datetime.fromtimestamp(after, timezone.utc) == datetime(2026, 3, 29, 1, 0, tzinfo=timezone.utc)
    assert next_after(nightly.schedule, after) - after == 24 * 3600
    [every] = read_app_schedule(app_with({"e": {"task": "t", "schedule": 90}}))
    assert next_after(every.schedule, T0) == T0 + 90  # an interval is elapsed time, DST or not
    [dusk] = read_app_schedule(app_with({"d": {"task": "t", "schedule": solar("sunset", 48.85, 2.35)}}))
    sunset = datetime.fromtimestamp(next_after(dusk.schedule, T0), timezone.utc)
    assert sunset.date().isoformat() == "2026-03-28" and 17 <= sunset.hour <= 19  # Paris, late March, in UTC


def test_runs_match_by_arguments_first_then_by_name_alone() -> None:
    entries = read_app_schedule(app_with({
        "small": {"task": "app.report", "schedule": 60, "args": (1,)},
        "large": {"task": "app.report", "schedule": 60, "args": (2,), "kwargs": {"full": True}},
        "ping": {"task": "app.ping", "schedule": 60},
    }))
    watch = PeriodicWatch(entries, started_at=T0)
    assert watch.observe(run("a", T0 + 1, "app.report", args="[1]")) == "small"  # beat sends args as a list
    assert watch.observe(run("b", T0 + 2, "app.report", args="(2,)", kwargs="{'full': True}")) == "large"
    assert watch.observe(run("c", T0 + 3, "app.report", args="[3]")) is None  # two entries: arguments decide
    assert watch.observe(run("d", T0 + 4, "app.ping", args="['anything']")) == "ping"  # the only entry of its task
    assert watch.observe(run("e", T0 + 5, "app.other")) is None
    assert watch.observe(run("f", T0 + 6, "app.report", args="[1" + "0" * 9000 + "]")) is None  # too long to read
    assert {e["name"]: e["match"] for e in watch.report(T0 + 10)["entries"]} == {
        "small": "arguments", "large": "arguments", "ping": "name"}
    assert watch.observe(run("a", T0 + 1, "app.report", state="FAILURE", args="[1]")) == "small"  # a later state
    small = watch.report(T0 + 10)["entries"][0]
    assert small["last_run"] == {"uuid": "a", "state": "FAILURE", "at": T0 + 1, "matched_by": "arguments"}
    assert small["status"] == "failed"



def test_once_a_run_has_its_entrys_arguments_other_calls_of_the_task_no_longer_count() -> None:
    """An entry alone on its task, which other code also calls (the demo's producer sends ``add`` all the time):
    once a run with the entry's exact arguments is seen, runs are told apart by them, so beat stopping shows
    as missed runs instead of being hidden by the other calls."""
    [entry] = read_app_schedule(app_with({"rates": {"task": "app.add", "schedule": 15, "args": (1.5, 2.5)}}))
    watch = PeriodicWatch([entry], started_at=T0, grace_seconds=5)
    assert watch.observe(run("other-1", T0 + 3, "app.add", args="(4, 5)")) == "rates"  # by name, for now
    assert watch.report(T0 + 4)["entries"][0]["match"] == "name"
    assert watch.observe(run("beat-1", T0 + 15, "app.add", args="[1.5, 2.5]")) == "rates"
    assert watch.observe(run("other-2", T0 + 20, "app.add", args="(6, 7)")) is None
    assert watch.observe(run("other-1", T0 + 3, "app.add", args="(4, 5)")) is None  # read again: dropped
    report = watch.report(T0 + 21)["entries"][0]
    assert report["match"] == "arguments" and [r["uuid"] for r in report["runs"]] == ["beat-1"]
    assert report["status"] == "ok"
    for n in range(1, 5):  # beat stopped at T0 + 15; the producer goes on calling add every 7 s
        assert watch.observe(run(f"more-{n}", T0 + 20 + 7 * n, "app.add", args=f"({n}, {n})")) is None
    late = watch.report(T0 + 51)
    assert late["entries"][0]["status"] == "missed" and late["entries"][0]["missed"] == 2
    assert late["beat_stopped"] is True

def test_statuses_on_an_injected_clock() -> None:
    [entry] = read_app_schedule(app_with({"ping": {"task": "app.ping", "schedule": 60}}))
    watch = PeriodicWatch([entry], started_at=T0, grace_seconds=10)

    def status(now: float) -> tuple[str, int]:
        report = watch.report(now)["entries"][0]
        return report["status"], report["missed"]

    assert status(T0 + 30) == ("unknown", 0)  # nothing seen, nothing due yet
    assert status(T0 + 64) == ("unknown", 0)  # due at +60: a run may take up to 5 s to be seen here
    assert status(T0 + 66) == ("late", 0)  # past that, within the grace
    assert status(T0 + 71) == ("missed", 1)
    watch.observe(run("a", T0 + 72))
    assert status(T0 + 100) == ("ok", 0)
    assert status(T0 + 72 + 60 * 3 + 11) == ("missed", 3)
    report = watch.report(T0 + 72 + 60 * 3 + 11)
    assert report["beat_stopped"] is True and report["last_run_at"] == T0 + 72
    watch.observe(run("b", T0 + 72 + 60 * 3 + 12, state="STARTED"))
    entry_report = watch.report(T0 + 72 + 60 * 3 + 13)["entries"][0]
    assert entry_report["status"] == "ok" and watch.unfinished() == ["b"]
    assert [(r["uuid"], r["timing"], r["missed_before"]) for r in entry_report["runs"]] == [
        ("a", "on-time", 0), ("b", "running", 2)]  # the runs due at +132 and +192 went by
    watch.observe(run("b", T0 + 72 + 60 * 3 + 12))
    assert watch.report(T0 + 300)["entries"][0]["runs"][1]["timing"] == "late"  # nearer +252 than the next
    assert watch.unfinished() == []


def test_the_grace_is_a_tenth_of_the_interval_and_at_least_30_seconds() -> None:
    entries = read_app_schedule(app_with({"fast": {"task": "a", "schedule": 5},
                                          "hourly": {"task": "b", "schedule": crontab(minute=0)}}))
    watch = PeriodicWatch(entries, started_at=T0)
    assert [e["grace"] for e in watch.report(T0)["entries"]] == [30.0, 360.0]


def test_missed_and_failed_runs_alert_and_a_stopped_beat_is_one_alert() -> None:
    entries = read_app_schedule(app_with({"ping": {"task": "app.ping", "schedule": 60},
                                          "pong": {"task": "app.pong", "schedule": 60}}))
    watch = PeriodicWatch(entries, started_at=T0, grace_seconds=10)
    engine = AlertEngine(PERIODIC_DEFAULTS, started_at=T0)
    watch.observe(run("p1", T0 + 60))
    watch.observe(run("q1", T0 + 60, "app.pong", state="FAILURE"))
    fired, _ = engine.check(T0 + 100, {"periodic": watch.report(T0 + 100)})
    assert [(a.rule, a.subject) for a in fired] == [("periodic-failed", "pong")]
    assert fired[0].link == "/tasks/q1"
    watch.observe(run("q2", T0 + 120, "app.pong"))
    watch.observe(run("p2", T0 + 120))
    fired, resolved = engine.check(T0 + 140, {"periodic": watch.report(T0 + 140)})
    assert fired == [] and [a.subject for a in resolved] == ["pong"]
    watch.observe(run("q3", T0 + 180, "app.pong"))
    fired, _ = engine.check(T0 + 195, {"periodic": watch.report(T0 + 195)})  # ping due at +180: missed
    assert [(a.rule, a.subject) for a in fired] == [("periodic-missed", "ping")]
    assert "missed 1 run" in fired[0].summary
    fired, resolved = engine.check(T0 + 300, {"periodic": watch.report(T0 + 300)})  # both missed: beat stopped
    assert [(a.subject, a.summary.split(":")[0]) for a in fired] == [("beat", "beat looks stopped")]
    assert [a.subject for a in resolved] == ["ping"]


def test_describe_falls_back_to_the_schedule_repr() -> None:
    class Custom:
        def __repr__(self) -> str:
            return "<custom schedule>"
    assert describe(Custom()) == "<custom schedule>"


def service_of(app: Any, monkeypatch: pytest.MonkeyPatch) -> PeriodicService:
    """A PeriodicService whose ``--app`` is ``app``."""
    monkeypatch.setattr(periodic_service, "load_user_app", lambda path: app)
    settings = SimpleNamespace(app="proj:app", beat_db=None, redbeat_url=None, periodic_grace_seconds=None)
    owner = SimpleNamespace(settings=settings, collector=EventCollector(Settings()))
    return PeriodicService(owner, clock=lambda: T0)  # type: ignore[arg-type]


def test_a_beat_schedule_that_is_no_dict_is_said_on_the_page(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dashboard"):
        service = service_of(app_with(5), monkeypatch)  # type: ignore[arg-type]
    assert service.watch.errors == ["--app proj:app: the beat schedule cannot be read "
                                    "(TypeError: 'int' object is not iterable)"]
    assert service.dashboard.collector.internal_errors == 0
    [record] = caplog.records  # the log says it once too, as the app's mistake, without a traceback
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "TypeError: 'int' object is not iterable" in record.getMessage()


def test_a_bug_reading_the_beat_schedule_is_counted_and_logged_with_its_traceback(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(app: Any) -> Any:
        raise KeyError("a bug")
    monkeypatch.setattr(periodic_service, "read_app_schedule", broken)
    with caplog.at_level(logging.WARNING, logger="dashboard"):
        service = service_of(app_with({}), monkeypatch)
    assert service.watch.errors == ["--app proj:app: the beat schedule cannot be read (KeyError: 'a bug')"]
    assert service.dashboard.collector.internal_errors == 1
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_a_bug_reading_the_stored_schedules_is_counted_and_the_runs_still_read(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    service = service_of(app_with({}), monkeypatch)
    service.dashboard.settings.beat_db = "postgresql://u:pw@db/beat"
    rounds: list[str] = []

    def broken() -> None:
        service.sources_read_at = None  # read again next round, as after 30 s
        raise RuntimeError("a bug")

    def sleep(seconds: float) -> None:
        service.stopping = len(rounds) == 2

    monkeypatch.setattr(service, "read_sources", broken)
    monkeypatch.setattr(service, "refresh", lambda: rounds.append("refresh"))
    service.dashboard.socketio = SimpleNamespace(sleep=sleep)  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="dashboard"):
        service.run()
    assert rounds == ["refresh", "refresh"] and service.dashboard.collector.internal_errors == 2
    [record] = caplog.records  # once per kind, not every 30 s
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "--beat-db postgresql://u:****@db/beat" in record.getMessage()


def read_redbeat_answers(service: Any, monkeypatch: pytest.MonkeyPatch, answers: list[Any]) -> list[float]:
    """Run the service on a clock of its own, its redbeat source giving ``answers`` in turn (an exception is
    raised), until they run out (or 300 s); return when each read came, in seconds from the start."""
    service.dashboard.settings.redbeat_url = "redis://127.0.0.1:6379/3"
    service.dashboard.settings.redbeat_key_prefix = "redbeat:"
    reads: list[float] = []
    now = [0.0]

    def read(url: str, prefix: str, app: Any) -> list[periodic.Entry]:
        reads.append(now[0])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sleep(seconds: float) -> None:
        now[0] += seconds
        service.stopping = not answers or now[0] > 300

    monkeypatch.setattr(periodic_service, "read_redbeat", read)
    monkeypatch.setattr(periodic_service.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(service, "refresh", lambda: None)
    service.dashboard.socketio = SimpleNamespace(sleep=sleep)
    service.run()
    return reads


def test_stored_schedules_that_answered_empty_are_read_again_at_the_next_refresh(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Beat writes its schedule to redbeat's Redis when it starts, often after the dashboard: an empty
    answer is read again 2 s later, then 4, 8... up to 30 s; one with entries, or an error, waits the 30 s."""
    service = service_of(app_with({}), monkeypatch)
    reads = read_redbeat_answers(service, monkeypatch, [
        [], [], [periodic.Entry("nightly", "ops.cleanup", source="redbeat")],
        periodic_sources.SourceError("--redbeat-url redis://127.0.0.1:6379/3: refused"), [], [], [], [], [], [], []])
    # empty (then 2 s), empty (then 4 s), entries (then 30 s), an error (30 s), then empty 7 times in a row
    assert reads == [0, 2, 6, 36, 66, 68, 72, 80, 96, 126, 156]
    assert service.empty_reads == 7 and [e.name for e in service.watch.entries] == []


def test_a_read_that_fails_on_a_bug_waits_the_full_interval_even_after_empty_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in reading the schedules is not an empty answer: after one, the reads go back to every 30 s
    instead of repeating (and counting the bug) at the early pace of the empty answers before it."""
    service = service_of(app_with({}), monkeypatch)
    reads = read_redbeat_answers(service, monkeypatch, [[], [], TypeError("a bug"), TypeError("a bug"),
                                                        TypeError("a bug")])
    # empty (then 2 s), empty (then 4 s), then the bug: every 30 s
    assert reads == [0, 2, 6, 36, 66]
    assert service.empty_reads == 0 and service.dashboard.collector.internal_errors == 3


class BrokenSchedule:
    """A schedule object whose ``remaining_estimate`` has a bug."""

    nowfun = None

    def remaining_estimate(self, last_run_at: Any) -> Any:
        raise RuntimeError("a bug")


def test_an_entry_celery_cannot_use_is_said_on_the_page_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="dashboard"):
        [entry] = read_app_schedule(app_with({"broken": {"task": "app.x", "schedule": "every tuesday"}}))
    assert entry.schedule is None and entry.error == "AttributeError: 'str' object has no attribute 'app'"  # Celery's
    assert not caplog.records


def test_a_bug_reading_an_entry_is_logged_with_its_traceback_and_the_others_go_on(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(periodic, "_bugs_logged", set())  # whatever other tests logged
    with caplog.at_level(logging.DEBUG, logger="dashboard"):
        entries = read_app_schedule(app_with({"odd": {"task": "app.x", "schedule": BrokenSchedule()},
                                              "ping": {"task": "app.ping", "schedule": 5.0}}))
    by_name = {e.name: e for e in entries}
    assert by_name["odd"].error == "RuntimeError: a bug" and by_name["odd"].schedule is None
    assert by_name["ping"].error is None
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError and "odd" in record.getMessage()
    with caplog.at_level(logging.DEBUG, logger="dashboard"):  # read again, as every few seconds: logged once
        again = read_app_schedule(app_with({"odd": {"task": "app.x", "schedule": BrokenSchedule()}}))
    assert again[0].error == "RuntimeError: a bug" and len(caplog.records) == 1


def django_row(name: str, every: Any = 5, period: Any = "minutes") -> tuple[Any, ...]:
    """A row of BEAT_DB_QUERY holding an interval schedule."""
    return (name, "app.t", "[]", "{}", True, every, period) + (None,) * 10


@pytest.mark.parametrize(("row", "error"), [
    (django_row("bad-period", period="fortnights"), "ValueError: unknown interval period 'fortnights'"),
    (django_row("no-number", every="x"), "ValueError: invalid literal for int() with base 10: 'x'"),
    (django_row("null-number", every=[]), "TypeError: int() argument must be a string, a bytes-like object or a "
                                          "real number, not 'list'"),
])
def test_a_wrong_beat_db_row_is_said_on_the_page_without_a_traceback(row: tuple[Any, ...], error: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="dashboard"):
        entry = periodic_sources._django_entry(row, app_with({}))
    assert entry.schedule is None and entry.error == error
    assert not caplog.records


@pytest.mark.parametrize("raw", [None, b"{not json", b"[1]", b'{"schedule": {"__type__": "interval"}}'])
def test_a_wrong_redbeat_definition_is_said_on_the_page_without_a_traceback(raw: Any,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="dashboard"):
        entry = periodic_sources._redbeat_entry("e", raw, app_with({}))
    assert entry.schedule is None and entry.error
    assert not caplog.records


def test_a_bug_reading_a_stored_schedule_is_logged_with_its_traceback(monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    def broken(schedule: Any, after: float) -> float:
        raise RuntimeError("a bug")
    monkeypatch.setattr(periodic_sources, "next_after", broken)
    with caplog.at_level(logging.DEBUG, logger="dashboard"):
        row_entry = periodic_sources._django_entry(django_row("db-entry"), app_with({}))
        key_entry = periodic_sources._redbeat_entry(
            "key-entry", b'{"task": "app.t", "schedule": {"__type__": "interval", "every": 5}}', app_with({}))
    for entry in (row_entry, key_entry):
        assert entry.schedule is None and entry.error == "RuntimeError: a bug"
    assert [(r.exc_info is not None and r.exc_info[0] is RuntimeError) for r in caplog.records] == [True, True]
    assert "db-entry" in caplog.records[0].getMessage() and "key-entry" in caplog.records[1].getMessage()


@pytest.mark.parametrize(("read", "start"), [
    (lambda: periodic_sources.read_redbeat("http://x", "redbeat", app_with({})), "--redbeat-url http://x: "),
    (lambda: periodic_sources.read_redbeat("redis://:pw@h:notaport/0", "redbeat", app_with({})),
     "--redbeat-url redis://:****@h:notaport/0: "),
    (lambda: periodic_sources.read_beat_db("mysql://u:pw@h:notaport/db", app_with({})),
     "--beat-db mysql://u:****@h:notaport/db: "),
    (lambda: periodic_sources.read_beat_db("postgresql://u:pw@[::1/db", app_with({})),
     "--beat-db postgresql://u:****@[::1/db: not a valid URL (Invalid IPv6 URL)"),
])
def test_a_wrong_schedule_url_is_a_source_error_with_its_secrets_masked(read: Any, start: str) -> None:
    with pytest.raises(periodic_sources.SourceError) as raised:
        read()
    assert str(raised.value).startswith(start) and "pw" not in str(raised.value)
