"""Durable task history in PostgreSQL (``--db postgresql://...``): the interface of ``store.TaskStore``,
in a database that several dashboard processes share.

The schema lives in the connection's schema (the URL's ``options=-csearch_path=...`` picks another
than ``public``) and is versioned by the one row of ``dashboard_schema``: ``MIGRATIONS[n]`` takes it
from version n to n + 1. Processes starting together migrate one at a time (an advisory lock held by
the migrating transaction). Full-text search is a generated ``tsvector`` column with a GIN index:
the searched fields are cut into words at every character that is not a letter or a digit (as
SQLite's FTS5 ``unicode61`` does), so the two stores match the same words; each word of a query
is matched as a prefix from its second character on, as in SQLite.

Every call blocks on the network: the caller runs it in a native thread (``run_blocking``), as for
SQLite. Each thread gets its own connection (autocommit, with explicit transactions); one that
broke is replaced on the next call. The rows written are those of the SQLite store, with the
values PostgreSQL refuses made safe: NUL characters become U+FFFD and NaN and infinities NULL.

Queries accept and refuse the same arguments as SQLite's (``store.query_filters``) and give the
same shapes and cursors. Totals above ``EXACT_TOTAL_CAP`` are the planner's estimate.
Statistics are PostgreSQL's own (autovacuum's ANALYZE), and there is no integrity check to run:
after an unclean stop the server's own recovery has already run.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import psycopg
from psycopg.pq import TransactionStatus

from .model import READY_STATES, TASK_FIELDS
from .redact import mask_url
from .stats import Bucket, Row
from . import store as limits  # EXACT_TOTAL_CAP and PRUNE_CHUNK_TASKS, read when used (tests change them)
from .store import (ALERTS_PAGE_MAX, AUDIT_PAGE_MAX, FAILED_STATES, GAPS_MAX, MARKERS_MAX, REF_FIELDS,
                    STATS_HOURS_KEPT_SECONDS, STATS_MINUTES_KEPT_SECONDS, STATS_STEPS,
                    _TOKENS, UUID_PREFIX, NativeLock, StoreClosed, StoreError, StoreQueryError, _encode_cursor,
                    _event_row, _number, _task_row, _text, _where, dumps, event_body, one_pass, query_filters,
                    is_prefix, round_estimate, task_shapes, task_upserts, task_write_sql)

log = logging.getLogger(__name__)

#: Seconds to wait for the server when connecting.
CONNECT_TIMEOUT_SECONDS = 10
#: Longest text (in characters) of a task's searchable fields that goes into its search vector:
#: PostgreSQL refuses a tsvector beyond 1 MB, and a task's payload is seldom searched past this.
SEARCH_TEXT_MAX = 262_144
#: The newest tasks a text query is tried on first, to tell a common word from a rare one.
TEXT_PROBE_ROWS = 1_000
#: A word matching more than this share of them is common: its matches are found by walking an index
#: and checking each row; a rarer one's are read from the GIN index (whose posting lists cost about
#: 0.1 us a task: 5 % of a million tasks is 5 ms).
COMMON_TEXT = 0.05
#: Rows passing the other filters up to which a common word is checked on each of them (then counted
#: exactly and sorted in memory); past this, its total is estimated.
FENCE_ROWS = 10_000
#: The key of the advisory lock a migrating process holds (with the schema name mixed in).
MIGRATION_LOCK = "celery-dashboard schema"

_SEARCHED = " || ' ' || ".join(f"coalesce({c}, '')" for c in
                               ("name", "args", "kwargs", "result", "exception", "retry_errors"))


def _refs_trigger() -> str:
    """The function of the trigger that keeps ``refs`` true (as SQLite's ``store._refs_trigger``): when a task
    row's value of a ``REF_FIELDS`` field changes, the events that refer to it get the value it had, added to
    their JSON as text (no jsonb: it would rewrite the other values, 1e300 as an integer, say)."""
    copies = "".join(
        f"IF old.{name} IS DISTINCT FROM new.{name} THEN UPDATE events SET "
        f"body = CASE WHEN body = '{{}}' THEN '{{' ELSE left(body, -1) || ',' END || "
        f"'\"{name}\":' || to_json(old.{name})::text || '}}', refs = nullif(refs & ~{1 << bit}, 0) "
        f"WHERE task_id = old.id AND refs & {1 << bit} <> 0; END IF;\n"
        for bit, name in enumerate(REF_FIELDS))
    return f"CREATE FUNCTION events_keep_task_values() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{copies}RETURN NULL;\nEND $$"


#: Schema migrations: ``MIGRATIONS[n]`` takes a database from version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (  # 1: the schema of SQLite's version 12, at once
        f"""CREATE TABLE tasks (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            uuid TEXT COLLATE "C" NOT NULL UNIQUE,
            name TEXT, state TEXT COLLATE "C" NOT NULL DEFAULT 'PENDING', worker TEXT COLLATE "C",
            queue TEXT COLLATE "C", exchange TEXT, routing_key TEXT,
            sent DOUBLE PRECISION, received DOUBLE PRECISION, started DOUBLE PRECISION,
            succeeded DOUBLE PRECISION, failed DOUBLE PRECISION, retried DOUBLE PRECISION,
            revoked DOUBLE PRECISION, rejected DOUBLE PRECISION, timestamp DOUBLE PRECISION,
            runtime DOUBLE PRECISION, retries BIGINT,
            args TEXT, kwargs TEXT, eta TEXT, expires TEXT, result TEXT, exception TEXT, traceback TEXT,
            parent_id TEXT COLLATE "C", root_id TEXT, orphaned SMALLINT NOT NULL DEFAULT 0,
            progress TEXT, retry_errors TEXT, lost TEXT,
            received_sort DOUBLE PRECISION GENERATED ALWAYS AS (coalesce(received, sent, timestamp, 0.0)) STORED,
            runtime_sort DOUBLE PRECISION GENERATED ALWAYS AS (coalesce(runtime, -1.0)) STORED,
            runtime_up_sort DOUBLE PRECISION GENERATED ALWAYS AS (coalesce(runtime, 1e300)) STORED,
            name_sort TEXT COLLATE "C" GENERATED ALWAYS AS (coalesce(name, '')) STORED,
            updated_sort DOUBLE PRECISION GENERATED ALWAYS AS (coalesce(timestamp, 0.0)) STORED,
            finished DOUBLE PRECISION GENERATED ALWAYS AS (coalesce(succeeded, failed, revoked, rejected)) STORED,
            search TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, regexp_replace(
                left({_SEARCHED}, {SEARCH_TEXT_MAX}), '[^[:alnum:]]+', ' ', 'g'))) STORED
        )""",
        """CREATE TABLE events (
            task_id BIGINT NOT NULL, timestamp DOUBLE PRECISION NOT NULL, life INTEGER NOT NULL,
            type TEXT COLLATE "C" NOT NULL, hostname TEXT COLLATE "C" NOT NULL,
            body TEXT NOT NULL,  -- the event dict as JSON
            PRIMARY KEY (task_id, timestamp, life, type, hostname)
        )""",
        # Every sort ends with the row id, so a keyset (sort values, id) is one range of one index.
        "CREATE INDEX tasks_received ON tasks (received_sort, id) INCLUDE (state, name_sort, worker, queue)",
        # Each filter's index carries the other filter columns: any combination of them is answered
        # (counted, and paged by time) from one index alone, without reading the table.
        "CREATE INDEX tasks_state ON tasks (state, received_sort, id) INCLUDE (name_sort, worker, queue)",
        "CREATE INDEX tasks_name ON tasks (name_sort, received_sort, id) INCLUDE (state, worker, queue)",
        "CREATE INDEX tasks_worker ON tasks (worker, received_sort, id) INCLUDE (state, name_sort, queue)",
        "CREATE INDEX tasks_queue ON tasks (queue, received_sort, id) INCLUDE (state, name_sort, worker)",
        "CREATE INDEX tasks_runtime ON tasks (runtime_sort, id) INCLUDE (state, name_sort, worker, queue)",
        "CREATE INDEX tasks_runtime_up ON tasks (runtime_up_sort, id) INCLUDE (state, name_sort, worker, queue)",
        "CREATE INDEX tasks_updated ON tasks (updated_sort, id) INCLUDE (state)",
        "CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL",
        "CREATE INDEX tasks_search ON tasks USING GIN (search)",
        """CREATE TABLE queue_depths (
            queue TEXT NOT NULL, minute DOUBLE PRECISION NOT NULL, depth BIGINT NOT NULL, PRIMARY KEY (queue, minute)
        )""",
        "CREATE INDEX queue_depths_minute ON queue_depths (minute)",
        """CREATE TABLE task_links (
            old TEXT NOT NULL, new TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, PRIMARY KEY (old, new)
        )""",
        "CREATE INDEX task_links_new ON task_links (new)",
        """CREATE TABLE audit (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at DOUBLE PRECISION NOT NULL, who TEXT NOT NULL,
            role TEXT, address TEXT, action TEXT NOT NULL, target TEXT, params TEXT, outcome TEXT NOT NULL,
            replies TEXT
        )""",
        "CREATE INDEX audit_at ON audit (at)",
        """CREATE TABLE stats (
            step INTEGER NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, start BIGINT NOT NULL,
            body TEXT NOT NULL,  -- the bucket as JSON (see stats.Bucket)
            PRIMARY KEY (step, scope, key, start)
        )""",
        "CREATE INDEX stats_time ON stats (step, scope, start)",
        """CREATE TABLE markers (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at DOUBLE PRECISION NOT NULL, label TEXT NOT NULL,
            source TEXT NOT NULL, who TEXT
        )""",
        "CREATE INDEX markers_at ON markers (at)",
        """CREATE TABLE alerts (
            id BIGINT PRIMARY KEY, rule TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
            subject TEXT NOT NULL, summary TEXT NOT NULL, started DOUBLE PRECISION NOT NULL,
            resolved DOUBLE PRECISION, value DOUBLE PRECISION, link TEXT
        )""",
        "CREATE INDEX alerts_open ON alerts (resolved)",
        """CREATE TABLE silences (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, rule TEXT NOT NULL, subject TEXT,
            until DOUBLE PRECISION NOT NULL, who TEXT NOT NULL, at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE worker_active (
            worker TEXT NOT NULL, minute DOUBLE PRECISION NOT NULL, active BIGINT NOT NULL,
            PRIMARY KEY (worker, minute)
        )""",
        "CREATE INDEX worker_active_minute ON worker_active (minute)",
        """CREATE TABLE gaps (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, start DOUBLE PRECISION NOT NULL,
            "end" DOUBLE PRECISION NOT NULL, cause TEXT NOT NULL
        )""",
        'CREATE INDEX gaps_end ON gaps ("end")',
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value DOUBLE PRECISION NOT NULL)",
    ),
    (  # 2: an event's fields equal to its task row's are read from the row (SQLite's version 13)
        "ALTER TABLE events ADD COLUMN refs INTEGER",
        _refs_trigger(),
        "CREATE TRIGGER events_keep_task_values AFTER UPDATE ON tasks FOR EACH ROW WHEN ("
        + " OR ".join(f"(old.{name} IS NOT NULL AND old.{name} IS DISTINCT FROM new.{name})" for name in REF_FIELDS)
        + ") EXECUTE FUNCTION events_keep_task_values()",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS_SQL = ", ".join(TASK_FIELDS)
_STUB_SQL = task_write_sql("%s")[1]
_EVENT_SQL = ("INSERT INTO events (task_id, timestamp, life, type, hostname, body, refs) "
              "SELECT id, %s, %s, %s, %s, %s, %s FROM tasks WHERE uuid = %s ON CONFLICT DO NOTHING")
_SELECT_TASK = f"SELECT id, {_COLUMNS_SQL} FROM tasks"
_ALERT_KEYS = ("id", "rule", "kind", "severity", "subject", "summary", "started", "resolved", "value", "link")


#: A connection left in one of these states between two calls was cut while a command was on its way.
_STALE = (TransactionStatus.ACTIVE, TransactionStatus.UNKNOWN)


class PgTaskStore:
    """Task history in a PostgreSQL database; see the module docstring."""

    #: Every read waits on the network: always from a native thread (see ``TaskStore.READS_INLINE``).
    READS_INLINE = False

    def __init__(self, url: str, max_tasks_stored: int = 1_000_000, max_age_seconds: float = 7 * 86400,
                 keep_failed_seconds: float | None = None) -> None:
        self.url = url
        #: What logs and ``/api/health`` show: the URL with its password masked.
        self.path = mask_url(url)
        self.max_tasks_stored = max_tasks_stored
        self.max_age_seconds = max_age_seconds
        self.keep_failed_seconds = keep_failed_seconds
        self.check_pending = False  # the server recovers on its own: there is no check to run
        self.integrity: str | None = None
        self._local = threading.local()
        #: Every connection opened (appending is atomic: no lock, which eventlet would make green and
        #: which would then deadlock across native threads).
        self._connections: list[psycopg.Connection[Any]] = []
        self._closed = False
        self._pass_lock = NativeLock()  # held through a pruning or statistics pass: close() waits for it
        try:
            with self._session() as conn:
                self._migrate(conn)
        except StoreError:
            self.close()
            raise
        except psycopg.Error as exc:
            self.close()
            raise StoreError(f"--db {self.path}: cannot open the task history ({_reason(exc)})") from exc

    # -- connections ------------------------------------------------------------
    def _conn(self) -> psycopg.Connection[Any]:
        """Return this thread's connection, opening it on first use or when the last one broke."""
        if self._closed:
            raise StoreClosed(f"task store {self.path} is closed")
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and (conn.closed or conn.info.transaction_status in _STALE):
            self._drop(conn)  # cut while a command was on its way: libpq may not have noticed
            conn = None
        if conn is None:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                   application_name="celery-dashboard")
            self._connections.append(conn)
            if self._closed:  # close() ran meanwhile and may have missed it: nothing is left open behind it
                conn.close()
                raise StoreClosed(f"task store {self.path} is closed")
            self._local.conn = conn
        return conn

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """This thread's connection for one call; a failure that leaves it unusable (the server restarted, a
        proxy cut it, ...) closes it, so that the next call opens a fresh one instead of failing on the dead one."""
        conn = self._conn()
        try:
            yield conn
        except psycopg.OperationalError:
            if conn.closed or conn.broken or conn.info.transaction_status in _STALE:
                self._drop(conn)  # not a statement's failure (a timeout, a deadlock): the connection's
            raise

    def _drop(self, conn: psycopg.Connection[Any]) -> None:
        """Close a connection that failed and forget it."""
        try:
            conn.close()
        except psycopg.Error:  # closing a connection the server already cut
            pass
        try:
            self._connections.remove(conn)
        except ValueError:  # close() emptied the list meanwhile
            pass

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s || current_schema()))", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS dashboard_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM dashboard_schema").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {version} is newer than this dashboard's "
                                 f"{SCHEMA_VERSION}; use a newer dashboard or another database")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                if version > 0:
                    log.info("task store %s: schema migrated to version %d", self.path, target)
            if row is None:
                conn.execute("INSERT INTO dashboard_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
                log.info("created a new history in %s", self.path)
            elif version < SCHEMA_VERSION:
                conn.execute("UPDATE dashboard_schema SET version = %s", (SCHEMA_VERSION,))

    def check_integrity(self) -> str:
        """Nothing to check: PostgreSQL recovers on its own after an unclean stop."""
        return "ok"

    @one_pass
    def analyze(self, force: bool = False) -> bool:
        """Take the planner's statistics of ``tasks`` (``ANALYZE``) when it has doubled or halved since they
        were taken, or they never were past ``ANALYZE_MIN_TASKS``; return whether it ran. Autovacuum does
        the same when it runs, but it may be off or behind after a burst of writes, and the plans of
        filtered queries depend on them."""
        if not force:
            row = self._one("SELECT c.reltuples, coalesce(s.n_live_tup, 0) FROM pg_class c LEFT JOIN "
                            "pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'tasks'::regclass")
            taken, live = (float(row[0]), float(row[1])) if row else (0.0, 0.0)
            if live < limits.ANALYZE_MIN_TASKS or (taken > 0 and taken / 2 <= live <= taken * 2):
                return False
        started = time.monotonic()
        with self._session() as conn:
            conn.execute("ANALYZE tasks")
        log.info("task store %s: query statistics refreshed in %.1f s", self.path, time.monotonic() - started)
        return True

    def close(self) -> None:
        """Close every connection. A pruning or statistics pass under way ends with its statement under way (its
        next call raises ``StoreClosed``) before any connection closes; the other callers must have stopped."""
        self._closed = True
        with self._pass_lock:
            connections, self._connections = self._connections, []
            for conn in connections:
                conn.close()

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._session() as conn:
            return conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._session() as conn:
            return conn.execute(sql, params).fetchone()

    def _write(self, *statements: tuple[str, Sequence[Any] | list[Sequence[Any]], bool]) -> int:
        """Run (sql, params, many) statements in one transaction; return the last one's row count."""
        count = 0
        with self._session() as conn, conn.transaction(), conn.cursor() as cursor:
            for sql, params, many in statements:
                if many:
                    if params:
                        cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params)
                count = cursor.rowcount
        return count

    # -- writing ----------------------------------------------------------------
    def write_batch(self, tasks: list[dict[str, Any]], events: list[tuple[str, dict[str, Any]]]) -> None:
        """Upsert ``tasks`` (their JSON shapes) and add ``events`` (uuid, event dict) in one transaction."""
        written: dict[str, Sequence[Any]] = {}  # each task's row as written, which its events may refer to
        upserts = task_upserts(tasks, "%s", lambda task: _safe_row(_task_row(task)), written=written)
        stubs = [_safe_row((_text(uuid), _number(event.get("timestamp"))))
                 for uuid, event in events if uuid not in written]
        event_rows = [_safe_row(_event_row(uuid, event, written.get(uuid))) for uuid, event in events]
        self._write(*((sql, rows, True) for sql, rows in upserts), (_STUB_SQL, stubs, True),
                    (_EVENT_SQL, event_rows, True))

    def write_queue_depths(self, rows: list[tuple[str, float, int]]) -> None:
        """Store (queue, minute start, highest depth) rows; a minute written again keeps its highest depth."""
        self._write(("INSERT INTO queue_depths (queue, minute, depth) VALUES (%s, %s, %s) ON CONFLICT (queue, minute) "
                     "DO UPDATE SET depth = greatest(queue_depths.depth, EXCLUDED.depth)",
                     [_safe_row(row) for row in rows], True))

    def write_worker_active(self, rows: list[tuple[str, float, int]]) -> None:
        """Store (worker, minute start, most active) rows; a minute written again keeps its highest count."""
        self._write(("INSERT INTO worker_active (worker, minute, active) VALUES (%s, %s, %s) "
                     "ON CONFLICT (worker, minute) DO UPDATE SET active = greatest(worker_active.active, "
                     "EXCLUDED.active)", [_safe_row(row) for row in rows], True))

    def gauge_minutes(self, table: str, since: float) -> dict[str, list[tuple[float, int]]]:
        """Return every queue's depths (``queue_depths``) or worker's activity (``worker_active``) per minute
        since ``since``: {name: [(minute, highest), ...]} oldest first."""
        column = {"queue_depths": ("queue", "depth"), "worker_active": ("worker", "active")}[table]
        series: dict[str, list[tuple[float, int]]] = {}
        for name, minute, value in self._fetch(
                f"SELECT {column[0]}, minute, {column[1]} FROM {table} WHERE minute >= %s ORDER BY minute", (since,)):
            series.setdefault(name, []).append((minute, value))
        return series

    def queue_depths(self, queue: str, since: float) -> dict[str, list[Any]]:
        """Return a queue's per-minute highest depths since ``since``: ``{"t": [...], "depth": [...]}``."""
        rows = self._fetch("SELECT minute, depth FROM queue_depths WHERE queue = %s AND minute >= %s ORDER BY minute",
                           (_safe(queue), since))
        return {"t": [row[0] for row in rows], "depth": [row[1] for row in rows]}

    def write_stats(self, rows: list[Row], markers: list[dict[str, Any]]) -> None:
        """Add closed minutes of the analytics to their minute and hour buckets, and store ``markers``,
        in one transaction (see ``TaskStore.write_stats``)."""
        with self._session() as conn, conn.transaction(), conn.cursor() as cursor:
            for step in STATS_STEPS:
                merged: dict[tuple[str, str, int], Bucket] = {}
                for minute, scope, key, bucket in rows:
                    slot = (scope, _safe(key), minute - minute % step)
                    if slot in merged:
                        merged[slot].merge(bucket)
                    else:
                        merged[slot] = Bucket().merge(bucket)
                if not merged:
                    continue
                stored = {(scope, key, start): body for scope, key, start, body in cursor.execute(
                    "SELECT scope, key, start, body FROM stats WHERE step = %s AND (scope, key, start) IN "
                    "(SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[]))",
                    (step, *map(list, zip(*merged))))}
                writes = []
                for slot, bucket in merged.items():
                    if slot in stored:
                        bucket = Bucket.from_row(json.loads(stored[slot])).merge(bucket)
                    writes.append((step, *slot, dumps(bucket.to_row())))
                cursor.executemany("INSERT INTO stats (step, scope, key, start, body) VALUES (%s, %s, %s, %s, %s) "
                                   "ON CONFLICT (step, scope, key, start) DO UPDATE SET body = EXCLUDED.body", writes)
            if markers:
                cursor.executemany("INSERT INTO markers (at, label, source, who) VALUES (%s, %s, %s, %s)",
                                   [_safe_row((m["at"], str(m["label"]), m["source"], m.get("who"))) for m in markers])

    def stats_series(self, step: int, scope: str, key: str, since: float) -> list[tuple[int, Bucket]]:
        """Return the stored buckets of one scope and key from ``since`` on, oldest first."""
        rows = self._fetch("SELECT start, body FROM stats WHERE step = %s AND scope = %s AND key = %s AND start >= %s "
                           "ORDER BY start", (step, scope, _safe(key), int(since)))
        return [(row[0], Bucket.from_row(json.loads(row[1]))) for row in rows]

    def stats_by_key(self, step: int, scope: str, since: float) -> dict[str, Bucket]:
        """Return each key of a scope with its stored buckets from ``since`` on added together."""
        merged: dict[str, Bucket] = {}
        for key, body in self._fetch("SELECT key, body FROM stats WHERE step = %s AND scope = %s AND start >= %s",
                                     (step, scope, int(since))):
            bucket = Bucket.from_row(json.loads(body))
            if key in merged:
                merged[key].merge(bucket)
            else:
                merged[key] = bucket
        return merged

    def markers(self, since: float, until: float | None = None) -> list[dict[str, Any]]:
        """Return the markers from ``since`` (to ``until``), oldest first."""
        rows = self._fetch("SELECT id, at, label, source, who FROM markers WHERE at >= %s AND at <= %s "
                           "ORDER BY at LIMIT %s", (since, until if until is not None else math.inf, MARKERS_MAX))
        return [{"id": r[0], "at": r[1], "label": r[2], "source": r[3], "who": r[4]} for r in rows]

    def save_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Store alerts (``Alert.to_json`` shapes) as they fired or resolved; an id stored again is replaced."""
        columns = ", ".join(_ALERT_KEYS)
        self._write((f"INSERT INTO alerts ({columns}) VALUES ({', '.join(['%s'] * len(_ALERT_KEYS))}) "
                     "ON CONFLICT (id) DO UPDATE SET "
                     + ", ".join(f"{k} = EXCLUDED.{k}" for k in _ALERT_KEYS[1:]),
                     [_safe_row(tuple(a[k] for k in _ALERT_KEYS)) for a in alerts], True))

    def alerts_page(self, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        """Return stored alerts newest first (below id ``before``)."""
        rows = self._fetch(f"SELECT {', '.join(_ALERT_KEYS)} FROM alerts "
                           f"{'WHERE id < %s ' if before is not None else ''}ORDER BY id DESC LIMIT %s",
                           (*((before,) if before is not None else ()), min(limit, ALERTS_PAGE_MAX)))
        return [dict(zip(_ALERT_KEYS, row)) for row in rows]

    def open_alerts(self) -> list[dict[str, Any]]:
        """Return the alerts not resolved when the dashboard last stopped."""
        rows = self._fetch(f"SELECT {', '.join(_ALERT_KEYS)} FROM alerts WHERE resolved IS NULL ORDER BY id")
        return [dict(zip(_ALERT_KEYS, row)) for row in rows]

    def last_alert_id(self) -> int:
        row = self._one("SELECT coalesce(max(id), 0) FROM alerts")
        return int(row[0]) if row else 0

    def save_silence(self, silence: dict[str, Any]) -> None:
        """Store a silence (``Silence.to_json``); it replaces an earlier one of the same rule and subject."""
        rule, subject = _safe(silence["rule"]), _safe(silence["subject"])
        self._write(("DELETE FROM silences WHERE rule = %s AND subject IS NOT DISTINCT FROM %s", (rule, subject), False),
                    ("INSERT INTO silences (rule, subject, until, who, at) VALUES (%s, %s, %s, %s, %s)",
                     (rule, subject, silence["until"], _safe(silence["who"]), silence["at"]), False))

    def silences(self, now: float) -> list[dict[str, Any]]:
        """Return the silences still running at ``now``."""
        rows = self._fetch("SELECT rule, subject, until, who, at FROM silences WHERE until > %s", (now,))
        return [{"rule": r[0], "subject": r[1], "until": r[2], "who": r[3], "at": r[4]} for r in rows]

    def save_gaps(self, gaps: list[dict[str, Any]]) -> None:
        """Store intervals in which events may have been lost: ``{"start", "end", "cause"}`` each."""
        self._write(('INSERT INTO gaps (start, "end", cause) VALUES (%s, %s, %s)',
                     [_safe_row((g["start"], g["end"], g["cause"])) for g in gaps], True))

    def gaps(self, since: float | None = None, until: float | None = None,
             limit: int = GAPS_MAX) -> list[dict[str, Any]]:
        """The stored gaps overlapping [since, until] (either open), newest first, at most ``limit``."""
        rows = self._fetch('SELECT start, "end", cause FROM gaps WHERE "end" >= %s AND start <= %s '
                           'ORDER BY "end" DESC LIMIT %s',
                           (-math.inf if since is None else since, math.inf if until is None else until,
                            min(limit, GAPS_MAX)))
        return [{"start": r[0], "end": r[1], "cause": r[2]} for r in rows]

    def mark(self, key: str, at: float) -> None:
        """Note when the dashboard was last alive (``alive_at``) or stopped cleanly (``stopped_at``)."""
        self._write(("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = "
                     "EXCLUDED.value", (key, at), False))

    def last_seen_running(self) -> float | None:
        """When a dashboard last ran on this history (see ``TaskStore.last_seen_running``); None for a new one."""
        marks = dict(self._fetch("SELECT key, value FROM meta"))
        alive, stopped = marks.get("alive_at"), marks.get("stopped_at")
        if stopped is not None and (alive is None or stopped >= alive):
            return float(stopped)
        row = self._one("SELECT max(updated_sort) FROM tasks")
        updated = row[0] if row and row[0] and math.isfinite(row[0]) else None
        candidates = [v for v in (alive, updated) if v is not None]
        return float(max(candidates)) if candidates else None

    @one_pass
    def prune(self, now: float) -> int:
        """Delete tasks past their age, then the oldest beyond ``max_tasks_stored``; return how many."""
        cutoff = now - self.max_age_seconds
        hours_cutoff = now - max(self.max_age_seconds, STATS_HOURS_KEPT_SECONDS)
        self._write(("DELETE FROM queue_depths WHERE minute < %s", (cutoff,), False),
                    ("DELETE FROM worker_active WHERE minute < %s", (cutoff,), False),
                    ("DELETE FROM stats WHERE step = 60 AND start < %s", (now - STATS_MINUTES_KEPT_SECONDS,), False),
                    ("DELETE FROM stats WHERE step = 3600 AND start < %s", (hours_cutoff,), False),
                    ("DELETE FROM markers WHERE at < %s", (hours_cutoff,), False),
                    ("DELETE FROM alerts WHERE resolved < %s", (hours_cutoff,), False),
                    ("DELETE FROM silences WHERE until < %s", (now,), False),
                    ('DELETE FROM gaps WHERE "end" < %s', (cutoff,), False))
        deleted = 0
        if self.keep_failed_seconds is None:
            deleted += self._delete_while("updated_sort < %s ORDER BY updated_sort", (cutoff,))
        else:
            deleted += self._delete_while("updated_sort < %s AND state <> ALL(%s) ORDER BY updated_sort",
                                          (cutoff, list(FAILED_STATES)))
            deleted += self._delete_while("state = ANY(%s) AND updated_sort < %s ORDER BY updated_sort",
                                          (list(FAILED_STATES), now - self.keep_failed_seconds))
        row = self._one("SELECT count(*) FROM tasks")
        excess = (row[0] if row else 0) - self.max_tasks_stored
        while excess > 0:
            removed = self._delete_while("TRUE ORDER BY updated_sort", (), limit=min(excess, limits.PRUNE_CHUNK_TASKS),
                                         once=True)
            if not removed:
                break
            deleted += removed
            excess -= removed
        return deleted

    def _delete_while(self, select: str, params: tuple[Any, ...], limit: int | None = None,
                      once: bool = False) -> int:
        """Delete the tasks ``WHERE select LIMIT n`` picks, one chunk per transaction, until it picks none."""
        limit = limit or limits.PRUNE_CHUNK_TASKS
        total = 0
        while True:
            with self._session() as conn, conn.transaction():
                ids = [row[0] for row in conn.execute(
                    f"DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE {select} LIMIT %s) "
                    "RETURNING id", (*params, limit))]
                conn.execute("DELETE FROM events WHERE task_id = ANY(%s)", (ids,))
            total += len(ids)
            if once or len(ids) < limit:
                return total

    # -- reading ----------------------------------------------------------------
    def get(self, uuid: str) -> dict[str, Any] | None:
        """Return one task's JSON shape with its ``events`` in timeline order and its ``children``."""
        row = self._one(f"{_SELECT_TASK} WHERE uuid = %s", (_safe(uuid),))
        if row is None:
            return None
        task = self._shapes([row])[0]
        task["events"] = self._events({row[0]: task})[row[0]]
        return task

    def audit(self, entry: dict[str, Any]) -> None:
        """Add one audit entry (see ``TaskStore.audit``)."""
        self._write(("INSERT INTO audit (at, who, role, address, action, target, params, outcome, replies) "
                     "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                     _safe_row((entry["at"], str(entry["who"]), entry.get("role"), entry.get("address"),
                                entry["action"], str(entry.get("target") or "") or None,
                                dumps(entry.get("params")) if entry.get("params") is not None else None,
                                str(entry["outcome"]),
                                dumps(entry.get("replies")) if entry.get("replies") is not None else None)), False))

    def audit_page(self, limit: int = 100, before: int | None = None, action: str | None = None,
                   who: str | None = None) -> dict[str, Any]:
        """Return audit entries newest first (below id ``before``), and the id to pass for the next page."""
        where, params = [], []
        for clause, value in (("id < %s", before), ("action = %s", action), ("who = %s", who)):
            if value is not None:
                where.append(clause)
                params.append(_safe(value))
        rows = self._fetch("SELECT id, at, who, role, address, action, target, params, outcome, replies FROM audit"
                           f"{_where(where)} ORDER BY id DESC LIMIT %s", (*params, min(limit, AUDIT_PAGE_MAX) + 1))
        items = [{"id": r[0], "at": r[1], "who": r[2], "role": r[3], "address": r[4], "action": r[5], "target": r[6],
                  "params": None if r[7] is None else json.loads(r[7]), "outcome": r[8],
                  "replies": None if r[9] is None else json.loads(r[9])} for r in rows[:limit]]
        return {"items": items, "next": items[-1]["id"] if len(rows) > limit and items else None}

    def prune_audit(self, before: float) -> int:
        """Delete audit entries older than ``before``; return how many."""
        return self._write(("DELETE FROM audit WHERE at < %s", (before,), False))

    def link_retry(self, old: str, new: str, at: float) -> None:
        """Remember that task ``old`` was retried as the new task ``new``."""
        self._write(("INSERT INTO task_links (old, new, at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                     _safe_row((old, new, at)), False))

    def links(self, uuid: str) -> tuple[str | None, list[str]]:
        """Return the task ``uuid`` was retried from (or None) and the tasks it was retried as, oldest first."""
        uuid = _safe(uuid)
        row = self._one("SELECT old FROM task_links WHERE new = %s ORDER BY at LIMIT 1", (uuid,))
        newer = [r[0] for r in self._fetch("SELECT new FROM task_links WHERE old = %s ORDER BY at", (uuid,))]
        return (row[0] if row else None), newer

    def exists(self, uuid: str) -> bool:
        """Return whether the history holds this task."""
        return self._one("SELECT 1 FROM tasks WHERE uuid = %s", (_safe(uuid),)) is not None

    def uuids_starting(self, prefix: str, limit: int) -> list[str]:
        """Return up to ``limit`` stored task ids that start with ``prefix``, in order (through the ids' index)."""
        return [row[0] for row in self._fetch("SELECT uuid FROM tasks WHERE uuid >= %s AND uuid < %s ORDER BY uuid "
                                              "LIMIT %s", (_safe(prefix), _safe(prefix) + "\U0010ffff", limit))]

    def recent(self, limit: int, finished_events: bool = True
               ) -> list[tuple[dict[str, Any], list[dict[str, Any]] | None]]:
        """Return the ``limit`` most recently updated tasks, newest first, each with its events
        (None instead for finished tasks when ``finished_events`` is False)."""
        rows = self._fetch(f"{_SELECT_TASK} ORDER BY updated_sort DESC, id DESC LIMIT %s", (limit,))
        shapes = self._shapes(rows)
        wanted = {row[0]: task for task, row in zip(shapes, rows) if finished_events or task["state"] not in READY_STATES}
        events = self._events(wanted)
        return [(task, events.get(row[0])) for task, row in zip(shapes, rows)]

    def stats(self) -> dict[str, Any]:
        """Return the number of tasks stored (an exact count), the masked URL and the schema version."""
        count = self._one("SELECT count(*) FROM tasks")
        version = self._one("SELECT version FROM dashboard_schema")
        return {"tasks": count[0] if count else 0, "path": self.path, "schema_version": version[0] if version else 0}

    def task_names(self, prefix: str = "", limit: int = 200) -> list[str]:
        """Return the distinct task names starting with ``prefix``, in order, at most ``limit``: one index
        seek per name (a recursive skip scan), whatever the number of tasks."""
        rows = self._fetch(
            """WITH RECURSIVE names(name) AS (
                   (SELECT name_sort FROM tasks WHERE name_sort >= %s AND name_sort < %s ORDER BY name_sort LIMIT 1)
                   UNION ALL
                   SELECT (SELECT name_sort FROM tasks WHERE name_sort > names.name AND name_sort < %s
                           ORDER BY name_sort LIMIT 1) FROM names WHERE names.name IS NOT NULL)
               SELECT name FROM names WHERE name IS NOT NULL AND name <> '' LIMIT %s""",
            (_safe(prefix), _safe(prefix) + "\U0010ffff", _safe(prefix) + "\U0010ffff", limit))
        return [row[0] for row in rows]

    def query(self, *, states: set[str] | None = None, name: str | None = None, worker: str | None = None,
              queue: str | None = None, q: str | None = None, since: float | None = None,
              until: float | None = None, time_field: str = "received", sort: str = "received",
              descending: bool = True, limit: int = 50, cursor: str | None = None,
              after: str | None = None) -> dict[str, Any]:
        """Return one page of matching tasks, newest (or largest) first by default, and the match count."""
        columns, keyset_after, filters, filter_params = query_filters(
            states=states, name=name, worker=worker, queue=queue, q=q, since=since, until=until,
            time_field=time_field, sort=sort, descending=descending, limit=limit, cursor=cursor, after=after)
        if after is not None:  # the page after one task: where a page the user sees ends, whatever came in since
            row = self._one(f"SELECT {', '.join(columns)}, id FROM tasks WHERE uuid = %s", (_safe(after),))
            if row is None:
                raise StoreQueryError(f"after: no stored task {after!r}")
            keyset_after = list(row)
        where = [clause.replace("?", "%s") for clause in filters]
        params: list[Any] = [_safe(p) if isinstance(p, str) else p for p in filter_params]
        words = (q or "").split()
        match = _tsquery(words)
        uuid_prefix = words[0].lower() if len(words) == 1 and UUID_PREFIX.fullmatch(words[0]) else None
        others, others_params = list(where), list(params)  # the filters without the text
        density = self._density(match) if match is not None and uuid_prefix is None else 0.0
        common = density > COMMON_TEXT
        if common:
            # A word in most tasks: checked row by row (the function, not the operator, so the planner
            # walks an index in the page's order instead of reading the word's huge posting list).
            where.append("ts_match_vq(search, to_tsquery('simple', %s))")
            params.append(match)
        elif match is not None and uuid_prefix is not None:
            where.append("(search @@ to_tsquery('simple', %s) OR (uuid >= %s AND uuid < %s))")
            params.extend([match, uuid_prefix, uuid_prefix + "\U0010ffff"])
        elif match is not None:
            where.append("search @@ to_tsquery('simple', %s)")
            params.append(match)
        keys = (*columns, "id")
        direction = "DESC" if descending else "ASC"
        order = ", ".join(f"{c} {direction}" for c in keys)
        keyset = [f"({', '.join(keys)}) {'<' if descending else '>'} ({', '.join(['%s'] * len(keys))})"]
        after_params = (*(keyset_after or ()), limit + 1)
        cap = limits.EXACT_TOTAL_CAP
        if common:
            # The rows passing the other filters, counted from their indexes alone: when few, the word is
            # checked on each of them, in the page's query, which counts the matches too; when many, the
            # page walks the sort's index, and the total is their estimate times the word's density.
            others_total = self._capped_count(others, others_params, FENCE_ROWS)
            few = others_total <= FENCE_ROWS
            estimate = not few
            total = 0 if few else round_estimate(self._estimate_total(others, others_params, floor=False) * density, 1)
        else:
            total = self._capped_count(where, params, cap)
            few = total <= cap
            estimate = not few
            if estimate:
                total = self._estimate_total(where, params)
        if few and where:
            # Few matches: read through the filters' own indexes (OFFSET 0 keeps the planner from walking
            # the sort's index and checking every row instead), then sorted.
            # The window counts every match: the keyset applies outside it (no filter passes into a subquery
            # with a window function).
            cols = ", ".join(columns)
            rows = self._fetch(f"SELECT id, {cols}, matches FROM (SELECT id, {cols}, count(*) OVER () AS matches "
                               f"FROM (SELECT id, {cols} FROM tasks{_where(where)} OFFSET 0) AS hits) AS counted"
                               f"{_where(keyset * (keyset_after is not None))} ORDER BY {order} LIMIT %s",
                               (*params, *after_params))
            page = [row[:-1] for row in rows]
            if common:  # counted in the same pass
                total = rows[0][-1] if rows else self._capped_count(where, params, cap)
        else:
            page = self._fetch(f"SELECT id, {', '.join(columns)} FROM tasks"
                               f"{_where(where + keyset * (keyset_after is not None))} ORDER BY {order} LIMIT %s",
                               (*params, *after_params))
        more = len(page) > limit
        page = page[:limit]
        if estimate:  # never fewer than the page shows
            total = max(total, len(page))
        by_id = {row[0]: row for row in self._fetch(f"{_SELECT_TASK} WHERE id = ANY(%s)", ([row[0] for row in page],))}
        items = self._shapes([by_id[row[0]] for row in page if row[0] in by_id])
        following = _encode_cursor(sort, descending, list(page[-1][1:]), page[-1][0]) if more else None
        body = {"items": items, "total": total, "total_is_estimate": estimate, "next": following}
        if after is not None and keyset_after is not None:  # this page's own cursor, for the page's URL
            body["cursor"] = _encode_cursor(sort, descending, keyset_after[:-1], keyset_after[-1])
        return body

    def _capped_count(self, where: list[str], params: list[Any], cap: int) -> int:
        """Count the rows passing ``where``, stopping at ``cap + 1``."""
        row = self._one(f"SELECT count(*) FROM (SELECT 1 FROM tasks{_where(where)} LIMIT %s) AS capped",
                        (*params, cap + 1))
        return int(row[0]) if row else 0

    def _estimate_total(self, where: list[str], params: list[Any], floor: bool = True) -> int:
        """The planner's estimate of a count known to exceed ``EXACT_TOTAL_CAP`` (at least that, with
        ``floor``), rounded as SQLite's is."""
        row = self._one(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM tasks{_where(where)}", params)
        plan = row[0] if row else None
        if isinstance(plan, str):
            plan = json.loads(plan)
        return round_estimate(float(plan[0]["Plan"]["Plan Rows"]) if plan else 0.0,
                              limits.EXACT_TOTAL_CAP + 1 if floor else 1)

    def _density(self, match: str) -> float:
        """The share of the ``TEXT_PROBE_ROWS`` newest tasks a text query matches (PostgreSQL's planner
        has no statistics for prefix queries: it takes every one to match 2 % of the rows)."""
        row = self._one("SELECT count(*) FILTER (WHERE ts_match_vq(search, to_tsquery('simple', %s))), count(*) "
                        "FROM (SELECT search FROM tasks ORDER BY id DESC LIMIT %s) AS newest",
                        (match, TEXT_PROBE_ROWS))
        return row[0] / row[1] if row and row[1] else 0.0

    # -- shapes -----------------------------------------------------------------
    def _shapes(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """Turn rows of ``id, TASK_FIELDS...`` into task JSON shapes, children included."""
        children: dict[str, list[str]] = {}
        if rows:
            for parent, child in self._fetch("SELECT parent_id, uuid FROM tasks WHERE parent_id = ANY(%s) ORDER BY id",
                                             ([row[1] for row in rows],)):
                children.setdefault(parent, []).append(child)
        return task_shapes(rows, children)

    def _events(self, tasks: dict[int, dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
        """Return the events of these tasks (row id: JSON shape), in timeline order."""
        events: dict[int, list[dict[str, Any]]] = {task_id: [] for task_id in tasks}
        if tasks:
            for task_id, body, timestamp, event_type, hostname, refs in self._fetch(
                    "SELECT task_id, body, timestamp, type, hostname, refs FROM events WHERE task_id = ANY(%s) "
                    "ORDER BY task_id, timestamp, life, type, hostname", (list(tasks),)):
                events[task_id].append(event_body(body, timestamp, event_type, hostname, refs, tasks[task_id]))
        return events


def is_failure(exc: BaseException) -> bool:
    """Tell a failure of the server or the connection (worth retrying) from a row that cannot be written."""
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def _reason(exc: BaseException) -> str:
    """The first line of a psycopg error, its URL's password masked."""
    return mask_url(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def _tsquery(words: list[str]) -> str | None:
    """Turn free text into a tsquery: each word its letter-and-digit runs as a phrase (``cus_000123``:
    ``'cus' <-> '000123':*``), the last run a prefix as in SQLite (``store.is_prefix``), the words ANDed. The
    runs are quoted and hold no quote, so nothing in the input is tsquery syntax; a word without a letter or
    digit is dropped."""
    phrases = []
    for word in words:
        tokens = _TOKENS.findall(word)
        if tokens:
            prefix = ":*" if is_prefix(tokens[-1]) else ""
            phrases.append(" <-> ".join(f"'{token}'" for token in tokens) + prefix)
    return " & ".join(f"({phrase})" for phrase in phrases) or None


def _safe(value: Any) -> Any:
    """A value PostgreSQL takes: text without NUL characters (U+FFFD instead, lone surrogates repaired),
    finite floats (NaN and infinities NULL)."""
    if type(value) is str:
        if "\0" in value:
            value = value.replace("\0", "\ufffd")
        return value if value.isascii() else _text(value)
    if type(value) is float and not math.isfinite(value):
        return None
    return value


def _safe_row(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_safe(value) for value in row)

