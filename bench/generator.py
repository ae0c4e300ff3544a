"""Event generator: realistic Celery event streams published through Celery's own ``EventDispatcher``.

What it publishes: eight simulated workers (``celery@worker-1`` ...) that announce
themselves (``worker-online``), beat every 2 s (``worker-heartbeat`` with active,
processed, loadavg and freq) and leave at the end (``worker-offline``); tasks of
several kinds, sent by producers (``task-sent`` with queue, exchange and routing
key), then ``task-received``, ``task-started`` and ``task-succeeded`` (result,
runtime), or ``task-failed`` with a traceback of about 1 KB, or ``task-retried``
and a new attempt; args and kwargs of 50-400 characters; a child task now and
then. A task's events follow each other with realistic delays (queue wait, start,
runtime), so many tasks are in flight at once, as in a real cluster.

How: every event is built and sent by ``EventDispatcher.send`` (Celery's clock,
hostname, utcoffset, pid and kombu's message envelope) inside kombu's own
``Producer.batch()``, which queues the Redis ``PUBLISH`` commands in a pipeline
instead of one round trip each; the generator flushes it every
``BATCH_MESSAGES`` messages or ``FLUSH_SECONDS``, whichever comes first, and
stamps each task's final event with the wall time of that flush. ``--generator
dispatcher`` sends without the batch (one round trip per event, Celery's
default), ``--generator raw`` writes the same wire format straight to Redis
(``bench/ingest.py``'s ``RawDispatcher``, a fallback).

It publishes at ``--rate`` events a second for ``--seconds``, or ``--tasks``
tasks as fast as possible, from ``--processes`` spawned processes that start
together, and reports what it published.

    bench/.venv/bin/python bench/generator.py --broker redis://127.0.0.1:6380/0 --rate 5000 --seconds 10
    bench/.venv/bin/python bench/generator.py --broker redis://127.0.0.1:6380/0 --tasks 50000 --processes 2
"""
from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing
import os
import queue
import random
import sys
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

#: Simulated workers, named ``celery@worker-1`` ... and shared out among the processes.
WORKERS = 8
#: Seconds between two heartbeats of a simulated worker (Celery's default ``freq``).
HEARTBEAT_SECONDS = 2.0
#: Messages queued in the Redis pipeline before it is sent.
BATCH_MESSAGES = 200
#: Longest time, in seconds, a built event waits in the pipeline before it is sent.
FLUSH_SECONDS = 0.005
#: Share of task runs that fail with a traceback.
FAILURE_SHARE = 0.05
#: Share of task runs that are retried once (task-retried, then a new attempt).
RETRY_SHARE = 0.03
#: Share of tasks started as the child of a recent task (parent_id and root_id set).
CHILD_SHARE = 0.1
#: Longest simulated runtime, in seconds; also bounds how long the last tasks take to finish.
MAX_RUNTIME_SECONDS = 1.5
#: Seconds a retried task waits before its next attempt is received.
RETRY_COUNTDOWN_SECONDS = 0.5
#: Payload variants prepared per task kind, so that building an event costs no string work.
VARIANTS = 512
#: Shortest sleep, in seconds, while the rate limiter waits: a few events go out together.
MIN_TICK_SECONDS = 0.001
#: Longest time, in seconds, the rate limiter may catch up on after a stall.
MAX_CATCH_UP_SECONDS = 0.2
#: Software fields every simulated worker reports.
SOFTWARE = {"sw_ident": "py-celery", "sw_ver": "5.7.0", "sw_sys": "Linux"}
#: The types that end a task's life.
FINAL_TYPES = ("task-succeeded", "task-failed")

