"""Store benchmark: build a large task history through ``TaskStore.write_batch`` and time its queries.

It writes ``--tasks`` realistic tasks (sent, received, started, then succeeded
or failed with a traceback) in batches, as the collector would, and reports
the write rate. Then it times, over ``--runs`` runs each, the first page with
no filter, each single filter, text searches, sort by runtime, the second
page, ``get``, start-up (open + ``recent(100)``), the whole dashboard's start after
a ``kill -9`` until it answers the first page, a live-like upsert pass, and
finally ``prune`` deleting about a tenth of the rows while a reader and a
writer keep working. Results go to ``bench/results/store-<time>.json``.

    .venv/bin/python bench/store_bench.py --tasks 1000000
    .venv/bin/python bench/store_bench.py --tasks 1000000 --db /tmp/store.db --reuse   # skip the build
    .venv/bin/python bench/store_bench.py --tasks 1000000 --db postgresql://postgres@127.0.0.1/bench

With a ``postgresql://`` URL the same suite runs against PostgreSQL (its tables in the URL's schema
are dropped and built again unless ``--reuse``); the start-up after an unclean shutdown, which is
SQLite's WAL and integrity check, is left out.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib
import zlib
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.store import HistoryStore, is_postgres_url, open_store  # noqa: E402

#: Tasks per ``write_batch`` call.
BATCH_TASKS = 2_000
#: One task in this many fails with a traceback.
FAILURE_EVERY = 10
#: Seconds of history the generated tasks span (received times spread evenly over it).
SPAN_SECONDS = 5 * 86400.0
#: Tasks carrying the rare search word.
RARE_EVERY = 20_000
RARE_WORD = "zanzibar"
NAMES = [f"{area}.{verb}" for area, verbs in {
    "billing": ("charge_card", "refund_charge", "create_invoice", "sync_stripe", "apply_coupon"),
    "emails": ("send_welcome", "send_receipt", "send_reset", "send_digest", "bounce_check"),
    "reports": ("build_pdf", "build_csv", "aggregate_daily", "export_ledger"),
    "search": ("index_document", "reindex_shard", "purge_deleted"),
    "media": ("resize_image", "transcode_video", "extract_thumbnail", "scan_virus"),
    "users": ("sync_profile", "expire_sessions", "merge_accounts"),
    "webhooks": ("deliver", "retry_failed"),
    "inventory": ("reserve_stock", "release_stock", "reconcile"),
    "analytics": ("track_event",),
}.items() for verb in verbs]
WORKERS = [f"celery@worker-{n:02d}" for n in range(20)]
QUEUES = ["celery"] * 6 + ["high_priority"] * 3 + ["low_priority"]
EXCEPTIONS = ["ValueError('card declined')", "TimeoutError('smtp connect timed out')",
              "KeyError('customer')", "ConnectionError('redis reset by peer')",
              "RuntimeError('pdf renderer crashed')"]
TRACEBACK = ("Traceback (most recent call last):\n"
             + '  File "/app/venv/lib/python3.11/site-packages/celery/app/trace.py", line 453, in trace_task\n'
               "    R = retval = fun(*args, **kwargs)\n" * 4
             + '  File "/app/tasks/billing.py", line 42, in charge_card\n    raise ValueError("card declined")\n'
             + "ValueError: card declined\n")


def make_batch(rng: random.Random, first: int, count: int, start: float, per_task: float
               ) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]], list[str]]:
    """Return ``count`` finished tasks (JSON shapes), their events, and their uuids."""
    tasks: list[dict[str, Any]] = []
    events: list[tuple[str, dict[str, Any]]] = []
    uuids: list[str] = []
    for n in range(first, first + count):
        uuid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        name = NAMES[n % len(NAMES)] if rng.random() < 0.5 else rng.choice(NAMES)
        worker = rng.choice(WORKERS)
        queue = rng.choice(QUEUES)
        customer = rng.randrange(100_000)
        args = f"({rng.randrange(1, 100_000)}, 'cus_{customer:06d}')"
        kwargs = "{}" if n % 3 else f"{{'amount': {rng.randrange(100, 99_999)}, 'currency': 'usd'}}"
        sent = start + n * per_task + rng.uniform(-0.05, 0.0)
        received = sent + rng.uniform(0.001, 0.05)
        started = received + rng.uniform(0.0005, 0.5)
        runtime = round(rng.expovariate(1 / 0.8), 6)
        done = started + runtime
        failed = n % FAILURE_EVERY == 0
        exception = rng.choice(EXCEPTIONS) if failed else None
        if n % RARE_EVERY == 7:
            exception = f"HTTPError('503 from upstream {RARE_WORD}')"
            failed = True
        result = None if failed else f"{{'status': 'ok', 'ref': 'ch_{rng.getrandbits(40):010x}'}}"
        parent = uuids[-1] if uuids and n % 50 == 0 else None
        client = f"gen{n % 4}@web-{n % 4}"
        head = {"name": name, "args": args, "kwargs": kwargs, "retries": 0, "eta": None, "expires": None,
                "parent_id": parent, "root_id": parent or uuid}
        events.append((uuid, {"hostname": client, "timestamp": sent, "type": "task-sent", "queue": queue,
                              "exchange": "", "routing_key": queue, **head}))
        events.append((uuid, {"hostname": worker, "timestamp": received, "type": "task-received", **head}))
        events.append((uuid, {"hostname": worker, "timestamp": started, "type": "task-started"}))
        if failed:
            events.append((uuid, {"hostname": worker, "timestamp": done, "type": "task-failed",
                                  "exception": exception, "traceback": TRACEBACK}))
        else:
            events.append((uuid, {"hostname": worker, "timestamp": done, "type": "task-succeeded",
                                  "result": result, "runtime": runtime}))
        tasks.append({
            "uuid": uuid, "name": name, "state": "FAILURE" if failed else "SUCCESS", "worker": worker,
            "queue": queue, "exchange": "", "routing_key": queue, "sent": sent, "received": received,
            "started": started, "succeeded": None if failed else done, "failed": done if failed else None,
            "retried": None, "revoked": None, "rejected": None, "timestamp": done, "runtime": runtime,
            "retries": 0, "args": args, "kwargs": kwargs, "eta": None, "expires": None, "result": result,
            "exception": exception, "traceback": TRACEBACK if failed else None, "parent_id": parent,
            "root_id": parent or uuid, "children": [], "orphaned": False, "progress": None,
        })
        uuids.append(uuid)
    return tasks, events, uuids


def build(path: str, total: int, start: float) -> tuple[dict[str, Any], list[str]]:
    """Write ``total`` tasks in batches; return the write rates and a sample of uuids."""
    rng = random.Random(42)
    per_task = SPAN_SECONDS / total
    store = open_store(path, max_tasks_stored=total * 2, max_age_seconds=SPAN_SECONDS * 10)
    written_tasks = written_events = 0
    write_seconds = 0.0
    batch_seconds: list[float] = []
    sample: list[str] = []
    began = time.perf_counter()
    for first in range(0, total, BATCH_TASKS):
        tasks, events, uuids = make_batch(rng, first, min(BATCH_TASKS, total - first), start, per_task)
        t0 = time.perf_counter()
        store.write_batch(tasks, events)
        elapsed = time.perf_counter() - t0
        write_seconds += elapsed
        batch_seconds.append(elapsed)
        written_tasks += len(tasks)
        written_events += len(events)
        sample.extend(uuids[::200])
        if first // BATCH_TASKS % 50 == 0:
            print(f"  {written_tasks:>9,} tasks  {written_tasks / write_seconds:>8,.0f} tasks/s "
                  f"(last batch {elapsed * 1000:.0f} ms)", flush=True)
    store.close()
    batch_seconds.sort()
    return {
        "tasks": written_tasks, "events": written_events, "write_seconds": round(write_seconds, 2),
        "wall_seconds": round(time.perf_counter() - began, 2),
        "tasks_per_second": round(written_tasks / write_seconds), "events_per_second":
            round(written_events / write_seconds),
        "batch_ms_p50": round(batch_seconds[len(batch_seconds) // 2] * 1000, 1),
        "batch_ms_max": round(batch_seconds[-1] * 1000, 1),
        "file_mb": round(size_bytes(path) / 1e6),
    }, sample


def size_bytes(db: str) -> int:
    """The history's size on disk: the SQLite file, or every table and index of the PostgreSQL schema."""
    if not is_postgres_url(db):
        return os.path.getsize(db)
    import psycopg
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT sum(pg_total_relation_size(oid)) FROM pg_class "
                           "WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'").fetchone()
    return int(row[0] or 0) if row else 0


