"""The in-memory model of a Celery cluster: workers and tasks, updated by events.

This module is pure: it cannot do any I/O and never reads a clock. It gets
checked event dicts (see ``checks``) carrying ``local_received``, the
dashboard's own receive time, and an injected ``now`` for expiry. It imports
no Flask, kombu, socketio or eventlet. It records what changed so that the
pusher can send coalesced updates.
"""
from __future__ import annotations

from bisect import insort
from collections import OrderedDict, deque
from typing import Any, Iterable, Iterator

#: Celery's task states, in the order the page shows them.
TASK_STATES = ("PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED")
#: States after which a task does nothing more (unless retried).
READY_STATES = frozenset(("SUCCESS", "FAILURE", "REVOKED", "REJECTED"))
#: States in which a task is held by a worker.
IN_FLIGHT_STATES = frozenset(("RECEIVED", "STARTED"))
#: Event type to the state it moves a task to (Celery's TASK_EVENT_TO_STATE).
TASK_EVENT_TO_STATE = {
    "task-sent": "PENDING", "task-received": "RECEIVED", "task-started": "STARTED",
    "task-failed": "FAILURE", "task-retried": "RETRY", "task-succeeded": "SUCCESS",
    "task-revoked": "REVOKED", "task-rejected": "REJECTED",
}
#: Celery's ``celery.states.PRECEDENCE``: a lower index wins over a higher one.
_PRECEDENCE = ["SUCCESS", "FAILURE", None, "REVOKED", "STARTED", "RECEIVED", "REJECTED", "RETRY", "PENDING"]
_PRECEDENCE_INDEX = {state: index for index, state in enumerate(_PRECEDENCE)}
#: Fields a late ``task-received`` may still fill in (Celery's ``Task.merge_rules``).
_RECEIVED_MERGE_FIELDS = ("name", "args", "kwargs", "parent_id", "root_id", "eta", "expires")
#: Task attributes an event may set directly.
_TASK_FIELDS = ("name", "args", "kwargs", "eta", "expires", "queue", "exchange",
                "routing_key", "parent_id", "root_id", "result", "exception", "traceback", "runtime")
#: Event keys left out of a task's timeline entries (they are on the task or are bookkeeping).
_TIMELINE_SKIP = frozenset(("uuid", "clock", "utcoffset", "pid", "local_received"))
#: Task fields a replay of the timeline recomputes.
_RESET_FIELDS = _TASK_FIELDS + ("retries", "worker", "timestamp", "sent", "received", "started",
                                "succeeded", "failed", "retried", "revoked", "rejected")
#: Where each event type falls in a task's life, to order events with equal timestamps.
LIFE_ORDER = {"task-sent": 0, "task-received": 1, "task-started": 2, "task-retried": 4,
               "task-failed": 5, "task-succeeded": 5, "task-revoked": 6, "task-rejected": 6}
#: Worker history kept for charts, and the least time between two samples, in seconds.
HISTORY_SECONDS = 3600.0
HISTORY_STEP_SECONDS = 5.0
#: Departed (purged) workers remembered for searches.
MAX_DEPARTED_WORKERS = 10_000
#: Names beyond a limit (workers, queues) remembered for counting; more are not counted.
MAX_IGNORED_NAMES = 100_000
#: Default heartbeat interval, in seconds, when a worker does not say (Celery's default).
DEFAULT_FREQ_SECONDS = 2.0


def precedence(state: str | None) -> int:
    """Return Celery's precedence index of ``state`` (lower wins); custom states rank with None."""
    return _PRECEDENCE_INDEX.get(state, 2)


def heartbeat_expires(last_heartbeat: float, freq: float, slack: float) -> float:
    """Return when a worker that last beat at ``last_heartbeat`` is lost (Celery's freq * 2, plus slack)."""
    return last_heartbeat + freq * 2 + slack


