"""What changed in the model: one append-only log, read by each consumer from its own cursor.

The model (``state.ClusterState``) appends a record for every change it makes.
Each consumer of changes (the live pusher, the history writer) opens a cursor
and reads the records appended since its last read, in order; a record is
forgotten once every open cursor has passed it. Nothing is recorded while no
cursor is open. What a consumer makes of the records (coalescing for the
pusher, holding unfinished tasks for the history) is its own business: see
``LiveChanges`` and ``UnsavedTasks`` below.

Pure: no I/O, no clock, no locking (the model's owner serialises every call).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, NamedTuple

if TYPE_CHECKING:
    from .model import Task

#: Record kinds.
TASK = 0  # key: a task's uuid; event: its timeline entry (None when only a flag changed); received: when
WORKER = 1  # key: a hostname whose worker changed
WORKER_REMOVED = 2  # key: a hostname purged from the main list
TASK_EVICTED = 3  # key: a uuid dropped from memory; evicted: the task and its children, for the history


class Record(NamedTuple):
    kind: int
    key: str
    event: dict[str, Any] | None = None
    received: float = 0.0
    evicted: "tuple[Task, list[str]] | None" = None


class Journal:
    """An append-only log of changes with one cursor per named reader."""

    __slots__ = ("_records", "_start", "_cursors")

    def __init__(self) -> None:
        self._records: list[Record] = []
        self._start = 0  # the position of _records[0] since the journal began
        self._cursors: dict[str, int] = {}  # reader -> position of the first record it has not read

    @property
    def recording(self) -> bool:
        """Whether any reader is open: with none, nothing is kept."""
        return bool(self._cursors)

    def open(self, reader: str) -> None:
        """Open a cursor for ``reader`` at the end of the log (an open one stays where it is)."""
        self._cursors.setdefault(reader, self._start + len(self._records))

    def append(self, record: Record) -> None:
        if self._cursors:
            self._records.append(record)

    def read(self, reader: str) -> list[Record]:
        """Return the records ``reader`` has not read, in order, and move its cursor past them."""
        position = self._cursors[reader]
        records = self._records[position - self._start:]
        self._cursors[reader] = self._start + len(self._records)
        low = min(self._cursors.values())
        if low > self._start:
            del self._records[:low - self._start]
            self._start = low
        return records

    def unread(self, reader: str) -> list[Record]:
        """Return the records ``reader`` has not read yet, leaving its cursor where it is."""
        return self._records[self._cursors[reader] - self._start:]

    def __len__(self) -> int:
        return len(self._records)


class LiveChanges:
    """The pusher's reading: which tasks and workers changed, each once, and which workers left."""

    READER = "live"

    @staticmethod
    def coalesce(records: Iterable[Record]) -> tuple[list[str], dict[str, bool]]:
        """Return the changed task uuids (in order of their first change) and, for each changed
        hostname, whether its last change was a removal."""
        tasks: dict[str, None] = {}
        workers: dict[str, bool] = {}
        for record in records:
            kind = record.kind
            if kind == TASK:
                tasks[record.key] = None
            elif kind == WORKER:
                workers[record.key] = False
            elif kind == WORKER_REMOVED:
                workers[record.key] = True
        return list(tasks), workers


class UnsavedTasks:
    """The history writer's reading: tasks and events not yet handed to the store.

    An unfinished task that first changed less than ``hold_seconds`` ago is held back, with its
    events, until it finishes or that time has passed: most tasks are then written once, finished.
    """

    READER = "history"

    def __init__(self) -> None:
        self.held: dict[str, float] = {}  # uuid -> when it first changed since it was last saved
        self.held_events: list[tuple[str, dict[str, Any]]] = []
        self.evicted: dict[str, dict[str, Any]] = {}  # shapes of held tasks dropped from memory

    def take(self, records: Iterable[Record], shape: Callable[[str], "dict[str, Any] | None"],
             finished: Callable[[str], bool], now: float | None = None, hold_seconds: float = 0.0
             ) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
        """Add ``records`` to what is held; return the task shapes and events to write now.

        ``shape(uuid)`` is a task's JSON shape (None when it is not in memory) and ``finished(uuid)``
        whether it is in a ready state.
        """
        pending, events, evicted = self.held, self.held_events, self.evicted
        for record in records:
            kind = record.kind
            if kind == TASK:
                if record.key not in pending:
                    pending[record.key] = record.received
                if record.event is not None:
                    events.append((record.key, record.event))
            elif kind == TASK_EVICTED and record.key in pending and record.evicted is not None:
                task, children = record.evicted
                shape_now = task.to_json(children)  # the store still needs it (with an earlier eviction's fields)
                evicted[record.key] = {**evicted[record.key], **shape_now} if record.key in evicted else shape_now
        keep: dict[str, float] = {}
        if now is not None and hold_seconds > 0:
            cutoff = now - hold_seconds
            keep = {uuid: since for uuid, since in pending.items()
                    if since > cutoff and uuid not in evicted and not finished(uuid)}
        shapes = []
        for uuid in pending:
            if uuid in keep:
                continue
            found = evicted.pop(uuid, None) if evicted else None
            current = shape(uuid)  # back in memory after its eviction: its new shape wins where it says something
            found = current if found is None else found if current is None else {**found, **current}
            if found is not None:
                shapes.append(found)
        if keep:
            self.held_events = [item for item in events if item[0] in keep]
            events = [item for item in events if item[0] not in keep]
        else:
            self.held_events = []
        self.held = keep
        return shapes, events

    def events_of(self, uuid: str, records: Iterable[Record]) -> list[dict[str, Any]]:
        """Return copies of this task's events not yet handed to the store (held, then unread)."""
        found = [dict(entry) for task_id, entry in self.held_events if task_id == uuid]
        found += [dict(r.event) for r in records if r.kind == TASK and r.key == uuid and r.event is not None]
        return found
