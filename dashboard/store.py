"""Durable task history in SQLite: every task's latest JSON shape and every event of its life.

The store owns one SQLite file (WAL mode, ``synchronous=NORMAL``) and its
schema, versioned by ``PRAGMA user_version`` and upgraded on open by the
``MIGRATIONS`` list. It keeps plain data only (typed and JSON text columns,
never pickles). It answers list / search / detail queries with keyset paging
and prunes by age and count.

Every call blocks on disk I/O: the caller runs it in a native thread (under
eventlet, ``eventlet.tpool.execute``), except the short reads of a page
(``READS_INLINE``), which cost less on the hub than the trip to a native thread
and back. Each native thread gets its own connections for reading (green threads
of one native thread share them: no call yields midway); every write goes through the store's one writing
connection, which passes from thread to thread under a ``NativeLock`` (not a
``threading`` lock, which eventlet turns green and which then deadlocks across
native threads). WAL lets readers read while a write is in progress. A
batch's rows are staged in that connection's temporary tables and written a
chunk per statement (``STAGED_ROWS``): the full-text index (FTS5, kept by
triggers) writes a segment at the end of every statement. This module imports
no Flask, socketio, kombu or eventlet.

A file found damaged on open is moved aside whole, after every task (with its
events) that can still be read from it is copied into the fresh file, newest
first and within ``RESCUE_MAX_SECONDS``. Writing never fails on a value SQLite
cannot hold: integers beyond 64 bits become NULL in numeric columns and text
that is not valid Unicode is repaired.

Exceptions: ``StoreError`` (the store cannot serve: a ``--db`` it cannot open,
a schema newer than this code, a closed store: the subclass ``StoreClosed``) and its subclass
``StoreQueryError`` (also a ``ValueError``: a query argument such as a cursor
is not usable). ``is_storage_failure`` tells a failure of the file or the disk
(worth retrying) from a row that cannot be written.
"""
from __future__ import annotations

import _queue
import base64
import binascii
import functools
import json
import logging
import math
import os
import random
import re
import sqlite3
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, NamedTuple, Sequence, TypeVar, Union

import orjson

from .model import FLAG, INTEGER, JSON, READY_STATES, REAL, TASK_COLUMNS, TASK_FIELDS
from .state import LIFE_ORDER
from .stats import Bucket, Row

if TYPE_CHECKING:
    from .pgstore import PgTaskStore

log = logging.getLogger(__name__)

#: Seconds a connection waits for another writer's lock before failing.
BUSY_TIMEOUT_SECONDS = 30.0
#: Page cache per connection, in KiB (SQLite's negative ``cache_size``). The pages' queries read through the
#: memory map (``MMAP_BYTES``), so their cache mostly holds little: 8 MiB writes and reads as fast over a
#: million tasks as 32 MiB did, and the writing connection and each thread's reading ones keep 24 MiB less.
CACHE_KIB = 8_192
#: Page cache of each thread's bookkeeping connection (``TaskStore._conn``), in KiB. Its reads are small or
#: single passes (the prune's count reads a whole index), which a cache does not speed up; a connection keeps
#: its cache filled until its next read, so at ``CACHE_KIB`` each thread held 8 MiB of pages read once.
BOOKKEEPING_CACHE_KIB = 1_024
#: Bytes of the file each query connection (``TaskStore._reader``) may memory-map for reads; the connection
#: that writes maps none.
MMAP_BYTES = 1 << 30
#: WAL pages past which a commit of the writing connection copies the log back into the file (SQLite's
#: ``wal_autocheckpoint``, 1,000 by default). Each copy writes every page the log holds, and a live cluster's
#: writes touch the same pages again and again (the ends of the indexes, the events' tree): copying every
#: 10,000 pages (a log of up to about 40 MB) instead of every 1,000 took 10-15 % less of a write's CPU
#: (600 finished tasks a batch: 90-98 µs a task before, 80-92 after).
WAL_CHECKPOINT_PAGES = 10_000
#: Files up to this size get ``PRAGMA quick_check`` (it reads every page: ~1.4 s/GB here) on
#: every open. A larger one is checked only after an unclean shutdown, and then in the background
#: (``check_integrity``) while it serves: SQLite's WAL recovery on open already brings back every
#: committed transaction, and the check would otherwise keep the first page waiting for seconds.
QUICK_CHECK_MAX_BYTES = 256 * 1024 * 1024
#: Written beside the file when the background check finds damage; the next open then checks
#: in full, moves a damaged file aside and rescues what it can (see ``_open``).
DAMAGED_SUFFIX = ".damaged"
#: Stored tasks from which the query planner gets statistics (``analyze``); below, any plan is fast.
ANALYZE_MIN_TASKS = 10_000
#: Tasks deleted per prune transaction (~0.2 s at a million tasks), so a waiting writer never waits long.
PRUNE_CHUNK_TASKS = 1_000
#: Pause between prune transactions (and the query statistics' indexes), longer than SQLite's longest
#: busy-retry sleep (0.1 s), so a writer waiting for the lock gets it between chunks.
PRUNE_PAUSE_SECONDS = 0.12
#: Above this many matches ``query`` reports an estimated total (see ``_estimate_hits``).
EXACT_TOTAL_CAP = 10_000
#: Rows probed, evenly spread over the id range, to estimate a large total.
ESTIMATE_SAMPLES = 2_000
#: An estimate above this many times EXACT_TOTAL_CAP, from at least ESTIMATE_MIN_HITS matching probes, is
#: taken without counting up to the cap: a count at the cap gives one about never (with a million tasks,
#: 20 probes match on average, and 40 would be needed: a chance of about 1 in 100,000).
ESTIMATE_CERTAIN = 2
ESTIMATE_MIN_HITS = 40
#: Seconds a filter's sampled share of the id range is reused, scaled to the range of the moment: the
#: 2,000 probes cost 2-3 ms, most of a list page's work, and the share moves slowly.
ESTIMATE_REUSE_SECONDS = 5.0
#: Most filter combinations whose share is kept at once.
ESTIMATE_REUSE_MAX = 256
#: Task rows written by one statement (``write_batch``; events four times as many). 50-600 cost the same CPU
#: (600 tasks: 110-135 µs a task, against 180-210 with a statement each); more hold more of the full-text
#: index's pending terms in memory at once (SQLite's high-water 10.9 MiB at 100, 13.8 at 600).
STAGED_ROWS = 100
#: A filtered total is first counted up to this many (cheap): only past it is the estimate taken.
COUNT_FIRST = 1_000
#: Full-text matches up to which a search is driven by the FTS index rather than the sort index.
FTS_DRIVEN_MAX = 5_000
#: With filters whose rows SQLite's plan would sort (a sort other than by time), a search is driven by the
#: FTS index up to this many matches when reading them costs less than the other way: sorting the rows the
#: filters pass (estimated), then checking them against the word one by one until a page is full (about
#: a page times the tasks per match). Each match costs a row read (~2 µs), each filtered row a read and its
#: share of the sort, each check ``PROBE_ROWS`` row reads. One worker's tasks by name with a word in 2 % of
#: a million tasks: 130-200 ms the other way, 35-40 ms reading the word's 18,400 matches. Counting the
#: matches up to it costs about 1 ms.
FTS_SORTED_MAX = 30_000
#: What checking one row against a word costs (~40 µs), in row reads.
PROBE_ROWS = 20
#: Shortest final token matched as a prefix. The FTS index keeps 2- and 3-character prefixes; a
#: one-character one would merge every term that starts with it on each query (over a million tasks, 44 ms
#: for "4" and 306 ms for "c", which matches nearly every task anyway), so a lone ASCII character is a whole word.
MIN_PREFIX_CHARS = 2
#: Most rows of the sort index read per step when paging through a common full-text match.
WALK_CHUNK_MAX = 8_192
#: A sort other than by time whose filters pass more rows than a count would give exactly (their estimate
#: is certain to pass ``EXACT_TOTAL_CAP``, see ``_certain``) walks its own index, checking each row against
#: the filters (and, with a common word, against the word), instead of reading and sorting every row
#: that passes them: a 51-row page of one worker's 50,000 tasks by name took 70 ms sorted and 0.5 ms
#: walked (a million tasks). Fewer rows sort cheaply and are counted in the same pass, where a walk
#: would read ever more of the index per match. A walk is given up for the sort after this many
#: seconds: matches bunched at the far end of the sort (the fastest tasks of one name, by longest
#: runtime), or a word in few of the rows, would make it read most of the index.
SORT_WALK_SECONDS = 0.025
#: SQLite virtual machine instructions between two looks at a walk's deadline (some tens of µs).
SORT_WALK_CHECK_STEPS = 1_000
#: The index each sort other than by time walks (the sort's columns, then the row id, in its order).
_SORT_INDEXES = {("runtime_sort",): "tasks_runtime", ("name_sort", "received_sort"): "tasks_name"}
#: Shortest runtime first, with tasks without one last, is read from the one runtime index in two parts
#: (``runtime_sort`` ascending, then the row id, in each): the runtimes above this, then the rest (no runtime
#: yet, -1; a negative runtime below it an event claimed). A second index, on ``runtime_up_sort``, cost each
#: task written about 13 us (of 82) at 200,000 tasks: a runtime lands on a random page of each.
RUNTIME_REST = -1.0
#: A walked chunk's text match is checked id by id (``IN``) rather than over its id range once the
#: range's expected matches exceed this many per id: the cost ratio of a probe to a range entry.
PROBE_FACTOR = 128
#: Longest a damaged file is read for tasks to copy into the fresh one, in seconds (the rest stays in it).
RESCUE_MAX_SECONDS = 60.0
#: Tasks read (and written to the fresh file) per step of that copy.
RESCUE_CHUNK_TASKS = 1_000
#: Task ids below an unreadable one that are then read one by one, before reading in chunks again.
RESCUE_PROBE_IDS = 1_000
#: The range of SQLite's INTEGER (signed 64 bits).
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
#: States a failed task is in, for ``keep_failed_seconds``.
FAILED_STATES = ("FAILURE",)

# The task columns written and read are ``model.TASK_COLUMNS`` (the ``Task`` declaration); the
# table below is migration 1 as it shipped, and a test checks that the two agree.
#: Fields held in the full-text index (the column names of ``tasks_fts``).
#: The uuid is left out (five random tokens per task cost a third of the write rate);
#: a one-word query is also matched as a prefix of the uuid, through its unique index.
FTS_FIELDS = ("name", "args", "kwargs", "result", "exception", "retry_errors")
#: Sort key -> the helper columns it orders by (the row id breaks ties).
SORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "received": ("received_sort",),
    "runtime": ("runtime_sort",),
    "name": ("name_sort", "received_sort"),
    "timestamp": ("updated_sort",),
}
#: Sort keys whose ascending order needs other columns: tasks without a runtime come last either way
#: (PostgreSQL's own index; SQLite reads the runtime index in two parts instead: ``RUNTIME_REST``).
ASCENDING_SORT_COLUMNS: dict[str, tuple[str, ...]] = {"runtime": ("runtime_up_sort",)}
#: ``time_field`` -> the column the since/until range applies to.
TIME_COLUMNS = {"received": "received_sort", "started": "started", "finished": "finished"}
_TEXT_SORT_COLUMNS = frozenset(("name_sort",))
_TIME_BOUNDS = tuple(f"{column} " for column in TIME_COLUMNS.values())  # how a since/until filter starts
_TOKENS = re.compile(r"[^\W_]+")  # roughly what FTS5's unicode61 tokenizer keeps
UUID_PREFIX = re.compile(r"[0-9a-fA-F][0-9a-fA-F-]{3,35}")  # a word that may start a Celery task id

_TASK_TABLE = """
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,  -- stable row id: the FTS rowid and the events' key
    uuid TEXT NOT NULL UNIQUE,
    name TEXT, state TEXT NOT NULL DEFAULT 'PENDING', worker TEXT, queue TEXT, exchange TEXT,
    routing_key TEXT,
    sent REAL, received REAL, started REAL, succeeded REAL, failed REAL, retried REAL, revoked REAL,
    rejected REAL, timestamp REAL, runtime REAL, retries INTEGER,
    args TEXT, kwargs TEXT, eta TEXT, expires TEXT, result TEXT, exception TEXT, traceback TEXT,
    parent_id TEXT, root_id TEXT, orphaned INTEGER NOT NULL DEFAULT 0,
    progress TEXT,  -- JSON
    received_sort REAL GENERATED ALWAYS AS (coalesce(received, sent, timestamp, 0.0)) VIRTUAL,
    runtime_sort REAL GENERATED ALWAYS AS (coalesce(runtime, -1.0)) VIRTUAL,
    name_sort TEXT GENERATED ALWAYS AS (coalesce(name, '')) VIRTUAL,
    updated_sort REAL GENERATED ALWAYS AS (coalesce(timestamp, 0.0)) VIRTUAL,
    finished REAL GENERATED ALWAYS AS (coalesce(succeeded, failed, revoked, rejected)) VIRTUAL
)"""