class Worker:
    """One worker as seen through its events and inspect replies."""

    __slots__ = ("hostname", "status", "last_heartbeat", "freq", "timestamp", "offline_at", "offline_received",
                 "pool", "concurrency", "processed", "active", "loadavg", "sw_ident", "sw_ver",
                 "sw_sys", "clock_skew", "pid", "history")

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.status = "online"
        self.last_heartbeat: float | None = None  # dashboard receive time of the last worker event
        self.freq = DEFAULT_FREQ_SECONDS
        self.timestamp: float | None = None  # worker's own clock at its last worker event
        self.offline_at: float | None = None  # worker's clock at its worker-offline
        self.offline_received: float | None = None  # dashboard receive time of that worker-offline
        self.pool: str | None = None
        self.concurrency: int | None = None
        self.processed = 0
        self.active = 0
        self.loadavg: list[float] | None = None
        self.sw_ident: str | None = None
        self.sw_ver: str | None = None
        self.sw_sys: str | None = None
        self.clock_skew: float | None = None
        self.pid: int | None = None
        self.history: deque[tuple[float, int, float | None]] = deque()  # (received, active, load 1 min)

    def record(self, received: float) -> None:
        """Add a history sample at most every HISTORY_STEP_SECONDS, keeping HISTORY_SECONDS."""
        history = self.history
        if history and received - history[-1][0] < HISTORY_STEP_SECONDS:
            return
        history.append((received, self.active, self.loadavg[0] if self.loadavg else None))
        while history and received - history[0][0] > HISTORY_SECONDS:
            history.popleft()

    def history_json(self) -> dict[str, list[Any]]:
        """Return the last hour of samples as parallel lists, for the worker page's chart."""
        return {"t": [h[0] for h in self.history], "active": [h[1] for h in self.history],
                "load": [h[2] for h in self.history]}

    def to_json(self) -> dict[str, Any]:
        """Return the worker's JSON shape, shared by the API, the pages and the live push."""
        return {
            "hostname": self.hostname, "status": self.status, "last_heartbeat": self.last_heartbeat,
            "freq": self.freq, "pool": self.pool, "concurrency": self.concurrency,
            "processed": self.processed, "active": self.active, "loadavg": self.loadavg,
            "sw_ident": self.sw_ident, "sw_ver": self.sw_ver, "sw_sys": self.sw_sys,
            "clock_skew": self.clock_skew, "pid": self.pid,
        }


class Task:
    """One task: its current fields and, while held, the timeline of its events.

    ``events`` is None once the timeline has been handed to the store and the task has
    finished (see ``ClusterState.release_timelines``): the store answers for it then.
    """

    __slots__ = ("uuid", "name", "state", "worker", "queue", "exchange", "routing_key", "sent",
                 "received", "started", "succeeded", "failed", "retried", "revoked", "rejected",
                 "timestamp", "runtime", "retries", "args", "kwargs", "eta", "expires", "result",
                 "exception", "traceback", "parent_id", "root_id", "orphaned", "progress", "events")

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        self.state = "PENDING"
        self.timestamp: float | None = None
        self.orphaned = False
        self.progress: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] | None = []
        self.name: str | None = None
        self.worker: str | None = None
        self.queue: str | None = None
        self.exchange: str | None = None
        self.routing_key: str | None = None
        # When each state was last entered: the event's timestamp, epoch seconds.
        self.sent: float | None = None
        self.received: float | None = None
        self.started: float | None = None
        self.succeeded: float | None = None
        self.failed: float | None = None
        self.retried: float | None = None
        self.revoked: float | None = None
        self.rejected: float | None = None
        self.runtime: float | None = None
        self.retries: int | None = None
        # Payloads as the worker's repr, cut to --max-field-chars.
        self.args: str | None = None
        self.kwargs: str | None = None
        self.eta: str | None = None
        self.expires: str | None = None
        self.result: str | None = None
        self.exception: str | None = None
        self.traceback: str | None = None
        self.parent_id: str | None = None
        self.root_id: str | None = None

    def to_json(self, children: list[str] | None = None) -> dict[str, Any]:
        """Return the task's JSON shape, shared by the API, the pages and the live push."""
        return {
            "uuid": self.uuid, "name": self.name, "state": self.state, "worker": self.worker,
            "queue": self.queue, "exchange": self.exchange, "routing_key": self.routing_key,
            "sent": self.sent, "received": self.received, "started": self.started,
            "succeeded": self.succeeded, "failed": self.failed, "retried": self.retried,
            "revoked": self.revoked, "rejected": self.rejected, "timestamp": self.timestamp,
            "runtime": self.runtime, "retries": self.retries, "args": self.args,
            "kwargs": self.kwargs, "eta": self.eta, "expires": self.expires, "result": self.result,
            "exception": self.exception, "traceback": self.traceback, "parent_id": self.parent_id,
            "root_id": self.root_id, "children": list(children or ()), "orphaned": self.orphaned,
            "progress": self.progress,
        }


