"""What a page of another site can do with the dashboard: nothing."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests
import socketio

from helpers import start_dashboard, wait_broker_connected

pytestmark = pytest.mark.integration


def test_the_live_socket_refuses_other_origins_and_pages_send_a_strict_csp(redis_port: int, log_dir: Path) -> None:
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/4", log_dir)
    try:
        wait_broker_connected(dashboard)
        foreign = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            foreign.connect(dashboard.url, namespaces=["/live"], transports=["websocket"], wait_timeout=5,
                            headers={"Origin": "http://evil.example"})
        own = socketio.Client(reconnection=False)  # no Origin header, as a script; the browser tests cover pages
        own.connect(dashboard.url, namespaces=["/live"], transports=["websocket"], wait_timeout=5)
        own.disconnect()

        page = dashboard.get("/")
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert "<script>" not in page.text  # the bootstrap data is JSON, never an inline script
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        dashboard.stop()


def test_dns_rebinding_is_refused_on_every_door(redis_port: int, log_dir: Path) -> None:
    """A page at http://evil.example:PORT whose name resolves to 127.0.0.1 sends Host and Origin evil.example."""
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/4", log_dir)
    try:
        wait_broker_connected(dashboard)
        evil = {"Host": f"evil.example:{dashboard.port}", "Origin": f"http://evil.example:{dashboard.port}"}
        for path in ("/api/workers", "/api/tasks", "/", "/socket.io/?EIO=4&transport=polling"):
            response = requests.get(dashboard.url + path, headers=evil, timeout=5)
            assert response.status_code == 421, (path, response.status_code)
        response = requests.post(dashboard.url + "/api/workers/x/inspect", headers=evil, json={}, timeout=5)
        assert response.status_code == 421
        foreign = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            foreign.connect(dashboard.url, namespaces=["/live"], transports=["websocket"], wait_timeout=5,
                            headers=evil)
        assert dashboard.get("/api/workers").status_code == 200  # its own names still work
        assert dashboard.get("/api/workers", headers={"Host": f"localhost:{dashboard.port}"}).status_code == 200
    finally:
        dashboard.stop()


def test_half_open_connections_do_not_starve_the_server(redis_port: int, log_dir: Path) -> None:
    """200 clients that send half a request head and then nothing (slowloris): the API still answers at once."""
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/4", log_dir, extra_args=("--header-timeout", "3"))
    sockets: list[socket.socket] = []
    try:
        wait_broker_connected(dashboard)
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", dashboard.port), timeout=5)
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            sockets.append(sock)
        for _ in range(5):
            started = time.monotonic()
            assert dashboard.get("/api/health").status_code == 200
            assert time.monotonic() - started < 1.0
        # The header deadline closes them: each read ends (b"") instead of waiting for ever.
        for sock in sockets[:20]:
            sock.settimeout(10)
            assert sock.recv(1024) == b""
    finally:
        for sock in sockets:
            sock.close()
        dashboard.stop()


def test_an_allowed_origin_may_open_the_live_socket_and_nothing_else(redis_port: int, log_dir: Path) -> None:
    grafana = "https://grafana.example.com"
    dashboard = start_dashboard(f"redis://127.0.0.1:{redis_port}/4", log_dir, extra_args=("--allowed-origins", grafana))
    try:
        wait_broker_connected(dashboard)
        allowed = socketio.Client(reconnection=False)  # polling: websocket-client adds an Origin of its own
        allowed.connect(dashboard.url, namespaces=["/live"], transports=["polling"], wait_timeout=5,
                        headers={"Origin": grafana})
        allowed.disconnect()
        other = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            other.connect(dashboard.url, namespaces=["/live"], transports=["polling"], wait_timeout=5,
                          headers={"Origin": "https://evil.example"})
        post = requests.post(f"{dashboard.url}/api/tasks/x/revoke", json={}, headers={"Origin": grafana}, timeout=5)
        assert post.status_code == 403  # the API still takes the dashboard's own pages only
    finally:
        dashboard.stop()
