"""A task and a worker: their fields, declared once, and the rules that merge events into them.

``Task`` and ``Worker`` are slotted dataclasses. Each field's metadata says where it
goes: a task's stored fields are the history's columns (``TASK_COLUMNS``, with
their SQLite kind), and both records' published fields make their JSON shape
(``to_json``), so the store, the API and the live push derive from this one
declaration. The merge rules live beside the data they merge, as in Celery's
``celery.events.state.Task.event``; the collections and their indexes are
``state.ClusterState``'s.

Pure: no I/O, no clock.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable

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
#: Worker history kept for charts, and the least time between two samples, in seconds.
HISTORY_SECONDS = 3600.0
HISTORY_STEP_SECONDS = 5.0
#: Longest ``retry_errors`` kept, in characters (the oldest attempts' lines go first).
RETRY_ERRORS_MAX_CHARS = 8192
#: Payload fields a finished task lets go of in memory once the history holds them (``Task.released``):
#: the store answers for them then, and its JSON shape leaves them out. ``retry_errors`` stays, since a
#: late retry adds to it.
PAYLOAD_FIELDS = ("args", "kwargs", "result", "exception", "traceback")
#: Default heartbeat interval, in seconds, when a worker does not say (Celery's default).
DEFAULT_FREQ_SECONDS = 2.0

# Column kinds of a stored task field (how the store converts it both ways).
TEXT, REAL, INTEGER, FLAG, JSON = "text", "real", "integer", "flag", "json"


def precedence(state: str | None) -> int:
    """Return Celery's precedence index of ``state`` (lower wins); custom states rank with None."""
    return _PRECEDENCE_INDEX.get(state, 2)


def heartbeat_expires(last_heartbeat: float, freq: float, slack: float) -> float:
    """Return when a worker that last beat at ``last_heartbeat`` is lost (Celery's freq * 2, plus slack)."""
    return last_heartbeat + freq * 2 + slack


def _stored(kind: str, default: Any = None, *, from_event: bool = False, when: bool = False) -> Any:
    """A task field kept in the history (a column of ``kind``) and published in its JSON shape.

    ``from_event``: an event's field of that name sets it. ``when``: the time the task last
    entered the state of that name (``received`` for ``task-received``...).
    """
    return field(default=default, metadata={"column": kind, "from_event": from_event, "when": when})


def _published(default: Any = None) -> Any:
    """A worker field published in its JSON shape."""
    return field(default=default, metadata={"json": True})


def _shape_function(names: Iterable[str], extra: str = "") -> Callable[..., dict[str, Any]]:
    """Compile a shape function for these attribute names, as dataclasses compile ``__init__``.

    A literal dict display is what the event path can afford (a zip over an attrgetter costs
    half as much again); generating it keeps the field list in the declaration alone.
    """
    items = ", ".join(f"{name!r}: self.{name}" for name in names)
    source = f"def shape(self{', children=None' if extra else ''}):\n    return {{{items}{extra}}}\n"
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - the source is built from field names declared above
    return namespace["shape"]


