"""Periodic tasks: the beat schedule, when each entry should run, and whether its runs came.

``read_app_schedule`` reads ``--app``'s ``beat_schedule`` through Celery's own schedule classes
(``schedule`` for numbers and ``timedelta``, ``crontab``, ``solar``). ``PeriodicWatch`` matches the
tasks the dashboard saw to the entries and says, for each, when it should run next, what its
last run did, how many runs are missing and its status: ``ok``, ``late`` (past its time, within
the grace), ``missed`` (past its time and the grace, no run), ``failed`` (its last run failed) or
``unknown`` (no run seen yet, and none due yet).

Beat stamps nothing on the messages it sends, so a run is matched to an entry by task name and
arguments: exact args and kwargs first, then by name alone when only one entry uses that task.

No I/O but a log line for a bug: the caller feeds runs (``observe``) and passes ``now``; tests inject both.
"""
from __future__ import annotations

import ast
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from celery.schedules import ParseException

log = logging.getLogger(__name__)

#: Runs kept per entry (the sparkline and the last run).
RUNS_KEPT = 30
#: The grace after an expected time when none is configured: this share of the interval, at least MIN_GRACE.
GRACE_SHARE = 0.10
MIN_GRACE_SECONDS = 30.0
#: How long after it is sent a run may take to be seen here: the history writes a task within 2.5 s and
#: the runs are read every 2 s. Until then a run not seen yet is not called late.
SEEN_WITHIN_SECONDS = 5.0
#: Expected times counted at most when many were missed (a schedule every second, a week down).
MISSED_COUNT_CAP = 10_000
#: Argument texts longer than this are not parsed (they are truncated reprs anyway).
MAX_ARGUMENT_TEXT = 8_192
#: What a schedule entry that is wrong raises while read: Celery's schedule classes on a bad field
#: (``ParseException``, ValueError), a value of the wrong type or out of range, solar without ephem
#: (ImportError), a stored definition missing a field (KeyError) or holding null for an object
#: (AttributeError). Anything else is a bug of the dashboard's.
ENTRY_ERRORS = (ValueError, TypeError, KeyError, AttributeError, ArithmeticError, ImportError, ParseException)
#: (entry, error) pairs of bugs already logged, and how many are remembered.
_bugs_logged: set[tuple[str, str]] = set()
MAX_BUGS_LOGGED = 1_000
FINAL_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED", "REJECTED", "IGNORED"})
STATUSES = ("ok", "late", "missed", "failed", "unknown")


@dataclass
class Entry:
    """One schedule entry; ``schedule`` is a Celery schedule object, or None with ``error`` saying why."""

    name: str
    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    schedule: Any = None
    source: str = "app"
    error: str | None = None
    enabled: bool = True  # a disabled entry is listed, never judged
    once: Any = None  # a one-off run at a fixed time (django-celery-beat's clocked schedule), instead of a schedule

    @property
    def words(self) -> str:
        if self.once is not None:
            return repr(self.once)
        return describe(self.schedule) if self.schedule is not None else "unreadable"


def read_app_schedule(app: Any) -> list[Entry]:
    """Return ``app.conf.beat_schedule``'s entries; an entry Celery cannot read carries its error."""
    from celery.schedules import maybe_schedule

    entries = []
    for name, raw in dict(app.conf.beat_schedule or {}).items():
        raw = raw if isinstance(raw, dict) else {}
        entry = Entry(str(name), str(raw.get("task", "")), tuple(raw.get("args") or ()), dict(raw.get("kwargs") or {}))
        try:
            entry.schedule = maybe_schedule(raw.get("schedule"), raw.get("relative", False), app=app)
            if entry.schedule is None or not hasattr(entry.schedule, "remaining_estimate"):
                raise ValueError(f"schedule must be a number, a timedelta, a crontab or a solar, "
                                 f"got {raw.get('schedule')!r}")
            next_after(entry.schedule, datetime.now(timezone.utc).timestamp())  # it must be computable
        except Exception as exc:  # an entry Celery itself cannot use (solar without ephem, a bad crontab)
            unreadable(entry, exc)
        if not entry.task and entry.error is None:
            entry.error = "no task named"
        entries.append(entry)
    return entries


