"""The in-memory model of a Celery cluster: workers and tasks, updated by events.

This module is pure: it cannot do any I/O and never reads a clock. It gets
checked event dicts (see ``checks``) carrying ``local_received``, the
dashboard's own receive time, and an injected ``now`` for expiry. It imports
no Flask, kombu, socketio or eventlet. It appends what changed to its
``journal``, which the pusher and the history writer each read at their pace.
"""
from __future__ import annotations

from bisect import insort
from collections import OrderedDict, deque
from typing import Any, Iterable, Iterator

from .journal import TASK, TASK_EVICTED, WORKER, WORKER_REMOVED, Journal, Record
from .model import (IN_FLIGHT_STATES, PARTIAL_FIELDS, PAYLOAD_FIELDS, READY_STATES, SENT_FIELDS, TASK_FIELDS,
                    TASK_STATES, Task, Worker, heartbeat_expires, pool_name)
from .shapes import Counters, WorkerAlert
from .stats import TaskStats

#: Event keys left out of a task's timeline entries (they are on the task or are bookkeeping).
_TIMELINE_SKIP = frozenset(("uuid", "clock", "utcoffset", "pid", "local_received"))
#: Where each event type falls in a task's life, to order events with equal timestamps.
LIFE_ORDER = {"task-sent": 0, "task-received": 1, "task-started": 2, "task-retried": 4,
               "task-failed": 5, "task-succeeded": 5, "task-revoked": 6, "task-rejected": 6}
#: Task events counted on the worker that sent them.
_OUTCOMES = frozenset(("task-succeeded", "task-failed", "task-retried"))
#: Departed (purged) workers remembered for searches.
MAX_DEPARTED_WORKERS = 10_000
#: Worker-minutes of activity held for the history writer, at most (it takes them every half second).
MAX_ACTIVE_MINUTES = 100_000
#: Names beyond a limit (workers, queues) remembered for counting; more are not counted.
MAX_IGNORED_NAMES = 100_000
#: Finished tasks, the latest stored, that keep their payloads in memory (``release_payloads``): a late
#: event of a task just finished, or a page opened on it, gets its whole shape without the store.
PAYLOADS_KEPT = 1_000
#: The distinct ``Task.released`` tuples (subsets of PAYLOAD_FIELDS), each kept once.
_RELEASED: dict[tuple[str, ...], tuple[str, ...]] = {}