FRAMES = (
    ('/app/venv/lib/python3.11/site-packages/celery/app/trace.py', 453, 'trace_task',
     'R = retval = fun(*args, **kwargs)'),
    ('/app/venv/lib/python3.11/site-packages/celery/app/trace.py', 736, '__protected_call__',
     'return self.run(*args, **kwargs)'),
    ('/app/venv/lib/python3.11/site-packages/sentry_sdk/integrations/celery/__init__.py', 412, '_inner',
     'return f(*args, **kwargs)'),
)
#: Per task kind: the innermost frame (file, line, function, code) and the exception (class, message).
EXCEPTIONS = {
    "analytics.track_event": ('/app/venv/lib/python3.11/site-packages/kafka/producer/kafka.py', 590, 'send',
                              'raise Errors.KafkaTimeoutError(msg)', "KafkaTimeoutError",
                              "Failed to update metadata after 60.0 secs."),
    "search.index_document": ('/app/venv/lib/python3.11/site-packages/elasticsearch/_sync/client/_base.py', 320,
                              'perform_request',
                              'raise HTTP_EXCEPTIONS.get(meta.status, ApiError)(message, meta, body)',
                              "ConflictError", "version_conflict_engine_exception: [products/{n}] version conflict"),
    "billing.charge_card": ('/app/shop/billing/gateway.py', 188, 'charge',
                            'raise CardDeclined(response["decline_code"])', "CardDeclined",
                            "card_declined: insufficient_funds (order ord-{n})"),
    "emails.send_receipt": ('/usr/lib/python3.11/smtplib.py', 341, 'connect',
                            'self.sock = self._get_socket(host, port, self.timeout)',
                            "SMTPServerDisconnected", "Connection unexpectedly closed: timed out"),
    "media.resize_image": ('/app/venv/lib/python3.11/site-packages/PIL/Image.py', 3283, 'open',
                           'raise UnidentifiedImageError(msg)', "UnidentifiedImageError",
                           "cannot identify image file 'uploads/{n}/original.jpg'"),
    "reports.build_pdf": ('/app/shop/reports/render.py', 97, 'render_table', 'row = totals[account_id]',
                          "KeyError", "acct_{n}"),
    "webhooks.deliver": ('/app/venv/lib/python3.11/site-packages/requests/adapters.py', 700, 'send',
                         'raise ConnectionError(e, request=request)', "ConnectionError",
                         "HTTPSConnectionPool(host='hooks.example.com', port=443): Read timed out. (read timeout=10)"),
}


def failure(name: str, n: int) -> tuple[str, str]:
    """Return the exception (as Celery reports it, a repr) and a traceback of about 1 KB for task ``name``."""
    path, line, function, code, exc_class, message = EXCEPTIONS.get(name, EXCEPTIONS["reports.build_pdf"])
    message = message.format(n=n)
    module, _, short = name.rpartition(".")
    frames = [*FRAMES,
              (f'/app/shop/{module}/tasks.py', 42 + n % 200, short, f'return {short}_impl(*args, **kwargs)'),
              (f'/app/shop/{module}/service.py', 17 + n % 90, f'{short}_impl',
               'result = client.call(payload, timeout=settings.UPSTREAM_TIMEOUT)'),
              (f'/app/shop/{module}/client.py', 230 + n % 40, 'call', f'return self._transport.{function}(payload)'),
              (path, line, function, code)]
    body = "".join(f'  File "{p}", line {ln}, in {fn}\n    {src}\n' for p, ln, fn, src in frames)
    return f"{exc_class}({message!r})", f"Traceback (most recent call last):\n{body}{exc_class}: {message}\n"


def _email(rng: random.Random) -> str:
    first = rng.choice(("anna", "bruno", "chen", "dmitri", "eve", "farah", "gustavo", "hana", "ivan"))
    return f"{first}.{rng.choice(('smith', 'ng', 'garcia', 'kowalski', 'okafor'))}{rng.randrange(1000)}@" \
           f"{rng.choice(('example.com', 'mail.example.org', 'customer.example.net'))}"


