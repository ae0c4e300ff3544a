"""Record the raw Celery event stream of a broker into a JSON-lines file, for replay in tests.

Each line is one event body exactly as it came off the broker (before Celery's
receiver adjusts clocks and timestamps), plus ``local_received``, the time it
arrived here.

    python scripts/record_events.py --broker redis://localhost:6379/0 --seconds 30 --out tests/data/run.jsonl
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    app = Celery(broker=args.broker, set_as_current=False)
    with app.connection_for_read() as connection, open(args.out, "w") as out:
        receiver = RecordingReceiver(connection, out, args.seconds, app=app, accept=["json"])
        receiver.capture(limit=None, timeout=None, wakeup=True)
        print(f"recorded {receiver.count} events to {args.out}")


if __name__ == "__main__":
    main()