@dataclass(slots=True, eq=False)
class Task:
    """One task: its current fields and, while held, the timeline of its events.

    ``events`` is None once the timeline has been handed to the store and the task has
    finished (see ``ClusterState.release_timelines``): the store answers for it then. Later its
    payloads go the same way (``released``, see ``ClusterState.release_payloads``).
    """

    uuid: str = _stored(TEXT)
    name: str | None = _stored(TEXT, from_event=True)
    state: str = _stored(TEXT, "PENDING")
    worker: str | None = _stored(TEXT)
    queue: str | None = _stored(TEXT, from_event=True)
    exchange: str | None = _stored(TEXT, from_event=True)
    routing_key: str | None = _stored(TEXT, from_event=True)
    # When each state was last entered: the event's timestamp, epoch seconds.
    sent: float | None = _stored(REAL, when=True)
    received: float | None = _stored(REAL, when=True)
    started: float | None = _stored(REAL, when=True)
    succeeded: float | None = _stored(REAL, when=True)
    failed: float | None = _stored(REAL, when=True)
    retried: float | None = _stored(REAL, when=True)
    revoked: float | None = _stored(REAL, when=True)
    rejected: float | None = _stored(REAL, when=True)
    timestamp: float | None = _stored(REAL)  # of the event that set the state
    runtime: float | None = _stored(REAL, from_event=True)
    retries: int | None = _stored(INTEGER)
    # Payloads as the worker's repr, cut to --max-field-chars.
    args: str | None = _stored(TEXT, from_event=True)
    kwargs: str | None = _stored(TEXT, from_event=True)
    eta: str | None = _stored(TEXT, from_event=True)
    expires: str | None = _stored(TEXT, from_event=True)
    result: str | None = _stored(TEXT, from_event=True)
    exception: str | None = _stored(TEXT, from_event=True)
    traceback: str | None = _stored(TEXT, from_event=True)
    retry_errors: str | None = _stored(TEXT)  # the distinct exceptions of retried attempts, oldest first, a line each
    parent_id: str | None = _stored(TEXT, from_event=True)
    root_id: str | None = _stored(TEXT, from_event=True)
    orphaned: bool = _stored(FLAG, False)  # in flight on a worker that was lost
    lost: str | None = _stored(TEXT)  # why it is no longer taken as in flight (reconciliation), or None
    progress: dict[str, Any] | None = _stored(JSON)  # the latest task-progress: current and total
    events: list[dict[str, Any]] | None = field(default_factory=list)  # the timeline, oldest first
    # PAYLOAD_FIELDS let go of once stored: None here means "in the store", and no late event fills them.
    released: tuple[str, ...] = ()
    # Fields a task first seen after the start of its life has not been told (SENT_FIELDS or
    # PARTIAL_FIELDS): None here means unknown, the store may hold them, and events fill them as usual.
    unknown: tuple[str, ...] = ()

    def to_json(self, children: list[str] | None = None) -> dict[str, Any]:
        """Return the task's JSON shape, shared by the API, the pages and the live push.

        A field not known here (``released``, ``unknown``) and not set since is left out, and so,
        for a task known only partly, are a state no event has moved yet and an unset orphan
        flag: the shape says nothing about them, and the store keeps what it holds (``write_batch``).
        """
        shape = _task_shape(self, children)
        if self.released or self.unknown:
            for names in (self.released, self.unknown):  # no tuple built on the push and write path
                for name in names:
                    if shape.get(name, 0) is None:
                        del shape[name]
            if "lost" in self.unknown:  # known only partly (PARTIAL_FIELDS)
                if shape["state"] == "PENDING":
                    del shape["state"]
                if not shape["orphaned"]:
                    del shape["orphaned"]
        return shape

    def merge(self, entry: dict[str, Any]) -> str | None:
        """Merge one timeline entry by Celery's rules; return the state it moves the task to.

        None when it does not move the task: an event that logically happened earlier only
        fills in fields, and ``task-progress`` only sets ``progress``. The caller sets the state.
        """
        event_type = entry["type"]
        state = TASK_EVENT_TO_STATE.get(event_type)
        if state is None:
            if event_type == "task-progress":
                current, total = entry.get("current"), entry.get("total")
                if isinstance(current, (int, float)) and isinstance(total, (int, float)):
                    self.progress = {"current": current, "total": total}
            return None
        timestamp = entry.get("timestamp")
        when = event_type[5:]  # task.received = timestamp, ...; the latest attempt's wins
        current = getattr(self, when)
        if current is None or (timestamp is not None and timestamp > current):
            setattr(self, when, timestamp)
        moves = state == "RETRY" or self.state == "RETRY" or precedence(state) <= precedence(self.state)
        if moves and state == "RETRY" and self.state in READY_STATES and self.timestamp is not None \
                and timestamp is not None and timestamp < self.timestamp:
            moves = False  # a retry of an earlier attempt arriving after the final outcome
        if state == "REVOKED" and entry.get("terminated") is True and self.state in READY_STATES \
                and (self.timestamp is None or timestamp is None or timestamp >= self.timestamp):
            # Killed where it ran: whatever that attempt reported is void. An eventlet pool reports a
            # killed green thread as task-succeeded (no runtime) just before the task-revoked.
            moves = True
        if moves:
            names: Iterable[str] = EVENT_FIELDS
        elif state == "RECEIVED":
            names = _RECEIVED_MERGE_FIELDS
        else:  # fills in what is unset, not what was let go of to the store (a late retry's error, say)
            names = [name for name in EVENT_FIELDS if getattr(self, name) is None and name not in self.released]
        for name in names:
            value = entry.get(name)
            if value is not None:
                setattr(self, name, value)
        if self.parent_id == self.uuid:
            self.parent_id = None  # a retry is sent with itself as parent: not a family link
        if moves and state == "SUCCESS":
            self.exception = self.traceback = None  # an earlier attempt's error; the timeline keeps it
            if "exception" in self.released or "exception" in self.unknown:  # known to be None now
                self.released = _without_error(self.released)
                self.unknown = _without_error(self.unknown)
        if state == "FAILURE" and self.runtime is None and self.started is not None and timestamp is not None:
            self.runtime = round(max(timestamp - self.started, 0.0), 6)  # task-failed carries no runtime
        if state == "RETRY":
            self._keep_retry_error(entry.get("exception"))
        retries = entry.get("retries")
        if retries is not None and (self.retries is None or retries > self.retries):
            self.retries = retries  # only grows: a late event of an earlier attempt keeps the count
        hostname = entry.get("hostname") if state != "PENDING" else None  # task-sent names the producer
        if hostname and (self.worker is None or (moves and state in IN_FLIGHT_STATES)):
            self.worker = hostname
        if not moves:
            return None
        self.timestamp = timestamp
        return state

    def _keep_retry_error(self, exception: Any) -> None:
        """Add a retried attempt's exception to ``retry_errors`` (searchable after a later success)."""
        if not isinstance(exception, str) or not exception:
            return
        line = " ".join(exception.split())  # one line per attempt
        lines = self.retry_errors.split("\n") if self.retry_errors else []
        if line in lines:
            return  # the same attempt delivered twice (or the same error again: once is enough to find it)
        lines.append(line)
        while len(lines) > 1 and sum(len(item) + 1 for item in lines) > RETRY_ERRORS_MAX_CHARS:
            del lines[0]
        self.retry_errors = "\n".join(lines)[-RETRY_ERRORS_MAX_CHARS:]

    def reset(self) -> None:
        """Forget everything the timeline set, before replaying it (``orphaned`` stays)."""
        for name in REPLAYED_FIELDS:
            setattr(self, name, None)
        self.state = "PENDING"


