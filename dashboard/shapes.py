"""The JSON shapes of the contract that are not a record's own: changes, alerts and counters.

A task's and a worker's shapes derive from their declarations in ``model``
(``TASK_FIELDS``, ``WORKER_FIELDS``); these are the messages built around them.
README's "Live updates" and "Webhooks" sections document each one.
"""
from __future__ import annotations

from typing import Any, Literal, TypedDict, Union

#: A task's or a worker's JSON shape (see ``model.Task.to_json`` and ``model.Worker.to_json``).
Record = dict[str, Any]


class Change(TypedDict):
    """One item of a ``changes`` message: a task, worker or queue that was upserted or removed."""

    kind: Literal["task", "worker", "queue"]
    op: Literal["upsert", "remove"]
    key: str  # the uuid, hostname or queue name
    data: Record | None  # the whole new shape; None for a removal


class WorkerAlert(TypedDict):
    """A worker lost (heartbeats stopped) or back online after being lost."""

    event: Literal["worker-lost", "worker-online"]
    hostname: str
    time: float  # when the dashboard noticed, epoch seconds
    last_heartbeat: float | None
    orphaned: list[str]  # uuids of the tasks it held when it was lost


class QueueAlert(TypedDict):
    """A queue over its backlog rule for long enough, or back under it."""

    event: Literal["queue-backlog", "queue-backlog-cleared"]
    queue: str
    depth: int | None
    threshold: int
    seconds: float
    since: float | None
    time: float


Alert = Union[WorkerAlert, QueueAlert]


class Counters(TypedDict, total=False):
    """Task counts per state over the tasks held in memory, and totals (``counters`` message)."""

    states: dict[str, int]
    total: int
    finished: int  # tasks that reached a ready state since the dashboard started
    task_events: int
    ignored: dict[str, int]  # names beyond --max-workers and --max-queues
    throughput: float  # tasks finished per second, over the last minute
    events_per_second: float  # events received per second, heartbeats included, over the last minute
    events: dict[str, int]  # events received and malformed since the start


class Limits(TypedDict):
    """The limits on workers and queues and how many names beyond them were ignored (``/api/health``)."""

    max_workers: int
    workers_ignored: int
    max_queues: int
    queues_ignored: int
