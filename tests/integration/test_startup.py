"""Start-up: a broker that is not there yet (a "connecting" state and a log line, never a crash), and an
address anyone could reach while nobody has to log in (refused, with a message; served with --auth-file)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import redis
import requests

from helpers import PYTHON, REPO_ROOT, free_port, start_dashboard, start_redis, wait_broker_connected, wait_until

pytestmark = pytest.mark.integration


def test_dashboard_waits_for_a_broker_that_is_not_up_yet(log_dir: Path) -> None:
    port = free_port()
    broker = f"redis://:s3cret@127.0.0.1:{port}/0"
    dashboard = start_dashboard(broker, log_dir)
    redis_proc = None
    try:
        health = wait_until(lambda: (h := dashboard.health())["broker"]["error"] and h, 10,
                            message=lambda: f"no error reported: {dashboard.health()}")
        assert health["status"] == "degraded" and health["broker"]["status"] == "connecting"
        assert health["broker"]["url"] == f"redis://:****@127.0.0.1:{port}/0"
        assert dashboard.get("/").status_code == 200 and dashboard.proc.alive()
        log = dashboard.proc.log_path.read_text()
        assert f"waiting for the broker at redis://:****@127.0.0.1:{port}/0" in log
        assert "s3cret" not in log and "s3cret" not in dashboard.get("/api/health").text

        redis_proc = start_redis(port, log_dir, name="redis-late")
        redis.Redis(port=port).config_set("requirepass", "s3cret")  # the URL's password is the real one
        assert wait_broker_connected(dashboard, 20)["status"] == "ok"
    finally:
        dashboard.stop()
        if redis_proc is not None:
            redis_proc.stop()


def test_starting_on_a_reachable_address_without_a_login_exits_with_a_clear_message() -> None:
    done = subprocess.run([PYTHON, str(REPO_ROOT / "run.py"), "--address", "0.0.0.0", "--port", str(free_port())],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"})
    assert done.returncode == 2
    assert "--address 0.0.0.0: not a loopback address" in done.stderr and "--insecure-no-auth" in done.stderr


def test_with_an_auth_file_it_serves_on_any_address_and_asks_for_credentials(tmp_path: Path, log_dir: Path) -> None:
    auth_file = tmp_path / "auth.toml"
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    added = subprocess.run([str(REPO_ROOT / "dashboard.sh"), "auth", "add-token", "ci", "--role", "viewer",
                            "--auth-file", str(auth_file)], cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=120, env=env)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    dashboard = start_dashboard("redis://127.0.0.1:1/0", log_dir,
                                extra_args=("--address", "0.0.0.0", "--auth-file", str(auth_file)))
    try:
        probe = requests.get(f"{dashboard.url}/api/health", timeout=5)  # a probe without credentials
        assert probe.status_code == 200 and probe.json() == {"status": "degraded"}  # its broker is unreachable
        assert requests.get(f"{dashboard.url}/api/workers", timeout=5).status_code == 401
        answer = requests.get(f"{dashboard.url}/api/health", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert answer.status_code == 200 and "events" in answer.json()
    finally:
        dashboard.stop()
