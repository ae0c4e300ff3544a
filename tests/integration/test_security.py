"""What a page of another site can do with the dashboard: nothing."""
from __future__ import annotations

from pathlib import Path

import pytest
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