def unreadable(entry: Entry, exc: Exception) -> None:
    """Leave ``entry`` without a schedule, ``exc`` as its error on the page (the other entries go on);
    an error that no wrong entry raises is a bug, also logged with its traceback (once per entry and
    error: the schedules are read again every few seconds)."""
    entry.schedule, entry.error = None, f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, ENTRY_ERRORS) and (entry.name, entry.error) not in _bugs_logged:
        if len(_bugs_logged) >= MAX_BUGS_LOGGED:
            _bugs_logged.clear()
        _bugs_logged.add((entry.name, entry.error))
        log.error("periodic task %s: reading its schedule failed", entry.name, exc_info=exc)


def next_after(schedule: Any, after: float) -> float:
    """Return the first time (epoch seconds) ``schedule`` is due after ``after``, by Celery's own rules."""
    fixed = datetime.fromtimestamp(after, timezone.utc)
    # remaining_estimate is "due at" minus now: with now held at ``after``, it is exact. The schedule's
    # own clock is swapped for the call and put back (a copy would lose its app, hence its timezone).
    saved = schedule.nowfun
    schedule.nowfun = lambda: fixed
    try:
        seconds = schedule.remaining_estimate(fixed).total_seconds()
    finally:
        schedule.nowfun = saved
    return after + seconds if seconds > 0 else _step_past(schedule, after)


def _step_past(schedule: Any, after: float) -> float:
    """A schedule that says "due now" at ``after`` (an interval of 0): take its interval, at least 1 s."""
    run_every = getattr(schedule, "run_every", None)
    seconds = run_every.total_seconds() if isinstance(run_every, timedelta) else 1.0
    return after + max(seconds, 1.0)


def interval_of(schedule: Any, around: float) -> float:
    """The time between two runs around ``around`` (a crontab's varies: take the next two)."""
    run_every = getattr(schedule, "run_every", None)
    if isinstance(run_every, timedelta):
        return max(run_every.total_seconds(), 1.0)
    first = next_after(schedule, around)
    return max(next_after(schedule, first) - first, 1.0)


def describe(schedule: Any) -> str:
    """The schedule in words: "every 5 minutes", "at 02:00 every day", "at sunset (48.85, 2.35)"."""
    run_every = getattr(schedule, "run_every", None)
    if isinstance(run_every, timedelta):
        return "every " + _duration(run_every.total_seconds())
    from celery.schedules import crontab, solar

    if isinstance(schedule, crontab):
        zone = getattr(schedule, "zone", None)  # periodic_sources.ZonedCrontab: its own timezone
        return _describe_crontab(schedule) + (f" ({zone})" if zone is not None else "")
    if isinstance(schedule, solar):
        return f"at {schedule.event.replace('_', ' ')} ({schedule.lat:g}, {schedule.lon:g})"
    return repr(schedule)


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' * (count != 1)}" if count != 1 else unit
    return f"{seconds:g} seconds" if seconds != 1 else "second"


_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def _describe_crontab(cron: Any) -> str:
    minute, hour = str(cron._orig_minute), str(cron._orig_hour)
    dow, dom, moy = str(cron._orig_day_of_week), str(cron._orig_day_of_month), str(cron._orig_month_of_year)
    text = f"cron {minute} {hour} {dom} {moy} {dow}"
    days_all = dom == "*" and moy == "*"
    if days_all and dow == "*" and hour == "*":
        if minute == "*":
            return "every minute"
        if minute.startswith("*/") and minute[2:].isdigit():
            return f"every {int(minute[2:])} minutes"
        if minute.isdigit():
            return f"at minute {int(minute)} of every hour"
    if minute.isdigit() and hour.isdigit() and days_all:
        at = f"at {int(hour):02d}:{int(minute):02d}"
        if dow == "*":
            return f"{at} every day"
        days = sorted(cron.day_of_week)
        return f"{at} on {', '.join(_DAYS[d] for d in days)}"
    return text


