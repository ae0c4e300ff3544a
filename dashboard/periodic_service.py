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

from .periodic import PeriodicWatch, read_app_schedule
from .userapp import load_user_app

if TYPE_CHECKING:
    from . import Dashboard

log = logging.getLogger(__name__)

#: Seconds between two reads of the runs.
REFRESH_SECONDS = 2.0
#: Each read goes back this far before the previous one: a run is stored up to 2.5 s after it is seen.
OVERLAP_SECONDS = 120.0
#: Runs of one task name read at a time, newest first.
READ_LIMIT = 500


class PeriodicService:
    """The beat schedule of ``--app`` and its observed runs; see the module docstring."""

    def __init__(self, dashboard: "Dashboard", clock: Callable[[], float] = time.time) -> None:
        self.dashboard = dashboard
        self.clock = clock
        settings = dashboard.settings
        entries = []
        errors = []
        if settings.app:
            try:
                entries = read_app_schedule(load_user_app(settings.app))
            except Exception as exc:  # the queues already read it at start; a schedule that breaks stays on the page
                errors.append(f"--app {settings.app}: the beat schedule cannot be read ({type(exc).__name__}: {exc})")
        for entry in entries:
            if entry.error:
                log.warning("periodic task %s: %s", entry.name, entry.error)
        self.watch = PeriodicWatch(entries, started_at=clock(), grace_seconds=settings.periodic_grace_seconds,
                                   errors=errors)
        self.read_until: float | None = None  # received time up to which runs were read
        self.stopping = False

    @property
    def enabled(self) -> bool:
        return bool(self.watch.entries or self.watch.errors)

    def start(self) -> None:
        if self.watch.task_names:
            self.dashboard.socketio.start_background_task(self.run)

    def stop(self) -> None:
        self.stopping = True

    def run(self) -> None:
        while not self.stopping:
            try:
                self.refresh()
            except Exception as exc:
                self.dashboard.history.report_failure(exc, "reading periodic runs from")
            self.dashboard.socketio.sleep(REFRESH_SECONDS)

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
