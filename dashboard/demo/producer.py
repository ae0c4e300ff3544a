"""Demo producer: sends a realistic, endless mix of tasks to the demo cluster until SIGTERM/SIGINT.

Run with ``python -m dashboard.demo.producer``. Needs no result backend: it never waits on a result.
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from celery import chain, group
from kombu.exceptions import OperationalError

from dashboard.demo.tasks import (
    add,
    app,
    fail_payment,
    flaky_fetch,
    progress_job,
    resize_image,
    send_email,
    slow_report,
)

logger = logging.getLogger(__name__)

#: Shortest pause between two sends, in seconds (≈8 sends per second at most).
MIN_PAUSE_SECONDS = 0.125
#: Longest pause between two sends, in seconds (≈3 sends per second at least).
MAX_PAUSE_SECONDS = 0.33
#: Mean interval between canvas sends (a chain or a group, alternately), in seconds.
CANVAS_INTERVAL_SECONDS = 20.0
#: Pause after a failed publish, in seconds (doubles up to the maximum).
ERROR_BACKOFF_SECONDS = 1.0
#: Ceiling of the pause after failed publishes, in seconds.
MAX_ERROR_BACKOFF_SECONDS = 30.0

_CUSTOMERS = ("alice", "bob", "carol", "dmitri", "erin", "farah", "gustavo", "hana", "ivan", "julia")
_DOMAINS = ("example.com", "example.org", "shop.example.net")
_SUBJECTS = ("Your order has shipped", "Password reset", "Welcome aboard!", "Invoice available", "Weekly digest")
_IMAGE_DIRS = ("/srv/media/uploads", "/srv/media/avatars", "/srv/media/products")
_API_HOSTS = ("api.partner.example.com", "inventory.example.org", "rates.example.net")


def _order_id() -> str:
    return f"ORD-{random.randint(100000, 999999)}"


def _email() -> str:
    return f"{random.choice(_CUSTOMERS)}@{random.choice(_DOMAINS)}"


def _image_path() -> str:
    return f"{random.choice(_IMAGE_DIRS)}/{random.randint(1, 99999):05d}.{random.choice(('jpg', 'png', 'webp'))}"


def _url() -> str:
    return f"https://{random.choice(_API_HOSTS)}/v1/items/{random.randint(1, 5000)}"


def send_add() -> None:
    """Send a quick addition to the default queue."""
    add.apply_async((random.randint(0, 500), random.randint(0, 500)))


def send_urgent_add() -> None:
    """Send a quick addition to ``high_priority``."""
    add.apply_async((random.randint(0, 50), random.randint(0, 50)), queue="high_priority", priority=9)


def send_mail() -> None:
    """Send a transactional email task (routed to ``high_priority``)."""
    send_email.apply_async((_email(), random.choice(_SUBJECTS)), queue="high_priority", priority=8)


def send_resize() -> None:
    """Send a thumbnail job to ``low_priority``."""
    resize_image.apply_async((_image_path(), random.choice((128, 256, 640, 1280))), queue="low_priority", priority=1)


def send_payment() -> None:
    """Send a payment that will be declined (a failure with a traceback)."""
    fail_payment.apply_async((_order_id(),))


def send_fetch() -> None:
    """Send a fetch that times out once or twice, then succeeds."""
    flaky_fetch.apply_async((_url(),))


def send_report() -> None:
    """Send a slow report (5-30 s) to ``low_priority``."""
    slow_report.apply_async((random.randint(5, 30),), queue="low_priority", priority=0)


def send_progress() -> None:
    """Send a job that reports its progress."""
    progress_job.apply_async((random.randint(5, 20),))


def send_chain() -> None:
    """Send a three-step chain of additions."""
    chain(add.s(random.randint(1, 9), random.randint(1, 9)), add.s(10), add.s(100)).apply_async()


def send_group() -> None:
    """Send a group of thumbnails of one image."""
    path = _image_path()
    group(resize_image.s(path, width) for width in (128, 256, 640)).apply_async(queue="low_priority")


#: The weighted mix of single sends, as (sender, weight).
MIX: tuple[tuple[Callable[[], None], int], ...] = (
    (send_add, 50),
    (send_urgent_add, 6),
    (send_mail, 12),
    (send_resize, 10),
    (send_payment, 6),
    (send_fetch, 8),
    (send_report, 2),
    (send_progress, 2),
)


def run(stop: threading.Event) -> None:
    """Send the mix until ``stop`` is set."""
    senders = [sender for sender, _ in MIX]
    weights = [weight for _, weight in MIX]
    canvases = [send_chain, send_group]
    next_canvas = time.monotonic() + random.uniform(1.0, CANVAS_INTERVAL_SECONDS)
    backoff = ERROR_BACKOFF_SECONDS
    sent = 0
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_canvas:
            sender = canvases[0]
            canvases.reverse()
            next_canvas = now + random.uniform(0.5, 1.5) * CANVAS_INTERVAL_SECONDS
        else:
            sender = random.choices(senders, weights)[0]
        try:
            sender()
        except OperationalError:
            logger.exception("Publishing with %s failed; retrying in %.0f s", sender.__name__, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_ERROR_BACKOFF_SECONDS)
            continue
        backoff = ERROR_BACKOFF_SECONDS
        sent += 1
        if sent % 500 == 0:
            logger.info("Sent %d task batches", sent)
        stop.wait(random.uniform(MIN_PAUSE_SECONDS, MAX_PAUSE_SECONDS))


def main() -> int:
    """Run the producer until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # "filesystem://" has no host; kombu warns about that on every connection.
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"Demo producer sending tasks to {app.conf.broker_url} (Ctrl-C to stop)", flush=True)
    run(stop)
    app.pool.force_close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
