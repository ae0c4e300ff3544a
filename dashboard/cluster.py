"""The model behind one door: workers, tasks and queues, and the one lock that guards them.

``Cluster`` owns the pure models (``state.ClusterState`` and ``queues.QueueBook``)
and their lock. Every change goes through its write methods (events, inspect
replies, expiry, queue samples, the history's bookkeeping); every read returns
the published JSON shapes, copied under the lock. No other module takes the
lock or walks the models' containers, so the rule that makes concurrent readers
safe is stated and kept here alone.

It does no I/O and never reads a clock: callers pass ``now``.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Literal, NamedTuple

from . import jsonio
from .journal import LiveChanges, UnsavedTasks
from .queues import QueueBook
from .settings import Settings
from .shapes import Change, Counters, Limits, QueueAlert, WorkerAlert
from .model import READY_STATES

#: The states reconciliation checks after a gap: a task in one of them may have moved on unseen.
UNFINISHED_STATES = frozenset(("PENDING", "RECEIVED", "STARTED", "RETRY"))
from .state import ClusterState
from .stats import LIVE_SECONDS, Row, TaskStats, host_label


#: Bytes of JSON the changes every page gets aim to stay within, per batch (four a second): a browser
#: parses and draws them on its main thread. One item larger than the rest of the budget still goes.
LIVE_BATCH_BYTES = 56 * 1024
#: Share of the budget the newest changed tasks take before workers and queues.
TASK_SHARE = 0.4
#: Queues whose sparkline a snapshot carries at most: as many as the Queues page's table shows. The others'
#: sparklines start from the live samples (``GET /api/queues`` has every one).
SNAPSHOT_QUEUE_HISTORIES = 500
#: A worker whose status did not change (a heartbeat, its counts) and that no page looks at is pushed at
#: most this often, in seconds: an idle cluster's heartbeats then cost one batch a second, not four.
ROUTINE_WORKER_SECONDS = 1.0


class LiveBatch(NamedTuple):
    """What ``Cluster.changes`` drains for the pusher."""

    common: list[Change]  # the changes every page gets
    common_json: str  # the same, as the JSON array sent
    extra: dict[str, Change]  # uuid -> the change of a task only some rooms get
    rooms: dict[str, tuple[str, str]]  # uuid -> its task room and its worker's room


def _encoded(change: Change, into: list[tuple[Change, str]], text: str | None = None) -> int:
    """Append ``change`` and its JSON (``text``, or encoded now) to ``into``; return the bytes it adds
    to the JSON array, its comma included."""
    text = jsonio.dumps(change) if text is None else text
    into.append((change, text))
    return len(text) + 1


def _removal(kind: Literal["task", "worker", "queue"], key: str) -> Change:
    return {"kind": kind, "op": "remove", "key": key, "data": None}


def _upsert(kind: Literal["task", "worker", "queue"], key: str, data: dict[str, Any] | None) -> Change:
    return {"kind": kind, "op": "upsert", "key": key, "data": data}


class Cluster:
    """The state of a cluster as the dashboard sees it, read and written only through these methods."""

    #: Keys of a worker's detail that come from inspect replies -> the reply each comes from. Inspect's
    #: ``active`` list is ``active_tasks``: ``active`` stays the heartbeat's number, as everywhere else.
    INSPECT_KEYS = {"active_queues": "active_queues", "registered": "registered", "active_tasks": "active",
                    "reserved": "reserved", "scheduled": "scheduled", "revoked": "revoked", "stats": "stats",
                    "conf": "conf", "inspected_at": "inspected_at", "inspect_error": "inspect_error"}

    def __init__(self, state: ClusterState, book: QueueBook) -> None:
        self._state = state
        self._book = book
        self._lock = threading.Lock()  # guards _state and _book; held only for in-memory work, never for I/O
        self._unsaved = UnsavedTasks()  # the history writer's reading of the journal
        # The pusher's: changed workers and queues not pushed yet (in the order they first changed),
        # and each worker's status as last pushed (a change of status is pushed first).
        self._live_workers: dict[str, None] = {}
        self._live_queues: dict[str, None] = {}
        self._live_status: dict[str, str | None] = {}
        self._routine_at = 0.0  # when routine worker changes were last pushed (see ROUTINE_WORKER_SECONDS)
        self._urgent_waiting = False  # a worker whose status changed did not fit in the last batch

    @classmethod
    def build(cls, settings: Settings, book: QueueBook | None = None) -> "Cluster":
        """Make the model with the settings' limits (and a queue book of its own unless one is given)."""
        stats = TaskStats(settings.metrics_max_task_names, settings.max_queues)
        state = ClusterState(settings.max_tasks, settings.heartbeat_slack_seconds, settings.max_workers, stats)
        return cls(state, book or QueueBook(max_queues=settings.max_queues))

    # -- writes -----------------------------------------------------------------------------------------
    def apply_events(self, events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Exception]]:
        """Apply checked events in order, under one lock; return the events that raised, with the error."""
        failed = []
        apply = self._state.apply
        with self._lock:
            for event in events:
                try:
                    apply(event)
                except Exception as exc:  # a bug in the model must not stop the stream: the caller reports it
                    failed.append((event, exc))
        return failed

    def unfinished(self, uuids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The tasks held that are PENDING, RECEIVED or STARTED and not found lost (all, or of ``uuids``):
        ``{"uuid", "state", "name", "worker", "since"}``, ``since`` its first sight (sent, else received)."""
        with self._lock:
            tasks = self._state.tasks
            chosen = tasks.values() if uuids is None else (tasks[u] for u in uuids if u in tasks)
            return [{"uuid": t.uuid, "state": t.state, "name": t.name, "worker": t.worker,
                     "since": t.sent or t.received or t.timestamp}
                    for t in chosen if t.state in UNFINISHED_STATES and t.lost is None]

    def mark_lost(self, uuids: Iterable[str], reason: str) -> list[str]:
        """Take these tasks as no longer in flight (see ``ClusterState.mark_lost``); return those marked."""
        with self._lock:
            return self._state.mark_lost(uuids, reason)

    def apply_inspect(self, replies: dict[str, dict[str, Any]], errors: dict[str, str | None], now: float) -> None:
        """Keep each worker's inspect replies (and the error of those that did not answer)."""
        with self._lock:
            for hostname, data in replies.items():
                self._state.apply_inspect(hostname, data, now, errors.get(hostname))

    def expire(self, now: float, listening_since: float, read: float | None = None) -> list[tuple[str, float]]:
        """Mark workers whose heartbeats stopped as lost (judged at ``read``, see ``expire_workers``); return each
        one's hostname and last heartbeat."""
        with self._lock:
            lost = self._state.expire_workers(now, listening_since, read)
            return [(h, self._state.workers[h].last_heartbeat or 0.0) for h in lost]

    def purge(self, now: float, after_seconds: float) -> list[WorkerAlert]:
        """Move long-gone workers out of the main list; return the worker alerts raised since the last call."""
        with self._lock:
            state = self._state
            gone = state.purge_workers(now, after_seconds)
            if gone and state.stats is not None:  # their metric series go too, unless a namesake host remains
                remaining = {host_label(h) for h in state.workers}
                state.stats.forget_hosts({host_label(h) for h in gone} - remaining)
            return state.drain_alerts()

    def queues_to_sample(self) -> list[str]:
        """Learn the queues the workers consume and tasks were sent to; return every queue to sample."""
        with self._lock:
            state = self._state
            consumers: dict[str, list[str]] = {}
            for hostname, worker in state.workers.items():
                if worker.status != "online":
                    continue
                for queue in state.inspect_replies.get(hostname, {}).get("active_queues") or ():
                    if isinstance(queue, dict) and isinstance(queue.get("name"), str):
                        consumers.setdefault(queue["name"], []).append(hostname)
            self._book.set_consumers(consumers)
            self._book.watch(state.pending_by_queue)
            return self._book.names()

    def apply_samples(self, now: float, samples: dict[str, Any]) -> list[QueueAlert]:
        """Apply one round of queue samples; return the backlog alerts it raised."""
        with self._lock:
            self._book.apply(now, samples)
            return self._book.drain_alerts()

    # -- the history's bookkeeping ----------------------------------------------------------------------
    def keep_history(self) -> None:
        """Start recording what changed for the history writer (``drain_unsaved``)."""
        with self._lock:
            self._state.journal.open(UnsavedTasks.READER)

    def follow_changes(self) -> None:
        """Start recording what changed for the pusher (``changes``)."""
        with self._lock:
            self._state.journal.open(LiveChanges.READER)

    def restore(self, recent: Iterable[tuple[dict[str, Any], list[dict[str, Any]] | None]]) -> None:
        """Put back tasks read from the store, oldest first, without marking anything changed."""
        with self._lock:
            for task, events in recent:
                self._state.restore(task, events)

    def drain_unsaved(self, now: float | None = None, hold_seconds: float = 0.0, depths: bool = True
                      ) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]], list[tuple[str, float, int]]]:
        """Return the tasks, events and (unless ``depths`` is false) queue-depth minutes to write since the
        last call.

        An unfinished task that first changed less than ``hold_seconds`` before ``now`` is held
        back, with its events, until it finishes or that time has passed (see ``UnsavedTasks``).
        """
        with self._lock:
            state = self._state
            tasks = state.tasks
            tasks_, events = self._unsaved.take(
                state.journal.read(UnsavedTasks.READER), state.task_json,
                lambda uuid: uuid in tasks and tasks[uuid].state in READY_STATES, now, hold_seconds)
            return tasks_, events, self._book.drain_minutes() if depths else []

    def drain_stats(self, now: float, active: bool = True
                    ) -> tuple[list[Row], list[dict[str, Any]], list[tuple[str, float, int]]]:
        """Return the analytics' closed minutes, the deploy markers raised since the last call, and (unless
        ``active`` is false) each worker's most active tasks per minute (hostname, minute, active)."""
        with self._lock:
            state = self._state
            rows = state.stats.roll(now) if state.stats is not None else []
            markers, state.markers = state.markers, []
            minutes = state.active_minutes
            if active:
                state.active_minutes = {}
            else:
                minutes = {}
        return rows, markers, [(hostname, minute, count) for (hostname, minute), count in minutes.items()]

    def release_stored(self, written: list[dict[str, Any]]) -> None:
        """Let go of what the store now holds of these task shapes, as written: finished tasks' timelines
        at once, their payloads once ``PAYLOADS_KEPT`` later tasks are stored (``ClusterState``)."""
        with self._lock:
            self._state.release_timelines(shape["uuid"] for shape in written)
            self._state.release_payloads(written)

    # -- reads ------------------------------------------------------------------------------------------
    def heartbeats(self) -> list[tuple[str, float, float]]:
        """Return (hostname, last heartbeat received, freq) of every online worker that has beaten."""
        with self._lock:
            return [(w.hostname, w.last_heartbeat, w.freq) for w in self._state.workers.values()
                    if w.status == "online" and w.last_heartbeat]

    def inspect_candidates(self) -> tuple[list[str], set[str]]:
        """Return the online workers, and those of them never inspected or back online since."""
        with self._lock:
            state = self._state
            online = [w.hostname for w in state.workers.values() if w.status == "online"]
            fresh = {h for h in online if not state.inspect_replies.get(h, {}).get("stats")} | state.reinspect
        return online, fresh

    def workers(self, include_departed: bool = False) -> list[dict[str, Any]]:
        """Return every worker's JSON shape (and the departed ones', marked, when asked)."""
        with self._lock:
            items = [w.to_json() for w in self._state.workers.values()]
            if include_departed:
                items += [{**w.to_json(), "departed": True} for w in self._state.departed.values()]
        return items

    def registered_names(self) -> set[str] | None:
        """Return the task names any online worker reported in ``inspect registered``; None when none reported."""
        with self._lock:
            state = self._state
            lists = [state.inspect_replies.get(h, {}).get("registered") for h, w in state.workers.items()
                     if w.status == "online"]
        reported = [names for names in lists if isinstance(names, list)]
        if not reported:
            return None
        # A registered entry may carry options after the name: "app.add [rate_limit=10/m]".
        return {str(entry).split(" ", 1)[0] for names in reported for entry in names}

    def worker_known(self, hostname: str) -> bool:
        with self._lock:
            return hostname in self._state.workers or hostname in self._state.departed

    def worker_detail(self, hostname: str) -> dict[str, Any] | None:
        """Return one worker (departed ones too) with its inspect replies, history and orphans, or None."""
        with self._lock:
            state = self._state
            found = state.workers.get(hostname) or state.departed.get(hostname)
            if found is None:
                return None
            body = found.to_json()
            body["departed"] = hostname not in state.workers
            body["history"] = found.history_json()
            replies = state.inspect_replies.get(hostname, {})
            body.update({key: replies.get(reply) for key, reply in self.INSPECT_KEYS.items()})
            body["orphaned"] = list(state.orphans.get(hostname, []))
        return body

    def task_detail(self, uuid: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Return a task held in memory with its timeline (``events`` None when released to the store),
        and its events not yet handed to the history writer; (None, []) when it is not held."""
        with self._lock:
            state = self._state
            detail = state.task_detail(uuid)
            unsaved = (self._unsaved.events_of(uuid, state.journal.unread(UnsavedTasks.READER))
                       if detail is not None and detail["events"] is None else [])
        return detail, unsaved

    def snapshot(self, task_limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any] | None]]:
        """Return every worker's shape and the ``task_limit`` most recently updated tasks'."""
        with self._lock:
            state = self._state
            workers = [w.to_json() for w in state.workers.values()]
            tasks: list[dict[str, Any] | None] = []
            for task in state.recent_tasks():
                if len(tasks) >= task_limit:
                    break
                tasks.append(state.task_json(task.uuid))
        return workers, tasks

    def queue_names(self) -> list[str]:
        with self._lock:
            return self._book.names()

    def queue_known(self, name: str) -> bool:
        with self._lock:
            return name in self._book.queues

    def queues(self, now: float, histories: int | None = None) -> list[dict[str, Any]]:
        """Return every watched queue's JSON shape with its sparkline; with ``histories``, only that many
        queues carry one: those that matter most, as the pages' tables rank them (over their threshold or
        without a consumer first, then growing, then the deepest over the sparkline's window)."""
        with self._lock:
            book = self._book
            shapes = [self._queue_json(name, now) for name in book.names()]
            if histories is None or len(shapes) <= histories:
                chosen = None
            else:
                ranked = sorted(shapes, key=lambda q: ((0 if q["alerting"] or q["no_consumer"] else 2)
                                                       + (0 if q["growing"] else 1), -book.highest(q["name"])))
                chosen = {q["name"] for q in ranked[:histories]}
            return [{**shape, "history": book.history_json(shape["name"])}
                    if chosen is None or shape["name"] in chosen else shape for shape in shapes]

    def queue_detail(self, name: str, now: float) -> dict[str, Any] | None:
        """Return one queue with its hour of history and the task names waiting in it, or None."""
        with self._lock:
            if name not in self._book.queues:
                return None
            body = self._queue_json(name, now)
            body["history"] = self._book.history_json(name, full=True)
            body["waiting_tasks"] = self._state.waiting(name)[1]
        return body

    def _queue_json(self, name: str, now: float) -> dict[str, Any]:
        oldest, _ = self._state.waiting(name)
        return self._book.to_json(name, oldest, now)

    def changes(self, task_rooms: set[str], worker_rooms: set[str], window: int, now: float,
                budget: int = LIVE_BATCH_BYTES) -> LiveBatch:
        """Drain what changed since the last call, for the pusher.

        Return the changes every page gets (workers, removed workers, queues, and up to ``window``
        of the most recently changed tasks) and their JSON, the changes of other tasks that
        ``task_rooms`` (uuids) or ``worker_rooms`` (hostnames) ask for, and for each of those the
        rooms it belongs to.

        The changes every page gets stay within about ``budget`` bytes of JSON, so that a large
        cluster's batch stays small enough for a browser to take four times a second: the newest
        tasks first take up to ``TASK_SHARE`` of it; then workers whose status changed (or that a
        page looks at), queues, and the other changed workers (at most once in ROUTINE_WORKER_SECONDS),
        longest waiting first; then more tasks. Workers and queues that do not fit wait for the next
        batch (removals never wait); tasks that do not fit are left to the task's and its worker's rooms.
        Each change is encoded once, here, where its size is needed: the pusher sends ``common_json`` as
        it is.
        """
        with self._lock:
            state = self._state
            records = state.journal.read(LiveChanges.READER)
            queue_names = self._book.drain_changes()
            waiting_workers, waiting_queues, pushed_status = self._live_workers, self._live_queues, self._live_status
            routine_due = now - self._routine_at >= ROUTINE_WORKER_SECONDS
            if not (records or queue_names or waiting_queues or self._urgent_waiting
                    or (waiting_workers and routine_due)):
                return LiveBatch([], "[]", {}, {})  # nothing new, and what waits is not due yet
            task_ids, hostnames = LiveChanges.coalesce(records)
            taken: list[tuple[Change, str]] = []
            for hostname, removed in hostnames.items():
                if removed:
                    _encoded(_removal("worker", hostname), taken)
                    waiting_workers.pop(hostname, None)
                    pushed_status.pop(hostname, None)
                else:
                    waiting_workers.setdefault(hostname, None)  # a worker already waiting keeps its place
            for name in queue_names:
                waiting_queues.setdefault(name, None)
            candidates = [u for u in reversed(task_ids[-window:]) if u in state.tasks]  # newest first
            tasks: list[tuple[Change, str]] = []
            used = sum(len(text) + 1 for _, text in taken)
            used += self._take_tasks(candidates, tasks, budget * TASK_SHARE)
            workers = [h for h in waiting_workers if h in state.workers]
            urgent = [h for h in workers if h in worker_rooms or pushed_status.get(h) != state.workers[h].status]
            urgent_set = set(urgent)
            routine = [h for h in workers if h not in urgent_set] if urgent else workers
            for hostname in [h for h in waiting_workers if h not in state.workers]:
                del waiting_workers[hostname]  # gone from the model without a removal (it cannot be shown)
            used = self._take_keyed(urgent, waiting_workers, taken, used, budget, self._worker_change)
            used = self._take_keyed(list(waiting_queues), waiting_queues, taken, used, budget,
                                    lambda name: _upsert("queue", name, self._queue_json(name, now))
                                    if name in self._book.queues else None)
            if routine and routine_due:
                self._routine_at = now
                used = self._take_keyed(routine, waiting_workers, taken, used, budget, self._worker_change)
            self._urgent_waiting = any(h in waiting_workers for h in urgent)  # over the budget: next batch
            for change, _ in taken:
                if change["kind"] == "worker" and change["data"] is not None:
                    pushed_status[change["key"]] = change["data"]["status"]
            self._take_tasks(candidates[len(tasks):], tasks, budget - used)
            taken += tasks
            in_window = {change["key"] for change, _ in tasks}
            wanted = task_rooms.intersection(task_ids) - in_window if task_rooms else set()
            if worker_rooms:  # a worker's room also gets the changes of that worker's tasks
                wanted.update(u for u in task_ids if u not in in_window and u in state.tasks
                              and state.tasks[u].worker in worker_rooms)
            extra = {u: _upsert("task", u, state.task_json(u)) for u in wanted if u in state.tasks}
            rooms = {u: ("task:" + u, "worker:" + (state.tasks[u].worker or "")) for u in extra}
        return LiveBatch([change for change, _ in taken], "[" + ",".join(text for _, text in taken) + "]",
                         extra, rooms)

    def _take_tasks(self, uuids: list[str], into: list[tuple[Change, str]], budget: float) -> int:
        """Append the changes of ``uuids`` (with their JSON), in order, while they fit in ``budget`` bytes
        (the first always); return the bytes taken."""
        used = 0
        for uuid in uuids:
            change = _upsert("task", uuid, self._state.task_json(uuid))
            text = jsonio.dumps(change)
            if into and used + len(text) + 1 > budget:  # and its comma in the list
                break
            used += _encoded(change, into, text)
        return used

    @staticmethod
    def _take_keyed(keys: list[str], waiting: dict[str, None], into: list[tuple[Change, str]], used: int,
                    budget: int, change_of: Callable[[str], Change | None]) -> int:
        """Append the changes of ``keys`` (with their JSON) while ``used`` stays within ``budget``, taking
        each out of ``waiting``; the rest stay waiting. Return the bytes used so far."""
        for key in keys:
            change = change_of(key)
            if change is None:
                waiting.pop(key, None)
                continue
            text = jsonio.dumps(change)
            if used + len(text) + 1 > budget and into:  # and its comma in the list
                break
            used += _encoded(change, into, text)
            waiting.pop(key, None)
        return used

    def _worker_change(self, hostname: str) -> Change:
        return _upsert("worker", hostname, self._state.workers[hostname].to_json())

    def counters(self) -> Counters:
        """Return task counts per state (over the tasks held), totals, and the names beyond the limits."""
        with self._lock:
            counters = self._state.counters()
            counters["ignored"] = {"workers": len(self._state.ignored_workers), "queues": len(self._book.ignored)}
        return counters

    def limits(self) -> Limits:
        """Return the limits on workers and queues and how many names beyond them were ignored."""
        with self._lock:
            return {"max_workers": self._state.max_workers, "workers_ignored": len(self._state.ignored_workers),
                    "max_queues": self._book.max_queues, "queues_ignored": len(self._book.ignored)}

    def live_stats(self, now: float, seconds: int = LIVE_SECONDS) -> dict[str, Any]:
        """Return the per-second counts of each kind of task event over the last ``seconds`` up to ``now``."""
        with self._lock:
            stats = self._state.stats
            return stats.live(now, seconds) if stats is not None else {}

    def open_stats(self, scope: str | None = None, key: str | None = None) -> list[Row]:
        """Return the analytics' buckets not in the store yet (copies), of one scope and key or all."""
        with self._lock:
            stats = self._state.stats
            return stats.open_rows(scope, key) if stats is not None else []

    def rule_inputs(self) -> dict[str, Any]:
        """Return what the alert rules look at: task type counts and last successes, workers, queues,
        and the tasks in flight (uuid, name, worker, started)."""
        with self._lock:
            state = self._state
            stats = state.stats
            running = [(t.uuid, t.name, t.worker, t.started) for t in state.started_tasks()
                       if t.started is not None]
            return {"counts": stats.name_counts() if stats is not None else {},
                    "last_success": dict(stats.last_success) if stats is not None else {},
                    "workers": [(w.hostname, w.status, w.last_heartbeat) for w in state.workers.values()],
                    "queues": {name: (self._book.queues[name].depth, state.oldest_waiting(name))
                               for name in self._book.names()},
                    "started": running}

    def metrics(self) -> dict[str, Any]:
        """Return the running totals and the gauges ``GET /metrics`` exports (copies)."""
        with self._lock:
            state = self._state
            body = state.stats.metrics() if state.stats is not None else {}
            body["workers"] = [(w.hostname, w.status == "online", w.active or 0) for w in state.workers.values()]
            body["queues"] = [self._book.to_json(name, None, 0.0) for name in self._book.names()]
            body["concurrency"] = {w.hostname: w.concurrency or 0 for w in state.workers.values()
                                   if w.status == "online"}
            body["consumers"] = {h: [q.get("name") for q in state.inspect_replies.get(h, {}).get("active_queues") or ()
                                     if isinstance(q, dict)] for h, w in state.workers.items() if w.status == "online"}
        return body

    def unknown_events(self) -> int:
        with self._lock:
            return self._state.unknown_events
