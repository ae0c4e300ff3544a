"""The history writer: moves what the state recorded into the task store, in batches, off the event loop.

Every ``WRITE_INTERVAL_SECONDS`` it takes the tasks and events changed since
the last write (from the model, ``cluster.Cluster``) and hands
them to ``TaskStore.write_batch`` through ``run_blocking`` (a native thread
under eventlet). A write that fails on the file or the disk (full, locked, an
I/O error) is kept and retried with the next batch, so a full disk loses
nothing until it is over. A write that fails on a row is split by task and
bisected: every other task is stored, and the task(s) the store cannot take
are logged by id, counted (``quarantined``) and dropped, so one bad row never
stalls the history. It prunes by the retention settings in the background and
warms the state from the store at start-up.

With several processes sharing one history (``--leader-lock``), only the leader writes. A
follower drains the model as the leader does but keeps what it drained for the last
``replay_seconds`` instead (``Followed``); when it takes over (``promote``) it writes those: the
leader that died may not have written them. Task rows and events are written idempotently, so
what both wrote is stored once; the analytics minutes (which add up) are written only for the
minutes that closed after the old leader's last renewal.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Any, Callable, NamedTuple

from .events import GAPS_SHOWN, EventCollector
from .stats import Row
from .store import HistoryStore, StoreClosed, is_storage_failure

log = logging.getLogger(__name__)

#: How often pending changes are written, in seconds.
WRITE_INTERVAL_SECONDS = 0.5
#: Task shapes let go of at a time once written; other work (requests, events) runs between chunks.
#: Letting go of a write's 600 finished timelines at 5,000 events/s took 8-10 ms in one go.
RELEASE_CHUNK = 200
#: How often the queue depths and worker activity of the open minutes are written, in seconds: each write
#: is a transaction, and they keep their highest value in memory meanwhile.
GAUGE_WRITE_SECONDS = 5.0
#: An unfinished task is written when it finishes or this long after it first changed, whichever
#: is first: most tasks are written once instead of once per state (close writes everything).
HOLD_UNFINISHED_SECONDS = 2.0
#: How often retention pruning runs, in seconds.
PRUNE_INTERVAL_SECONDS = 60.0
#: Tasks read back into memory at start-up, at most.
WARM_TASKS = 5_000
#: Events kept waiting after failed writes before the oldest are dropped (and counted).
MAX_PENDING_EVENTS = 2_000_000
#: Analytics buckets kept waiting after failed writes, at most (the oldest are dropped past this).
MAX_PENDING_STATS = 200_000

Event = tuple[str, dict[str, Any]]  # (task uuid, event dict), as the state hands them over
#: One task's share of a batch: its uuid, its shape (none for events of a task not in the batch), its events.
TaskWrite = tuple[str, list[dict[str, Any]], list[Event]]


class Followed(NamedTuple):
    """What a follower drained in one flush, kept for ``replay_seconds`` in case it takes over."""
    at: float
    tasks: list[dict[str, Any]]
    events: list[Event]
    depths: list[tuple[str, float, int]]
    active: list[tuple[str, float, int]]
    stats: list[Row]
    markers: list[dict[str, Any]]
    gaps: list[dict[str, Any]]


class HistoryWriter:
    """Writes the state's changes to the store and keeps it pruned."""

    def __init__(self, collector: EventCollector, store: HistoryStore, run_blocking: Callable[..., Any]) -> None:
        self.collector = collector
        self.cluster = collector.cluster
        self.store = store
        self.run_blocking = run_blocking
        self.audit_seconds = collector.settings.audit_seconds  # the audit log is kept at least this long
        self.stopping = False
        self.closed = False
        self.written_events = 0
        self._gauges_at = 0.0  # when queue depths and worker activity were last drained (GAUGE_WRITE_SECONDS)
        self.dropped_events = 0
        self.quarantined = 0  # tasks the store could not take, dropped
        self.last_error: str | None = None
        self.pending_tasks: dict[str, dict[str, Any]] = {}  # from failed writes, retried
        self.pending_events: list[Event] = []
        self.pending_stats: list[Row] = []  # closed analytics minutes from failed writes, retried
        self.pending_markers: list[dict[str, Any]] = []
        self._flushing = threading.Lock()  # the loop and API requests both flush; one at a time
        #: Whether this process writes (see ``--leader-lock``): always, unless a leadership says otherwise.
        self.leads: Callable[[], bool] = lambda: True
        #: A follower keeps what it drained this long (the lock's TTL and a renewal, plus the hold).
        self.replay_seconds = 0.0
        self.followed: deque[Followed] = deque()
        self.followed_from: float | None = None  # since when ``followed`` holds everything this process saw
        self.shared = False  # several processes share the history (``--leader-lock``)
        self.last_seen: float | None = None  # when a dashboard last ran on the history, as found at start
        self.cluster.keep_history()

    def warm(self) -> int:
        """Load the most recent tasks from the store into memory; return how many."""
        limit = min(WARM_TASKS, self.collector.settings.max_tasks)
        recent = self.run_blocking(self.store.recent, limit, False)  # finished tasks' timelines stay stored
        self.cluster.restore(reversed(recent))  # oldest first, so the newest end most recent
        log.info("loaded %d recent tasks from %s", len(recent), self.store.path)
        collector = self.collector
        self.last_seen = self.run_blocking(self.store.last_seen_running)
        for gap in reversed(self.run_blocking(self.store.gaps, None, None, GAPS_SHOWN)):
            collector.broker.add_gap(gap)
        if not self.shared:  # shared: the leader marks these, and a take-over says what may be missing
            collector.down_since = self.last_seen
            self.mark("alive_at")
        return len(recent)

    def mark(self, key: str) -> None:
        """Note in the store that the dashboard is alive now (every minute) or stopped cleanly."""
        try:
            self.run_blocking(self.store.mark, key, time.time())
        except Exception as exc:  # only the length of a later downtime gap depends on it
            self.report_failure(exc, "marking the dashboard alive in")

    def run(self) -> None:
        """Write every interval until ``stop``."""
        while not self.stopping:
            self.collector.sleep(WRITE_INTERVAL_SECONDS)
            try:
                if self.flush():
                    self.last_error = None  # everything pending was taken: no failure stands
            except Exception as exc:  # a bug must not end the writer: the next round tries again
                self.last_error = f"internal error: {type(exc).__name__}: {exc}"[:500]
                if self.collector.count_bug("writing the history", exc):  # the same bug fails every round
                    log.exception("writing the history to %s failed; the next round tries again "
                                  "(logged once per kind)", self.store.path)

    def prune_loop(self) -> None:
        """Prune every prune interval until ``stop``; a prune can take a while and runs on its own.
        The query statistics are looked after here too: at start, and after each prune."""
        if self.leads():
            self.analyze()
        while not self.stopping:
            self.collector.sleep(PRUNE_INTERVAL_SECONDS)
            if not self.stopping and self.leads():
                self.mark("alive_at")
                self.prune()
                self.analyze()

    def analyze(self) -> None:
        try:
            self.run_blocking(self.store.analyze)
        except Exception as exc:  # slower queries, never a stopped history
            self.report_failure(exc, "refreshing the query statistics of")

    def stop(self) -> None:
        self.stopping = True

    def flush(self) -> bool:
        """Write what is pending now (unfinished tasks after their hold); return whether the store took it."""
        with self._flushing:
            return self.closed or self._flush(HOLD_UNFINISHED_SECONDS)

    def close(self) -> bool:
        """Write what is pending one last time; later flushes do nothing. Return whether it was written."""
        self.stopping = True
        with self._flushing:
            written = self._flush(final=True)
            self.closed = True
        if written and self.leads():
            self.mark("stopped_at")
        return written

    def _flush(self, hold_seconds: float = 0.0, final: bool = False) -> bool:
        now = time.time()
        gauges = final or now - self._gauges_at >= GAUGE_WRITE_SECONDS
        if gauges:
            self._gauges_at = now
        tasks, events, depths = self.cluster.drain_unsaved(now, hold_seconds, depths=gauges)
        if not self.leads():
            self._follow(now, tasks, events, depths, final, gauges)
            return True
        if depths:
            try:
                self.run_blocking(self.store.write_queue_depths, depths)
            except Exception as exc:  # depth history is a nicety: never stop the task history for it
                self.report_failure(exc, "writing queue depths to")
        self._write_stats(math.inf if final else now, gauges)
        gaps = self.collector.take_gaps()
        if gaps:
            try:
                self.run_blocking(self.store.save_gaps, gaps)
            except Exception as exc:
                if is_storage_failure(exc):  # kept for the next flush; anything else would fail again
                    self.collector.unsaved_gaps[:0] = gaps
                self.report_failure(exc, "writing gaps to")
        for task in tasks:
            self._pend(task)
        self.pending_events.extend(events)
        if not self.pending_tasks and not self.pending_events:
            return True
        batch_tasks, batch_events = list(self.pending_tasks.values()), self.pending_events
        try:
            self.run_blocking(self.store.write_batch, batch_tasks, batch_events)
        except Exception as exc:  # the disk or the file (kept, retried), or a row the store cannot take
            if is_storage_failure(exc):
                return self._retry_later(exc, len(batch_tasks))
            return self._write_around_bad_rows(_by_task(batch_tasks, batch_events), exc)
        self.written_events += len(batch_events)
        self.pending_tasks, self.pending_events = {}, []
        self.last_error = None
        self._release(batch_tasks)
        return True

    def _follow(self, now: float, tasks: list[dict[str, Any]], events: list[Event],
                depths: list[tuple[str, float, int]], final: bool, gauges: bool = True) -> None:
        """Keep what was drained for ``replay_seconds`` instead of writing it (this process follows)."""
        rows, markers, active = self.cluster.drain_stats(math.inf if final else now, gauges)
        if self.followed_from is None:
            self.followed_from = self.collector.first_subscribed_at
        self.followed.append(Followed(now, tasks, events, depths, active, rows, markers, self.collector.take_gaps()))
        while self.followed and self.followed[0].at < now - self.replay_seconds:
            self.followed_from = self.followed.popleft().at
        self._release(tasks)  # the leader writes them; a detail reads them there

    def promote(self, previous_renewal: float | None) -> None:
        """This process leads now: queue what it followed for writing, as the old leader may not have
        written it, and mark a gap when what it followed does not reach back to the old leader's last
        renewal (``previous_renewal``, None when there was none)."""
        with self._flushing:
            followed, self.followed = list(self.followed), deque()
            covered = self.followed_from if self.followed_from is not None else self.collector.first_subscribed_at
            self.followed_from = None
            depths = [row for f in followed for row in f.depths]
            active = [row for f in followed for row in f.active]
            for f in followed:
                for task in f.tasks:
                    self._pend(task)
                self.pending_events.extend(f.events)
                self.pending_markers.extend(f.markers)
                self.collector.unsaved_gaps.extend(f.gaps)
                # Minutes that closed while the old leader lived were written by it (they add up: never twice).
                self.pending_stats.extend(row for row in f.stats
                                          if previous_renewal is None or row[0] + 60 > previous_renewal)
            since = previous_renewal if previous_renewal is not None else self.last_seen
            if since is not None and (covered is None or covered > since):
                gap = {"start": since, "end": covered or time.time(), "cause": "no leader"}
                self.collector.broker.add_gap(gap)
                self.collector.unsaved_gaps.append(gap)
            for call, rows, doing in ((self.store.write_queue_depths, depths, "writing queue depths to"),
                                      (self.store.write_worker_active, active, "writing worker activity to")):
                if rows:
                    try:
                        self.run_blocking(call, rows)
                    except Exception as exc:  # a chart's history, never worth stopping for
                        self.report_failure(exc, doing)
        log.info("writing %d tasks and %d events this process saw while following (the previous leader may not "
                 "have written them)", len(self.pending_tasks), len(self.pending_events))

    def demote(self) -> None:
        """This process no longer leads: what it had not written is kept as followed, for a later take-over."""
        with self._flushing:
            if self.pending_tasks or self.pending_events:
                self.followed.append(Followed(time.time(), list(self.pending_tasks.values()), self.pending_events,
                                              [], [], self.pending_stats, self.pending_markers, []))
            self.pending_tasks, self.pending_events, self.pending_stats, self.pending_markers = {}, [], [], []
            self.followed_from = time.time()

    def _write_stats(self, now: float, gauges: bool = True) -> None:
        """Write the analytics' closed minutes and the new markers (and with ``gauges``, the workers'
        activity); keep them for the next flush on failure."""
        rows, markers, active = self.cluster.drain_stats(now, gauges)
        if active:
            try:
                self.run_blocking(self.store.write_worker_active, active)
            except Exception as exc:  # like queue depths: a chart's history, never worth stopping for
                self.report_failure(exc, "writing worker activity to")
        self.pending_stats.extend(rows)
        self.pending_markers.extend(markers)
        if not self.pending_stats and not self.pending_markers:
            return
        try:
            self.run_blocking(self.store.write_stats, self.pending_stats, self.pending_markers)
        except Exception as exc:  # the analytics never stop the task history
            self.report_failure(exc, "writing the analytics to")
            if is_storage_failure(exc):  # kept for the next flush; anything else would fail again
                del self.pending_stats[:-MAX_PENDING_STATS]
                del self.pending_markers[:-MAX_PENDING_STATS]
                return
        self.pending_stats, self.pending_markers = [], []

    def _retry_later(self, exc: Exception, tasks: int) -> bool:
        """Keep what is pending for the next flush after a failure of the disk or the file; return False."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.error("writing %d tasks to %s failed (%s); will retry", tasks, self.store.path, self.last_error)
        overflow = len(self.pending_events) - MAX_PENDING_EVENTS
        if overflow > 0:
            del self.pending_events[:overflow]
            self.dropped_events += overflow
        return False

    def _write_around_bad_rows(self, writes: list[TaskWrite], failure: Exception) -> bool:
        """Store every task of a batch that failed on a bad row (``failure``) but the bad ones, which are dropped.

        Return whether everything was settled (False when the disk or the file failed on the way:
        what was not tried yet stays pending).
        """
        stored: list[TaskWrite] = []
        bad: list[tuple[TaskWrite, Exception]] = []
        interrupted: Exception | None = None
        try:
            self._bisect(writes, failure, stored, bad)
        except Exception as exc:  # the disk or the file failed on the way (what was not tried stays pending)
            if not is_storage_failure(exc):  # nothing else is raised out of _bisect but a bug in it
                self.report_failure(exc, "writing around a bad row in")
            interrupted = exc
        traced: set[type[Exception]] = set()  # one bug may fail every task of a batch: one traceback says it
        for (uuid, _, _), reason in bad:  # a bug: the checks let through a value the store cannot take
            self.collector.count_internal_error()
            log.error("task %s cannot be written to %s (%s); it is left out of the history",
                      uuid, self.store.path, type(reason).__name__,
                      exc_info=None if type(reason) in traced else reason)
            traced.add(type(reason))
        self.quarantined += len(bad)
        self.written_events += sum(len(events) for _, _, events in stored)
        settled = {uuid for uuid, _, _ in stored} | {write[0] for write, _ in bad}
        for uuid in settled:
            self.pending_tasks.pop(uuid, None)
        self.pending_events = [event for event in self.pending_events if event[0] not in settled]
        self._release([task for _, tasks, _ in stored for task in tasks])
        if interrupted is not None:
            return self._retry_later(interrupted, len(self.pending_tasks))
        self.last_error = None
        return True

    def _bisect(self, writes: list[TaskWrite], failure: Exception, stored: list[TaskWrite],
                bad: list[tuple[TaskWrite, Exception]]) -> None:
        """Write ``writes``, which failed together on a bad row, half by half down to the bad tasks.

        One bad task among n costs about 2 log2(n) writes. A failure of the disk or the file is raised.
        """
        if len(writes) == 1:
            bad.append((writes[0], failure))
            return
        middle = len(writes) // 2
        for half in (writes[:middle], writes[middle:]):
            try:
                self.run_blocking(self.store.write_batch, [task for _, tasks, _ in half for task in tasks],
                                  [event for _, _, events in half for event in events])
            except Exception as exc:
                if is_storage_failure(exc):
                    raise
                self._bisect(half, exc, stored, bad)
            else:
                stored.extend(half)

    def _pend(self, task: dict[str, Any]) -> None:
        """Queue a task's shape for writing; a shape that leaves payloads out (``Task.released``) keeps
        those of a shape still queued, which the store has not taken yet."""
        uuid = task["uuid"]
        queued = self.pending_tasks.get(uuid)
        self.pending_tasks[uuid] = task if queued is None or len(task) == len(queued) else {**queued, **task}

    def _release(self, written: list[dict[str, Any]]) -> None:
        """Let go of finished tasks' timelines and payloads, which the store holds now, a chunk at a time."""
        for start in range(0, len(written), RELEASE_CHUNK):
            if start:
                self.collector.sleep(0)
            self.cluster.release_stored(written[start:start + RELEASE_CHUNK])

    def unwritten_events(self, uuid: str) -> list[dict[str, Any]]:
        """Return this task's events taken from the state but not yet committed to the store
        (on a follower: those it drained lately, which the leader may not have written yet)."""
        followed = [event for f in list(self.followed) for event in f.events]
        return [dict(entry) for task_id, entry in list(self.pending_events) + followed if task_id == uuid]

    def prune(self) -> None:
        try:
            removed = self.run_blocking(self.store.prune, time.time())
        except Exception as exc:  # pruning must never stop history
            self.report_failure(exc, "pruning")
            return
        if removed:
            log.info("pruned %d tasks from %s", removed, self.store.path)
        try:
            self.run_blocking(self.store.prune_audit, time.time() - self.audit_seconds)
        except Exception as exc:
            self.report_failure(exc, "pruning the audit log of")

    def report_failure(self, exc: Exception, doing: str) -> None:
        """Log a failed store call: the disk or the file as a warning, anything else as the bug it is;
        a pass the dashboard's stop cut short (the store closed under it) is no failure."""
        if isinstance(exc, StoreClosed):
            log.info("%s %s not done: the store was closed (the dashboard is stopping)", doing, self.store.path)
            return
        if is_storage_failure(exc):
            log.warning("%s %s failed: %s", doing, self.store.path, exc)
        else:
            self.collector.count_internal_error()
            log.error("%s %s failed", doing, self.store.path, exc_info=exc)

    def health(self) -> dict[str, Any]:
        """Return the store's part of ``GET /api/health``."""
        return {"path": self.store.path, "written_events": self.written_events,
                "pending_events": len(self.pending_events), "writes": self.leads(), "dropped_events": self.dropped_events,
                "quarantined": self.quarantined, "error": self.last_error,
                "integrity": "checking" if self.store.check_pending else self.store.integrity}


def _by_task(tasks: list[dict[str, Any]], events: list[Event]) -> list[TaskWrite]:
    """Split a batch by task: each task's shape with its events, in the batch's order."""
    writes: dict[str, TaskWrite] = {}
    for task in tasks:
        writes.setdefault(task["uuid"], (task["uuid"], [], []))[1].append(task)
    for event in events:
        writes.setdefault(event[0], (event[0], [], []))[2].append(event)
    return list(writes.values())