class ClusterState:
    """Workers and tasks, updated by ``apply``; every change is appended to ``journal``.

    Not thread-safe by itself: its owner (the collector) serialises every call.
    """

    def __init__(self, max_tasks: int = 100_000, heartbeat_slack_seconds: float = 2.0,
                 max_workers: int = 5_000, stats: TaskStats | None = None) -> None:
        self.max_tasks = max_tasks
        self.stats = stats  # the analytics, told of every new task event
        self.max_workers = max_workers
        self.ignored_workers: set[str] = set()  # hostnames beyond max_workers (up to MAX_IGNORED_NAMES)
        self.heartbeat_slack_seconds = heartbeat_slack_seconds
        self.workers: dict[str, Worker] = {}
        self.tasks: OrderedDict[str, Task] = OrderedDict()  # least recently updated first
        self.state_counts: dict[str, int] = dict.fromkeys(TASK_STATES, 0)
        self.finished_total = 0  # tasks that reached a ready state
        self.task_events = 0  # task events applied, duplicates excluded
        self.unknown_events = 0  # events of types the model does not know
        self.inspect_replies: dict[str, dict[str, Any]] = {}  # hostname -> latest inspect data
        self.departed: OrderedDict[str, Worker] = OrderedDict()  # purged workers, for searches
        self.alerts: list[WorkerAlert] = []  # worker lost / back online, until drained
        self.reinspect: set[str] = set()  # workers back online since their last inspect
        self.orphans: dict[str, list[str]] = {}  # hostname -> tasks in flight when it was last lost
        self.pending_by_queue: dict[str, dict[str, float]] = {}  # queue -> {uuid: sent}, oldest first
        self.journal = Journal()  # what changed, for whoever reads it
        self.markers: list[dict[str, Any]] = []  # workers whose software changed, until drained
        self.active_minutes: dict[tuple[str, float], int] = {}  # (hostname, minute) -> most active, until drained
        self._early_outcomes: dict[str, Worker] = {}  # hostname -> outcomes counted before its worker event
        self._children: dict[str, list[str]] = {}
        self._in_flight: dict[str, set[str]] = {}  # hostname -> uuids received or started there
        # Finished tasks as stored, oldest first: (uuid, its PAYLOAD_FIELDS values as written).
        self._stored_payloads: deque[tuple[str, tuple[Any, ...]]] = deque()

    # -- events ---------------------------------------------------------------
    def apply(self, event: dict[str, Any]) -> None:
        """Update the model with one checked event."""
        event_type = event["type"]
        if event_type.startswith("task-"):
            self._apply_task(event_type, event)
        elif event_type in ("worker-online", "worker-heartbeat", "worker-offline"):
            self._apply_worker(event_type, event)
        else:
            self.unknown_events += 1

    def _apply_worker(self, event_type: str, event: dict[str, Any]) -> None:
        hostname = event["hostname"]
        worker = self.workers.get(hostname)
        if worker is None:
            if len(self.workers) >= self.max_workers:
                if len(self.ignored_workers) < MAX_IGNORED_NAMES:
                    self.ignored_workers.add(hostname)  # counted and shown, never tracked
                return
            worker = self.departed.pop(hostname, None)  # back after a purge: the rules below still apply
            if worker is None:
                worker = self._early_outcomes.pop(hostname, None) or Worker(hostname)
                worker.status = "offline" if event_type == "worker-offline" else "online"
            self.workers[hostname] = worker
        software = (worker.sw_ident, worker.sw_ver)
        applied, revived_from = worker.merge(event_type, event, self.heartbeat_slack_seconds)
        if not applied:
            return
        if software[1] and worker.sw_ver and software != (worker.sw_ident, worker.sw_ver):
            self.markers.append({"at": event.get("local_received") or 0.0, "source": "worker",
                                 "label": f"{hostname}: {software[0] or ''} {software[1]} -> "
                                          f"{worker.sw_ident or ''} {worker.sw_ver}"})
        received = event.get("local_received")
        if revived_from == "lost" and received is not None:
            self.alerts.append({"event": "worker-online", "hostname": hostname, "time": received,
                                "last_heartbeat": received, "orphaned": []})
        if event_type == "worker-heartbeat" and worker.active is not None and received is not None \
                and len(self.active_minutes) < MAX_ACTIVE_MINUTES:
            minute = (hostname, received - received % 60)  # the most tasks it ran at once in each minute
            self.active_minutes[minute] = max(worker.active, self.active_minutes.get(minute, 0))
        if revived_from is not None:
            self.reinspect.add(hostname)  # back: its pool, queues and tasks may have changed
        self.journal.append(Record(WORKER, hostname))

    def _apply_task(self, event_type: str, event: dict[str, Any]) -> None:
        uuid = event["uuid"]
        task = self.tasks.get(uuid)
        if task is None:
            task = self.tasks[uuid] = Task(uuid)
            if event_type != "task-sent" or event.get("retries"):  # the store may know its beginning
                task.unknown = SENT_FIELDS if event_type == "task-received" and not event.get("retries") \
                    else PARTIAL_FIELDS
            self.state_counts["PENDING"] += 1
            if len(self.tasks) > self.max_tasks:
                self._evict_oldest()
        else:
            self.tasks.move_to_end(uuid)
        if event.get("root_id") == uuid:
            event["root_id"] = task.uuid  # one copy of the id (a root task is its own root) instead of two
        # A filtered copy, not a copy with keys deleted: deleting leaves the larger table (272 B, not 184 B)
        entry = {k: v for k, v in event.items() if k not in _TIMELINE_SKIP}
        events = task.events
        if events is not None and entry in events:
            return  # the same event delivered twice
        self.task_events += 1
        self.journal.append(Record(TASK, uuid, entry, event.get("local_received") or 0.0))
        if event_type in _OUTCOMES:
            self._count_outcome(event_type, event.get("hostname") or "")
        if events is None:  # timeline released to the store: Celery's merge rules alone, as Celery's State does
            self._apply_entry(task, entry)
        elif not events or event_key(entry) >= event_key(events[-1]):
            events.append(entry)
            self._apply_entry(task, entry)
        else:  # arrived out of order: replay the timeline, so the result never depends on arrival order
            insort(events, entry, key=event_key)
            self._replay(task)
        if self.stats is not None:
            self.stats.observe_task(event_type, task, entry, event.get("local_received") or 0.0)

    def _count_outcome(self, event_type: str, hostname: str) -> None:
        """Count a task outcome on the worker that sent it; one whose worker event has not come
        yet is kept for it (a bounded number of hostnames), so arrival order does not matter."""
        worker = self.workers.get(hostname) or self.departed.get(hostname)
        if worker is None:
            early = self._early_outcomes.get(hostname)
            if early is None:
                if len(self._early_outcomes) >= self.max_workers:
                    return
                early = self._early_outcomes[hostname] = Worker(hostname)
            early.count_outcome(event_type)
            return
        worker.count_outcome(event_type)
        self.journal.append(Record(WORKER, hostname))

    def _replay(self, task: Task) -> None:
        was_ready, finished = task.state in READY_STATES, self.finished_total
        old_worker, old_state = task.worker, task.state
        self._unpend(task)
        task.reset()
        self.state_counts[old_state] -= 1
        self.state_counts["PENDING"] += 1
        for entry in task.events or ():
            self._apply_entry(task, entry)
        self.finished_total = finished + (task.state in READY_STATES and not was_ready)
        if old_worker in self._in_flight:
            self._in_flight[old_worker].discard(task.uuid)
        if task.state in IN_FLIGHT_STATES and task.worker:
            self._in_flight.setdefault(task.worker, set()).add(task.uuid)

    def _apply_entry(self, task: Task, entry: dict[str, Any]) -> None:
        """Merge one entry into the task (``Task.merge``) and keep the indexes around it up to date."""
        previous_worker = task.worker
        state = task.merge(entry)
        parent = entry.get("parent_id")
        if parent and parent != task.uuid and task.uuid not in self._children.get(parent, ()):
            self._children.setdefault(parent, []).append(task.uuid)
        if state is None:
            return
        self._set_state(task, state)
        if state == "PENDING" and task.queue and task.sent is not None:
            self.pending_by_queue.setdefault(task.queue, {})[task.uuid] = task.sent
        if previous_worker in self._in_flight:
            self._in_flight[previous_worker].discard(task.uuid)
        if state in IN_FLIGHT_STATES and task.worker:
            self._in_flight.setdefault(task.worker, set()).add(task.uuid)

    def _set_state(self, task: Task, state: str) -> None:
        old = task.state
        if old == state:
            return
        self.state_counts[old] -= 1
        self.state_counts[state] = self.state_counts.get(state, 0) + 1
        task.state = state
        if old == "PENDING":
            self._unpend(task)
        if state in READY_STATES and old not in READY_STATES:
            self.finished_total += 1

    def _unpend(self, task: Task) -> None:
        waiting = self.pending_by_queue.get(task.queue or "")
        if waiting is not None:
            waiting.pop(task.uuid, None)
            if not waiting:
                del self.pending_by_queue[task.queue or ""]

    def _evict_oldest(self) -> None:
        uuid, task = self.tasks.popitem(last=False)
        self.state_counts[task.state] -= 1
        self._unpend(task)
        children = self._children.pop(uuid, None)
        if self.journal.recording:  # the history may not have saved it yet
            self.journal.append(Record(TASK_EVICTED, uuid, evicted=(task, children or [])))
        if task.worker in self._in_flight:
            self._in_flight[task.worker].discard(uuid)

    # -- time -----------------------------------------------------------------
    def expire_workers(self, now: float, listening_since: float = 0.0, read: float | None = None) -> list[str]:
        """Mark online workers whose heartbeats stopped as lost, and their in-flight tasks orphaned.

        ``listening_since`` is when the event stream was last (re)subscribed: silence before it
        says nothing about a worker. ``read``: how far the stream has been read (``now`` when not given): a
        window that ended after it may have its heartbeat still unread. The alerts carry ``now``.
        """
        lost = []
        judged = now if read is None else read
        for worker in self.workers.values():
            if worker.status != "online" or worker.last_heartbeat is None:
                continue
            last = max(worker.last_heartbeat, listening_since)
            if judged > heartbeat_expires(last, worker.freq, self.heartbeat_slack_seconds):
                worker.status = "lost"
                lost.append(worker.hostname)
                self.journal.append(Record(WORKER, worker.hostname))
                orphaned = []
                for uuid in self._in_flight.pop(worker.hostname, set()):
                    task = self.tasks.get(uuid)
                    if task is not None and task.state in IN_FLIGHT_STATES:
                        task.orphaned = True
                        orphaned.append(uuid)
                        self.journal.append(Record(TASK, uuid))
                self.orphans[worker.hostname] = sorted(orphaned)
                self.alerts.append({"event": "worker-lost", "hostname": worker.hostname, "time": now,
                                    "last_heartbeat": worker.last_heartbeat, "orphaned": sorted(orphaned)})
        return lost

    def purge_workers(self, now: float, after_seconds: float) -> list[str]:
        """Move workers offline or lost for longer than ``after_seconds`` out of the main list."""
        gone = [w for w in self.workers.values()
                if w.status != "online" and (w.last_heartbeat or 0.0) + after_seconds < now]
        for worker in gone:
            del self.workers[worker.hostname]
            self.departed[worker.hostname] = worker  # its inspect replies stay, for its page
            self.departed.move_to_end(worker.hostname)
            self.journal.append(Record(WORKER_REMOVED, worker.hostname))
        while len(self.departed) > MAX_DEPARTED_WORKERS:
            hostname, _ = self.departed.popitem(last=False)
            self.inspect_replies.pop(hostname, None)
        return [w.hostname for w in gone]

    def drain_alerts(self) -> list[WorkerAlert]:
        """Return the worker alerts (lost, back online) raised since the last call, and forget them."""
        alerts, self.alerts = self.alerts, []
        return alerts

    # -- inspect --------------------------------------------------------------
    def apply_inspect(self, hostname: str, replies: dict[str, Any], now: float, error: str | None) -> None:
        """Keep a worker's latest inspect replies; fill in pool and concurrency from ``stats``.

        Replies that did not come keep their previous value, so one slow round does not blank the page.
        """
        worker = self.workers.get(hostname)
        if worker is None:
            return
        data = self.inspect_replies.setdefault(hostname, {})
        data.update(replies)
        if replies.get("stats"):
            self.reinspect.discard(hostname)
        data["inspected_at"] = now if replies else data.get("inspected_at")
        data["inspect_error"] = error
        stats = replies.get("stats")
        if isinstance(stats, dict):
            pool = stats.get("pool")
            if isinstance(pool, dict):
                impl = pool.get("implementation")
                if isinstance(impl, str):
                    worker.pool = pool_name(impl)
                concurrency = pool.get("max-concurrency")
                if isinstance(concurrency, int):
                    worker.concurrency = concurrency
        self.journal.append(Record(WORKER, hostname))

    # -- reading --------------------------------------------------------------
    def release_timelines(self, uuids: Iterable[str]) -> int:
        """Drop the in-memory timelines of these tasks when they have finished; return how many.

        Called once their events are safely in the store. A finished task keeps its fields; a
        late event for it is merged by Celery's rules instead of a replay, and its timeline is
        read from the store. Unfinished tasks keep theirs, to replay events that arrive out of order.
        """
        released = 0
        tasks = self.tasks
        for uuid in uuids:
            task = tasks.get(uuid)
            if task is not None and task.events is not None and task.state in READY_STATES:
                task.events = None
                released += 1
        return released

    def release_payloads(self, written: Iterable[dict[str, Any]]) -> int:
        """Let go of the payloads of finished tasks the store holds, but for the ``PAYLOADS_KEPT`` latest;
        return how many tasks let go of some.

        ``written`` are task shapes as the store took them. A field is let go of only while it
        still holds the very value written (a late event may have set another since, which the
        next write carries); the task then lists it in ``released`` and its shape leaves it out.
        """
        queue = self._stored_payloads
        for shape in written:
            if shape.get("state") in READY_STATES:
                queue.append((shape["uuid"], tuple(shape.get(name) for name in PAYLOAD_FIELDS)))
        return self._let_go_payloads()

    def _let_go_payloads(self) -> int:
        """Let go of the payloads of the stored finished tasks beyond the ``PAYLOADS_KEPT`` latest."""
        queue = self._stored_payloads
        tasks = self.tasks
        released = 0
        while len(queue) > PAYLOADS_KEPT:
            uuid, values = queue.popleft()
            task = tasks.get(uuid)
            if task is None or task.events is not None or task.state not in READY_STATES:
                continue
            let_go = [name for name, value in zip(PAYLOAD_FIELDS, values)
                      if value is not None and getattr(task, name) is value]
            if let_go:
                for name in let_go:
                    setattr(task, name, None)
                released_now = tuple(name for name in PAYLOAD_FIELDS if name in let_go or name in task.released)
                task.released = _RELEASED.setdefault(released_now, released_now)  # one tuple per combination
                released += 1
        return released

    def restore(self, task: dict[str, Any], events: list[dict[str, Any]] | None) -> None:
        """Put back a task read from the store, oldest first, without marking anything changed.

        ``events`` None leaves a finished task's timeline in the store (see ``release_timelines``).
        """
        uuid = task["uuid"]
        if uuid in self.tasks:
            return
        restored = Task(uuid)
        for name in TASK_FIELDS:
            if name != "uuid" and name in task:
                setattr(restored, name, task[name])
        restored.orphaned = bool(task.get("orphaned"))
        restored.events = None if events is None else sorted((dict(e) for e in events), key=event_key)
        if restored.state not in self.state_counts:
            restored.state = "PENDING"
        self.tasks[uuid] = restored
        self.state_counts[restored.state] += 1
        if restored.parent_id and uuid not in self._children.get(restored.parent_id, ()):
            self._children.setdefault(restored.parent_id, []).append(uuid)
        if restored.state in IN_FLIGHT_STATES and restored.worker:
            self._in_flight.setdefault(restored.worker, set()).add(uuid)
        if restored.state == "PENDING" and restored.queue and restored.sent is not None:
            self.pending_by_queue.setdefault(restored.queue, {})[uuid] = restored.sent
        if events is None and restored.state in READY_STATES:  # as if just written
            self._stored_payloads.append((uuid, tuple(getattr(restored, name) for name in PAYLOAD_FIELDS)))
            self._let_go_payloads()
        while len(self.tasks) > self.max_tasks:
            self._evict_oldest()

    def task_json(self, uuid: str) -> dict[str, Any] | None:
        """Return one task's JSON shape, or None when it is not held in memory."""
        task = self.tasks.get(uuid)
        return None if task is None else task.to_json(self._children.get(uuid))

    def task_detail(self, uuid: str) -> dict[str, Any] | None:
        """Return one task's JSON shape with its event timeline (``events`` None when released)."""
        task = self.tasks.get(uuid)
        if task is None:
            return None
        detail = task.to_json(self._children.get(uuid))
        detail["events"] = None if task.events is None else [dict(entry) for entry in task.events]
        return detail

    def waiting(self, queue: str) -> tuple[float | None, dict[str, int]]:
        """Return when the oldest task still waiting in ``queue`` was sent, and the waiting task names."""
        waiting = self.pending_by_queue.get(queue)
        if not waiting:
            return None, {}
        names: dict[str, int] = {}
        for uuid in waiting:
            name = self.tasks[uuid].name or "unknown"
            names[name] = names.get(name, 0) + 1
        return min(waiting.values()), names

    def oldest_waiting(self, queue: str) -> float | None:
        """Return when the oldest task still waiting in ``queue`` was sent (None when none is known)."""
        waiting = self.pending_by_queue.get(queue)
        return min(waiting.values()) if waiting else None

    def started_tasks(self) -> list[Task]:
        """Return the tasks running now (STARTED on some worker; not those found lost)."""
        tasks = self.tasks
        return [tasks[u] for uuids in self._in_flight.values() for u in uuids
                if u in tasks and tasks[u].state == "STARTED" and tasks[u].lost is None]

    def mark_lost(self, uuids: Iterable[str], reason: str) -> list[str]:
        """Take these tasks as no longer in flight, saying why (only those still unfinished); return them."""
        marked = []
        for uuid in uuids:
            task = self.tasks.get(uuid)
            if task is not None and task.state not in READY_STATES and task.lost is None:
                task.lost = reason
                marked.append(uuid)
                self.journal.append(Record(TASK, uuid))
        return marked

    def recent_tasks(self) -> Iterator[Task]:
        """Yield tasks, most recently updated first."""
        return reversed(self.tasks.values())

    def counters(self) -> Counters:
        """Return task counts per state (of tasks held in memory) and totals."""
        return {"states": {s: self.state_counts.get(s, 0) for s in TASK_STATES},
                "total": len(self.tasks), "finished": self.finished_total,
                "task_events": self.task_events}


def event_key(entry: dict[str, Any]) -> tuple[float, int, str]:
    """Order a task's events by time, then by their place in a task's life."""
    timestamp = entry.get("timestamp")
    return (timestamp if isinstance(timestamp, (int, float)) else 0.0,
            LIFE_ORDER.get(entry["type"], 3), entry["type"])
