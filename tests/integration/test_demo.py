"""The demo from the README's first command, with run.py's flags: ./dashboard.sh --port P."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REPO_ROOT, DashboardProc, Proc, free_port, wait_serving, wait_until

pytestmark = pytest.mark.integration


def test_the_demo_takes_run_flags_and_its_workers_run_tasks(log_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = Proc("demo", [str(REPO_ROOT / "dashboard.sh"), "--port", str(port), "--db", str(tmp_path / "demo.db")],
                log_dir)
    demo = DashboardProc(proc, port)
    try:
        wait_serving(demo, 30)  # on the port given
        assert demo.health()["broker"]["url"].startswith("filesystem://")
        workers = wait_until(lambda: [w for w in demo.get("/api/workers").json() if w["status"] == "online"], 45,
                             message="the demo's workers never came online")
        assert len(workers) == 2
        wait_until(lambda: demo.get("/api/tasks", params={"state": "SUCCESS", "limit": 1}).json()["items"], 45,
                   message="no demo task succeeded")
    finally:
        proc.stop()
