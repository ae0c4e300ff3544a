"""Record the raw Celery event stream of a broker into a JSON-lines file, for replay in tests.

Each line is one event body exactly as it came off the broker (before Celery's
receiver adjusts clocks and timestamps), plus ``local_received``, the time it
arrived here. With ``--wire`` (Redis only), each line is instead one pub/sub
message exactly as Redis delivered it, ``{"channel": ..., "data": ...}``: kombu's
envelope with the base64 event body inside.

    python scripts/record_events.py --broker redis://localhost:6379/0 --seconds 30 --out tests/data/run.jsonl
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

import redis
from celery import Celery
from celery.events.receiver import EventReceiver


class RecordingReceiver(EventReceiver):
    """A receiver that writes every raw event body to a file."""

    def __init__(self, channel: Any, out: Any, seconds: float, **kwargs: Any) -> None:
        super().__init__(channel, **kwargs)
        self.out = out
        self.count = 0
        self.deadline = time.monotonic() + seconds

    def on_iteration(self) -> None:
        if time.monotonic() >= self.deadline:
            self.should_stop = True

    def _receive(self, body: Any, message: Any, *args: Any) -> None:
        for event in body if isinstance(body, list) else (body,):
            self.out.write(json.dumps({**event, "local_received": time.time()}) + "\n")
            self.count += 1


def record_wire(broker: str, seconds: float, out: Any) -> int:
    """Write every message of the event fanout as Redis delivers it; return how many."""
    client = redis.Redis.from_url(broker)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(f"/{db}.celeryev/*")
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message and message["type"] == "pmessage":
            out.write(json.dumps({"channel": message["channel"].decode(), "data": message["data"].decode()}) + "\n")
            count += 1
    pubsub.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--wire", action="store_true", help="record Redis pub/sub messages as delivered")
    args = parser.parse_args()
    if args.wire:
        with open(args.out, "w") as out:
            print(f"recorded {record_wire(args.broker, args.seconds, out)} messages to {args.out}")
        return
    app = Celery(broker=args.broker, set_as_current=False)
    with app.connection_for_read() as connection, open(args.out, "w") as out:
        receiver = RecordingReceiver(connection, out, args.seconds, app=app, accept=["json"])
        receiver.capture(limit=None, timeout=None, wakeup=True)
        print(f"recorded {receiver.count} events to {args.out}")


if __name__ == "__main__":
    main()