def _payload(name: str, rng: random.Random, n: int) -> tuple[str, str, str]:
    """Return ``repr``-style args, kwargs and result strings for one task of kind ``name``."""
    ident = uuidlib.UUID(int=rng.getrandbits(128), version=4)
    if name == "billing.charge_card":
        return (f"({n}, 'cus_{rng.getrandbits(48):012x}', 'pm_{rng.getrandbits(96):024x}')",
                f"{{'amount': {rng.randrange(100, 99_999)}, 'currency': '{rng.choice(('eur', 'usd', 'gbp'))}', "
                f"'idempotency_key': '{ident}', 'metadata': {{'order_id': 'ord-{n}', 'channel': 'web'}}}}",
                f"{{'status': 'succeeded', 'charge_id': 'ch_{rng.getrandbits(96):024x}', 'captured': True}}")
    if name == "emails.send_receipt":
        return (f"('{_email(rng)}', 'ord-{n}', '{_email(rng)}')",
                f"{{'template': 'receipt', 'locale': '{rng.choice(('en_GB', 'de_DE', 'fr_FR'))}', 'context': "
                f"{{'order_id': 'ord-{n}', 'total': '{rng.randrange(5, 900)}.{rng.randrange(100):02d}', "
                f"'items': {rng.randrange(1, 9)}}}}}",
                f"{{'message_id': '<{ident}@mail.example.com>', 'accepted': 1}}")
    if name == "media.resize_image":
        return (f"('s3://media-uploads/{ident}/original.jpg', [(1024, 768), (512, 384), (128, 128)])",
                "{'quality': 85, 'format': 'webp', 'strip_exif': True}",
                f"['s3://media-public/{ident}/1024.webp', 's3://media-public/{ident}/512.webp', "
                f"'s3://media-public/{ident}/128.webp']")
    if name == "reports.build_pdf":
        return (f"({rng.randrange(1, 5000)}, '2026-{rng.randrange(1, 13):02d}', 'monthly-revenue', '{_email(rng)}')",
                f"{{'filters': {{'region': '{rng.choice(('emea', 'amer', 'apac'))}', 'include_refunds': "
                f"{rng.choice(('True', 'False'))}, 'accounts': {[rng.randrange(10_000) for _ in range(8)]}}}, "
                f"'requested_by': '{_email(rng)}'}}",
                f"'s3://reports/{ident}.pdf'")
    if name == "webhooks.deliver":
        return (f"('https://hooks.example.com/endpoints/{rng.getrandbits(64):016x}', 'order.paid')",
                f"{{'payload': {{'id': 'evt_{rng.getrandbits(64):016x}', 'order_id': 'ord-{n}', "
                f"'amount': {rng.randrange(100, 99_999)}}}, 'attempt': 1}}",
                "{'status_code': 200, 'elapsed_ms': %d}" % rng.randrange(20, 900))
    if name == "search.index_document":
        return (f"('products', {rng.randrange(1, 2_000_000)}, 'en', {{'source': 'catalog-sync', 'batch': {n}}})",
                f"{{'fields': ['title', 'description', 'tags', 'price'], 'refresh': False, "
                f"'routing': 'shard-{rng.randrange(16)}'}}",
                "{'result': 'updated', '_version': %d}" % rng.randrange(1, 90))
    return (f"('{rng.choice(('page_view', 'add_to_cart', 'checkout', 'search'))}', "
            f"'sess_{rng.getrandbits(64):016x}', {1_790_000_000 + n * 7.3:.3f})",
            f"{{'user_id': {rng.randrange(1, 10**7)}, 'properties': {{'path': '/p/{rng.randrange(10**5)}', "
            f"'referrer': 'https://www.example.com/'}}}}",
            "None")


@dataclass(frozen=True)
class TaskKind:
    """One kind of task: its name, queue, share of the traffic and mean runtime."""

    name: str
    queue: str
    weight: int
    runtime_mean_seconds: float
    failure_share: float = FAILURE_SHARE


KINDS = (
    TaskKind("analytics.track_event", "low_priority", 30, 0.004, 0.01),
    TaskKind("billing.charge_card", "high_priority", 15, 0.35),
    TaskKind("emails.send_receipt", "celery", 15, 0.12),
    TaskKind("search.index_document", "celery", 15, 0.03, 0.02),
    TaskKind("webhooks.deliver", "celery", 12, 0.2, 0.08),
    TaskKind("media.resize_image", "low_priority", 8, 0.6),
    TaskKind("reports.build_pdf", "low_priority", 5, 1.0, 0.1),
)


