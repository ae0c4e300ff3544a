"""Replay benchmark: the dashboard's CPU per event, in one thread, without the publishers' noise.

``capture`` records a real event stream off Redis: the comparison's generator (per-worker mode by
default: one ``PUBLISH`` per event from 8 processes) publishes into a ``redis-server`` of its own while a
subscriber keeps every message as it arrived, with its time. ``run`` feeds the captured messages to a
dashboard built in this process (``create_app``, threading mode, its SQLite history in a temporary
folder, nothing started), in real time, as its Redis reader does: what arrived, read once per flush
interval (``--gather`` seconds apart to try another) in batches of up to ``MAX_BATCH_EVENTS`` messages, decoded
(``decode_envelope``) and handed to ``on_batch``; a live flush (``LiveHub.flush``, no client connected)
every flush interval; a history flush every ``WRITE_INTERVAL_SECONDS``. Everything runs in this one
thread, with the process's garbage-collector settings, so its CPU time is what the dashboard spends on
the event path, split by part: decoding, checking and applying, the live push's work, the history's
drain and release, and the store's write. The events' timestamps are moved to the replay's time.

    bench/.venv/bin/python bench/replay.py capture --out /tmp/stream.pickle --rate 5000 --seconds 20
    bench/.venv/bin/python bench/replay.py run /tmp/stream.pickle --runs 3

The figures vary less between runs than the comparison's, where 8 publishing processes share the cores
with the system measured, but still move with the machine: compare two versions of the code alternately.
It leaves out what the comparison counts besides: reading the socket (hiredis) and pushing to a client.
"""
from __future__ import annotations

import argparse
import base64
import gc
import json
import pickle
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def capture(args: argparse.Namespace) -> int:
    """Publish the generator's stream into a redis-server of its own (or ``args.broker``'s) and keep it."""
    import redis

    from generator import Plan, publish

    with tempfile.TemporaryDirectory(prefix="replay-") as workdir:
        if args.broker:
            server, url = None, args.broker
        else:
            from systems import RedisServer

            server = RedisServer(Path(workdir))
            url = server.url
        try:
            messages: list[tuple[float, bytes]] = []
            pubsub = redis.Redis.from_url(url).pubsub()
            pubsub.psubscribe("*.celeryev/*")  # kombu's channels for the event exchange
            stop = threading.Event()

            def listen() -> None:
                while not stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None and message["type"] == "pmessage":
                        messages.append((time.monotonic(), message["data"]))

            listener = threading.Thread(target=listen)
            listener.start()
            plan = Plan(url, args.rate, args.seconds, None, 1.0, args.generator, workers=8)
            report = publish(plan, args.processes)
            time.sleep(1.0)  # what is still on its way
            stop.set()
            listener.join()
            pubsub.close()
        finally:
            if server is not None:
                server.stop()
    start = messages[0][0] if messages else 0.0
    with open(args.out, "wb") as file:
        pickle.dump([(t - start, data) for t, data in messages], file)
    print(f"captured {len(messages):,} of {report.events:,} events published in {report.seconds:.1f} s "
          f"to {args.out}")
    return 0


