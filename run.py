import eventlet
eventlet.monkey_patch()  # must run before anything else is imported: sockets, threads and time go green

# run.py: start the Celery dashboard under eventlet, the default async mode.
# This is the only module that imports eventlet; `python -m dashboard` runs the
# same server with the threading async mode.
import socket  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import eventlet.wsgi  # noqa: E402
from eventlet import tpool  # noqa: E402

from dashboard.server import main  # noqa: E402
from dashboard.settings import Settings  # noqa: E402

#: Native threads for blocking calls; each keeps its own SQLite connection and page cache. One of them at a
#: time may be the queue sampler's broker read (up to the broker's timeouts when it does not answer).
TPOOL_THREADS = 5
#: Longest wait on any one read or write of a connection before it is closed, in seconds (live
#: sockets set their own, from the ping interval and timeout).
SOCKET_TIMEOUT_SECONDS = 60.0


class HeaderDeadlineProtocol(eventlet.wsgi.HttpProtocol):
    """eventlet's HTTP protocol with one deadline for a request's line and headers.

    A client that sends its request a byte at a time (slowloris) keeps each read short, so
    a per-read timeout never fires; this deadline covers the whole request head, and an
    idle kept-alive connection waiting for its next request.
    """

    header_timeout = 10.0
    _deadline: Any = None

    def setup(self) -> None:
        """Send each write at once (TCP_NODELAY). eventlet writes a response's head and a body larger than
        its buffer in two writes; with Nagle's algorithm the body then waits for the client to acknowledge
        the head, which a client on a kept-alive connection delays by 40 ms (Linux) to 200 ms (Windows)."""
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not a TCP socket
            pass

    def _read_request_line(self) -> Any:
        self._deadline = eventlet.Timeout(self.header_timeout)
        try:
            return super()._read_request_line()
        except eventlet.Timeout as timeout:
            if timeout is not self._deadline:
                raise
            self.close_connection = 1
            return ""

    def parse_request(self) -> bool:
        try:
            return super().parse_request()
        except eventlet.Timeout as timeout:
            if timeout is not self._deadline:
                raise
            self.close_connection = 1
            return False
        finally:
            self._cancel_deadline()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            self._cancel_deadline()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def server_options(settings: Settings) -> dict[str, Any]:
    """Return eventlet's WSGI server options: a connection cap, timeouts for slow clients, no tracebacks."""
    protocol = type("DashboardProtocol", (HeaderDeadlineProtocol,),
                    {"header_timeout": settings.header_timeout_seconds})
    return {"max_size": settings.max_connections, "protocol": protocol, "debug": False,
            "socket_timeout": SOCKET_TIMEOUT_SECONDS}


if __name__ == "__main__":
    # SQLite calls block: under eventlet they run in tpool's native threads, never on the hub.
    tpool.set_num_threads(TPOOL_THREADS)
    sys.exit(main(async_mode="eventlet", run_blocking=tpool.execute, server_options=server_options))