@dataclass
class Plan:
    """What to publish: at ``rate`` events a second for ``seconds``, and/or ``tasks`` tasks (``rate`` None: at once).

    ``pace`` scales the simulated delays between a task's events: 1 is real time, 0 puts each
    task's events back to back (a burst then ends when its last task is published).
    """

    broker: str
    rate: float | None = None
    seconds: float | None = None
    tasks: int | None = None
    pace: float = 1.0
    generator: str = "batched"
    seed: int = 1
    processes: int = 1
    index: int = 0
    workers: int = WORKERS
    queues: int = 0  # 0: each kind's own queue; N: tasks spread over queues q-0000 ... q-<N-1>
    nice: int = 0  # added to each publishing process's niceness (0: the same priority as the system measured)

    def queue_names(self) -> list[str]:
        """Return the ``queues`` spread names (empty when each kind keeps its own queue)."""
        return [f"q-{n:04d}" for n in range(self.queues)]

    def share(self, index: int, processes: int) -> Plan:
        """Return the part of this plan that process ``index`` of ``processes`` publishes."""
        tasks = None if self.tasks is None else self.tasks // processes + (index < self.tasks % processes)
        return replace(self, rate=None if self.rate is None else self.rate / processes, tasks=tasks,
                       seed=self.seed * 1000 + index, processes=processes, index=index)


@dataclass
class Report:
    """What was published: counts, and the wall time each task's final event reached the broker."""

    generator: str
    processes: int = 1
    events: int = 0
    by_type: Counter = field(default_factory=Counter)
    tasks: int = 0
    finals: dict[str, float] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    last_start: float = 0.0  # wall time the last new task was started
    events_at_last_start: int = 0
    cpu_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return max(self.ended - self.started, 1e-9)

    @property
    def rate(self) -> float:
        """Events a second while new tasks were being started: the rate asked for, or reached.

        The last tasks' remaining events (their runtimes, up to ``MAX_RUNTIME_SECONDS``) and the
        workers' ``worker-offline`` follow at their own pace and are left out of it.
        """
        steady = self.last_start - self.started
        return self.events_at_last_start / steady if steady > 0.5 else self.events / self.seconds

    def merge(self, other: Report) -> Report:
        """Return the sum of two processes' reports."""
        return Report(self.generator, self.processes + other.processes, self.events + other.events,
                      self.by_type + other.by_type, self.tasks + other.tasks, {**self.finals, **other.finals},
                      min(self.started, other.started), max(self.ended, other.ended),
                      max(self.last_start, other.last_start),
                      self.events_at_last_start + other.events_at_last_start, self.cpu_seconds + other.cpu_seconds)

    def summary(self) -> dict[str, Any]:
        """Return the report without the per-task times, as JSON-ready figures."""
        return {"generator": self.generator, "processes": self.processes, "events": self.events,
                "by_type": dict(sorted(self.by_type.items())), "tasks": self.tasks,
                "seconds": round(self.seconds, 3), "events_per_second": round(self.rate),
                "events_per_second_overall": round(self.events / self.seconds),
                "cpu_ms_per_1000_events": round(self.cpu_seconds * 1e6 / max(self.events, 1), 1)}