def _fts_schema(fields: Sequence[str], rebuild: bool) -> tuple[str, ...]:
    """The full-text index over ``fields``, kept in sync with ``tasks`` by triggers; ``rebuild``
    indexes the rows already stored. prefix='2 3': short prefixes are read from their own index;
    without it FTS5 merges every term with the prefix on each query (tens of ms for 'cus*' over a
    million rows)."""
    columns = ", ".join(fields)
    new, old = ", ".join(f"new.{c}" for c in fields), ", ".join(f"old.{c}" for c in fields)
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in fields)
    return (
        f"CREATE VIRTUAL TABLE tasks_fts USING fts5({columns}, content='tasks', "
        "content_rowid='id', columnsize=0, tokenize='unicode61', prefix='2 3')",
        f"""CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN
            INSERT INTO tasks_fts (rowid, {columns}) VALUES (new.id, {new});
        END""",
        f"""CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN
            INSERT INTO tasks_fts (tasks_fts, rowid, {columns}) VALUES ('delete', old.id, {old});
        END""",
        f"""CREATE TRIGGER tasks_fts_update AFTER UPDATE ON tasks WHEN {changed} BEGIN
            INSERT INTO tasks_fts (tasks_fts, rowid, {columns}) VALUES ('delete', old.id, {old});
            INSERT INTO tasks_fts (rowid, {columns}) VALUES (new.id, {new});
        END""",
    ) + (("INSERT INTO tasks_fts (tasks_fts) VALUES ('rebuild')",) if rebuild else ())


#: Text fields an event may leave to its task's row: bit ``i`` of an event row's ``refs`` says that its
#: JSON left out ``REF_FIELDS[i]``, whose value is the task row's. Append only: stored rows depend on the order.
REF_FIELDS = ("name", "queue", "exchange", "routing_key", "args", "kwargs", "eta", "expires", "result",
              "exception", "traceback", "parent_id", "root_id")


def _refs_trigger() -> str:
    """The trigger that keeps ``refs`` true: when a task row's value of a ``REF_FIELDS`` field changes (a
    retry's new eta or arguments, an attempt's exception cleared by its success), the events that refer to
    it are given the value it had, in their own JSON, and no longer refer to it."""
    changed = " OR ".join(f"(old.{name} IS NOT NULL AND old.{name} IS NOT new.{name})" for name in REF_FIELDS)
    copies = "".join(
        f"UPDATE events SET body = json_set(body, '$.{name}', old.{name}), refs = nullif(refs & ~{1 << bit}, 0) "
        f"WHERE task_id = old.id AND refs & {1 << bit} AND old.{name} IS NOT new.{name};\n"
        for bit, name in enumerate(REF_FIELDS))
    return f"CREATE TRIGGER events_keep_task_values AFTER UPDATE ON tasks WHEN {changed} BEGIN\n{copies}END"


#: Schema migrations: ``MIGRATIONS[n]`` takes a database from version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (  # 1: tasks, events and the indexes behind every filter with the default sort
        _TASK_TABLE,
        # Events of one task are adjacent (clustered by task id, which grows with first sight,
        # so a batch appends near the end of the tree) and in timeline order.
        """CREATE TABLE events (
            task_id INTEGER NOT NULL, timestamp REAL NOT NULL, life INTEGER NOT NULL,
            type TEXT NOT NULL, hostname TEXT NOT NULL,
            body TEXT NOT NULL,  -- the event dict as JSON
            PRIMARY KEY (task_id, timestamp, life, type, hostname)
        ) WITHOUT ROWID""",
        "CREATE INDEX tasks_received ON tasks (received_sort)",
        "CREATE INDEX tasks_state ON tasks (state, received_sort)",
        "CREATE INDEX tasks_name ON tasks (name_sort, received_sort)",
        "CREATE INDEX tasks_worker ON tasks (worker, received_sort)",
        "CREATE INDEX tasks_queue ON tasks (queue, received_sort)",
        "CREATE INDEX tasks_runtime ON tasks (runtime_sort)",
        # state rides along so prune can skip kept failures without reading the table
        "CREATE INDEX tasks_updated ON tasks (updated_sort, state)",
        "CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL",
        # Every filter column by id: the total estimate probes this small tree, not the wide rows.
        "CREATE INDEX tasks_filters ON tasks "
        "(id, state, name_sort, worker, queue, received_sort, started, finished)",
    ),
    # 2: full-text search over the payload fields, kept in sync by triggers (rows stored before v2 indexed)
    _fts_schema(("name", "args", "kwargs", "result", "exception"), rebuild=True),
    (  # 3: queue depth history, the highest depth of each minute, for charts longer than an hour
        """CREATE TABLE queue_depths (
            queue TEXT NOT NULL, minute REAL NOT NULL, depth INTEGER NOT NULL,
            PRIMARY KEY (queue, minute)
        ) WITHOUT ROWID""",
        "CREATE INDEX queue_depths_minute ON queue_depths (minute)",
    ),
    (  # 4: the exceptions of retried attempts, searchable after the task succeeded: a column, filled
       # in from the stored task-retried events, and the full-text index made again with it
        "ALTER TABLE tasks ADD COLUMN retry_errors TEXT",
        """UPDATE tasks SET retry_errors = (
               SELECT group_concat(error, char(10)) FROM (
                   SELECT replace(json_extract(body, '$.exception'), char(10), ' ') AS error, min(timestamp) AS first
                   FROM events WHERE events.task_id = tasks.id AND events.type = 'task-retried'
                   GROUP BY error HAVING error IS NOT NULL ORDER BY first))
           WHERE retried IS NOT NULL""",
        "DROP TRIGGER tasks_fts_insert",
        "DROP TRIGGER tasks_fts_delete",
        "DROP TRIGGER tasks_fts_update",
        "DROP TABLE tasks_fts",
        *_fts_schema(FTS_FIELDS, rebuild=True),
    ),
    (  # 5: a task retried from the dashboard and the new task it was sent as
        """CREATE TABLE task_links (
            old TEXT NOT NULL, new TEXT NOT NULL, at REAL NOT NULL,
            PRIMARY KEY (old, new)
        ) WITHOUT ROWID""",
        "CREATE INDEX task_links_new ON task_links (new)",
    ),
    (  # 6: the audit log: every action, dry runs included, every login and every auth-file change
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY, at REAL NOT NULL, who TEXT NOT NULL, role TEXT, address TEXT,
            action TEXT NOT NULL, target TEXT, params TEXT, outcome TEXT NOT NULL, replies TEXT
        )""",
        "CREATE INDEX audit_at ON audit (at)",
    ),
    (  # 7: the analytics, one bucket per minute and per hour (step) for all tasks, each task type, worker
       # and queue (scope, key), and the markers drawn on the charts (deploys, labels posted)
        """CREATE TABLE stats (
            step INTEGER NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, start INTEGER NOT NULL,
            body TEXT NOT NULL,  -- the bucket as JSON (see stats.Bucket)
            PRIMARY KEY (step, scope, key, start)
        ) WITHOUT ROWID""",
        "CREATE INDEX stats_time ON stats (step, scope, start)",
        """CREATE TABLE markers (
            id INTEGER PRIMARY KEY, at REAL NOT NULL, label TEXT NOT NULL, source TEXT NOT NULL, who TEXT
        )""",
        "CREATE INDEX markers_at ON markers (at)",
    ),
    (  # 8: alerts raised by the rules (--alerts), open and resolved, and the silences operators set
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY, rule TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
            subject TEXT NOT NULL, summary TEXT NOT NULL, started REAL NOT NULL, resolved REAL, value REAL, link TEXT
        )""",
        "CREATE INDEX alerts_open ON alerts (resolved)",
        """CREATE TABLE silences (
            id INTEGER PRIMARY KEY, rule TEXT NOT NULL, subject TEXT, until REAL NOT NULL, who TEXT NOT NULL,
            at REAL NOT NULL
        )""",
    ),
    (  # 9: shortest runtime first puts unfinished tasks (no runtime yet) last: a column of its own for that order
        "ALTER TABLE tasks ADD COLUMN runtime_up_sort REAL GENERATED ALWAYS AS (coalesce(runtime, 1e300)) VIRTUAL",
        "CREATE INDEX tasks_runtime_up_sort ON tasks (runtime_up_sort)",
    ),
    (  # 10: each worker's most active tasks in each minute (from its heartbeats), for charts beyond the hour
        """CREATE TABLE worker_active (
            worker TEXT NOT NULL, minute REAL NOT NULL, active INTEGER NOT NULL,
            PRIMARY KEY (worker, minute)
        ) WITHOUT ROWID""",
        "CREATE INDEX worker_active_minute ON worker_active (minute)",
    ),
    (  # 11: intervals in which events may have been lost (a reconnect, a cut, the dashboard's own downtime)
        "CREATE TABLE gaps (id INTEGER PRIMARY KEY, start REAL NOT NULL, end REAL NOT NULL, cause TEXT NOT NULL)",
        "CREATE INDEX gaps_end ON gaps (end)",
        # "alive_at": written every minute while the dashboard runs; "stopped_at": on a clean stop
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID",
    ),
    (  # 12: why a task is no longer taken as in flight (events missed, and no worker holds it)
        "ALTER TABLE tasks ADD COLUMN lost TEXT",
    ),
    (  # 13: an event's fields equal to its task row's are read from the row (``refs``, see ``_event_row``)
        "ALTER TABLE events ADD COLUMN refs INTEGER",
        _refs_trigger(),
    ),
    (  # 14: shortest runtime first reads the runtime index in two parts (``RUNTIME_REST``): one index fewer
        "DROP INDEX IF EXISTS tasks_runtime_up_sort",
    ),
]
#: Gaps one query returns at most.
GAPS_MAX = 1000
#: Alerts ``alerts_page`` returns at most.
ALERTS_PAGE_MAX = 500
#: Steps of the stored analytics, in seconds, and how long each is kept at least.
STATS_STEPS = (60, 3600)
STATS_MINUTES_KEPT_SECONDS = 2 * 86400.0
STATS_HOURS_KEPT_SECONDS = 31 * 86400.0
#: Markers returned at most by one query.
MARKERS_MAX = 1000
#: Audit entries ``audit_page`` returns at most.
AUDIT_PAGE_MAX = 500
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS_SQL = ", ".join(TASK_FIELDS)


def task_write_sql(mark: str, kept: tuple[str, ...] = (), source: str | None = None) -> tuple[str, str]:
    """The task upsert (every ``TASK_FIELDS`` column but ``kept``, whose stored values an update keeps) and
    the placeholder insert of a task known only by an event (uuid, timestamp), with the driver's parameter
    ``mark`` (``?`` for sqlite3, ``%s`` for psycopg). ``source`` is where the upsert's rows come from: one
    row of parameters by default, or a SELECT of the ``TASK_FIELDS`` columns."""
    assignments = ", ".join(f"{c} = excluded.{c}" for c in TASK_FIELDS if c != "uuid" and c not in kept)
    rows = source or f"VALUES ({', '.join([mark] * len(TASK_FIELDS))})"
    upsert = (f"INSERT INTO tasks ({_COLUMNS_SQL}) {rows} "
              f"ON CONFLICT (uuid) {f'DO UPDATE SET {assignments}' if assignments else 'DO NOTHING'}")
    return upsert, f"INSERT INTO tasks (uuid, timestamp) VALUES ({mark}, {mark}) ON CONFLICT (uuid) DO NOTHING"


#: Keys of a task's whole JSON shape (its fields and ``children``).
_SHAPE_KEYS = len(TASK_FIELDS) + 1


def task_upserts(tasks: list[dict[str, Any]], mark: str, row: Callable[[dict[str, Any]], Any],
                 source: str | None = None, written: dict[str, Any] | None = None) -> list[tuple[str, list[Any]]]:
    """Return (upsert SQL, rows) for ``tasks``' shapes: a shape that leaves fields out (``Task.released``:
    unknown in memory, the store may hold them) has them kept by its update, every other column written.
    ``source``: see ``task_write_sql``. ``written`` is given each task's row by uuid (its events refer to it)."""
    groups: dict[tuple[str, ...], list[Any]] = {}
    for task in tasks:
        kept = () if len(task) >= _SHAPE_KEYS else tuple(name for name in TASK_FIELDS if name not in task)
        values = row(task)
        groups.setdefault(kept, []).append(values)
        if written is not None:
            written[task["uuid"]] = values
    return [(_upsert_sql(mark, kept, source), rows) for kept, rows in groups.items()]


@functools.lru_cache(maxsize=256)
def _upsert_sql(mark: str, kept: tuple[str, ...], source: str | None) -> str:
    return task_write_sql(mark, kept, source)[0]


_STUB_SQL = task_write_sql("?")[1]


_EVENT_COLUMNS_SQL = "task_id, timestamp, life, type, hostname, body, refs"
#: A batch's task and event rows before their upsert and insert (see ``write_batch``), in the writing
#: connection's temporary tables; untyped columns keep the values as bound.
_STAGE_TABLES_SQL = (f"CREATE TEMP TABLE IF NOT EXISTS staged_tasks ({_COLUMNS_SQL})",
                     "CREATE TEMP TABLE IF NOT EXISTS staged_events (timestamp, life, type, hostname, body, refs, uuid)")
#: The staged task rows, in the order staged, as the upsert's source (SQLite's parser needs a WHERE before
#: ON CONFLICT in an INSERT ... SELECT).
_STAGED_TASKS = f"SELECT {_COLUMNS_SQL} FROM temp.staged_tasks WHERE true ORDER BY rowid"
_STAGE_SQL = f"INSERT INTO temp.staged_tasks ({_COLUMNS_SQL}) VALUES ({', '.join('?' * len(TASK_FIELDS))})"
_STAGE_EVENT_SQL = "INSERT INTO temp.staged_events VALUES (?, ?, ?, ?, ?, ?, ?)"
_STAGED_EVENTS_SQL = (f"INSERT OR IGNORE INTO events ({_EVENT_COLUMNS_SQL}) "
                      "SELECT tasks.id, staged.timestamp, staged.life, staged.type, staged.hostname, staged.body, staged.refs "
                      "FROM temp.staged_events AS staged CROSS JOIN tasks ON tasks.uuid = staged.uuid "
                      "ORDER BY staged.rowid")
# Copying from a damaged file keeps the row ids, which its events refer to.
_RESCUE_TASK_SQL = (f"INSERT OR IGNORE INTO tasks (id, {_COLUMNS_SQL}) "
                    f"VALUES ({', '.join('?' * (len(TASK_FIELDS) + 1))})")