class ClusterState:
    """Workers and tasks, updated by ``apply``; remembers what changed until ``drain_changes``.

    Not thread-safe by itself: its owner (the collector) serialises every call.
    """

    def __init__(self, max_tasks: int = 100_000, heartbeat_slack_seconds: float = 2.0,
                 max_workers: int = 5_000) -> None:
        self.max_tasks = max_tasks
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
        self.alerts: list[dict[str, Any]] = []  # worker lost / back online, until drained
        self.reinspect: set[str] = set()  # workers back online since their last inspect
        self.orphans: dict[str, list[str]] = {}  # hostname -> tasks in flight when it was last lost
        self._removed_workers: dict[str, None] = {}
        self.pending_by_queue: dict[str, dict[str, float]] = {}  # queue -> {uuid: sent}, oldest first
        self.track_unsaved = False  # set when a store keeps the history
        self._unsaved_tasks: dict[str, float] = {}  # uuid -> when it first changed since it was saved
        self._unsaved_events: list[tuple[str, dict[str, Any]]] = []
        self._evicted_unsaved: list[dict[str, Any]] = []
        self._children: dict[str, list[str]] = {}
        self._in_flight: dict[str, set[str]] = {}  # hostname -> uuids received or started there
        self._dirty_tasks: dict[str, None] = {}
        self._dirty_workers: dict[str, None] = {}

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
                worker = Worker(hostname)
                worker.status = "offline" if event_type == "worker-offline" else "online"
            self.workers[hostname] = worker
        timestamp = event.get("timestamp")
        received = event.get("local_received")
        if event_type == "worker-offline":
            worker.offline_at = timestamp
            worker.offline_received = received
            worker.status = "offline"
        elif (worker.offline_at is not None and (timestamp is None or timestamp <= worker.offline_at)
              and (received is None or worker.offline_received is None
                   or received - worker.offline_received <= worker.freq * 2 + self.heartbeat_slack_seconds)):
            # A heartbeat sent before the worker said goodbye, delivered late, must not revive it. Only
            # just after the goodbye, though: the worker's clock decides nothing for longer than that.
            return
        else:
            worker.offline_at = None
            if worker.status == "lost" and received is not None:
                self.alerts.append({"event": "worker-online", "hostname": hostname, "time": received,
                                    "last_heartbeat": received, "orphaned": []})
            if worker.status != "online":
                self.reinspect.add(hostname)  # back: its pool, queues and tasks may have changed
            worker.status = "online"
        worker.timestamp = timestamp
        if received is not None:
            worker.last_heartbeat = received
            if timestamp is not None:
                worker.clock_skew = round(received - timestamp, 3)
        freq = event.get("freq")
        if freq:
            worker.freq = float(freq)
        for name in ("sw_ident", "sw_ver", "sw_sys", "pid"):
            value = event.get(name)
            if value is not None:
                setattr(worker, name, value)
        if event.get("active") is not None:
            worker.active = event["active"]
        if event.get("processed") is not None:
            worker.processed = event["processed"]
        if event.get("loadavg") is not None:
            worker.loadavg = [round(float(v), 2) for v in event["loadavg"]]
        if received is not None:
            worker.record(received)
        self._dirty_workers[hostname] = None

    def _apply_task(self, event_type: str, event: dict[str, Any]) -> None:
        uuid = event["uuid"]
        task = self.tasks.get(uuid)
        if task is None:
            task = self.tasks[uuid] = Task(uuid)
            self.state_counts["PENDING"] += 1
            if len(self.tasks) > self.max_tasks:
                self._evict_oldest()
        else:
            self.tasks.move_to_end(uuid)
        entry = {k: v for k, v in event.items() if k not in _TIMELINE_SKIP}
        events = task.events
        if events is not None and entry in events:
            return  # the same event delivered twice
        self.task_events += 1
        if self.track_unsaved:
            self._unsaved_tasks.setdefault(uuid, event.get("local_received") or 0.0)
            self._unsaved_events.append((uuid, entry))
        if events is None:  # timeline released to the store: Celery's merge rules alone, as Celery's State does
            self._apply_entry(task, entry)
        elif not events or event_key(entry) >= event_key(events[-1]):
            events.append(entry)
            self._apply_entry(task, entry)
        else:  # arrived out of order: replay the timeline, so the result never depends on arrival order
            insort(events, entry, key=event_key)
            self._replay(task)
        self._dirty_tasks[uuid] = None

    def _replay(self, task: Task) -> None:
        was_ready, finished = task.state in READY_STATES, self.finished_total
        old_worker, old_state = task.worker, task.state
        self._unpend(task)
        for name in _RESET_FIELDS:
            setattr(task, name, None)
        task.progress = None
        self.state_counts[old_state] -= 1
        self.state_counts["PENDING"] += 1
        task.state = "PENDING"
        for entry in task.events or ():
            self._apply_entry(task, entry)
        self.finished_total = finished + (task.state in READY_STATES and not was_ready)
        if old_worker in self._in_flight:
            self._in_flight[old_worker].discard(task.uuid)
        if task.state in IN_FLIGHT_STATES and task.worker:
            self._in_flight.setdefault(task.worker, set()).add(task.uuid)

    def _apply_entry(self, task: Task, entry: dict[str, Any]) -> None:
        event_type = entry["type"]
        state = TASK_EVENT_TO_STATE.get(event_type)
        if state is None:
            if event_type == "task-progress":
                current, total = entry.get("current"), entry.get("total")
                if isinstance(current, (int, float)) and isinstance(total, (int, float)):
                    task.progress = {"current": current, "total": total}
            return
        timestamp = entry.get("timestamp")
        field = event_type[5:]  # task.received = timestamp, ...; the latest attempt's wins
        current = getattr(task, field)
        if current is None or (timestamp is not None and timestamp > current):
            setattr(task, field, timestamp)
        self._merge(task, state, entry)

    def _merge(self, task: Task, state: str, event: dict[str, Any]) -> None:
        """Apply Celery's merge rule: an event that logically happened earlier only fills in fields."""
        timestamp = event.get("timestamp")
        previous_worker = task.worker
        moves = (state == "RETRY" or task.state == "RETRY"
                 or precedence(state) <= precedence(task.state))
        if moves and state == "RETRY" and task.state in READY_STATES and task.timestamp is not None \
                and timestamp is not None and timestamp < task.timestamp:
            moves = False  # a retry of an earlier attempt arriving after the final outcome
        if moves:
            fields: Iterable[str] = _TASK_FIELDS
        elif state == "RECEIVED":
            fields = _RECEIVED_MERGE_FIELDS
        else:
            fields = (f for f in _TASK_FIELDS if getattr(task, f) is None)
        for name in fields:
            value = event.get(name)
            if value is not None:
                setattr(task, name, value)
        if task.parent_id == task.uuid:
            task.parent_id = None  # a retry is sent with itself as parent: not a family link
        if moves and state == "SUCCESS":
            task.exception = task.traceback = None  # an earlier attempt's error; the timeline keeps it
        if state == "FAILURE" and task.runtime is None and task.started is not None and timestamp is not None:
            task.runtime = round(max(timestamp - task.started, 0.0), 6)  # task-failed carries no runtime
        retries = event.get("retries")
        if retries is not None and (task.retries is None or retries > task.retries):
            task.retries = retries  # only grows: a late event of an earlier attempt keeps the count
        parent = event.get("parent_id")
        if parent and parent != task.uuid and task.uuid not in self._children.get(parent, ()):
            self._children.setdefault(parent, []).append(task.uuid)
        hostname = event.get("hostname") if state != "PENDING" else None  # task-sent names the producer
        if hostname and (task.worker is None or (moves and state in IN_FLIGHT_STATES)):
            task.worker = hostname
        if moves:
            self._set_state(task, state)
            task.timestamp = timestamp
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
        if self._unsaved_tasks.pop(uuid, None) is not None:
            self._evicted_unsaved.append(task.to_json(self._children.get(uuid)))  # the store still needs it
        self.state_counts[task.state] -= 1
        self._unpend(task)
        self._children.pop(uuid, None)
        self._dirty_tasks.pop(uuid, None)
        if task.worker in self._in_flight:
            self._in_flight[task.worker].discard(uuid)

    # -- time -----------------------------------------------------------------
    def expire_workers(self, now: float, listening_since: float = 0.0) -> list[str]:
        """Mark online workers whose heartbeats stopped as lost, and their in-flight tasks orphaned.

        ``listening_since`` is when the event stream was last (re)subscribed: silence before it
        says nothing about a worker.
        """
        lost = []
        for worker in self.workers.values():
            if worker.status != "online" or worker.last_heartbeat is None:
                continue
            last = max(worker.last_heartbeat, listening_since)
            if now > heartbeat_expires(last, worker.freq, self.heartbeat_slack_seconds):
                worker.status = "lost"
                lost.append(worker.hostname)
                self._dirty_workers[worker.hostname] = None
                orphaned = []
                for uuid in self._in_flight.pop(worker.hostname, set()):
                    task = self.tasks.get(uuid)
                    if task is not None and task.state in IN_FLIGHT_STATES:
                        task.orphaned = True
                        orphaned.append(uuid)
                        self._dirty_tasks[uuid] = None
                        if self.track_unsaved:
                            self._unsaved_tasks.setdefault(uuid, 0.0)
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
            self._dirty_workers.pop(worker.hostname, None)
            self._removed_workers[worker.hostname] = None
        while len(self.departed) > MAX_DEPARTED_WORKERS:
            hostname, _ = self.departed.popitem(last=False)
            self.inspect_replies.pop(hostname, None)
        return [w.hostname for w in gone]

    def drain_alerts(self) -> list[dict[str, Any]]:
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
        self._dirty_workers[hostname] = None

    # -- reading --------------------------------------------------------------
    def drain_changes(self) -> tuple[list[str], list[str]]:
        """Return the uuids and hostnames changed since the last call, and forget them."""
        tasks, workers = list(self._dirty_tasks), list(self._dirty_workers)
        self._dirty_tasks.clear()
        self._dirty_workers.clear()
        return tasks, workers

    def drain_unsaved(self, now: float | None = None, hold_seconds: float = 0.0
                      ) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
        """Return the changed tasks' shapes and the new events since the last call, for the store.

        With ``now``, an unfinished task that first changed less than ``hold_seconds`` before it
        stays unsaved, with its events, until it finishes or that time has passed: most tasks are
        then written once, finished, instead of once per state.
        """
        unsaved, events = self._unsaved_tasks, self._unsaved_events
        held: dict[str, float] = {}
        if now is not None and hold_seconds > 0:
            cutoff = now - hold_seconds
            tasks = self.tasks
            for uuid, since in unsaved.items():
                task = tasks.get(uuid)
                if task is not None and since > cutoff and task.state not in READY_STATES:
                    held[uuid] = since
            if held:
                unsaved = {uuid: since for uuid, since in unsaved.items() if uuid not in held}
                events = [item for item in events if item[0] not in held]
                self._unsaved_events = [item for item in self._unsaved_events if item[0] in held]
            else:
                self._unsaved_events = []
        else:
            self._unsaved_events = []
        shapes = self._evicted_unsaved + [self.tasks[u].to_json() for u in unsaved if u in self.tasks]
        self._unsaved_tasks = held
        self._evicted_unsaved = []
        return shapes, events

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

    def restore(self, task: dict[str, Any], events: list[dict[str, Any]] | None) -> None:
        """Put back a task read from the store, oldest first, without marking anything changed.

        ``events`` None leaves a finished task's timeline in the store (see ``release_timelines``).
        """
        uuid = task["uuid"]
        if uuid in self.tasks:
            return
        restored = Task(uuid)
        for name in Task.__slots__:
            if name not in ("uuid", "events") and name in task:
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
        while len(self.tasks) > self.max_tasks:
            self._evict_oldest()

    def unsaved_events(self, uuid: str) -> list[dict[str, Any]]:
        """Return copies of this task's events not yet handed to the store."""
        return [dict(entry) for task_id, entry in self._unsaved_events if task_id == uuid]

    def drain_removed_workers(self) -> list[str]:
        """Return the hostnames purged from the main list since the last call, and forget them."""
        removed = list(self._removed_workers)
        self._removed_workers.clear()
        return removed

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

    def recent_tasks(self) -> Iterator[Task]:
        """Yield tasks, most recently updated first."""
        return reversed(self.tasks.values())

    def counters(self) -> dict[str, Any]:
        """Return task counts per state (of tasks held in memory) and totals."""
        return {"states": {s: self.state_counts.get(s, 0) for s in TASK_STATES},
                "total": len(self.tasks), "finished": self.finished_total,
                "task_events": self.task_events}


def pool_name(implementation: str) -> str:
    """Turn ``celery.concurrency.eventlet:TaskPool`` into ``eventlet``."""
    module = implementation.split(":")[0]
    name = module.rsplit(".", 1)[-1]
    return {"asynpool": "prefork", "solo": "solo"}.get(name, name)


def event_key(entry: dict[str, Any]) -> tuple[float, int, str]:
    """Order a task's events by time, then by their place in a task's life."""
    timestamp = entry.get("timestamp")
    return (timestamp if isinstance(timestamp, (int, float)) else 0.0,
            LIFE_ORDER.get(entry["type"], 3), entry["type"])