class Sender(Protocol):
    """Publishes one event as a given host; ``flush`` returns once everything sent is on the broker."""

    def send(self, hostname: str, type: str, fields: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class DispatcherSender:
    """Celery's ``EventDispatcher``, optionally inside kombu's ``Producer.batch()`` (a Redis pipeline)."""

    def __init__(self, broker: str, batched: bool) -> None:
        from celery import Celery
        from celery.events.dispatcher import EventDispatcher

        self.app = Celery(broker=broker, set_as_current=False)
        # Unbatched, ``send`` returns once the event is on the broker: its time is noted then, not at a flush.
        self.sent_on_send = not batched
        self.connection = self.app.connection_for_write()
        self.dispatcher = EventDispatcher(self.connection, hostname="celery@bench", app=self.app)
        # The generator flushes by itself; kombu's own limit only guards against a runaway pipeline.
        self.batch = self.dispatcher.producer.batch(max_size=BATCH_MESSAGES * 100) if batched else None
        if self.batch is not None:
            self.batch.__enter__()

    def send(self, hostname: str, type: str, fields: dict[str, Any]) -> None:
        dispatcher = self.dispatcher
        if dispatcher.hostname != hostname:  # as each worker's own dispatcher would be named
            dispatcher.hostname = hostname
            dispatcher.headers = {"hostname": hostname}
        dispatcher.send(type, **fields)

    def flush(self) -> None:
        if self.batch is not None:
            self.batch.flush()

    def close(self) -> None:
        if self.batch is not None:
            self.batch.__exit__(None, None, None)
        self.dispatcher.close()
        self.connection.release()


class RawSender:
    """The fallback: ``bench/ingest.py``'s ``RawDispatcher``, the same wire format written straight to Redis."""

    def __init__(self, broker: str) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from ingest import RawDispatcher

        self.raw = RawDispatcher(broker)

    def send(self, hostname: str, type: str, fields: dict[str, Any]) -> None:
        self.raw.hostname = hostname
        self.raw.send(type, **fields)

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.raw.close()


SENDERS: dict[str, Callable[[str], Sender]] = {
    "batched": lambda broker: DispatcherSender(broker, batched=True),
    "dispatcher": lambda broker: DispatcherSender(broker, batched=False),
    "raw": RawSender,
}


@dataclass
class Worker:
    """A simulated worker: what its heartbeats report."""

    hostname: str
    producer: str  # the hostname its own task-sent events carry (a retry is sent by the worker)
    active: int = 0
    processed: int = 0

    def fields(self, rng: random.Random) -> dict[str, Any]:
        load = round(0.4 + self.active * 0.3 + rng.random() * 0.2, 2)
        return {"freq": HEARTBEAT_SECONDS, "active": self.active, "processed": self.processed,
                "loadavg": [load, round(load * 0.8, 2), round(load * 0.6, 2)], **SOFTWARE}


#: One scheduled event: due (monotonic seconds), order, host, type, fields, the task it ends (or "").
Scheduled = tuple[float, int, str, str, dict[str, Any], str]


class Simulation:
    """Schedules the events of tasks in flight and of heartbeats, and hands them out when due."""

    def __init__(self, plan: Plan) -> None:
        self.rng = random.Random(plan.seed)
        self.pace = plan.pace
        owned = [n for n in range(1, plan.workers + 1) if (n - 1) % plan.processes == plan.index] or [plan.index + 1]
        self.queues = plan.queue_names()
        self.workers = [Worker(f"celery@worker-{n}", f"gen{3000 + n}@worker-{n}") for n in owned]
        self.by_hostname = {w.hostname: w for w in self.workers}
        self.producers = [f"gen{os.getpid()}@web-{plan.index * 3 + k}" for k in range(1, 4)]
        self.kinds = random.Random(plan.seed + 1).choices(KINDS, [k.weight for k in KINDS], k=4096)
        self.payloads = {k.name: [_payload(k.name, self.rng, n) for n in range(VARIANTS)] for k in KINDS}
        self.failures = {k.name: [failure(k.name, n) for n in range(8)] for k in KINDS}
        self.heap: list[Scheduled] = []  # task events
        self.beats: list[Scheduled] = []  # heartbeats
        self.order = 0
        self.started_tasks = 0
        self.recent: list[str] = []
        self.beating = True

    def push(self, due: float, hostname: str, type: str, fields: dict[str, Any], ends: str = "") -> None:
        self.order += 1
        heapq.heappush(self.beats if type == "worker-heartbeat" else self.heap,
                       (due, self.order, hostname, type, fields, ends))

    def next_due(self) -> float | None:
        return min((h[0][0] for h in (self.heap, self.beats) if h), default=None)

    def pop(self) -> Scheduled:
        return heapq.heappop(self.heap)

    def due_beats(self, now: float) -> list[Scheduled]:
        """Return the heartbeats due by ``now``, each scheduled again: a worker beats on time whatever
        its load, as Celery's heartbeat timer does, so heartbeats do not wait for the rate limiter."""
        due = []
        while self.beats and self.beats[0][0] <= now:
            item = heapq.heappop(self.beats)
            due.append(item)
            if self.beating:
                self.push(item[0] + HEARTBEAT_SECONDS, item[2], item[3], item[4])
        return due

    def online(self, now: float) -> list[tuple[str, str, dict[str, Any]]]:
        """Return every worker's ``worker-online`` and schedule its heartbeats."""
        for n, worker in enumerate(self.workers):
            self.push(now + HEARTBEAT_SECONDS * (1 + n / len(self.workers)), worker.hostname, "worker-heartbeat", {})
        return [(w.hostname, "worker-online", w.fields(self.rng)) for w in self.workers]

    def offline(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Return every worker's ``worker-offline``."""
        return [(w.hostname, "worker-offline", w.fields(self.rng)) for w in self.workers]

    def stop_beating(self) -> None:
        """Drop the pending heartbeats, so that only task events remain scheduled."""
        self.beating = False
        self.beats = []

    def start_task(self, now: float) -> tuple[str, str, dict[str, Any]]:
        """Start a new task: return its ``task-sent`` and schedule the rest of its life."""
        rng = self.rng
        n = self.started_tasks
        self.started_tasks += 1
        kind = self.kinds[n % len(self.kinds)]
        args, kwargs, result = self.payloads[kind.name][rng.randrange(VARIANTS)]
        uuid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        parent = rng.choice(self.recent) if self.recent and rng.random() < CHILD_SHARE else None
        self.recent.append(uuid)
        if len(self.recent) > 64:
            del self.recent[:32]
        head = {"uuid": uuid, "name": kind.name, "args": args, "kwargs": kwargs, "root_id": parent or uuid,
                "parent_id": parent, "retries": 0, "eta": None, "expires": None}
        queue = self.queues[n % len(self.queues)] if self.queues else kind.queue
        sent = {**head, "queue": queue, "exchange": "", "routing_key": queue}
        worker = self.workers[rng.randrange(len(self.workers))]
        self._schedule_run(now + rng.uniform(0.001, 0.02) * self.pace, worker, kind, head, result, queue)
        return rng.choice(self.producers), "task-sent", sent

    def _schedule_run(self, at: float, worker: Worker, kind: TaskKind, head: dict[str, Any], result: str,
                      queue: str) -> None:
        """Schedule one attempt: received, started, then succeeded, failed, or retried and another attempt."""
        rng = self.rng
        uuid = head["uuid"]
        started = at + rng.uniform(0.0005, 0.005) * self.pace
        runtime = min(rng.expovariate(1 / kind.runtime_mean_seconds), MAX_RUNTIME_SECONDS)
        done = started + runtime * self.pace
        self.push(at, worker.hostname, "task-received", dict(head))
        self.push(started, worker.hostname, "task-started", {"uuid": uuid})
        outcome = rng.random()
        if head["retries"] == 0 and outcome < RETRY_SHARE:
            exception, traceback = rng.choice(self.failures[kind.name])
            retry = {**head, "retries": 1}
            self.push(done, worker.producer, "task-sent", {**retry, "queue": queue, "exchange": "",
                                                           "routing_key": queue})
            self.push(done, worker.hostname, "task-retried",
                      {"uuid": uuid, "exception": f"Retry in {RETRY_COUNTDOWN_SECONDS:g}s: {exception}",
                       "traceback": traceback})
            self._schedule_run(done + RETRY_COUNTDOWN_SECONDS * self.pace, worker, kind, retry, result, queue)
        elif outcome < RETRY_SHARE + kind.failure_share:
            exception, traceback = rng.choice(self.failures[kind.name])
            self.push(done, worker.hostname, "task-failed",
                      {"uuid": uuid, "exception": exception, "traceback": traceback}, ends=uuid)
        else:
            self.push(done, worker.hostname, "task-succeeded",
                      {"uuid": uuid, "result": result, "runtime": round(runtime, 6)}, ends=uuid)

    def worker(self, hostname: str) -> Worker:
        return self.by_hostname[hostname]

    def account(self, hostname: str, type: str) -> None:
        """Keep the workers' active and processed counts, which their heartbeats report."""
        worker = self.by_hostname.get(hostname)
        if worker is None:
            return
        if type == "task-started":
            worker.active += 1
        elif type in FINAL_TYPES or type == "task-retried":
            worker.active = max(worker.active - 1, 0)
            worker.processed += 1


class Run:
    """Publishes one process's share of a plan and keeps its report."""

    def __init__(self, plan: Plan, sender: Sender) -> None:
        self.plan = plan
        self.sender = sender
        self.sim = Simulation(plan)
        self.report = Report(plan.generator)
        self.pending = 0
        self.unflushed_finals: list[str] = []
        self.last_flush = 0.0

    def emit(self, hostname: str, type: str, fields: dict[str, Any], ends: str = "") -> None:
        """Send one event (a heartbeat gets its worker's figures now); flush a full pipeline."""
        if type == "worker-heartbeat":
            fields = self.sim.worker(hostname).fields(self.sim.rng)
        self.sender.send(hostname, type, fields)
        self.sim.account(hostname, type)
        self.report.events += 1
        self.report.by_type[type] += 1
        if ends and getattr(self.sender, "sent_on_send", False):
            self.report.finals[ends] = time.time()
            self.report.tasks += 1
        elif ends:
            self.unflushed_finals.append(ends)
        self.pending += 1
        if self.pending >= BATCH_MESSAGES:
            self.flush()

    def flush(self) -> None:
        """Send the pipeline and stamp the tasks whose final event was in it."""
        if self.pending:
            self.sender.flush()
        self.pending = 0
        now = time.time()
        self.last_flush = time.monotonic()
        for uuid in self.unflushed_finals:
            self.report.finals[uuid] = now
        self.report.tasks += len(self.unflushed_finals)
        self.unflushed_finals.clear()

    def publish(self) -> Report:
        """Publish the plan's events; return the report."""
        plan, sim = self.plan, self.sim
        cpu_before = time.process_time()
        self.report.started = time.time()
        start = self.last_flush = time.monotonic()
        deadline = start + plan.seconds if plan.seconds is not None else float("inf")
        for event in sim.online(start):
            self.emit(*event)
        budget, last = 0.0, start
        while True:
            now = time.monotonic()
            if plan.rate is None:
                budget = float("inf")
            else:
                budget = min(budget + (now - last) * plan.rate, plan.rate * MAX_CATCH_UP_SECONDS + 1)
                last = now
            starting = now < deadline and (plan.tasks is None or sim.started_tasks < plan.tasks)
            if not starting and sim.beating:
                sim.stop_beating()
            budget = self._emit_due(now, budget)
            budget = self._start_tasks(now, budget, starting)
            if not starting and not sim.heap:
                break
            wait = self._wait(now, budget, starting)
            if wait > 0 or time.monotonic() - self.last_flush >= FLUSH_SECONDS:
                self.flush()
            if wait > 0:
                time.sleep(wait)
        for event in sim.offline():
            self.emit(*event)
        self.flush()
        self.report.ended = time.time()
        self.report.cpu_seconds = time.process_time() - cpu_before
        return self.report

    def _emit_due(self, now: float, budget: float) -> float:
        sim = self.sim
        for _, _, hostname, type, fields, ends in sim.due_beats(now):
            self.emit(hostname, type, fields, ends)
            budget -= 1  # they count in the rate: the tasks make room for them
        while sim.heap and sim.heap[0][0] <= now and budget >= 1:
            _, _, hostname, type, fields, ends = sim.pop()
            self.emit(hostname, type, fields, ends)
            budget -= 1
        return budget

    def _start_tasks(self, now: float, budget: float, starting: bool) -> float:
        """Start tasks while the budget lasts, at most a pipeline's worth before due events get a turn."""
        sim, quota = self.sim, self.plan.tasks
        count = 0
        while starting and budget >= 1 and count < BATCH_MESSAGES and (quota is None or sim.started_tasks < quota):
            self.emit(*sim.start_task(now))
            budget -= 1
            count += 1
        if count:
            self.report.last_start = time.time()
            self.report.events_at_last_start = self.report.events
        return budget

    def _wait(self, now: float, budget: float, starting: bool) -> float:
        """Return how long to sleep before there is something to publish (0: go on at once)."""
        refill = 0.0 if self.plan.rate is None or budget >= 1 else max((1 - budget) / self.plan.rate, MIN_TICK_SECONDS)
        if starting:
            wait = refill
        else:
            due = self.sim.next_due()
            wait = max(refill, due - now if due is not None else 0.0)
        return min(wait, FLUSH_SECONDS) if wait > 0 else 0.0


def run_process(plan: Plan, barrier: Any, results: Any) -> None:
    """The body of one spawned publishing process: connect, wait for the others, publish, report."""
    if plan.nice:
        os.nice(plan.nice)
    sender = SENDERS[plan.generator](plan.broker)
    try:
        barrier.wait(timeout=120)
        report = Run(plan, sender).publish()
    finally:
        sender.close()
    results.put(report)


class Publisher:
    """Runs a plan in ``processes`` spawned processes that start publishing together."""

    def __init__(self, plan: Plan, processes: int = 1) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.plan = plan
        self.barrier = self.context.Barrier(processes + 1)
        self.results = self.context.Queue()
        self.reports: list[Report] = []
        self.processes = [self.context.Process(target=run_process, daemon=True,
                                               args=(plan.share(i, processes), self.barrier, self.results))
                          for i in range(processes)]

    def start(self, timeout: float = 120.0) -> None:
        """Spawn the processes and return when they start publishing."""
        for process in self.processes:
            process.start()
        try:
            self.barrier.wait(timeout=timeout)
        except Exception:
            self.terminate()
            raise RuntimeError("the generator processes did not start in time") from None

    def finished(self) -> bool:
        """Collect the reports that have arrived, without waiting; return whether all have."""
        while len(self.reports) < len(self.processes):
            try:
                self.reports.append(self.results.get_nowait())
            except queue.Empty:
                break
        if len(self.reports) < len(self.processes) and not any(p.is_alive() for p in self.processes):
            raise RuntimeError("a generator process died without a report")
        return len(self.reports) == len(self.processes)

    def wait(self, timeout: float) -> Report:
        """Return the merged report once every process has finished."""
        deadline = time.monotonic() + timeout
        while not self.finished():
            if time.monotonic() > deadline:
                self.terminate()
                raise RuntimeError(f"the generator did not finish within {timeout:.0f} s")
            time.sleep(0.05)
        for process in self.processes:
            process.join(timeout=10)
        merged = self.reports[0]
        for report in self.reports[1:]:
            merged = merged.merge(report)
        return merged

    def terminate(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)


def publish(plan: Plan, processes: int = 1, timeout: float = 3600.0) -> Report:
    """Publish ``plan`` from ``processes`` processes; return what was published."""
    publisher = Publisher(plan, processes)
    publisher.start()
    return publisher.wait(timeout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True, help="a redis:// URL")
    parser.add_argument("--rate", type=float, help="events a second, all processes together (default: at once)")
    parser.add_argument("--seconds", type=float, help="publishing time at --rate")
    parser.add_argument("--tasks", type=int, help="tasks to publish (with no --rate: as fast as possible)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--workers", type=int, default=WORKERS, help="simulated workers")
    parser.add_argument("--queues", type=int, default=0,
                        help="spread the tasks over queues q-0000 ... (default: each kind's own queue)")
    parser.add_argument("--pace", type=float, default=1.0,
                        help="scale of the delays between a task's events: 1 real time, 0 back to back")
    parser.add_argument("--generator", choices=sorted(SENDERS), default="batched",
                        help="batched: EventDispatcher in kombu's Producer.batch() (default); dispatcher: "
                             "EventDispatcher alone; raw: the same wire format written straight to Redis")
    args = parser.parse_args()
    if args.seconds is None and args.tasks is None:
        parser.error("give --seconds (with --rate) or --tasks")
    plan = Plan(args.broker, args.rate, args.seconds, args.tasks, args.pace, args.generator, workers=args.workers,
                queues=args.queues)
    report = publish(plan, args.processes)
    print(json.dumps(report.summary(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