def clear(db: str) -> None:
    """Remove the history ``db`` holds: the SQLite file and its -wal and -shm, or the tables of the schema."""
    if not is_postgres_url(db):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        return
    import psycopg
    from dashboard import pgstore
    with psycopg.connect(db, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()]
        ours = set(tables) & ({"dashboard_schema"} | {word for migration in pgstore.MIGRATIONS for statement in
                                                     migration for word in statement.split()})
        if ours:
            conn.execute("DROP TABLE " + ", ".join(sorted(ours)) + " CASCADE")


def timed(runs: int, call: Callable[[int], Any]) -> dict[str, Any]:
    """Run ``call(i)`` ``runs`` times; return p50/p95/max in milliseconds and the last result."""
    times = []
    result = None
    for i in range(runs):
        t0 = time.perf_counter()
        result = call(i)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    out: dict[str, Any] = {"p50_ms": round(statistics.median(times), 2),
                           "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 2),
                           "max_ms": round(times[-1], 2)}
    if isinstance(result, dict) and "total" in result:
        out.update(total=result["total"], estimate=result["total_is_estimate"], items=len(result["items"]))
    return out


def query_suite(store: HistoryStore, runs: int, sample: list[str], start: float) -> dict[str, dict[str, Any]]:
    rng = random.Random(7)
    uuids = rng.sample(sample, runs)
    first = store.query(limit=50)
    second_cursor = first["next"]
    runtime_first = store.query(sort="runtime", limit=50)

    def window(i: int) -> tuple[float, float]:
        """An hour somewhere in the middle of the history, a different one each run."""
        since = start + SPAN_SECONDS * (0.2 + i / runs * 0.6)
        return since, since + 3600

    cases: dict[str, Callable[[int], Any]] = {
        "first page, no filter": lambda i: store.query(limit=50),
        "state=FAILURE": lambda i: store.query(states={"FAILURE"}, limit=50),
        "state=SUCCESS": lambda i: store.query(states={"SUCCESS"}, limit=50),
        "name=X": lambda i: store.query(name=NAMES[i % len(NAMES)], limit=50),
        "worker=Y": lambda i: store.query(worker=WORKERS[i % len(WORKERS)], limit=50),
        "queue=Z": lambda i: store.query(queue=("celery", "high_priority", "low_priority")[i % 3], limit=50),
        "since/until 1 h window": lambda i: store.query(since=window(i)[0], until=window(i)[1], limit=50),
        "state=FAILURE + name=X": lambda i: store.query(states={"FAILURE"}, name=NAMES[i % len(NAMES)], limit=50),
        f"q rare word ({RARE_WORD})": lambda i: store.query(q=RARE_WORD, limit=50),
        "q common word (cus)": lambda i: store.query(q="cus", limit=50),
        "q customer id (cus_0123..)": lambda i: store.query(q=f"cus_{rng.randrange(100_000):06d}", limit=50),
        "q uuid fragment (8 hex)": lambda i: store.query(q=uuids[i][:8], limit=50),
        "q uuid fragment + state=SUCCESS": lambda i: store.query(q=uuids[i][:8], states={"SUCCESS"}, limit=50),
        "q exception word (declined)": lambda i: store.query(q="declined", limit=50),
        # What a search box sends as the first characters are typed: the last word is a prefix
        "q 1 character (c)": lambda i: store.query(q="c", limit=50),
        "q 1 digit (4)": lambda i: store.query(q="4", limit=50),
        "q 2 characters (ch)": lambda i: store.query(q="ch", limit=50),
        "q 2 digits (42)": lambda i: store.query(q="42", limit=50),
        "q 2 characters + state=FAILURE": lambda i: store.query(q="re", states={"FAILURE"}, limit=50),
        "q 3 characters (ref)": lambda i: store.query(q="ref", limit=50),
        "q 3 digits (421)": lambda i: store.query(q="421", limit=50),
        "q 2 characters + sort=runtime": lambda i: store.query(q="ch", sort="runtime", limit=50),
        "q common word + name=X": lambda i: store.query(q="cus", name=NAMES[i % len(NAMES)], limit=50),
        "q common word + sort=runtime": lambda i: store.query(q="cus", sort="runtime", limit=50),
        "sort=runtime": lambda i: store.query(sort="runtime", limit=50),
        "sort=name ascending": lambda i: store.query(sort="name", descending=False, limit=50),
        "second page (cursor)": lambda i: store.query(limit=50, cursor=second_cursor),
        "second page sort=runtime": lambda i: store.query(sort="runtime", limit=50, cursor=runtime_first["next"]),
        "get(uuid)": lambda i: store.get(uuids[i]),
        "recent(100)": lambda i: store.recent(100),
    }
    results = {}
    for label, call in cases.items():
        call(0)  # warm the statement cache; the OS page cache is warm from the build anyway
        results[label] = timed(runs, call)
        print(f"  {label:<34} {results[label]}", flush=True)
    return results


