"""Webhook deliveries: retried with backoff until the receiver answers, dropped after the last attempt."""
from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from dashboard import alerts
from dashboard.alerts import WebhookNotifier
from helpers import wait_until

DOCUMENT = {"event": "worker-lost", "hostname": "w@h", "time": 1.0, "last_heartbeat": 0.5, "orphaned": ["t1"]}


class FlakyReceiver:
    """Answers 500 to the first ``failures`` POSTs, then 204; records what it got."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.attempts += 1
                if outer.attempts <= outer.failures:
                    self.send_response(500)
                else:
                    outer.received.append(body)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "RETRY_START_SECONDS", 0.01)
    monkeypatch.setattr(alerts, "POLL_SECONDS", 0.005)


@pytest.fixture
def running() -> Iterator[list[WebhookNotifier]]:
    notifiers: list[WebhookNotifier] = []
    yield notifiers
    for notifier in notifiers:
        notifier.stop()


def start(notifier: WebhookNotifier, running: list[WebhookNotifier]) -> None:
    running.append(notifier)
    threading.Thread(target=notifier.run, daemon=True).start()


def test_a_failing_receiver_gets_the_document_after_retries(fast_retries: None, running: list[WebhookNotifier]) -> None:
    receiver = FlakyReceiver(failures=2)
    notifier = WebhookNotifier((receiver.url,))
    start(notifier, running)
    notifier.notify(DOCUMENT)
    wait_until(lambda: notifier.delivered == 1, 5, message="never delivered")
    assert receiver.received == [DOCUMENT] and receiver.attempts == 3 and notifier.failed == 0
    receiver.close()


def test_delivery_gives_up_after_the_last_attempt(fast_retries: None, running: list[WebhookNotifier]) -> None:
    receiver = FlakyReceiver(failures=100)
    notifier = WebhookNotifier((receiver.url,))
    start(notifier, running)
    notifier.notify(DOCUMENT)
    wait_until(lambda: notifier.failed == 1, 5, message="never gave up")
    assert receiver.attempts == alerts.MAX_ATTEMPTS and receiver.received == []
    receiver.close()


class GarbageFirst:
    """A receiver that answers its first request with bytes that are not HTTP, and 204 to the rest."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.requests = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            with connection:
                self.read_request(connection)
                self.requests += 1
                connection.sendall(b"GARBAGE\r\n\r\n" if self.requests == 1 else b"HTTP/1.0 204 No Content\r\n\r\n")

    @staticmethod
    def read_request(connection: socket.socket) -> None:
        """Read the whole request first, so the client reads the answer rather than a reset connection."""
        connection.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                return
            body += chunk

    def close(self) -> None:
        self.listener.close()


def test_an_answer_that_is_not_http_is_retried_like_any_failed_delivery(
        fast_retries: None, running: list[WebhookNotifier], caplog: pytest.LogCaptureFixture) -> None:
    receiver = GarbageFirst()
    notifier = WebhookNotifier((receiver.url,))
    with caplog.at_level(logging.INFO, logger="dashboard.alerts"):
        start(notifier, running)
        notifier.notify(DOCUMENT)
        wait_until(lambda: notifier.delivered == 1, 5, message="never delivered")
    assert receiver.requests == 2 and notifier.failed == 0
    assert any("BadStatusLine" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert not any(r.exc_info for r in caplog.records)
    receiver.close()


def test_a_document_a_bug_drops_is_counted(fast_retries: None, running: list[WebhookNotifier],
                                           caplog: pytest.LogCaptureFixture) -> None:
    def broken(document: Any) -> Any:
        raise TypeError("a bug")

    internal: list[int] = []
    notifier = WebhookNotifier(("http://127.0.0.1:9/hook",), render=broken,
                               count_internal_error=lambda: internal.append(1))
    with caplog.at_level(logging.ERROR, logger="dashboard.alerts"):
        start(notifier, running)
        notifier.notify(DOCUMENT)
        wait_until(lambda: notifier.failed == 1, 5, message="never counted")
    wait_until(lambda: any(r.exc_info for r in caplog.records), 5, message="never logged")
    assert notifier.delivered == 0 and not notifier.pending and internal == [1]