def arguments_text(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    """The entry's args and kwargs as the task list shows a task's (Python reprs)."""
    return repr(args), repr(kwargs)


def _literal(text: Any) -> Any:
    """A task's args or kwargs text (a repr) read back as a value, or a marker when it cannot be."""
    if not isinstance(text, str) or len(text) > MAX_ARGUMENT_TEXT:
        return _UNREADABLE
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _UNREADABLE


_UNREADABLE = object()


def arguments_match(entry: Entry, args_text: Any, kwargs_text: Any) -> bool:
    """Whether a task's args and kwargs texts are exactly the entry's (beat sends args as a list)."""
    args = _literal(args_text)
    kwargs = _literal(kwargs_text)
    if isinstance(args, (list, tuple)):
        args_equal = tuple(args) == entry.args
    else:
        args_equal = args_text in (repr(list(entry.args)), repr(entry.args))
    if isinstance(kwargs, dict):
        kwargs_equal = kwargs == entry.kwargs
    else:
        kwargs_equal = kwargs_text == repr(entry.kwargs) or (kwargs_text in (None, "") and not entry.kwargs)
    return args_equal and kwargs_equal


@dataclass
class Run:
    uuid: str
    at: float  # sent, else received: when beat sent it, as near as the events tell
    state: str
    matched_by: str  # "arguments" or "name"


class PeriodicWatch:
    """Matches observed runs to schedule entries and reports each entry's status; see the module docstring."""

    def __init__(self, entries: Iterable[Entry], started_at: float, grace_seconds: float | None = None,
                 errors: Iterable[str] = ()) -> None:
        self.started_at = started_at
        self.grace_seconds = grace_seconds  # None: GRACE_SHARE of the interval, at least MIN_GRACE_SECONDS
        self.errors = list(errors)  # schedules that could not be read at all (an --app without one, ...)
        self.entries: list[Entry] = []
        self.runs: dict[str, list[Run]] = {}
        self._by_task: dict[str, list[Entry]] = {}
        self._seen: dict[str, str] = {}  # task uuid -> entry name, so a task's later states update its run
        self.set_entries(entries)

    def set_entries(self, entries: Iterable[Entry]) -> None:
        """Take the schedule as read now (a database's entries change while the dashboard runs): the runs
        of the entries still there are kept, those of the others forgotten."""
        self.entries = list(entries)
        names = {entry.name for entry in self.entries}
        self.runs = {name: self.runs.get(name, []) for name in names}
        self._seen = {uuid: name for uuid, name in self._seen.items() if name in names}
        self._by_task = {}
        for entry in self.entries:
            if entry.schedule is not None or entry.once is not None:
                self._by_task.setdefault(entry.task, []).append(entry)

    @property
    def task_names(self) -> list[str]:
        return sorted(self._by_task)

    def match_mode(self, entry: Entry) -> str:
        """How runs are matched to this entry: "arguments" when other entries share its task or a run with its
        exact arguments was seen (``observe``), else "name"."""
        if len(self._by_task.get(entry.task, ())) > 1 or self._by_arguments(entry.name):
            return "arguments"
        return "name"

    def _by_arguments(self, name: str) -> bool:
        return any(run.matched_by == "arguments" for run in self.runs.get(name, ()))

    def observe(self, task: dict[str, Any]) -> str | None:
        """Take a task seen by the dashboard (its list shape); return the entry it is a run of, if any."""
        uuid = task.get("uuid")
        if not isinstance(uuid, str):
            return None
        known = self._seen.get(uuid)
        if known is not None:
            for run in self.runs.get(known, []):
                if run.uuid == uuid:
                    run.state = str(task.get("state") or run.state)
            return known
        candidates = self._by_task.get(task.get("name") or "", [])
        if not candidates:
            return None
        at = task.get("sent") or task.get("received") or task.get("timestamp")
        if not isinstance(at, (int, float)) or not math.isfinite(at):
            return None
        exact = [e for e in candidates if arguments_match(e, task.get("args"), task.get("kwargs"))]
        if exact:
            entry, matched_by = exact[0], "arguments"
            if not self._by_arguments(entry.name):  # beat's runs are told apart from now on: drop those by name
                kept = [run for run in self.runs.get(entry.name, []) if run.matched_by == "arguments"]
                for run in self.runs.get(entry.name, []):
                    if run.matched_by != "arguments":
                        self._seen.pop(run.uuid, None)
                self.runs[entry.name] = kept
        elif len(candidates) == 1 and not self._by_arguments(candidates[0].name):
            entry, matched_by = candidates[0], "name"
        else:  # another entry's task, or other code's call of a task whose runs have their entry's arguments
            return None
        runs = self.runs.setdefault(entry.name, [])
        runs.append(Run(uuid, float(at), str(task.get("state") or "PENDING"), matched_by))
        runs.sort(key=lambda run: run.at)
        if len(runs) > RUNS_KEPT:
            for old in runs[:-RUNS_KEPT]:
                self._seen.pop(old.uuid, None)
            del runs[:-RUNS_KEPT]
        self._seen[uuid] = entry.name
        return entry.name

    def unfinished(self) -> list[str]:
        """The uuids of runs not finished yet, whose state the caller reads again."""
        return [run.uuid for runs in self.runs.values() for run in runs if run.state not in FINAL_STATES]

    def grace(self, entry: Entry, around: float) -> float:
        if self.grace_seconds is not None:
            return self.grace_seconds
        return max(GRACE_SHARE * interval_of(entry.schedule, around), MIN_GRACE_SECONDS)

    def report(self, now: float) -> dict[str, Any]:
        """``GET /api/periodic``: every entry with its status, and whether beat as a whole looks stopped."""
        items = [self._entry_report(entry, now) for entry in self.entries]
        judged = [item for item in items if item["error"] is None and item["enabled"] and item["next_run"] is not None]
        stopped = bool(judged) and all(item["status"] == "missed" for item in judged)
        last_any = max((item["last_run"]["at"] for item in judged if item["last_run"]), default=None)
        return {"entries": items, "beat_stopped": stopped, "last_run_at": last_any, "errors": list(self.errors)}

    def _entry_report(self, entry: Entry, now: float) -> dict[str, Any]:
        args, kwargs = arguments_text(entry.args, entry.kwargs)
        body: dict[str, Any] = {"name": entry.name, "task": entry.task, "args": args, "kwargs": kwargs,
                                "schedule": entry.words, "source": entry.source, "error": entry.error,
                                "enabled": entry.enabled, "next_run": None, "last_run": None, "missed": 0,
                                "status": "unknown", "match": self.match_mode(entry), "grace": None, "runs": []}
        runs = self.runs.get(entry.name, [])
        last = runs[-1] if runs else None
        if last is not None:
            body["last_run"] = {"uuid": last.uuid, "state": last.state, "at": last.at, "matched_by": last.matched_by}
        if entry.once is not None:  # one run at a fixed time: ok once it came, else unknown (never judged)
            body["next_run"] = None if last else entry.once.at.timestamp()
            body["status"] = "failed" if last and last.state == "FAILURE" else "ok" if last else "unknown"
            return body
        if entry.schedule is None or not entry.enabled:
            return body
        reference = last.at if last else self.started_at
        expected = next_after(entry.schedule, reference)
        grace = self.grace(entry, reference)
        body["grace"] = grace
        body["runs"] = self._timeline(entry, runs, grace)
        missed = 0
        slot = expected
        while slot + grace < now and missed < MISSED_COUNT_CAP:
            missed += 1
            slot = next_after(entry.schedule, slot)
        body["next_run"] = slot if missed else expected
        body["missed"] = missed
        if missed:
            body["status"] = "missed"
        elif last is not None and last.state == "FAILURE":
            body["status"] = "failed"
        elif now > expected + min(SEEN_WITHIN_SECONDS, grace):
            body["status"] = "late"
        elif last is None:
            body["status"] = "unknown"
        else:
            body["status"] = "ok"
        return body

    def _timeline(self, entry: Entry, runs: list[Run], grace: float) -> list[dict[str, Any]]:
        """The recent runs for the sparkline: each on time, late or failed, with the runs missed before it."""
        timeline = []
        previous = None
        for run in runs:
            missed = 0
            timing = "on-time"
            if previous is not None:
                slot = next_after(entry.schedule, previous.at)
                passed = None  # the last expected time that went by beyond its grace before this run
                while slot + grace < run.at and missed < MISSED_COUNT_CAP:
                    missed, passed = missed + 1, slot
                    slot = next_after(entry.schedule, slot)
                if passed is not None and run.at - passed < slot - run.at:  # nearer the one gone by: it came late
                    missed -= 1
                    timing = "late"
            if run.state == "FAILURE":
                timing = "failed"
            elif run.state not in FINAL_STATES:
                timing = "running"
            timeline.append({"uuid": run.uuid, "at": run.at, "state": run.state, "timing": timing,
                             "missed_before": missed})
            previous = run
        return timeline