#: The filters the combination sweep takes in every combination, with a value per run.
COMBO_FILTERS: dict[str, Callable[[int, float], dict[str, Any]]] = {
    "state=FAILURE": lambda i, start: {"states": {"FAILURE"}},
    "name": lambda i, start: {"name": NAMES[i % len(NAMES)]},
    "worker": lambda i, start: {"worker": WORKERS[i % len(WORKERS)]},
    "queue": lambda i, start: {"queue": ("celery", "high_priority", "low_priority")[i % 3]},
    "1 h window": lambda i, start: {"since": start + SPAN_SECONDS * (0.3 + i / 50), "until":
                                    start + SPAN_SECONDS * (0.3 + i / 50) + 3600},
}
#: One text term in the sweep: none, a common word, a rare word, or an exception word.
COMBO_TEXT = {"": None, "q=cus": "cus", f"q={RARE_WORD}": RARE_WORD, "q=declined": "declined"}
COMBO_SORTS = {"-received": ("received", True), "received": ("received", False), "-runtime": ("runtime", True),
               "runtime": ("runtime", False), "name": ("name", False)}


def combinations(store: HistoryStore, runs: int, start: float) -> dict[str, Any]:
    """Time every combination of the filters, one text term and each sort; return the slowest ones."""
    import itertools

    rows = []
    names = list(COMBO_FILTERS)
    for size in range(len(names) + 1):
        for chosen in itertools.combinations(names, size):
            for text_label, text in COMBO_TEXT.items():
                for sort_label, (sort, descending) in COMBO_SORTS.items():
                    def call(i: int) -> Any:
                        kwargs: dict[str, Any] = {}
                        for name in chosen:
                            kwargs.update(COMBO_FILTERS[name](i, start))
                        return store.query(q=text, sort=sort, descending=descending, limit=50, **kwargs)
                    call(0)
                    row = timed(runs, call)
                    row["case"] = " + ".join([*chosen, *([text_label] if text_label else []), f"sort={sort_label}"])
                    rows.append(row)
    rows.sort(key=lambda row: -row["p95_ms"])
    over = [row for row in rows if row["p95_ms"] > 100]
    return {"combinations": len(rows), "runs_each": runs, "worst_p95_ms": rows[0]["p95_ms"],
            "over_100_ms": len(over), "slowest": rows[:15]}


