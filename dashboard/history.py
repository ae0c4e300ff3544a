"""The history writer: moves what the state recorded into the task store, in batches, off the event loop.

Every ``WRITE_INTERVAL_SECONDS`` it takes the tasks and events changed since
the last write (under the collector's lock, which is all it holds) and hands
them to ``TaskStore.write_batch`` through ``run_blocking`` (a native thread
under eventlet). A failed write is kept and retried with the next batch, so a
full disk loses nothing until it is over. It prunes by the retention settings
in the background and warms the state from the store at start-up.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from .events import EventCollector
from .queues import QueueBook
from .store import TaskStore

log = logging.getLogger(__name__)

#: How often pending changes are written, in seconds.
WRITE_INTERVAL_SECONDS = 0.5
#: An unfinished task is written when it finishes or this long after it first changed, whichever
#: is first: most tasks are written once instead of once per state (close writes everything).
HOLD_UNFINISHED_SECONDS = 2.0
#: How often retention pruning runs, in seconds.
PRUNE_INTERVAL_SECONDS = 60.0
#: Tasks read back into memory at start-up, at most.
WARM_TASKS = 5_000
#: Events kept waiting after failed writes before the oldest are dropped (and counted).
MAX_PENDING_EVENTS = 2_000_000


class HistoryWriter:
    """Writes the state's changes to the store and keeps it pruned."""

    def __init__(self, collector: EventCollector, store: TaskStore, run_blocking: Callable[..., Any],
                 book: QueueBook | None = None) -> None:
        self.collector = collector
        self.book = book
        self.store = store
        self.run_blocking = run_blocking
        self.stopping = False
        self.closed = False
        self.written_events = 0
        self.dropped_events = 0
        self.last_error: str | None = None
        self.pending_tasks: dict[str, dict[str, Any]] = {}  # from failed writes, retried
        self.pending_events: list[tuple[str, dict[str, Any]]] = []
        self._flushing = threading.Lock()  # the loop and API requests both flush; one at a time
        collector.state.track_unsaved = True

    def warm(self) -> int:
        """Load the most recent tasks from the store into memory; return how many."""
        limit = min(WARM_TASKS, self.collector.settings.max_tasks)
        recent = self.run_blocking(self.store.recent, limit, False)  # finished tasks' timelines stay stored
        with self.collector.lock:
            for task, events in reversed(recent):  # oldest first, so the newest end most recent
                self.collector.state.restore(task, events)
        log.info("loaded %d recent tasks from %s", len(recent), self.store.path)
        return len(recent)

    def run(self) -> None:
        """Write every interval until ``stop``."""
        while not self.stopping:
            self.collector.sleep(WRITE_INTERVAL_SECONDS)
            self.flush()

    def prune_loop(self) -> None:
        """Prune every prune interval until ``stop``; a prune can take a while and runs on its own."""
        while not self.stopping:
            self.collector.sleep(PRUNE_INTERVAL_SECONDS)
            if not self.stopping:
                self.prune()

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
            written = self._flush()
            self.closed = True
        return written

    def _flush(self, hold_seconds: float = 0.0) -> bool:
        with self.collector.lock:
            tasks, events = self.collector.state.drain_unsaved(time.time(), hold_seconds)
            depths = self.book.drain_minutes() if self.book is not None else []
        if depths:
            try:
                self.run_blocking(self.store.write_queue_depths, depths)
            except Exception as exc:  # depth history is a nicety: say so, never stop the task history
                log.warning("writing queue depths to %s failed: %s", self.store.path, exc)
        for task in tasks:
            self.pending_tasks[task["uuid"]] = task
        self.pending_events.extend(events)
        if not self.pending_tasks and not self.pending_events:
            return True
        batch_tasks, batch_events = list(self.pending_tasks.values()), self.pending_events
        try:
            self.run_blocking(self.store.write_batch, batch_tasks, batch_events)
        except Exception as exc:  # disk full, locked, I/O error: keep the batch and say so
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("writing %d tasks to %s failed (%s); will retry", len(batch_tasks), self.store.path,
                      self.last_error)
            overflow = len(self.pending_events) - MAX_PENDING_EVENTS
            if overflow > 0:
                del self.pending_events[:overflow]
                self.dropped_events += overflow
            return False
        self.written_events += len(batch_events)
        self.pending_tasks, self.pending_events = {}, []
        self.last_error = None
        with self.collector.lock:  # finished tasks' timelines are in the store now: memory can let go
            self.collector.state.release_timelines(task["uuid"] for task in batch_tasks)
        return True

    def unwritten_events(self, uuid: str) -> list[dict[str, Any]]:
        """Return this task's events taken from the state but not yet committed to the store."""
        return [dict(entry) for task_id, entry in list(self.pending_events) if task_id == uuid]

    def prune(self) -> None:
        try:
            removed = self.run_blocking(self.store.prune, time.time())
        except Exception:  # pruning must never stop history
            log.exception("pruning %s failed", self.store.path)
            return
        if removed:
            log.info("pruned %d tasks from %s", removed, self.store.path)

    def health(self) -> dict[str, Any]:
        """Return the store's part of ``GET /api/health``."""
        return {"path": self.store.path, "written_events": self.written_events,
                "pending_events": len(self.pending_events), "dropped_events": self.dropped_events,
                "error": self.last_error}