#: The stored task fields, in JSON-shape order: (name, column kind).
TASK_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (f.name, f.metadata["column"]) for f in fields(Task) if "column" in f.metadata)
#: Their names.
TASK_FIELDS: tuple[str, ...] = tuple(name for name, _ in TASK_COLUMNS)
#: Fields a task first seen after its start (its first event is neither task-sent nor a first attempt's
#: task-received: pushed out of memory since, or started before the dashboard listened) does not know
#: while None; the store may hold them.
PARTIAL_FIELDS: tuple[str, ...] = tuple(name for name in TASK_FIELDS if name not in ("uuid", "state", "orphaned"))
#: What a task first seen at a first attempt's task-received does not know: what task-sent says.
SENT_FIELDS = ("sent", "queue", "exchange", "routing_key")
_WITHOUT_ERROR: dict[tuple[str, ...], tuple[str, ...]] = {}


def _without_error(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` without exception and traceback, one shared tuple per combination."""
    if names not in _WITHOUT_ERROR:
        _WITHOUT_ERROR[names] = tuple(name for name in names if name not in ("exception", "traceback"))
    return _WITHOUT_ERROR[names]


#: Task fields an event sets directly.
EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Task) if f.metadata.get("from_event"))
#: Fields a replay of the timeline recomputes: all but the id, the state (reset to PENDING) and the orphan flag.
REPLAYED_FIELDS: tuple[str, ...] = tuple(n for n in TASK_FIELDS if n not in ("uuid", "state", "orphaned", "lost"))
_task_shape = _shape_function(TASK_FIELDS, ", 'children': list(children or ())")
assert {f.name for f in fields(Task) if f.metadata.get("when")} == {s[5:] for s in TASK_EVENT_TO_STATE}


@dataclass(slots=True, eq=False)
class Worker:
    """One worker as seen through its events and inspect replies."""

    hostname: str = _published()
    status: str = _published("online")  # online, offline (said goodbye) or lost (heartbeats stopped)
    last_heartbeat: float | None = _published()  # dashboard receive time of the last worker event
    freq: float = _published(DEFAULT_FREQ_SECONDS)
    pool: str | None = _published()
    concurrency: int | None = _published()
    processed: int = _published(0)
    processed_base: int | None = _published()  # the least ``processed`` seen: at first sight, or since a restart
    active: int = _published(0)
    loadavg: list[float] | None = _published()
    sw_ident: str | None = _published()
    sw_ver: str | None = _published()
    sw_sys: str | None = _published()
    clock_skew: float | None = _published()  # receive time minus the worker's clock, seconds
    pid: int | None = _published()
    # Task outcomes seen on this worker since the dashboard started (task-succeeded, -failed, -retried).
    succeeded: int = _published(0)
    failed: int = _published(0)
    retried: int = _published(0)
    timestamp: float | None = None  # worker's own clock at its last worker event
    offline_at: float | None = None  # worker's clock at its worker-offline
    offline_received: float | None = None  # dashboard receive time of that worker-offline
    freq_known: bool = False  # freq came from the worker's own heartbeat timer
    history: deque[tuple[float, int, float | None]] = field(default_factory=deque)  # (received, active, load)

    def to_json(self) -> dict[str, Any]:
        """Return the worker's JSON shape, shared by the API, the pages and the live push."""
        return _worker_shape(self)

    def merge(self, event_type: str, event: dict[str, Any], slack: float) -> tuple[bool, str | None]:
        """Apply one worker event; return whether it applied and, when it brought the worker back
        online, the status it had before ('lost' or 'offline')."""
        timestamp = event.get("timestamp")
        received = event.get("local_received")
        revived_from = None
        processed = event.get("processed")
        if isinstance(processed, int) and (self.processed_base is None or processed < self.processed_base):
            # The least count seen, from every event that carries one (even those applied no further):
            # at first sight, or since a restart; the same whatever order the events arrive in.
            self.processed_base = processed
        if event_type == "worker-offline":
            self.offline_at = timestamp
            self.offline_received = received
            self.status = "offline"
        elif (self.status == "offline" and self.offline_received is not None
              and (received is None or received - self.offline_received <= self.freq * 2 + slack)
              and (event_type == "worker-heartbeat" or timestamp is None or self.offline_at is None
                   or timestamp <= self.offline_at)):
            # Just after a goodbye a heartbeat does not revive the worker, whatever its timestamp: one
            # sent before it may be delivered late, and Celery's eventlet worker sends one more after
            # its worker-offline while it shuts down. A worker restarted at once says worker-online,
            # stamped after the goodbye, which does; after this window any event does (the worker's
            # clock decides nothing for longer than that).
            return False, None
        else:
            if self.status != "online":
                revived_from = self.status
            self.status = "online"
        self.timestamp = timestamp
        if received is not None:
            self.last_heartbeat = received
            if timestamp is not None:
                self.clock_skew = round(received - timestamp, 3)
        freq = event.get("freq")
        own_beat = event.get("active") is not None  # the worker's own timer; not an answer to a request
        if freq and (own_beat or not self.freq_known):
            # Celery answers a heartbeat request (sent when the dashboard subscribes) with a hard-coded
            # freq=5: it stands in until the worker's own heartbeat tells its interval, never after.
            self.freq = float(freq)
            self.freq_known = self.freq_known or own_beat
        for name in ("sw_ident", "sw_ver", "sw_sys", "pid"):
            value = event.get(name)
            if value is not None:
                setattr(self, name, value)
        if event.get("active") is not None:
            self.active = event["active"]
        if event.get("processed") is not None:
            self.processed = event["processed"]
        if event.get("loadavg") is not None:
            self.loadavg = [round(float(v), 2) for v in event["loadavg"]]
        if received is not None:
            self.record(received)
        return True, revived_from

    def count_outcome(self, event_type: str) -> None:
        """Count a task-succeeded, task-failed or task-retried this worker sent."""
        if event_type == "task-succeeded":
            self.succeeded += 1
        elif event_type == "task-failed":
            self.failed += 1
        else:
            self.retried += 1

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


#: The worker fields in its JSON shape.
WORKER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Worker) if f.metadata.get("json"))
_worker_shape = _shape_function(WORKER_FIELDS)


def pool_name(implementation: str) -> str:
    """Turn ``celery.concurrency.eventlet:TaskPool`` into ``eventlet``."""
    module = implementation.split(":")[0]
    name = module.rsplit(".", 1)[-1]
    return {"asynpool": "prefork", "solo": "solo"}.get(name, name)