def startup(path: str, runs: int, unclean: bool = False) -> dict[str, Any]:
    """Time open + ``recent(100)``; ``unclean`` leaves a -wal file as a crash would (a large file is then checked in the background)."""
    def open_and_warm(i: int) -> None:
        if unclean:
            Path(path + "-wal").touch()
        store = open_store(path)
        store.recent(100)
        store.close()
    return timed(runs, open_and_warm)


def served_after_kill(path: str, runs: int, broker: str) -> dict[str, Any]:
    """Start the dashboard (``run.py``) on ``path``, ``kill -9`` it once it serves, ``runs`` times.

    Each run after the first starts on the file the previous one left by ``kill -9`` (a -wal
    file and all); its time runs from the process start until ``GET /api/tasks`` answers with
    the first page. Also reports how long the background integrity check then took.
    """
    import requests
    from ingest import free_port, wait_for

    times: list[float] = []
    checks: list[float] = []
    for i in range(runs + 1):
        port = free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--db", path, "--broker", broker,
                                 "--port", str(port), "--log-level", "WARNING"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: requests.get(f"{base}/api/tasks?limit=50", timeout=5).status_code == 200, 120,
                     "the first page")
            served = time.perf_counter() - t0
            if i:  # the first start follows a clean close; the others follow a kill -9
                times.append(served * 1000)
                wait_for(lambda: requests.get(f"{base}/api/health", timeout=5).json()["store"]["integrity"]
                         != "checking", 120, "the integrity check")
                checks.append((time.perf_counter() - t0) * 1000)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    times.sort()
    return {"runs": runs, "p50_ms": round(statistics.median(times)), "max_ms": round(times[-1]),
            "integrity_checked_after_ms": round(statistics.median(checks)),
            "wal_left": os.path.exists(path + "-wal")}