_RESCUE_EVENT_SQL = f"INSERT OR IGNORE INTO events ({_EVENT_COLUMNS_SQL}) VALUES (?, ?, ?, ?, ?, ?, ?)"
_SELECT_TASK = f"SELECT id, {_COLUMNS_SQL} FROM tasks"
_FLAG_INDEXES = tuple(i for i, (_, kind) in enumerate(TASK_COLUMNS) if kind == FLAG)
#: (bit of ``refs``, field, its index in a task row) of each ``REF_FIELDS`` field.
_REF_COLUMNS = tuple((1 << bit, name, TASK_FIELDS.index(name)) for bit, name in enumerate(REF_FIELDS))
#: The same by field: an event's body is checked for the few of them it holds.
_REF_BY_NAME = {name: (bit, column) for bit, name, column in _REF_COLUMNS}
_REF_NAMES = frozenset(_REF_BY_NAME)
_JSON_INDEXES = tuple(i for i, (_, kind) in enumerate(TASK_COLUMNS) if kind == JSON)
#: ``TASK_COLUMNS``' positions by kind, for ``_task_row`` (the state's is on its own: it has a default).
_NUMBER_INDEXES = tuple(i for i, (_, kind) in enumerate(TASK_COLUMNS) if kind in (REAL, INTEGER))
_STATE_INDEX = TASK_FIELDS.index("state")
_TEXT_INDEXES = tuple(i for i, (_, kind) in enumerate(TASK_COLUMNS)
                      if kind not in (FLAG, JSON, REAL, INTEGER) and i != _STATE_INDEX)


#: Either history: an SQLite file or a PostgreSQL database (``--db postgresql://...``, ``pgstore``).
HistoryStore = Union["TaskStore", "PgTaskStore"]


class StoreError(Exception):
    """The store cannot serve: a closed store, or a schema newer than this code."""


class StoreClosed(StoreError):
    """The store was closed (the dashboard is stopping): a background pass that meets it just ends."""


class StoreQueryError(StoreError, ValueError):
    """A query argument the store cannot use; the message says which and why."""


class NativeLock:
    """A lock that blocks the calling OS thread, also where eventlet's monkey-patching has turned
    ``threading``'s locks green (a green lock contended between two native threads never wakes its
    waiter). It is a token in a C ``_queue.SimpleQueue``, which that patching leaves alone."""

    def __init__(self) -> None:
        self._token: _queue.SimpleQueue[None] = _queue.SimpleQueue()
        self._token.put(None)

    def __enter__(self) -> None:
        self._token.get()

    def __exit__(self, *exc: object) -> None:
        self._token.put(None)


_Pass = TypeVar("_Pass", bound=Callable[..., Any])


def one_pass(method: _Pass) -> _Pass:
    """A store's pruning or statistics pass, run holding its ``_pass_lock``: its ``close`` waits for the
    statement under way, and the pass's next call then raises ``StoreClosed``."""
    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._pass_lock:
            return method(self, *args, **kwargs)
    return run  # type: ignore[return-value]