def shifted(data: bytes, offset: float) -> bytes:
    """Return a kombu message with its event's (or events') timestamp moved by ``offset`` seconds."""
    envelope = json.loads(data)
    body = json.loads(base64.b64decode(envelope["body"]))
    for event in body if isinstance(body, list) else [body]:
        if isinstance(event.get("timestamp"), (int, float)):
            event["timestamp"] += offset
    envelope["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps(envelope).encode()


def replay_once(messages: list[tuple[float, bytes]], gather: float) -> dict[str, float]:
    from dashboard import create_app
    from dashboard.history import WRITE_INTERVAL_SECONDS
    from dashboard.redis_stream import MAX_BATCH_EVENTS, decode_envelope
    from dashboard.server import tune_gc
    from dashboard.settings import Settings

    tune_gc()  # as run.py does

    with tempfile.TemporaryDirectory(prefix="replay-") as folder:
        settings = Settings(db=str(Path(folder) / "replay.db"), async_mode="threading", max_tasks=100_000)
        dashboard = create_app(settings).extensions["dashboard"]
        collector, hub, history, store = dashboard.collector, dashboard.hub, dashboard.history, dashboard.store
        spent = {"decode": 0.0, "apply": 0.0, "live": 0.0, "history": 0.0, "store_write": 0.0}
        write_batch = store.write_batch

        def timed_write(*a: Any) -> None:
            began = time.thread_time()
            write_batch(*a)
            spent["store_write"] += time.thread_time() - began

        store.write_batch = timed_write  # type: ignore[method-assign]
        flush_every = settings.flush_interval_seconds
        stream = [(t, shifted(data, time.time() - _first_timestamp(messages))) for t, data in messages]
        gc.collect()
        began_wall = time.monotonic()
        next_live, next_write, index = flush_every, WRITE_INTERVAL_SECONDS, 0
        cpu_began = time.thread_time()
        next_read = 0.0
        while index < len(stream):
            elapsed = time.monotonic() - began_wall
            wake = min(next_read, next_live, next_write)
            if elapsed < wake:  # the reader waits ``gather`` between reads, or for the next flush
                time.sleep(wake - elapsed)
                elapsed = time.monotonic() - began_wall
            next_read = elapsed + gather
            while index < len(stream) and stream[index][0] <= elapsed:
                batch = []
                t0 = time.thread_time()
                while index < len(stream) and stream[index][0] <= elapsed and len(batch) < MAX_BATCH_EVENTS:
                    batch.append(decode_envelope(stream[index][1], 1 << 20))
                    index += 1
                t1 = time.thread_time()
                collector.on_batch(batch)
                spent["decode"] += t1 - t0
                spent["apply"] += time.thread_time() - t1
            if elapsed >= next_live:
                t0 = time.thread_time()
                hub.flush()
                spent["live"] += time.thread_time() - t0
                next_live += flush_every
            if elapsed >= next_write:
                t0 = time.thread_time()
                history.flush()
                spent["history"] += time.thread_time() - t0
                next_write += WRITE_INTERVAL_SECONDS
        t0 = time.thread_time()
        history.close()
        spent["history"] += time.thread_time() - t0
        total = time.thread_time() - cpu_began
        store.close()
    events = collector.received
    spent["history"] -= spent["store_write"]  # the drain and the release alone
    figures = {f"{part}_us_per_event": round(seconds * 1e6 / max(events, 1), 2) for part, seconds in spent.items()}
    figures["total_us_per_event"] = round(total * 1e6 / max(events, 1), 2)
    figures["events"] = events
    return figures


def _first_timestamp(messages: list[tuple[float, bytes]]) -> float:
    body = json.loads(base64.b64decode(json.loads(messages[0][1])["body"]))
    return float((body[0] if isinstance(body, list) else body)["timestamp"])


def run(args: argparse.Namespace) -> int:
    with open(args.stream, "rb") as file:
        messages = pickle.load(file)
    if args.seconds:
        messages = [m for m in messages if m[0] <= args.seconds]
    from dashboard.settings import Settings

    gather = Settings().flush_interval_seconds if args.gather is None else args.gather
    results = []
    for number in range(args.runs):
        figures = replay_once(messages, gather)
        results.append(figures)
        print(f"run {number + 1}: " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)
    keys = [k for k in results[0] if k.endswith("_us_per_event")]
    print("median: " + ", ".join(f"{k} {statistics.median(r[k] for r in results):.2f}" for k in keys))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    take = commands.add_parser("capture", help="record a generated event stream")
    take.add_argument("--out", required=True)
    take.add_argument("--rate", type=float, default=5000.0)
    take.add_argument("--seconds", type=float, default=20.0)
    take.add_argument("--processes", type=int, default=8)
    take.add_argument("--generator", default="dispatcher", help="see generator.py (default: one PUBLISH per event)")
    take.add_argument("--broker", help="publish to this redis:// URL's database (default: a redis-server of its own)")
    again = commands.add_parser("run", help="replay a captured stream into a dashboard in this process")
    again.add_argument("stream")
    again.add_argument("--runs", type=int, default=3)
    again.add_argument("--seconds", type=float, help="replay only the first SECONDS of the stream")
    again.add_argument("--gather", type=float, help="seconds between two reads (default: the reader's own)")
    args = parser.parse_args()
    return capture(args) if args.command == "capture" else run(args)


if __name__ == "__main__":
    sys.exit(main())