def live_upserts(path: str, count: int, start: float) -> dict[str, Any]:
    """Write ``count`` new tasks as a live cluster does: each task in two batches (received, then done)."""
    rng = random.Random(99)
    store = open_store(path)
    tasks, events, _ = make_batch(rng, 10_000_000, count, start + SPAN_SECONDS, 0.001)
    seconds = 0.0
    half = BATCH_TASKS // 2
    for offset in range(0, count, half):
        chunk = tasks[offset:offset + half]
        chunk_events = events[offset * 4:(offset + half) * 4]
        early = [{**t, "state": "RECEIVED", "started": None, "succeeded": None, "failed": None,
                  "runtime": None, "result": None, "exception": None, "traceback": None,
                  "timestamp": t["received"]} for t in chunk]
        early_events = [e for e in chunk_events if e[1]["type"] in ("task-sent", "task-received")]
        late_events = [e for e in chunk_events if e[1]["type"] not in ("task-sent", "task-received")]
        t0 = time.perf_counter()
        store.write_batch(early, early_events)  # first sight of these tasks ...
        store.write_batch(chunk, late_events)  # ... and their completion in the next flush
        seconds += time.perf_counter() - t0
    store.close()
    return {"tasks": count, "upserts_per_task": 2, "tasks_per_second": round(count / seconds),
            "events_per_second": round(len(events) / seconds)}


