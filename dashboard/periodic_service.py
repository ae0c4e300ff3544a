"""Watches ``--app``'s beat schedule: reads the runs of its tasks every few seconds and reports each entry.

Runs are read from the task history by task name (the name index: a few milliseconds a name), so
the last runs before a restart count too; a run still in flight is followed in the model until it
ends. ``report`` is ``GET /api/periodic``, and the alert rules' ``periodic-missed`` and
``periodic-failed`` kinds read it (see ``rules.py``).
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from .periodic import Entry, PeriodicWatch, read_app_schedule
from .periodic_sources import SourceError, read_beat_db, read_redbeat
from .redact import mask_url
from .userapp import APP_ERRORS, load_user_app

if TYPE_CHECKING:
    from . import Dashboard

log = logging.getLogger(__name__)

#: Seconds between two reads of the runs.
REFRESH_SECONDS = 2.0
#: Seconds between two reads of the schedules kept in a database or in Redis.
SOURCES_SECONDS = 30.0
#: Seconds after a read at which they answered with no entry at all, doubling at each such read up to
#: ``SOURCES_SECONDS``: beat writes its schedule to redbeat's Redis or to the database when it starts,
#: often just after the dashboard, while a source that stays empty is not asked every 2 s for good.
EMPTY_SOURCES_SECONDS = REFRESH_SECONDS
#: Each read goes back this far before the previous one: a run is stored up to 2.5 s after it is seen.
OVERLAP_SECONDS = 120.0
#: Runs of one task name read at a time, newest first.
READ_LIMIT = 500
#: What an ``--app`` whose beat schedule is wrong raises (TypeError: a ``beat_schedule`` that is no dict).
SCHEDULE_ERRORS = (*APP_ERRORS, TypeError)


class PeriodicService:
    """The beat schedule of ``--app`` and its observed runs; see the module docstring."""

    def __init__(self, dashboard: "Dashboard", clock: Callable[[], float] = time.time) -> None:
        self.dashboard = dashboard
        self.clock = clock
        settings = dashboard.settings
        self.app: Any = None
        self.app_entries: list[Entry] = []
        errors = []
        self._logged: set[tuple[str, str]] = set()  # (entry, error) already logged
        if settings.app:
            try:
                self.app = load_user_app(settings.app)
                self.app_entries = read_app_schedule(self.app)
            except Exception as exc:  # the queues already read it at start; a schedule that breaks stays on the page
                error = f"--app {settings.app}: the beat schedule cannot be read ({type(exc).__name__}: {exc})"
                errors.append(error)
                self._logged.add(("", error))  # logged here, not again with the other sources' errors
                if isinstance(exc, SCHEDULE_ERRORS):  # the app's schedule is wrong: no traceback to show
                    log.warning("periodic tasks: %s", error)
                else:  # a bug, not the app's schedule: said as one too
                    dashboard.collector.count_internal_error()
                    log.exception("--app %s: reading the beat schedule failed", settings.app)
        self._log_errors(self.app_entries)
        self.watch = PeriodicWatch(self.app_entries, started_at=clock(),
                                   grace_seconds=settings.periodic_grace_seconds, errors=errors)
        self.read_until: float | None = None  # received time up to which runs were read
        self.sources_read_at: float | None = None  # monotonic time the database and Redis schedules were read
        self.empty_reads = 0  # reads in a row at which they answered, without error, with no entry at all
        self.stopping = False

    @property
    def configured(self) -> bool:
        """Whether any schedule is watched: --app, --beat-db or --redbeat-url."""
        settings = self.dashboard.settings
        return bool(settings.app or settings.beat_db or settings.redbeat_url)

    def start(self) -> None:
        if self.configured:
            self.dashboard.socketio.start_background_task(self.run)

    def stop(self) -> None:
        self.stopping = True

    def run(self) -> None:
        while not self.stopping:
            every = min(SOURCES_SECONDS, EMPTY_SOURCES_SECONDS * 2 ** (self.empty_reads - 1)) \
                if self.empty_reads else SOURCES_SECONDS
            if self.sources_read_at is None or time.monotonic() - self.sources_read_at >= every:
                try:
                    self.read_sources()
                except Exception as exc:  # a source that cannot be read raises SourceError, handled inside: a bug
                    self.empty_reads = 0  # not an empty answer: the next read waits the full interval
                    self._report_bug(exc)
            try:  # the runs of the entries already known, whatever the sources did
                self.refresh()
            except Exception as exc:
                self.dashboard.history.report_failure(exc, "reading periodic runs from")
            self.dashboard.socketio.sleep(REFRESH_SECONDS)

    def _report_bug(self, exc: Exception) -> None:
        """Count a failed read of the schedules; log its traceback once per kind, as it would fail every read."""
        if not self.dashboard.collector.count_bug("reading the schedules", exc):
            return
        settings = self.dashboard.settings
        sources = [f"{flag} {mask_url(url)}" for flag, url in (("--beat-db", settings.beat_db),
                                                               ("--redbeat-url", settings.redbeat_url)) if url]
        log.error("reading the schedules of %s failed; the next read tries again (logged once per kind)",
                  " and ".join(sources) or f"--app {settings.app}", exc_info=exc)

    def read_sources(self) -> None:
        """Read the schedules kept in django-celery-beat's database and in redbeat's Redis again (their
        entries change while beat runs); a source that cannot be read says why on the page. Sources that
        answered with no entry at all are read again sooner (``EMPTY_SOURCES_SECONDS``)."""
        settings = self.dashboard.settings
        self.sources_read_at = time.monotonic()
        if not (settings.beat_db or settings.redbeat_url):
            return
        entries = list(self.app_entries)
        app_errors = [e for e in self.watch.errors if e.startswith("--app ")]
        errors = list(app_errors)
        if settings.beat_db:
            read = lambda: read_beat_db(settings.beat_db, self.app)  # noqa: E731
            # SQLite and psycopg block in C: a native thread; PyMySQL is pure Python, green under eventlet.
            blocking = not settings.beat_db.lower().startswith(("mysql", "mariadb"))
            try:
                entries += self.dashboard.run_blocking(read) if blocking else read()
            except SourceError as exc:
                errors.append(str(exc))
        if settings.redbeat_url:
            try:
                entries += read_redbeat(settings.redbeat_url, settings.redbeat_key_prefix, self.app)
            except SourceError as exc:
                errors.append(str(exc))
        for error in errors:
            if ("", error) not in self._logged:
                self._logged.add(("", error))
                log.warning("periodic tasks: %s", error)
        self._log_errors(entries)
        empty = len(errors) == len(app_errors) and len(entries) == len(self.app_entries)
        self.empty_reads = self.empty_reads + 1 if empty else 0
        self.watch.set_entries(entries)
        self.watch.errors = errors

    def _log_errors(self, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.error and (entry.name, entry.error) not in self._logged:
                self._logged.add((entry.name, entry.error))
                log.warning("periodic task %s: %s", entry.name, entry.error)

    def refresh(self) -> None:
        """Read the runs of every scheduled task name since the last read, and the state of those in flight."""
        now = self.clock()
        since = None if self.read_until is None else self.read_until - OVERLAP_SECONDS
        store, run = self.dashboard.store, self.dashboard.run_blocking
        for name in self.watch.task_names:
            page = run(store.query, name=name, since=since, sort="received", descending=True, limit=READ_LIMIT)
            for task in reversed(page["items"]):  # oldest first
                self.watch.observe(task)
        for uuid in self.watch.unfinished():
            shape, _ = self.dashboard.cluster.task_detail(uuid)
            if shape is not None:
                self.watch.observe(shape)
        self.read_until = now

    def report(self) -> dict[str, Any]:
        return self.watch.report(self.clock())