class TaskStore:
    """Task history in one SQLite file; see the module docstring for the thread model."""

    #: Whether a page's short reads (one task, its links, the unfiltered list) are made on the calling
    #: thread, the event loop's included (``Dashboard.run_read``): a local file answers them in 0.1-1 ms,
    #: and handing one to a native thread and back cost 8 ms at p50 (two thread wake-ups) on a busy machine.
    READS_INLINE = True

    def __init__(self, path: str, max_tasks_stored: int = 1_000_000, max_age_seconds: float = 7 * 86400,
                 keep_failed_seconds: float | None = None) -> None:
        self.path = path
        self.max_tasks_stored = max_tasks_stored
        self.max_age_seconds = max_age_seconds
        self.keep_failed_seconds = keep_failed_seconds
        #: Each native thread's connections by (role, native thread id): not a ``threading.local``, which eventlet
        #: turns green, so that every green thread (each request of the event loop) would open its own.
        self._thread_conns: dict[tuple[str, int], sqlite3.Connection] = {}
        self._connections: list[sqlite3.Connection] = []  # every connection opened, for close()
        self._writer: sqlite3.Connection | None = None  # the one connection that writes (``_writing``)
        self._write_lock = NativeLock()
        self._pass_lock = NativeLock()  # held through a pruning or statistics pass: close() waits for it
        self._closed = False
        self._check_all = True  # whether opening runs PRAGMA quick_check (see _open)
        #: A large file after an unclean shutdown: its quick_check is left to ``check_integrity``.
        self.check_pending = False
        #: "ok" or the failed verdict of the last check this process ran; None when none ran.
        self.integrity: str | None = None
        self._checking: sqlite3.Connection | None = None  # the background check's connection, for close()
        #: Each filter's sampled estimate: (filters, their values) -> (when taken, hits, probes).
        self._estimates: dict[tuple[Any, ...], tuple[float, int, int]] = {}
        self._open()

    # -- opening ----------------------------------------------------------------
    def _open(self) -> None:
        try:
            # A -wal file left behind means the last user did not close cleanly (or is still running).
            unclean = os.path.exists(self.path + "-wal")
            marked = os.path.exists(self.path + DAMAGED_SUFFIX)
            self._check_all = (marked or not os.path.exists(self.path)
                               or os.path.getsize(self.path) <= QUICK_CHECK_MAX_BYTES)
            self.check_pending = unclean and not self._check_all
            try:
                self._prepare(self._conn())
                if marked:  # checked in full just now, and it passed
                    os.remove(self.path + DAMAGED_SUFFIX)
            except sqlite3.DatabaseError as exc:
                if not _is_corruption(exc):
                    raise
                moved = self._move_aside(f"{type(exc).__name__}: {exc}")
                self._prepare(self._conn())
                if getattr(exc, "sqlite_errorname", None) != "SQLITE_NOTADB":  # not a database: nothing to read
                    self._rescue(moved)
        except (sqlite3.OperationalError, OSError) as exc:  # a directory, no permission, a full disk, locked
            self.close()
            raise StoreError(f"--db {self.path}: cannot open the task history ({exc})") from exc
        except BaseException:
            self.close()
            raise

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self.close()
            raise StoreError(f"{self.path}: schema version {version} is newer than this dashboard's "
                             f"{SCHEMA_VERSION}; use a newer dashboard or another --db file")
        if version > 0 and self._check_all:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {verdict}")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._transaction(conn):
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")
            if version > 0:  # an older history brought up to date; a new one is said once, below
                log.info("task store %s: schema migrated to version %d", self.path, target)
        if version == 0:
            log.info("created a new history at %s", self.path)

    def _move_aside(self, reason: str) -> str:
        """Rename the damaged file (and its -wal and -shm) to ``<path>.corrupt-<time>``; return that name."""
        for conn in self._connections:
            conn.close()
        self._connections.clear()
        self._thread_conns = {}
        self._writer = None
        target = f"{self.path}.corrupt-{int(time.time())}"
        for suffix in ("", "-wal", "-shm", DAMAGED_SUFFIX):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, target + suffix)
        log.warning("task store %s is unreadable or corrupt (%s): moved it to %s and started a fresh one",
                    self.path, reason, target)
        return target

    def _rescue(self, source: str) -> None:
        """Copy every task still readable in the damaged file ``source``, with its events, into this store.

        Newest first, in chunks of ``RESCUE_CHUNK_TASKS``; below a row that cannot be read the
        next ``RESCUE_PROBE_IDS`` ids are read one by one, so an unreadable page costs only its
        own rows. Task ids are kept, so the events still point at their tasks. The copy stops
        after ``RESCUE_MAX_SECONDS``; what it did not reach stays in ``source``.
        """
        started = time.monotonic()
        rescued = 0
        # Read-only, so the damaged file stays as it was (its WAL is read, never checkpointed into it);
        # without a WAL, immutable: no -wal or -shm file is created beside it either.
        flags = "mode=ro" if os.path.exists(source + "-wal") else "immutable=1"
        try:
            damaged = sqlite3.connect(f"{Path(source).resolve().as_uri()}?{flags}", uri=True,
                                      isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            log.warning("task store %s: no task could be rescued from %s (%s)", self.path, source, exc)
            return
        try:
            top = _first_readable(damaged, "SELECT max(id) FROM tasks", "SELECT max(task_id) FROM events")
            if top is None:
                log.warning("task store %s: no task could be rescued from %s (its task ids are unreadable)",
                            self.path, source)
                return
            bottom = _first_readable(damaged, "SELECT min(id) FROM tasks", "SELECT min(task_id) FROM events")
            bottom = 1 if bottom is None else bottom
            select = _rescue_select(damaged, "tasks", ("id", *TASK_FIELDS))
            select_events = _rescue_select(damaged, "events", _EVENT_COLUMNS_SQL.split(", "))
            position = top + 1  # the next step reads the ids below this one
            while position > bottom:
                if time.monotonic() - started > RESCUE_MAX_SECONDS:
                    log.warning("task store %s: stopped rescuing after %.0f s; tasks with ids %d to %d were not "
                                "copied and stay in %s", self.path, RESCUE_MAX_SECONDS, bottom, position - 1,
                                source)
                    break
                rows, position = _read_tasks_below(damaged, select, position, bottom)
                if rows:
                    events = _read_events(damaged, select_events, [row[0] for row in rows])
                    with self._writing() as conn:
                        conn.executemany(_RESCUE_TASK_SQL, rows)
                        conn.executemany(_RESCUE_EVENT_SQL, events)
                    rescued += len(rows)
        finally:
            damaged.close()
        log.warning("task store %s: rescued %d tasks from %s in %.1f s", self.path, rescued, source,
                    time.monotonic() - started)

    def _conn(self) -> sqlite3.Connection:
        """Return this thread's connection for bookkeeping (the small reads beside the pages' queries),
        opening it on first use. Like the writing connection (``_writing``), it reads the file with read(),
        not through the memory map: every page a write passes through (the indexes' and the full-text
        index's, all over the file) would otherwise stay in the process's resident memory, about 1 KB per
        task held, where the OS's page cache keeps them anyway."""
        return self._thread_conn("conn", 0, BOOKKEEPING_CACHE_KIB)

    def _reader(self) -> sqlite3.Connection:
        """Return this thread's connection for the pages' queries, which reads through the memory map
        (``MMAP_BYTES``): the task list's combinations of filters over a million tasks run up to twice as
        fast with it. Only the pages a query reads are mapped in."""
        return self._thread_conn("reader", MMAP_BYTES, CACHE_KIB)

    def _thread_conn(self, role: str, mmap_bytes: int, cache_kib: int) -> sqlite3.Connection:
        if self._closed:
            raise StoreClosed(f"task store {self.path} is closed")
        key = (role, threading.get_native_id())
        conn = self._thread_conns.get(key)
        if conn is None:
            self._close_departed()
            conn = self._thread_conns[key] = self._connect(mmap_bytes, cache_kib)
        return conn

    def _close_departed(self) -> None:
        """Close the connections of native threads that have ended: the threading mode's server runs each
        client connection in a thread of its own, and each would otherwise leave two SQLite connections (their
        files open, their page caches) behind for good."""
        keys = list(self._thread_conns)  # before the live threads are listed: a thread started since is not ended
        try:
            alive = {int(name) for name in os.listdir("/proc/self/task")}
        except (OSError, ValueError):  # not Linux: the threads stay few under eventlet, the default
            return
        for key in [key for key in keys if key[1] not in alive]:
            conn = self._thread_conns.pop(key, None)
            if conn is not None:
                with suppress(ValueError):  # another thread closing the same
                    self._connections.remove(conn)
                conn.close()

    def _connect(self, mmap_bytes: int, cache_kib: int) -> sqlite3.Connection:
        # check_same_thread=False so close() may close it, and so the writer may pass from thread to thread.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                               check_same_thread=False)
        self._connections.append(conn)
        if self._closed:  # close() ran meanwhile and may have missed it: nothing is left open behind it
            conn.close()
            raise StoreClosed(f"task store {self.path} is closed")
        for pragma in ("synchronous = NORMAL", f"cache_size = -{cache_kib}", f"mmap_size = {mmap_bytes}",
                       "temp_store = MEMORY"):
            conn.execute(f"PRAGMA {pragma}")
        return conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the store's one writing connection, whichever thread calls.

        One connection writes, not one per thread: SQLite empties a connection's page cache when
        another connection has written since its last transaction, so writes from several threads'
        connections each refilled an emptied cache, freeing and allocating up to ``CACHE_KIB`` a
        batch. At 5,000 events/s SQLite's memory swung between 17 and 34 MiB and the C heap's free
        space grew from 15 to 40 MiB in ten minutes; with one writer (and small bookkeeping caches)
        SQLite holds 9-13 MiB and the heap's free space about 20 MiB. It reads with read(), not
        through the memory map (see ``_conn``).
        """
        with self._write_lock:
            if self._closed:
                raise StoreClosed(f"task store {self.path} is closed")
            if self._writer is None:
                self._writer = self._connect(0, CACHE_KIB)
                self._writer.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}").fetchone()
                for sql in _STAGE_TABLES_SQL:
                    self._writer.execute(sql)
            conn = self._writer
            with self._transaction(conn):
                yield conn

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock with another writer
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # SQLite may already have rolled back (e.g. on SQLITE_FULL)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def check_integrity(self) -> str:
        """Run the ``PRAGMA quick_check`` that opening left pending; return its verdict ("ok" when sound).

        It reads every page on a connection of its own, so writers and readers go on meanwhile.
        Damage is logged and written to ``<db>.damaged``: the store goes on serving what it can
        read, and the next start moves the file aside and rescues every readable task.
        """
        if self._closed:
            return "interrupted"
        started = time.monotonic()
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                               check_same_thread=False)
        self._checking = conn
        try:
            verdict = str(conn.execute("PRAGMA quick_check").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            if self._closed:  # close() interrupted it: nothing was found, and nothing is said
                return "interrupted"
            verdict = f"{type(exc).__name__}: {exc}"
        finally:
            self._checking = None
            conn.close()
        self.check_pending = False
        self.integrity = verdict
        if verdict == "ok":
            log.info("task store %s: integrity check after an unclean shutdown passed in %.1f s", self.path,
                     time.monotonic() - started)
        else:
            Path(self.path + DAMAGED_SUFFIX).write_text(verdict + "\n", encoding="utf-8")
            log.error("task store %s failed its integrity check (%s): it goes on serving what it can read; the "
                      "next start moves it to %s.corrupt-<time> and copies every readable task into a fresh file",
                      self.path, verdict, self.path)
        return verdict

    def close(self) -> None:
        """Close every connection. A write under way in another thread ends first (the write lock), and a
        pruning or statistics pass ends with its statement under way (its next call raises ``StoreClosed``)
        before any connection closes; the pages' reads and the other callers must have stopped."""
        self._closed = True
        checking = self._checking
        if checking is not None:
            checking.interrupt()  # the background check's connection closes itself
        with self._pass_lock, self._write_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    # -- writing ----------------------------------------------------------------
    def write_batch(self, tasks: list[dict[str, Any]], events: list[tuple[str, dict[str, Any]]]) -> None:
        """Upsert ``tasks`` (their JSON shapes) and add ``events`` (uuid, event dict) in one transaction."""
        written: dict[str, Sequence[Any]] = {}  # each task's row as written, which its events may refer to
        upserts = task_upserts(tasks, "?", _task_row, _STAGED_TASKS, written)
        stubs = [(_text(uuid), _number(event.get("timestamp"))) for uuid, event in events if uuid not in written]
        event_rows = [_event_row(uuid, event, written.get(uuid)) for uuid, event in events]
        with self._writing() as conn:
            for sql, rows in upserts:
                # Staged, then upserted by one statement per chunk: FTS5 writes what it holds pending to disk
                # as a new segment at the end of every statement that wrote to it (its savepoint), so a
                # statement per task wrote (and later merged) a segment per task: over half a write's CPU.
                for start in range(0, len(rows), STAGED_ROWS):
                    conn.executemany(_STAGE_SQL, rows[start:start + STAGED_ROWS])
                    conn.execute(sql)
                    conn.execute("DELETE FROM temp.staged_tasks")
            if stubs:  # an event of a task the batch does not carry: keep it under a placeholder task
                conn.executemany(_STUB_SQL, stubs)
            for start in range(0, len(event_rows), 4 * STAGED_ROWS):  # the events likewise
                conn.executemany(_STAGE_EVENT_SQL, event_rows[start:start + 4 * STAGED_ROWS])
                conn.execute(_STAGED_EVENTS_SQL)
                conn.execute("DELETE FROM temp.staged_events")

    def write_queue_depths(self, rows: list[tuple[str, float, int]]) -> None:
        """Store (queue, minute start, highest depth) rows; a minute written again keeps its highest depth."""
        with self._writing() as conn:
            conn.executemany("INSERT INTO queue_depths (queue, minute, depth) VALUES (?, ?, ?) "
                             "ON CONFLICT (queue, minute) DO UPDATE SET depth = max(depth, excluded.depth)", rows)

    def write_worker_active(self, rows: list[tuple[str, float, int]]) -> None:
        """Store (worker, minute start, most active) rows; a minute written again keeps its highest count."""
        with self._writing() as conn:
            conn.executemany("INSERT INTO worker_active (worker, minute, active) VALUES (?, ?, ?) "
                             "ON CONFLICT (worker, minute) DO UPDATE SET active = max(active, excluded.active)",
                             [(_text(w), m, a) for w, m, a in rows])

    def gauge_minutes(self, table: str, since: float) -> dict[str, list[tuple[float, int]]]:
        """Return every queue's depths (``queue_depths``) or worker's activity (``worker_active``) per minute
        since ``since``: {name: [(minute, highest), ...]} oldest first."""
        column = {"queue_depths": ("queue", "depth"), "worker_active": ("worker", "active")}[table]
        series: dict[str, list[tuple[float, int]]] = {}
        for name, minute, value in self._conn().execute(
                f"SELECT {column[0]}, minute, {column[1]} FROM {table} WHERE minute >= ? ORDER BY minute", (since,)):
            series.setdefault(name, []).append((minute, value))
        return series

    def queue_depths(self, queue: str, since: float) -> dict[str, list[Any]]:
        """Return a queue's per-minute highest depths since ``since``: ``{"t": [...], "depth": [...]}``."""
        rows = self._conn().execute("SELECT minute, depth FROM queue_depths WHERE queue = ? AND minute >= ? "
                                    "ORDER BY minute", (queue, since)).fetchall()
        return {"t": [row[0] for row in rows], "depth": [row[1] for row in rows]}

    def write_stats(self, rows: list[Row], markers: list[dict[str, Any]]) -> None:
        """Add closed minutes of the analytics (minute start, scope, key, bucket) to their minute and hour
        buckets, and store ``markers`` (``at``, ``label``, ``source``, ``who``), in one transaction."""
        with self._writing() as conn:
            for step in STATS_STEPS:
                merged: dict[tuple[str, str, int], Bucket] = {}
                for minute, scope, key, bucket in rows:
                    slot = (scope, key, minute - minute % step)
                    if slot in merged:
                        merged[slot].merge(bucket)
                    else:
                        merged[slot] = Bucket().merge(bucket)
                writes = []
                for (scope, key, start), bucket in merged.items():
                    stored = conn.execute("SELECT body FROM stats WHERE step = ? AND scope = ? AND key = ? "
                                          "AND start = ?", (step, scope, key, start)).fetchone()
                    if stored is not None:
                        bucket = Bucket.from_row(json.loads(stored[0])).merge(bucket)
                    writes.append((step, scope, _text(key), start, dumps(bucket.to_row())))
                conn.executemany("INSERT OR REPLACE INTO stats (step, scope, key, start, body) VALUES (?, ?, ?, ?, ?)",
                                 writes)
            conn.executemany("INSERT INTO markers (at, label, source, who) VALUES (?, ?, ?, ?)",
                             [(m["at"], _text(str(m["label"])), m["source"], m.get("who")) for m in markers])

    def stats_series(self, step: int, scope: str, key: str, since: float) -> list[tuple[int, Bucket]]:
        """Return the stored buckets of one scope and key from ``since`` on, oldest first."""
        rows = self._conn().execute("SELECT start, body FROM stats WHERE step = ? AND scope = ? AND key = ? "
                                    "AND start >= ? ORDER BY start", (step, scope, key, int(since))).fetchall()
        return [(row[0], Bucket.from_row(json.loads(row[1]))) for row in rows]

    def stats_by_key(self, step: int, scope: str, since: float) -> dict[str, Bucket]:
        """Return each key of a scope with its stored buckets from ``since`` on added together."""
        merged: dict[str, Bucket] = {}
        for key, body in self._conn().execute("SELECT key, body FROM stats WHERE step = ? AND scope = ? "
                                              "AND start >= ?", (step, scope, int(since))):
            bucket = Bucket.from_row(json.loads(body))
            if key in merged:
                merged[key].merge(bucket)
            else:
                merged[key] = bucket
        return merged

    def markers(self, since: float, until: float | None = None) -> list[dict[str, Any]]:
        """Return the markers from ``since`` (to ``until``), oldest first."""
        rows = self._conn().execute("SELECT id, at, label, source, who FROM markers WHERE at >= ? AND at <= ? "
                                    "ORDER BY at LIMIT ?", (since, until if until is not None else math.inf,
                                                            MARKERS_MAX)).fetchall()
        return [{"id": r[0], "at": r[1], "label": r[2], "source": r[3], "who": r[4]} for r in rows]

    def save_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Store alerts (``Alert.to_json`` shapes) as they fired or resolved; an id stored again is replaced."""
        with self._writing() as conn:
            conn.executemany("INSERT OR REPLACE INTO alerts (id, rule, kind, severity, subject, summary, started, "
                             "resolved, value, link) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [(a["id"], a["rule"], a["kind"], a["severity"], _text(a["subject"]), _text(a["summary"]),
                               a["started"], a["resolved"], a["value"], a["link"] and _text(a["link"]))
                              for a in alerts])

    def alerts_page(self, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        """Return stored alerts newest first (below id ``before``)."""
        rows = self._conn().execute(
            "SELECT id, rule, kind, severity, subject, summary, started, resolved, value, link FROM alerts "
            f"{'WHERE id < ? ' if before is not None else ''}ORDER BY id DESC LIMIT ?",
            (*((before,) if before is not None else ()), min(limit, ALERTS_PAGE_MAX))).fetchall()
        keys = ("id", "rule", "kind", "severity", "subject", "summary", "started", "resolved", "value", "link")
        return [dict(zip(keys, row)) for row in rows]

    def open_alerts(self) -> list[dict[str, Any]]:
        """Return the alerts not resolved when the dashboard last stopped, and the highest alert id."""
        rows = self._conn().execute(
            "SELECT id, rule, kind, severity, subject, summary, started, resolved, value, link FROM alerts "
            "WHERE resolved IS NULL ORDER BY id").fetchall()
        keys = ("id", "rule", "kind", "severity", "subject", "summary", "started", "resolved", "value", "link")
        return [dict(zip(keys, row)) for row in rows]

    def last_alert_id(self) -> int:
        return self._conn().execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0]

    def save_silence(self, silence: dict[str, Any]) -> None:
        """Store a silence (``Silence.to_json``); it replaces an earlier one of the same rule and subject."""
        with self._writing() as conn:
            conn.execute("DELETE FROM silences WHERE rule = ? AND subject IS ?", (silence["rule"], silence["subject"]))
            conn.execute("INSERT INTO silences (rule, subject, until, who, at) VALUES (?, ?, ?, ?, ?)",
                         (silence["rule"], silence["subject"], silence["until"], silence["who"], silence["at"]))

    def silences(self, now: float) -> list[dict[str, Any]]:
        """Return the silences still running at ``now``."""
        rows = self._conn().execute("SELECT rule, subject, until, who, at FROM silences WHERE until > ?",
                                    (now,)).fetchall()
        return [{"rule": r[0], "subject": r[1], "until": r[2], "who": r[3], "at": r[4]} for r in rows]

    @one_pass
    def analyze(self, force: bool = False) -> bool:
        """Refresh the query planner's statistics (``ANALYZE tasks``) when the number of tasks has
        doubled or halved since they were taken, or was never taken past ``ANALYZE_MIN_TASKS``;
        return whether it ran.

        Without them SQLite takes every filter index as equally selective and may walk the queue
        index (a third of all tasks) where the name index holds a thirtieth. The statistics say
        how many rows a value of each index holds on average; ANALYZE reads every index once
        (~0.9 s over a million tasks), so it runs only on such changes. It takes one index per
        statement, each its own transaction, with a pause between them, so the history's writes wait
        for one index's pass at a time: ``ANALYZE tasks`` in one go held them for 1.3 s at 585,000
        tasks under 5,000 events/s, and the batch after it was twice the usual size (the ten passes took
        2.1 s at 577,000 tasks; the lock goes to whichever thread takes it first, so back to back the next
        pass could take it again before a waiting write). The events that wait meanwhile are Python
        objects the event path holds, and they leave Python's memory larger for good.
        """
        conn = self._conn()
        count = conn.execute("SELECT max(id) - min(id) + 1 FROM tasks").fetchone()[0] or 0  # ~the row count, at once
        row = conn.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'tasks_name'").fetchone() \
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() else None
        taken = int(row[0].split()[0]) if row else 0
        if not force and (count < ANALYZE_MIN_TASKS or (taken and taken / 2 <= count <= taken * 2)):
            return False
        started = time.monotonic()
        # On the writing connection, one index per transaction. It has no memory map, so the pages it reads
        # stay in the OS's cache, not in the process's resident memory, and its page cache is full already:
        # ANALYZE's pages take the places of others. A connection of its own wrote sqlite_stat1 besides the
        # writer, and SQLite empties a connection's whole cache when another has written: the writer's pages
        # were freed and allocated anew, and each ANALYZE left the C heap larger for good (at about 600,000 tasks
        # under 5,000 events/s: SQLite's memory fell from 13 to 6 MiB and rose again, and malloc's arenas grew
        # from 55 to 64 MiB, their free space from 23 to 31; the resident memory rose by 10-22 MiB).
        indexes = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' "
                               "ORDER BY name").fetchall()
        for number, (index,) in enumerate(indexes):
            if number:  # the history's writes go in between: each waits for one index's pass at most
                time.sleep(PRUNE_PAUSE_SECONDS)
            with self._writing() as writer:
                writer.execute(f'ANALYZE "{index}"')
        log.info("task store %s: query statistics refreshed over about %d tasks in %.1f s", self.path, count,
                 time.monotonic() - started)
        return True

    def save_gaps(self, gaps: list[dict[str, Any]]) -> None:
        """Store intervals in which events may have been lost: ``{"start", "end", "cause"}`` each."""
        with self._writing() as conn:
            conn.executemany("INSERT INTO gaps (start, end, cause) VALUES (?, ?, ?)",
                             [(g["start"], g["end"], _text(g["cause"])) for g in gaps])

    def gaps(self, since: float | None = None, until: float | None = None,
             limit: int = GAPS_MAX) -> list[dict[str, Any]]:
        """The stored gaps overlapping [since, until] (either open), newest first, at most ``limit``."""
        rows = self._conn().execute(
            "SELECT start, end, cause FROM gaps WHERE end >= ? AND start <= ? ORDER BY end DESC LIMIT ?",
            (-math.inf if since is None else since, math.inf if until is None else until,
             min(limit, GAPS_MAX))).fetchall()
        return [{"start": r[0], "end": r[1], "cause": r[2]} for r in rows]

    def mark(self, key: str, at: float) -> None:
        """Note when the dashboard was last alive (``alive_at``) or stopped cleanly (``stopped_at``)."""
        with self._writing() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, at))

    def last_seen_running(self) -> float | None:
        """When a dashboard last ran on this history: its clean stop, else the latest of its last minute
        mark and its newest task update; None for a new history."""
        conn = self._conn()
        marks = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        alive, stopped = marks.get("alive_at"), marks.get("stopped_at")
        if stopped is not None and (alive is None or stopped >= alive):
            return float(stopped)
        row = conn.execute("SELECT max(updated_sort) FROM tasks").fetchone()
        updated = row[0] if row and row[0] and math.isfinite(row[0]) else None
        candidates = [v for v in (alive, updated) if v is not None]
        return float(max(candidates)) if candidates else None

    @one_pass
    def prune(self, now: float) -> int:
        """Delete tasks past their age, then the oldest beyond ``max_tasks_stored``; return how many."""
        deleted = 0
        cutoff = now - self.max_age_seconds
        with self._writing() as conn:
            conn.execute("DELETE FROM queue_depths WHERE minute < ?", (cutoff,))
            conn.execute("DELETE FROM worker_active WHERE minute < ?", (cutoff,))
            conn.execute("DELETE FROM stats WHERE step = 60 AND start < ?", (now - STATS_MINUTES_KEPT_SECONDS,))
            hours_cutoff = now - max(self.max_age_seconds, STATS_HOURS_KEPT_SECONDS)
            conn.execute("DELETE FROM stats WHERE step = 3600 AND start < ?", (hours_cutoff,))
            conn.execute("DELETE FROM markers WHERE at < ?", (hours_cutoff,))
            conn.execute("DELETE FROM alerts WHERE resolved < ?", (hours_cutoff,))
            conn.execute("DELETE FROM silences WHERE until < ?", (now,))
            conn.execute("DELETE FROM gaps WHERE end < ?", (cutoff,))
        failed = ", ".join("?" * len(FAILED_STATES))
        if self.keep_failed_seconds is None:
            deleted += self._delete_while("SELECT id FROM tasks WHERE updated_sort < ? "
                                          "ORDER BY updated_sort LIMIT ?", (cutoff,))
        else:
            deleted += self._delete_while("SELECT id FROM tasks WHERE updated_sort < ? AND state NOT IN "
                                          f"({failed}) ORDER BY updated_sort LIMIT ?", (cutoff, *FAILED_STATES))
            deleted += self._delete_while(f"SELECT id FROM tasks WHERE state IN ({failed}) AND "
                                          "updated_sort < ? ORDER BY updated_sort LIMIT ?",
                                          (*FAILED_STATES, now - self.keep_failed_seconds))
        excess = self._conn().execute("SELECT count(*) FROM tasks").fetchone()[0] - self.max_tasks_stored
        while excess > 0:
            chunk = min(excess, PRUNE_CHUNK_TASKS)
            removed = self._delete_while("SELECT id FROM tasks ORDER BY updated_sort LIMIT ?", (),
                                         limit=chunk, once=True)
            if not removed:
                break
            deleted += removed
            excess -= removed
            if excess > 0:
                self._pause()
        return deleted

    def _delete_while(self, select: str, params: tuple[Any, ...], limit: int = PRUNE_CHUNK_TASKS,
                      once: bool = False) -> int:
        """Delete the tasks ``select`` picks, one chunk per transaction, until it picks none."""
        total = 0
        while True:
            with self._writing() as conn:
                ids = [(row[0],) for row in conn.execute(select, (*params, limit))]
                conn.executemany("DELETE FROM events WHERE task_id = ?", ids)
                conn.executemany("DELETE FROM tasks WHERE id = ?", ids)
            total += len(ids)
            if once or len(ids) < limit:
                return total
            self._pause()

    def _pause(self) -> None:
        """Between prune chunks: copy the WAL back (so a writer's commit does not pay for the
        deletions with an automatic checkpoint), then leave the write lock free for a moment."""
        self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        time.sleep(PRUNE_PAUSE_SECONDS)

    # -- reading ----------------------------------------------------------------
    def get(self, uuid: str) -> dict[str, Any] | None:
        """Return one task's JSON shape with its ``events`` in timeline order and its ``children``."""
        conn = self._reader()
        row = conn.execute(f"{_SELECT_TASK} WHERE uuid = ?", (uuid,)).fetchone()
        if row is None:
            return None
        task = self._shapes(conn, [row])[0]
        task["events"] = self._events(conn, {row[0]: task})[row[0]]
        return task

    def audit(self, entry: dict[str, Any]) -> None:
        """Add one audit entry: ``at``, ``who``, ``role``, ``address``, ``action``, ``target``, ``params``
        (JSON-able), ``outcome`` and ``replies`` (JSON-able)."""
        with self._writing() as conn:
            conn.execute("INSERT INTO audit (at, who, role, address, action, target, params, outcome, replies) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (entry["at"], _text(str(entry["who"])), entry.get("role"), entry.get("address"),
                          entry["action"], _text(str(entry.get("target") or "")) or None,
                          dumps(entry.get("params")) if entry.get("params") is not None else None,
                          _text(str(entry["outcome"])),
                          dumps(entry.get("replies")) if entry.get("replies") is not None else None))

    def audit_page(self, limit: int = 100, before: int | None = None, action: str | None = None,
                   who: str | None = None) -> dict[str, Any]:
        """Return audit entries newest first (below id ``before``), and the id to pass for the next page."""
        where, params = [], []
        for clause, value in (("id < ?", before), ("action = ?", action), ("who = ?", who)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = self._conn().execute(
            "SELECT id, at, who, role, address, action, target, params, outcome, replies FROM audit"
            f"{_where(where)} ORDER BY id DESC LIMIT ?", (*params, min(limit, AUDIT_PAGE_MAX) + 1)).fetchall()
        items = [{"id": r[0], "at": r[1], "who": r[2], "role": r[3], "address": r[4], "action": r[5], "target": r[6],
                  "params": None if r[7] is None else json.loads(r[7]), "outcome": r[8],
                  "replies": None if r[9] is None else json.loads(r[9])} for r in rows[:limit]]
        return {"items": items, "next": items[-1]["id"] if len(rows) > limit and items else None}

    def prune_audit(self, before: float) -> int:
        """Delete audit entries older than ``before``; return how many."""
        with self._writing() as conn:
            return conn.execute("DELETE FROM audit WHERE at < ?", (before,)).rowcount

    def link_retry(self, old: str, new: str, at: float) -> None:
        """Remember that task ``old`` was retried as the new task ``new``."""
        with self._writing() as conn:
            conn.execute("INSERT OR IGNORE INTO task_links (old, new, at) VALUES (?, ?, ?)", (old, new, at))

    def links(self, uuid: str) -> tuple[str | None, list[str]]:
        """Return the task ``uuid`` was retried from (or None) and the tasks it was retried as, oldest first."""
        conn = self._reader()
        row = conn.execute("SELECT old FROM task_links WHERE new = ? ORDER BY at LIMIT 1", (uuid,)).fetchone()
        newer = [r[0] for r in conn.execute("SELECT new FROM task_links WHERE old = ? ORDER BY at", (uuid,))]
        return (row[0] if row else None), newer

    def exists(self, uuid: str) -> bool:
        """Return whether the history holds this task."""
        return self._reader().execute("SELECT 1 FROM tasks WHERE uuid = ?", (uuid,)).fetchone() is not None

    def uuids_starting(self, prefix: str, limit: int) -> list[str]:
        """Return up to ``limit`` stored task ids that start with ``prefix``, in order (through the ids' index)."""
        return [row[0] for row in self._reader().execute(
            "SELECT uuid FROM tasks WHERE uuid >= ? AND uuid < ? ORDER BY uuid LIMIT ?",
            (prefix, prefix + "\U0010ffff", limit))]

    def recent(self, limit: int, finished_events: bool = True
               ) -> list[tuple[dict[str, Any], list[dict[str, Any]] | None]]:
        """Return the ``limit`` most recently updated tasks, newest first, each with its events.

        With ``finished_events`` False, finished tasks come with None instead of their events.
        """
        conn = self._conn()
        rows = conn.execute(f"{_SELECT_TASK} ORDER BY updated_sort DESC, id DESC LIMIT ?", (limit,)).fetchall()
        shapes = self._shapes(conn, rows)
        wanted = {row[0]: task for task, row in zip(shapes, rows) if finished_events or task["state"] not in READY_STATES}
        events = self._events(conn, wanted)
        return [(task, events.get(row[0])) for task, row in zip(shapes, rows)]

    def stats(self) -> dict[str, Any]:
        """Return the number of tasks stored (an exact count), the file path and the schema version."""
        conn = self._conn()
        return {"tasks": conn.execute("SELECT count(*) FROM tasks").fetchone()[0], "path": self.path,
                "schema_version": conn.execute("PRAGMA user_version").fetchone()[0]}

    def task_names(self, prefix: str = "", limit: int = 200) -> list[str]:
        """Return the distinct task names in the history starting with ``prefix``, in order, at most ``limit``.

        One seek of the name index per name (a skip scan), so a million rows of a few hundred
        names cost a few hundred index lookups, not a scan.
        """
        conn = self._reader()
        high = prefix + "\U0010ffff"
        names: list[str] = []
        row = conn.execute("SELECT name_sort FROM tasks INDEXED BY tasks_name WHERE name_sort >= ? AND name_sort < ? "
                           "ORDER BY name_sort LIMIT 1", (prefix, high)).fetchone()
        while row is not None and len(names) < limit:
            if row[0]:
                names.append(row[0])
            row = conn.execute("SELECT name_sort FROM tasks INDEXED BY tasks_name WHERE name_sort > ? AND name_sort < ? "
                               "ORDER BY name_sort LIMIT 1", (row[0], high)).fetchone()
        return names

    def query(self, *, states: set[str] | None = None, name: str | None = None, worker: str | None = None,
              queue: str | None = None, q: str | None = None, since: float | None = None,
              until: float | None = None, time_field: str = "received", sort: str = "received",
              descending: bool = True, limit: int = 50, cursor: str | None = None,
              after: str | None = None) -> dict[str, Any]:
        """Return one page of matching tasks, newest (or largest) first by default, and the match count."""
        filters = query_filters(states=states, name=name, worker=worker, queue=queue, q=q, since=since, until=until,
                                time_field=time_field, sort=sort, descending=descending, limit=limit,
                                cursor=cursor, after=after)
        columns, keyset_after, where, params = filters
        split = columns == ASCENDING_SORT_COLUMNS["runtime"]
        if split:  # its own order over the runtime index (``RUNTIME_REST``); the cursor's value is runtime_sort's
            columns = SORT_COLUMNS["runtime"]
        if after is not None:  # the page after one task: where a page the user sees ends, whatever came in since
            row = self._reader().execute(f"SELECT {', '.join(columns)}, id FROM tasks WHERE uuid = ?",
                                         (after,)).fetchone()
            if row is None:
                raise StoreQueryError(f"after: no stored task {after!r}")
            keyset_after = list(row)

        conn = self._reader()
        words = (q or "").split()
        uuid_prefix = words[0].lower() if len(words) == 1 and UUID_PREFIX.fullmatch(words[0]) else None
        text = _TextMatch(_match_expression(words), uuid_prefix, all(
            2 <= len(tokens[-1]) <= 3 for tokens in (_TOKENS.findall(word) for word in words) if tokens))
        if not split:
            page, total, estimate = self._page(conn, text, sort, columns, descending, where, params, keyset_after,
                                               limit)
        elif (where and not self._walks_runtime(conn, where, params, limit)) or _few_matches(conn, text):
            # Shortest runtime first, where the filters' own indexes or a word's few matches drive the plan, which
            # then sorts the rows they pass whatever the order: by (in the rest, runtime), in one read that also
            # counts them.
            flagged = None if keyset_after is None else [int(keyset_after[0] <= RUNTIME_REST), *keyset_after]
            flag = f"(runtime_sort <= {RUNTIME_REST})"
            page, total, estimate = self._page(conn, text, sort, (flag, "runtime_sort"), descending, where, params,
                                               flagged, limit)
            page = [(row[0], row[2]) for row in page]
        else:  # shortest runtime first, from the one runtime index: the runtimes above RUNTIME_REST, then the rest
            in_rest = keyset_after is not None and keyset_after[0] <= RUNTIME_REST
            if in_rest:  # the page starts in the rest: the first part is counted, not read
                page, (total, estimate) = [], self._rest_total(conn, text, where, params)
            else:
                # The first part is read as the page after a task at RUNTIME_REST would be, so it is planned (and
                # counted: every task passing the filters) as any page of the runtime order is.
                page, total, estimate = self._page(conn, text, sort, columns, descending, where, params,
                                                   keyset_after or [RUNTIME_REST, INT64_MAX], limit)
            if len(page) <= limit:
                if estimate and not in_rest:  # a word's matches walked, the share of the tasks with a runtime only
                    total, estimate = self._matches_passing(conn, text, where, params) or (total, estimate)
                page += self._page(conn, text, sort, columns, descending, where, params,
                                   keyset_after if in_rest else None, limit - len(page),
                                   f"runtime_sort <= {RUNTIME_REST}")[0]
                if estimate:  # never fewer than the page shows
                    total = max(total, min(len(page), limit))
        more = len(page) > limit
        page = page[:limit]
        by_id = {row[0]: row for row in conn.execute(
            f"{_SELECT_TASK} WHERE id IN ({', '.join('?' * len(page))})", [row[0] for row in page])}
        items = self._shapes(conn, [by_id[row[0]] for row in page if row[0] in by_id])
        following = _encode_cursor(sort, descending, list(page[-1][1:]), page[-1][0]) if more else None
        body = {"items": items, "total": total, "total_is_estimate": estimate, "next": following}
        if after is not None and keyset_after is not None:  # this page's own cursor, for the page's URL
            body["cursor"] = _encode_cursor(sort, descending, keyset_after[:-1], keyset_after[-1])
        return body

    def _walks_runtime(self, conn: sqlite3.Connection, where: list[str], params: list[Any], limit: int) -> bool:
        """Whether a page of ``where``'s tasks by runtime walks the runtime index: SQLite's own plan does (the
        filters pass many rows), or so many pass that ``_page`` walks it instead of sorting them."""
        sql = f"SELECT tasks.id FROM tasks{_where(where)} ORDER BY runtime_sort, tasks.id LIMIT ?"
        return not _plan_sorts(conn, sql, (*params, limit + 1)) or _certain(*self._estimate_hits(conn, where, params))

    def _page(self, conn: sqlite3.Connection, text: _TextMatch, sort: str, columns: tuple[str, ...],
              descending: bool, where: list[str], params: list[Any], keyset_after: list[Any] | None, limit: int,
              rest: str | None = None) -> tuple[list[tuple[Any, ...]], int, bool]:
        """Read one page (``limit`` + 1 rows of ``id`` and the sort ``columns``) after ``keyset_after`` and the
        total of the tasks passing ``where``; with ``rest`` (a narrow range of the runtime index, left to the
        planner as any filter), the page of those tasks alone, uncounted (0)."""
        keys = (*columns, "tasks.id")
        direction = "DESC" if descending else "ASC"
        order = ", ".join(f"{c} {direction}" for c in keys)
        select = f"SELECT tasks.id, {', '.join(columns)} FROM "
        # With other filters, a sort other than by time must not drive the plan through its keyset
        # bound (a range over the runtime or name index, filtered row by row: seconds over a million
        # tasks) when SQLite reads the filters' indexes otherwise; the unary + leaves those to its choice.
        # When it walks the sort index anyway (filters it takes as common), the bound is kept: without
        # it each page, and each chunk of a text walk, would walk that index again from its start.
        time_sort = sort in ("received", "timestamp")
        # Whether the plan of the first page sorts every row passing the filters: asked once, for the hint and
        # for the first page without text (which then counts in the same pass).
        filtered = bool(where)
        if rest is not None:
            where = [*where, rest]
        plan_sorts = filtered and (not time_sort or (text.empty and keyset_after is None)) and _plan_sorts(
            conn, f"{select}tasks{_where(where)} ORDER BY {order} LIMIT ?", (*params, limit + 1))
        hint = plan_sorts and not time_sort
        hinted = [f"+{c}" for c in columns] if hint else list(columns)
        keyset = f"({', '.join((*hinted, 'tasks.id'))}) {'<' if descending else '>'} ({', '.join('?' * len(keys))})"

        walk = None
        if hint and rest is None and columns in _SORT_INDEXES and _certain(*self._estimate_hits(conn, where, params)):
            # Many rows pass the filters: walk the sort's index rather than sort them all (SORT_WALK_SECONDS).
            walk = (f"tasks INDEXED BY {_SORT_INDEXES[columns]}",
                    f"({', '.join(keys)}) {'<' if descending else '>'} ({', '.join('?' * len(keys))})")
        return self._read(conn, text, where, params, select, order, keyset, keyset_after, limit, plan_sorts, walk,
                          rest is None)

    def _rest_total(self, conn: sqlite3.Connection, text: _TextMatch, where: list[str], params: list[Any]
                    ) -> tuple[int, bool]:
        """The total of a page of shortest runtime first that starts in the rest, without reading the tasks with a
        runtime: those passing ``where`` (``_count``), with a word its matches among them (``_matches_passing``), or
        past ``FTS_SORTED_MAX`` matches the word's share of the stored tasks among them (an estimate; counting a
        million matches takes some tens of ms)."""
        counted = self._matches_passing(conn, text, where, params)
        if counted is not None:
            return counted
        rows, estimate = self._count(conn, where, params, exact=text.empty)
        if text.empty:
            return rows, estimate
        matches_sql, matches_params = text.ids()
        matches = conn.execute(f"SELECT count(*) FROM ({matches_sql})", matches_params).fetchone()[0]
        ids = _id_range(conn)
        share = min(1.0, matches / (ids[1] - ids[0] + 1)) if ids is not None else 1.0
        return round_estimate(rows * share, 0), True

    def _matches_passing(self, conn: sqlite3.Connection, text: _TextMatch, where: list[str], params: list[Any]
                         ) -> tuple[int, bool] | None:
        """The total of a word's matches passing ``where``, counted exactly where it has at most
        ``FTS_SORTED_MAX`` matches (a walk of the runtime index would estimate it from the tasks it walked);
        None without a word or with more matches."""
        if text.empty:
            return None
        matches_sql, matches_params = text.ids()
        if _capped_count(conn, matches_sql, matches_params, FTS_SORTED_MAX) > FTS_SORTED_MAX:
            return None
        return conn.execute(f"SELECT count(*) FROM {_matched(matches_sql)}{_where(where)}",
                            (*matches_params, *params)).fetchone()[0], False

    def _read(self, conn: sqlite3.Connection, text: _TextMatch, where: list[str], params: list[Any], select: str,
              order: str, keyset: str, keyset_after: list[Any] | None, limit: int, plan_sorts: bool,
              walk: tuple[str, str] | None, count: bool = True) -> tuple[list[tuple[Any, ...]], int, bool]:
        """Read one page (``limit`` + 1 rows of ``id`` and the sort columns) and its total, starting after
        ``keyset_after`` (by the ``keyset`` condition). ``plan_sorts`` says whether SQLite's plan sorts every
        row passing the filters; ``walk``, when given, is the sort's index to walk (``tasks INDEXED BY ...``)
        and the keyset condition that lets it start where the page does, tried first for up to
        ``SORT_WALK_SECONDS``. Without ``count`` the total is 0 unless the page's own read counted."""
        bound = [keyset] * (keyset_after is not None)
        total = self._count if count else _uncounted
        if text.empty:
            if walk is not None:
                try:
                    with _time_limit(conn, SORT_WALK_SECONDS):
                        page = conn.execute(
                            f"{select}{walk[0]}{_where(where + [walk[1]] * (keyset_after is not None))} "
                            f"ORDER BY {order} LIMIT ?", (*params, *(keyset_after or ()), limit + 1)).fetchall()
                    return (page, *total(conn, where, params))
                except _TookTooLong:
                    pass
            sql = f"{select}tasks{_where(where + bound)} ORDER BY {order} LIMIT ?"
            arguments = (*params, *(keyset_after or ()), limit + 1)
            if keyset_after is None and plan_sorts:
                # The plan reads every row passing the filters to sort them: the same pass counts them all.
                counted = conn.execute(sql.replace(" FROM ", ", count(*) OVER () FROM ", 1), arguments).fetchall()
                return [row[:-1] for row in counted], counted[0][-1] if counted else 0, False
            page = conn.execute(sql, arguments).fetchall()
            return (page, *total(conn, where, params))
        matches_sql, matches_params = text.ids()
        matches = _capped_count(conn, matches_sql, matches_params, FTS_SORTED_MAX if plan_sorts else FTS_DRIVEN_MAX)
        if matches <= FTS_DRIVEN_MAX or (plan_sorts and matches <= FTS_SORTED_MAX
                                         and self._sorting_costs(conn, where, params, matches, limit) > matches):
            # Few text matches: read their ids first (CROSS JOIN fixes that loop order),
            # then filter and sort those rows; the count is exact (on the first page, in the same pass).
            matched = _matched(matches_sql)
            sql = f"{select}{matched}{_where(where + bound)} ORDER BY {order} LIMIT ?"
            arguments = (*matches_params, *params, *(keyset_after or ()), limit + 1)
            if keyset_after is None:
                counted = conn.execute(sql.replace(" FROM ", ", count(*) OVER () FROM ", 1), arguments).fetchall()
                return [row[:-1] for row in counted], counted[0][-1] if counted else 0, False
            matching = conn.execute(f"SELECT count(*) FROM {matched}{_where(where)}",
                                    (*matches_params, *params)).fetchone()[0] if count else 0
            return conn.execute(sql, arguments).fetchall(), matching, False
        if walk is not None:
            try:
                with _time_limit(conn, SORT_WALK_SECONDS):
                    return self._walk_common(conn, text, where, params, select, order, walk, keyset_after, limit,
                                             count=count)
            except _TookTooLong:
                pass
        return self._walk_common(conn, text, where, params, select, order, ("tasks", keyset), keyset_after, limit,
                                 WALK_CHUNK_MAX if plan_sorts else 0, count)

    def _sorting_costs(self, conn: sqlite3.Connection, where: list[str], params: list[Any], matches: int,
                       limit: int) -> float:
        """What a page of a word's ``matches`` would cost, in row reads, by sorting the rows passing ``where``
        and checking them against the word until the page is full (see ``FTS_SORTED_MAX``)."""
        rows = math.prod(self._estimate_hits(conn, where, params))
        if any(clause.startswith(_TIME_BOUNDS) for clause in where):
            return rows  # ids grow with time: a window's rows are checked over their id range, about for free
        ids = _id_range(conn)
        checked = min(rows, (limit + 1) * (ids[1] - ids[0] + 1) / max(matches, 1)) if ids is not None else 0
        return rows + PROBE_ROWS * checked

    def _walk_common(self, conn: sqlite3.Connection, text: _TextMatch, where: list[str], params: list[Any],
                     select: str, order: str, source: tuple[str, str], after: list[Any] | None, limit: int,
                     prefetch: int = 0, count: bool = True) -> tuple[list[tuple[Any, ...]], int, bool]:
        """Page through a common full-text match by walking the sort index in chunks.

        Each chunk of rows that pass the other filters is checked against the text match
        with one query over the chunk's id range (ids grow with first sight, so for time
        sorts the range is narrow). Walking stops once the page is full. The total is
        exact when the walk reached the end; otherwise it is the share of matches among
        the rows walked times the number of rows passing the other filters (itself
        exact up to ``COUNT_FIRST``, then estimated by sampling: see ``_count``). ``source`` is
        the table read (``tasks``, or the sort's own index to walk) and its keyset condition.
        """
        table, keyset = source
        page: list[tuple[Any, ...]] = []
        walked = 0
        density = 1.0  # the share of walked rows that match, dense until the first chunk shows otherwise
        everything: set[int] | None = None  # every matching id, once read
        fetched_to = after  # the sort position the rows read so far end at
        buffered: list[tuple[Any, ...]] = []  # rows read, not walked yet
        exhausted = False  # the rows read reach the end of the sort
        others: int | None = None  # the rows passing the other filters, when a read counted them
        # Grows 4x a step: a dense match fills the page from a narrow id range. Walking a sort's own index,
        # the chunk's ids are spread over the table and each is probed: a page's worth first.
        size = (limit + 1) * (1 if table != "tasks" else 4)
        while len(page) <= limit:
            if len(buffered) < size and not exhausted:
                # A plan that reads every row passing the filters and sorts them costs the same whatever
                # its LIMIT: then one read of the largest chunk serves every step of the walk.
                want = max(size, prefetch) - len(buffered)
                sql = f"{select}{table}{_where(where + [keyset] * (fetched_to is not None))} ORDER BY {order} LIMIT ?"
                if prefetch and fetched_to is None:  # the first read of a sorting plan counts the rows too
                    rows = conn.execute(sql.replace(" FROM ", ", count(*) OVER () FROM ", 1),
                                        (*params, want)).fetchall()
                    others = rows[0][-1] if rows else 0
                    rows = [row[:-1] for row in rows]
                else:
                    rows = conn.execute(sql, (*params, *(fetched_to or ()), want)).fetchall()
                exhausted = len(rows) < want
                if rows:
                    fetched_to = [*rows[-1][1:], rows[-1][0]]
                buffered.extend(rows)
            chunk, buffered = buffered[:size], buffered[size:]
            if not chunk:
                break
            ids = [row[0] for row in chunk]
            # The chunk's id range holds about density x span matches, each read from the FTS index
            # (~0.3 us); probing each id instead costs ~40 us. Sorts other than by time spread a
            # chunk over the whole table, where the probes win.
            # A prefix longer than the prefix indexes' is expanded again on every probe (~1-2 ms each):
            # for those, every match is read once (~0.3 us each) and the chunks are checked against it.
            span = max(ids) - min(ids) + 1
            if everything is not None or density * span > PROBE_FACTOR * len(ids):
                if text.probes_cheaply:
                    hits = {row[0] for row in conn.execute(*text.ids(among=ids))}
                else:
                    if everything is None:
                        everything = {row[0] for row in conn.execute(*text.ids())}
                    hits = everything.intersection(ids)
            else:
                hits = {row[0] for row in conn.execute(*text.ids(min(ids), max(ids)))}
            found = len(page)
            page.extend(row for row in chunk if row[0] in hits)
            found = len(page) - found
            walked += len(chunk)
            density = max(len(page), 1) / walked
            if exhausted and not buffered:
                if after is None:  # walked everything from the start: the count is exact
                    return page, len(page), False
                break
            # The next chunk: what the last chunk's share of matches says the page still needs, with a
            # margin (a chunk of a plan that walks the sort index costs its rows divided by the filters'
            # share), growing 4x a step at most, and 4x when the last chunk found none (a match that thins
            # out further on still ends in a few steps).
            need = math.ceil((limit + 1 - len(page)) * len(chunk) / found * 1.5) if found else WALK_CHUNK_MAX
            size = min(size * 4, WALK_CHUNK_MAX, max(limit + 1, need))
        if not count:
            return page, 0, False
        if others is None:
            others = self._count(conn, where, params, exact=False)[0]  # it only scales the share walked
        estimate = others * len(page) / walked if walked else 0.0
        return page, round_estimate(estimate, len(page)), True

    def _count(self, conn: sqlite3.Connection, where: list[str], params: list[Any],
               exact: bool = True) -> tuple[int, bool]:
        """Count the tasks passing ``where``: exactly up to ``EXACT_TOTAL_CAP``, else estimated (see
        ``_estimate_hits``); return the count and whether it is an estimate.

        With filters, counting up to the cap can read tens of thousands of rows (tens of ms over a million
        tasks) only to learn that there are more. A count up to ``COUNT_FIRST`` comes first (a selective
        filter's total, exact and cheap); past it, the estimate, and when that is far above the cap
        (``ESTIMATE_CERTAIN``, ``ESTIMATE_MIN_HITS``: many standard deviations of its error) it is the
        answer, as the count up to the cap would have made it. Without ``exact`` (a count that only scales
        another estimate) the estimate is the answer past ``COUNT_FIRST``: the count up to the cap read
        100,000 rows for the failures of the smallest of three queues over a million tasks (~70 ms).
        """
        select = f"SELECT 1 FROM tasks{_where(where)}"
        if where and EXACT_TOTAL_CAP > COUNT_FIRST:
            total = _capped_count(conn, select, params, COUNT_FIRST)
            if total <= COUNT_FIRST:
                return total, False
            hits, step = self._estimate_hits(conn, where, params)
            if not exact:
                return round_estimate(hits * step, COUNT_FIRST + 1), True
            if _certain(hits, step):
                return round_estimate(hits * step, EXACT_TOTAL_CAP + 1), True
            total = _capped_count(conn, select, params, EXACT_TOTAL_CAP)
            if total > EXACT_TOTAL_CAP:
                return round_estimate(hits * step, EXACT_TOTAL_CAP + 1), True
            return total, False
        reused = self._reused_hits(conn, where, params)
        if reused is not None and _certain(*reused):  # far past the cap a moment ago: the count would say so
            return round_estimate(reused[0] * reused[1], EXACT_TOTAL_CAP + 1), True
        total = _capped_count(conn, select, params, EXACT_TOTAL_CAP)
        if total > EXACT_TOTAL_CAP:
            hits, step = reused if reused is not None else self._estimate_hits(conn, where, params)
            return round_estimate(hits * step, EXACT_TOTAL_CAP + 1), True
        return total, False

    def _estimate_hits(self, conn: sqlite3.Connection, where: list[str], params: list[Any]) -> tuple[int, float]:
        """Estimate a count (one known or likely to exceed ``EXACT_TOTAL_CAP``): return the probes that
        matched and the ids each stands for.

        The estimate probes ``ESTIMATE_SAMPLES`` row ids spread over the id range (one at a
        seeded random offset inside each equal slice, so periodic patterns in the ids cannot
        alias with the probes), counts the probed rows that exist and match, and scales by
        the ids each probe stands for. Ids grow with first sight and pruned ids count as
        non-matches, so the estimate follows deletions. The seed is fixed, so totals do not
        jitter between pages. The probes' result is reused for ``ESTIMATE_REUSE_SECONDS``, scaled to the id
        range of the moment.
        """
        reused = self._reused_hits(conn, where, params)
        if reused is not None:
            return reused
        ids = _id_range(conn)
        if ids is None:
            return 0, 0.0
        span = ids[1] - ids[0] + 1
        samples = min(ESTIMATE_SAMPLES, span)
        hits = conn.execute("SELECT count(*) FROM json_each(?) AS probe CROSS JOIN tasks INDEXED BY tasks_filters "
                            f"ON tasks.id = ? + CAST(probe.value * ? AS INTEGER){_where(where)}",
                            (_probe_places(samples), ids[0], span, *params)).fetchone()[0]
        if len(self._estimates) >= ESTIMATE_REUSE_MAX:
            self._estimates.clear()
        self._estimates[(*where, *params)] = (time.monotonic(), hits, samples)
        return hits, span / samples

    def _reused_hits(self, conn: sqlite3.Connection, where: list[str], params: list[Any]
                     ) -> tuple[int, float] | None:
        """Return a recent estimate's probes that matched and the ids each stands for now, or None."""
        kept = self._estimates.get((*where, *params))
        if kept is None or time.monotonic() - kept[0] > ESTIMATE_REUSE_SECONDS:
            return None
        ids = _id_range(conn)
        return (kept[1], (ids[1] - ids[0] + 1) / kept[2]) if ids is not None else None

    # -- shapes -----------------------------------------------------------------
    def _shapes(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """Turn rows of ``id, TASK_FIELDS...`` into task JSON shapes, children included."""
        children: dict[str, list[str]] = {}
        uuids = [row[1] for row in rows]
        for start in range(0, len(uuids), 500):
            chunk = uuids[start:start + 500]
            for parent, child in conn.execute(
                    f"SELECT parent_id, uuid FROM tasks WHERE parent_id IN ({', '.join('?' * len(chunk))}) "
                    "ORDER BY id", chunk):
                children.setdefault(parent, []).append(child)
        return task_shapes(rows, children)

    def _events(self, conn: sqlite3.Connection, tasks: dict[int, dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
        """Return the events of these tasks (row id: JSON shape), in timeline order."""
        ids = list(tasks)
        events: dict[int, list[dict[str, Any]]] = {task_id: [] for task_id in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for task_id, body, timestamp, event_type, hostname, refs in conn.execute(
                    "SELECT task_id, body, timestamp, type, hostname, refs FROM events "
                    f"WHERE task_id IN ({', '.join('?' * len(chunk))}) "
                    "ORDER BY task_id, timestamp, life, type, hostname", chunk):
                events[task_id].append(event_body(body, timestamp, event_type, hostname, refs, tasks[task_id]))
        return events


@functools.lru_cache(maxsize=4)
def _probe_places(samples: int) -> str:
    """Where ``_estimate_hits`` probes the id range, as fractions of it (JSON): one at a seeded random place
    inside each of ``samples`` equal slices. The same for every query of a size, so it is made once, and
    SQLite turns each into an id (a list of ids made in Python per query was an eighth of an unfiltered page's time)."""
    jitter = random.Random(samples)
    return json.dumps([(k + jitter.random()) / samples for k in range(samples)])


class QueryFilters(NamedTuple):
    """A query's arguments checked and turned into SQL: the sort columns, the keyset a cursor
    starts after (sort values then row id), and the WHERE clauses (``?`` placeholders) with their values."""
    columns: tuple[str, ...]
    keyset_after: list[Any] | None
    where: list[str]
    params: list[Any]


def query_filters(*, states: set[str] | None, name: str | None, worker: str | None, queue: str | None,
                  q: str | None, since: float | None, until: float | None, time_field: str, sort: str,
                  descending: bool, limit: int, cursor: str | None, after: str | None) -> QueryFilters:
    """Check ``TaskStore.query``'s arguments (``StoreQueryError`` says which is wrong) and build its filters;
    both stores share it, so they accept and refuse the same queries."""
    if sort not in SORT_COLUMNS:
        raise StoreQueryError(f"sort: expected one of {', '.join(SORT_COLUMNS)}, got {sort!r}")
    if time_field not in TIME_COLUMNS:
        raise StoreQueryError(f"time_field: expected one of {', '.join(TIME_COLUMNS)}, got {time_field!r}")
    if limit < 1:
        raise StoreQueryError(f"limit: must be at least 1, got {limit}")
    for argument, bound in (("since", since), ("until", until)):
        if bound is not None and not _is_finite_number(bound):
            raise StoreQueryError(f"{argument}: expected epoch seconds, got {bound!r}")
    if q is not None and "\0" in q:  # FTS5 reads its query up to the first NUL
        raise StoreQueryError("q: contains a NUL character")
    if after is not None and cursor:
        raise StoreQueryError("after: give either a cursor or a task id, not both")
    columns = SORT_COLUMNS[sort] if descending else ASCENDING_SORT_COLUMNS.get(sort, SORT_COLUMNS[sort])
    keyset_after = _decode_cursor(cursor, sort, descending, columns) if cursor else None
    where: list[str] = []
    params: list[Any] = []
    if states:
        where.append(f"state IN ({', '.join('?' * len(states))})")
        params.extend(sorted(states))
    if name is not None and name.endswith("*"):  # a prefix: app.payments.* (every string starting with
        if name[:-1]:                          # it sorts in [prefix, prefix + U+10FFFF))
            where.append("name_sort >= ? AND name_sort < ?")
            params.extend([name[:-1], name[:-1] + "\U0010ffff"])
        name = None
    for column, value in (("name_sort", name), ("worker", worker), ("queue", queue)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    time_column = TIME_COLUMNS[time_field]
    if since is not None:
        where.append(f"{time_column} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{time_column} <= ?")
        params.append(until)
    return QueryFilters(columns, keyset_after, where, params)


def task_shapes(rows: Sequence[Sequence[Any]], children: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Turn rows of ``id, TASK_FIELDS...`` (flags as integers, JSON columns as text) into task JSON shapes,
    with the ``children`` uuids of each parent."""
    shapes = []
    for row in rows:
        values = list(row[1:])
        for index in _FLAG_INDEXES:
            values[index] = bool(values[index])
        for index in _JSON_INDEXES:
            if values[index] is not None:
                values[index] = json.loads(values[index])
        shape = dict(zip(TASK_FIELDS, values))
        shape["children"] = children.get(shape["uuid"], [])
        shapes.append(shape)
    return shapes


class _TextMatch:
    """The ids a free-text query matches: FTS matches of every word, or a prefix of the uuid."""

    def __init__(self, match: str | None, uuid_prefix: str | None, probes_cheaply: bool = True) -> None:
        self.match = match
        self.uuid_prefix = uuid_prefix
        #: Whether checking one id costs ~50 us: every word is exact or a prefix the index keeps (2-3 characters).
        self.probes_cheaply = probes_cheaply
        #: Whether there is no text filter (no word with a letter or digit).
        self.empty = match is None and uuid_prefix is None

    def ids(self, low: int | None = None, high: int | None = None,
            among: Sequence[int] | None = None) -> tuple[str, list[Any]]:
        """Return SQL selecting the matching ids (as ``id``) and its parameters: all of them, those
        within [low, high], or those of the ids ``among`` (one index probe each)."""
        parts: list[str] = []
        params: list[Any] = []
        bound, bound_params = "", []
        if among is not None:
            bound, bound_params = f" IN ({', '.join('?' * len(among))})", list(among)
        elif low is not None and high is not None:
            bound, bound_params = " BETWEEN ? AND ?", [low, high]
        if self.match is not None:
            parts.append("SELECT rowid AS id FROM tasks_fts WHERE tasks_fts MATCH ?" + (" AND rowid" + bound) * bool(bound))
            params.extend([self.match, *bound_params])
        if self.uuid_prefix:
            # Every string starting with the prefix sorts in [prefix, prefix + U+10FFFF); the few
            # rows there that the FTS part also returns are left out (UNION ALL never sorts the
            # possibly large FTS part to remove duplicates, as UNION would).
            parts.append("SELECT id FROM tasks WHERE uuid >= ? AND uuid < ?" + (" AND id" + bound) * bool(bound)
                         + (" AND NOT EXISTS (SELECT 1 FROM tasks_fts WHERE tasks_fts MATCH ? "
                            "AND tasks_fts.rowid = tasks.id)" if self.match is not None else ""))
            params.extend([self.uuid_prefix, self.uuid_prefix + "\U0010ffff", *bound_params])
            if self.match is not None:
                params.append(self.match)
        return " UNION ALL ".join(parts), params


# -- helpers ------------------------------------------------------------------------
def is_storage_failure(exc: BaseException) -> bool:
    """Tell a failure of the file or the disk (worth retrying) from a row that cannot be written.

    ``OperationalError`` is a full disk, a lock held too long, an I/O error or a read-only file;
    a plain ``DatabaseError`` a damaged file; ``StoreError`` a closed store. Anything else (an
    integrity error, a value that cannot be bound or encoded) comes from the rows written.
    """
    if isinstance(exc, (sqlite3.OperationalError, OSError, StoreError)) or type(exc) is sqlite3.DatabaseError:
        return True
    if type(exc).__module__.startswith("psycopg"):  # PostgreSQL: a lost connection, a server going down
        from .pgstore import is_failure
        return is_failure(exc)
    return False


def open_store(db: str, max_tasks_stored: int = 1_000_000, max_age_seconds: float = 7 * 86400,
               keep_failed_seconds: float | None = None) -> HistoryStore:
    """Open the history ``--db`` names: a ``postgresql://`` URL (``PgTaskStore``) or an SQLite file."""
    if is_postgres_url(db):
        from .pgstore import PgTaskStore
        return PgTaskStore(db, max_tasks_stored, max_age_seconds, keep_failed_seconds)
    return TaskStore(db, max_tasks_stored, max_age_seconds, keep_failed_seconds)


def is_postgres_url(db: str) -> bool:
    """Whether ``--db`` names a PostgreSQL database rather than an SQLite file."""
    return db.startswith(("postgresql://", "postgres://"))


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Tell a damaged or foreign file apart from a busy, missing or unreadable one (never moved aside)."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return True
    return name == "" and type(exc) is sqlite3.DatabaseError  # our own quick_check verdict


def _first_readable(conn: sqlite3.Connection, *queries: str) -> int | None:
    """Return the first whole number one of these one-value queries yields from a damaged file."""
    for query in queries:
        try:
            value = conn.execute(query).fetchone()[0]
        except sqlite3.DatabaseError:
            continue
        if type(value) is int:
            return value
    return None


def _rescue_select(conn: sqlite3.Connection, table: str, columns: Sequence[str]) -> str:
    """The SELECT of ``columns`` of ``table`` from a damaged file, which may be an older version:
    a column it does not have yet reads as NULL."""
    try:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    except sqlite3.DatabaseError:
        present = set()
    return f"SELECT {', '.join(c if c in present or not present else f'NULL AS {c}' for c in columns)} FROM {table}"


def _read_tasks_below(conn: sqlite3.Connection, select: str, position: int, bottom: int
                      ) -> tuple[list[tuple[Any, ...]], int]:
    """Read the readable task rows (``select``: ``id, TASK_FIELDS...``) below id ``position`` from a damaged file.

    Return them and the id the next step reads below (``bottom`` when every row has been tried).
    """
    rows: list[tuple[Any, ...]] = []
    try:
        for row in conn.execute(f"{select} WHERE id < ? ORDER BY id DESC LIMIT ?",
                                (position, RESCUE_CHUNK_TASKS)):
            rows.append(row)
    except sqlite3.DatabaseError:  # an unreadable page: the ids just below the last row read, one by one
        start = rows[-1][0] if rows else position
        end = max(start - RESCUE_PROBE_IDS, bottom)
        for task_id in range(start - 1, end - 1, -1):
            try:
                row = conn.execute(f"{select} WHERE id = ?", (task_id,)).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row is not None:
                rows.append(row)
        return rows, end
    return rows, (rows[-1][0] if len(rows) == RESCUE_CHUNK_TASKS else bottom)


def _read_events(conn: sqlite3.Connection, select: str, ids: list[int]) -> list[tuple[Any, ...]]:
    """Read the readable event rows of these task ids from a damaged file (``select``: see ``_rescue_select``)."""
    select += " WHERE task_id"
    wanted = set(ids)
    try:
        return [row for row in conn.execute(f"{select} BETWEEN ? AND ?", (min(ids), max(ids)))
                if row[0] in wanted]
    except sqlite3.DatabaseError:  # an unreadable page: task by task
        rows: list[tuple[Any, ...]] = []
        for task_id in ids:
            try:
                rows.extend(conn.execute(f"{select} = ?", (task_id,)).fetchall())
            except sqlite3.DatabaseError:
                continue
        return rows


def _number(value: Any) -> float | None:
    """Return a finite number as a float, anything else (text, bool, NaN, an integer beyond floats) as None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None


def _column_number(value: Any) -> int | float | None:
    """Return a value for a numeric column: a number SQLite can hold, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return None
    return value


def _is_finite_number(value: Any) -> bool:
    """Tell whether ``value`` is a finite number SQLite can bind (a query argument, a cursor value)."""
    return _column_number(value) is not None and math.isfinite(value)


def _text(value: str) -> str:
    """Return ``value``, with lone surrogates (which UTF-8 cannot encode) replaced by ``?``."""
    if value.isascii():
        return value
    try:
        value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode()
    return value


def _task_row(task: dict[str, Any]) -> tuple[Any, ...]:
    """Turn a task JSON shape into column values: plain SQLite types, JSON text for anything else.

    Column by kind (the positions above) rather than one loop asking each column's kind: about 4 µs a
    task instead of 6 (``store_bench.make_batch``'s tasks)."""
    get = task.get
    values = [get(field) for field in TASK_FIELDS]
    for i in _FLAG_INDEXES:
        values[i] = 1 if values[i] else 0
    for i in _JSON_INDEXES:
        value = values[i]
        if value is not None:
            values[i] = dumps(value)
    for i in _NUMBER_INDEXES:
        value = values[i]
        if type(value) is not float and value is not None:  # floats (NaN becomes NULL) go as they are
            values[i] = _column_number(value)
    values[_STATE_INDEX] = values[_STATE_INDEX] or "PENDING"
    for i in (*_TEXT_INDEXES, _STATE_INDEX):
        value = values[i]
        if type(value) is str:
            if not value.isascii():
                values[i] = _text(value)
        elif value is not None:
            values[i] = dumps(value)
    return tuple(values)


def _event_row(uuid: str, event: dict[str, Any], row: Sequence[Any] | None = None) -> tuple[Any, ...]:
    """Return an event's row: (timestamp, life, type, hostname, body, refs, uuid).

    The body (JSON) leaves out what the store holds elsewhere exactly, and ``event_body`` puts it back:
    the type, hostname and timestamp when the row's own columns hold them; and, given the task's ``row``
    as this write stores it (``TASK_FIELDS`` values), each ``REF_FIELDS`` text equal to the row's, noted in
    ``refs`` (when the row's value changes, a trigger copies the value it had into the events that
    refer to it: ``_refs_trigger``). A realistic task's four events took 1,259 bytes on disk whole, 859
    without the three columns' values, 377 without the task row's as well (``store_bench.make_batch``).
    """
    raw_type, raw_host, raw_time = event.get("type"), event.get("hostname"), event.get("timestamp")
    event_type = str(raw_type or "")
    hostname = str(raw_host or "")
    if not (event_type.isascii() and hostname.isascii() and uuid.isascii()):
        event_type, hostname, uuid = _text(event_type), _text(hostname), _text(uuid)
    timestamp = raw_time if type(raw_time) is float and math.isfinite(raw_time) else _number(raw_time)
    body = event.copy()
    # Each is left out only when put back as it was: a column's empty value ("" or 0.0) means "not left out".
    if type(raw_type) is str and raw_type and raw_type == event_type:
        del body["type"]
    if type(raw_host) is str and raw_host and raw_host == hostname and "\0" not in raw_host:  # PostgreSQL: no NUL
        del body["hostname"]
    if type(raw_time) is float and raw_time == timestamp and raw_time != 0.0:
        del body["timestamp"]
    refs = 0
    if row is not None:
        for name in _REF_NAMES.intersection(body):  # most events hold none of them
            value = body[name]
            bit, column = _REF_BY_NAME[name]
            # Text alone: SQLite's json_set writes it back exactly (a NUL would end it there).
            if type(value) is str and value == row[column] and "\0" not in value:
                del body[name]
                refs |= bit
    return (0.0 if timestamp is None else timestamp, LIFE_ORDER.get(event_type, 3), event_type,
            hostname, dumps(body), refs or None, uuid)


def event_body(body: str, timestamp: float, event_type: str, hostname: str, refs: int | None = None,
               task: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a stored event as it was written, from its row and its task's JSON shape (see ``_event_row``)."""
    event: dict[str, Any] = json.loads(body)  # not orjson: it reads integers beyond 64 bits as floats
    if event_type and "type" not in event:
        event["type"] = event_type
    if hostname and "hostname" not in event:
        event["hostname"] = hostname
    if timestamp != 0.0 and "timestamp" not in event:
        event["timestamp"] = timestamp
    if refs and task is not None:
        for bit, name, _ in _REF_COLUMNS:
            if refs & bit and task.get(name) is not None:
                event[name] = task[name]
    return event


def dumps(value: Any) -> str:
    """Return compact JSON text that is valid UTF-8; values JSON has no type for are written as their repr."""
    try:
        return orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # an integer beyond 64 bits, a lone surrogate, a recursion limit
        return json.dumps(_plain_json(value), separators=(",", ":"), default=repr, ensure_ascii=False,
                          allow_nan=False)


def _plain_json(value: Any) -> Any:
    """Return ``value`` with its text repaired (see ``_text``) and NaN and infinities as None, as orjson does."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_plain_key(key): _plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(item) for item in value]
    return value


def _plain_key(key: Any) -> str | int | None:
    """Return a dict key the json module writes, as text: None, bools and integers as they are, the rest as str."""
    if isinstance(key, str):
        return _text(key)
    if key is None or isinstance(key, int):
        return key
    return _text(str(key))


def is_prefix(token: str) -> bool:
    """Whether a word's last token is matched as a prefix: from ``MIN_PREFIX_CHARS`` characters on, or any
    token beyond ASCII (a run of CJK text is one token, and few terms start with one such character)."""
    return len(token) >= MIN_PREFIX_CHARS or not token.isascii()


def _match_expression(words: list[str]) -> str | None:
    """Turn free text into an FTS5 query: each word a quoted prefix phrase, all ANDed.

    Quoting makes FTS syntax in the input (``"``, ``*``, ``AND``, ``(``) plain text; a word
    is tokenised by FTS5 itself, so ``cus_000123`` matches the adjacent tokens ``cus 000123*``.
    Words without a letter or digit cannot match anything and are dropped; so "ORD-42" matches
    the adjacent tokens ``ord 42*`` (ORD-42, ORD-4242), and "ORD-4" only ORD-4 (``MIN_PREFIX_CHARS``).
    """
    phrases = []
    for word in words:
        tokens = _TOKENS.findall(word)
        if tokens:
            prefix = "*" if is_prefix(tokens[-1]) else ""
            phrases.append('"' + word.replace('"', '""') + '"' + prefix)
    return " AND ".join(phrases) or None


def round_estimate(estimate: float, at_least: int) -> int:
    """An estimated count as the API gives it: to the hundred from 1,000 on, and never below ``at_least``."""
    return max(int(round(estimate, -2 if estimate >= 1000 else 0)), at_least)


def _where(clauses: Iterable[str]) -> str:
    clauses = list(clauses)
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def _plan_sorts(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> bool:
    """Whether SQLite's plan for ``sql`` sorts its rows (reads all that pass, whatever the LIMIT)."""
    return any("TEMP B-TREE FOR ORDER BY" in str(step[-1]) for step in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def _id_range(conn: sqlite3.Connection) -> tuple[int, int] | None:
    """Return the lowest and highest task id (None without tasks)."""
    # Two subqueries: SQLite answers a lone min() or max() from the end of the tree, both together by a scan.
    low, high = conn.execute("SELECT (SELECT min(id) FROM tasks), (SELECT max(id) FROM tasks)").fetchone()
    return None if low is None else (low, high)


def _certain(hits: int, step: float) -> bool:
    """Whether an estimate is far enough past ``EXACT_TOTAL_CAP`` that a count up to the cap would only
    confirm it (``ESTIMATE_CERTAIN``, ``ESTIMATE_MIN_HITS``)."""
    return hits >= ESTIMATE_MIN_HITS and hits * step > ESTIMATE_CERTAIN * EXACT_TOTAL_CAP


class _TookTooLong(Exception):
    """A statement under ``_time_limit`` was interrupted at its deadline."""


@contextmanager
def _time_limit(conn: sqlite3.Connection, seconds: float) -> Iterator[None]:
    """Interrupt the statements ``conn`` runs inside the block once ``seconds`` have passed (``_TookTooLong``)."""
    deadline = time.monotonic() + seconds
    conn.set_progress_handler(lambda: time.monotonic() > deadline, SORT_WALK_CHECK_STEPS)
    try:
        yield
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", None) == "SQLITE_INTERRUPT":
            raise _TookTooLong() from exc
        raise
    finally:
        conn.set_progress_handler(None, 0)


def _matched(matches_sql: str) -> str:
    """The tasks a text match selects, read from its ids (CROSS JOIN fixes that loop order)."""
    return f"({matches_sql}) AS hit CROSS JOIN tasks ON tasks.id = hit.id"


def _few_matches(conn: sqlite3.Connection, text: _TextMatch) -> bool:
    """Whether a word has few enough matches (``FTS_DRIVEN_MAX``) to be read first, then filtered and sorted."""
    return not text.empty and _capped_count(conn, *text.ids(), FTS_DRIVEN_MAX) <= FTS_DRIVEN_MAX


def _uncounted(conn: sqlite3.Connection, where: list[str], params: list[Any]) -> tuple[int, bool]:
    """``TaskStore._count``'s stand-in where the total is not wanted."""
    return 0, False


def _capped_count(conn: sqlite3.Connection, select: str, params: Sequence[Any], cap: int) -> int:
    """Count the rows of ``select``, stopping at ``cap + 1``."""
    return conn.execute(f"SELECT count(*) FROM ({select} LIMIT ?)", (*params, cap + 1)).fetchone()[0]


def _encode_cursor(sort: str, descending: bool, values: list[Any], row_id: int) -> str:
    raw = json.dumps({"s": sort, "d": descending, "v": values, "i": row_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, descending: bool, columns: tuple[str, ...]) -> list[Any]:
    """Return the keyset values (sort columns then row id) after which the next page starts."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values, row_id = data["v"], data["i"]
        cursor_sort, cursor_descending = data["s"], data["d"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise StoreQueryError("cursor: not a cursor this store returned") from None
    if (cursor_sort, cursor_descending) != (sort, descending):
        raise StoreQueryError(f"cursor: it belongs to sort {cursor_sort!r} "
                              f"{'descending' if cursor_descending else 'ascending'}, not to this query's")
    if (not isinstance(values, list) or len(values) != len(columns) or type(row_id) is not int
            or not INT64_MIN <= row_id <= INT64_MAX):
        raise StoreQueryError("cursor: not a cursor this store returned")
    for column, value in zip(columns, values):
        ok = (isinstance(value, str) if column in _TEXT_SORT_COLUMNS
              else _is_finite_number(value))
        if not ok:
            raise StoreQueryError("cursor: not a cursor this store returned")
    return [*values, row_id]