def prune_under_load(path: str, start: float, total: int) -> dict[str, Any]:
    """Prune about a tenth of the rows by age while one thread reads and one writes; time all three."""
    store = open_store(path, max_age_seconds=SPAN_SECONDS * 0.9, max_tasks_stored=total * 2)
    stop = threading.Event()
    reader_ms: list[float] = []
    writer_ms: list[float] = []

    def reader() -> None:
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            store.query(states={"FAILURE"}, limit=50) if i % 2 else store.query(limit=50)
            reader_ms.append((time.perf_counter() - t0) * 1000)
            i += 1

    def writer() -> None:
        rng = random.Random(5)
        n = 20_000_000
        while not stop.is_set():
            tasks, events, _ = make_batch(rng, n, 500, start + SPAN_SECONDS * 2, 0.001)
            n += 500
            t0 = time.perf_counter()
            store.write_batch(tasks, events)
            writer_ms.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.25)

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    deleted = store.prune(now=start + SPAN_SECONDS + 1)
    seconds = time.perf_counter() - t0
    stop.set()
    for thread in threads:
        thread.join()
    store.close()
    reader_ms.sort()
    return {"deleted": deleted, "seconds": round(seconds, 2), "reader_queries": len(reader_ms),
            "reader_max_ms": round(reader_ms[-1], 1), "reader_p95_ms": round(reader_ms[int(len(reader_ms) * .95)], 1),
            "writer_batches": len(writer_ms),
            "writer_batch_max_ms": round(max(writer_ms), 1) if writer_ms else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--db", help="database file (default: a temporary file, removed at the end)")
    parser.add_argument("--reuse", action="store_true", help="query an existing --db instead of building it")
    parser.add_argument("--no-prune", action="store_true", help="skip the prune measurement (it deletes rows)")
    parser.add_argument("--combinations", type=int, default=5, metavar="RUNS",
                        help="runs of each filter/text/sort combination (0 skips the sweep)")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/15",
                        help="broker the served start-up measurement subscribes to")
    options = parser.parse_args()
    start = 1_790_000_000.0
    tmp = None
    if options.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="store-bench-")
        options.db = os.path.join(tmp.name, "store.db")
    report: dict[str, Any] = {"tasks": options.tasks, "runs": options.runs, "batch_tasks": BATCH_TASKS,
                              "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    import sqlite3
    report["sqlite"] = sqlite3.sqlite_version
    if is_postgres_url(options.db):
        import psycopg
        with psycopg.connect(options.db) as conn:
            report["postgresql"] = conn.info.server_version
    postgres = is_postgres_url(options.db)
    sample_path = (os.path.join(tempfile.gettempdir(), f"store-bench-{zlib.crc32(options.db.encode())}.sample.json")
                   if postgres else options.db + ".sample.json")
    if options.reuse:
        sample = json.loads(Path(sample_path).read_text())
    else:
        clear(options.db)
        print(f"building {options.tasks:,} tasks in {options.db}", flush=True)
        report["build"], sample = build(options.db, options.tasks, start)
        Path(sample_path).write_text(json.dumps(sample))
        print(f"  {report['build']}", flush=True)
    if postgres:  # what autovacuum (on by default) has done by the time a history is this large
        import psycopg
        with psycopg.connect(options.db, autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute("VACUUM (ANALYZE) tasks, events")
            print(f"VACUUM (ANALYZE) in {time.perf_counter() - t0:.1f} s", flush=True)
    print("start-up: open + recent(100)", flush=True)
    report["startup"] = startup(options.db, 5)
    print(f"  {report['startup']}", flush=True)
    if not postgres:
        print("start-up after an unclean shutdown: open + recent(100) (a large file is checked in the background)",
              flush=True)
        report["startup_unclean"] = startup(options.db, 3, unclean=True)
        print(f"  {report['startup_unclean']}", flush=True)
    print("served after kill -9: process start until GET /api/tasks answers", flush=True)
    report["served_after_kill"] = served_after_kill(options.db, 3, options.broker)
    print(f"  {report['served_after_kill']}", flush=True)
    store = open_store(options.db)
    print("queries", flush=True)
    report["queries"] = query_suite(store, options.runs, sample, start)
    if options.combinations:
        print("every combination of filters, one text term and a sort", flush=True)
        report["combinations"] = combinations(store, options.combinations, start)
        sweep = report["combinations"]
        print(f"  {sweep['combinations']} combinations: worst p95 {sweep['worst_p95_ms']} ms, "
              f"{sweep['over_100_ms']} over 100 ms", flush=True)
        for row in sweep["slowest"][:8]:
            print(f"    {row['case']:<70} p95 {row['p95_ms']} ms", flush=True)
    store.close()
    print("live-like upserts (each task written twice)", flush=True)
    report["live_upserts"] = live_upserts(options.db, 20_000, start)
    print(f"  {report['live_upserts']}", flush=True)
    if not options.no_prune:
        print("prune ~10% by age under a concurrent reader and writer", flush=True)
        report["prune"] = prune_under_load(options.db, start, options.tasks)
        print(f"  {report['prune']}", flush=True)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"store-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(f"{'case':<36} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'total':>10}")
    for label, row in {"open + recent(100)": report["startup"],
                       **({"open after a crash": report["startup_unclean"]} if "startup_unclean" in report else {}), **report["queries"]}.items():
        total = f"{'~' if row.get('estimate') else ''}{row['total']:,}" if "total" in row else ""
        print(f"{label:<36} {row['p50_ms']:>9} {row['p95_ms']:>9} {row['max_ms']:>9} {total:>10}")
    print(f"results: {out}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
