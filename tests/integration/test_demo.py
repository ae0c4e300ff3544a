"""The demo from the README's first command: run.py's flags, its own history, and a clean end however it ends."""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from helpers import REPO_ROOT, DashboardProc, Proc, free_port, wait_serving, wait_until

pytestmark = pytest.mark.integration

WAITING_LINE = "stopping: waiting for 2 demo workers to finish their tasks (Ctrl-C again to kill them)"


def start_demo(log_dir: Path, *flags: str) -> tuple[Proc, DashboardProc]:
    port = free_port()
    proc = Proc("demo", [str(REPO_ROOT / "dashboard.sh"), "--port", str(port), *flags], log_dir)
    demo = DashboardProc(proc, port)
    wait_serving(demo, 30)
    wait_until(lambda: len([w for w in demo.get("/api/workers").json() if w["status"] == "online"]) == 2, 45,
               message="the demo's workers never came online")
    return proc, demo


def log_text(proc: Proc) -> str:
    return proc.log_path.read_text(errors="replace")


def demo_pids(proc: Proc) -> list[int]:
    """The pids of the demo's workers, producer and beat, from the dashboard's log."""
    found = re.search(r"pids (\{[^}]*\})", log_text(proc))
    assert found, proc.log_tail()
    return [int(pid) for pid in re.findall(r"\d+", found.group(1))]


def group_members(groups: list[int]) -> list[int]:
    """Live processes in these process groups (a demo child's pool processes are in its group)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) in groups:
            members.append(int(stat.parent.name))
    return members


def stored_states(db: Path) -> dict[str, int]:
    """Stored tasks per state; a task held for its ETA (a retry's countdown) when its worker
    stopped was never run, so it stays RECEIVED truthfully: it is counted apart."""
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT CASE WHEN state = 'RECEIVED' AND eta IS NOT NULL THEN 'HELD' ELSE state END, "
                                 "count(*) FROM tasks GROUP BY 1").fetchall())
    finally:
        conn.close()


def test_the_demo_takes_run_flags_and_its_workers_run_tasks(log_dir: Path, tmp_path: Path) -> None:
    proc, demo = start_demo(log_dir, "--db", str(tmp_path / "demo.db"))
    try:
        assert demo.health()["broker"]["url"].startswith("filesystem://")
        wait_until(lambda: demo.get("/api/tasks", params={"state": "SUCCESS", "limit": 1}).json()["items"], 45,
                   message="no demo task succeeded")
        # Its beat runs the demo's periodic tasks, and /periodic shows them with their runs.
        rates = wait_until(lambda: next((e for e in demo.get("/api/periodic").json()["entries"]
                                         if e["name"] == "refresh exchange rates" and e["last_run"]
                                         and e["last_run"]["state"] == "SUCCESS"), None), 60,
                           message=lambda: f"no periodic run seen: {demo.get('/api/periodic').text}")
        assert rates["schedule"] == "every 15 seconds" and rates["match"] == "name"
        names = {e["name"] for e in demo.get("/api/periodic").json()["entries"]}
        assert names == {"refresh exchange rates", "send the digest", "weekly sales report"}
    finally:
        proc.stop()


def test_ctrl_c_lets_the_workers_finish_while_the_dashboard_still_listens(log_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    proc, demo = start_demo(log_dir, "--db", str(db))
    try:
        wait_until(lambda: demo.get("/api/tasks", params={"state": "SUCCESS", "limit": 1}).json()["items"], 45,
                   message="no demo task succeeded")
        pids = demo_pids(proc)
        os.kill(proc.pid, signal.SIGINT)
        wait_until(lambda: WAITING_LINE in log_text(proc), 10, message="the wait was not logged")
        assert proc.popen.wait(timeout=60) == 0  # the demo's slowest task runs up to 30 s
        assert not group_members(pids)
        states = stored_states(db)
        assert states.get("SUCCESS") and not states.get("RECEIVED") and not states.get("STARTED"), states
    finally:
        proc.stop()


def test_a_second_ctrl_c_kills_the_workers_at_once(log_dir: Path, tmp_path: Path) -> None:
    proc, _ = start_demo(log_dir, "--db", str(tmp_path / "demo.db"))
    try:
        pids = demo_pids(proc)
        os.kill(proc.pid, signal.SIGINT)
        wait_until(lambda: WAITING_LINE in log_text(proc), 10, message="the wait was not logged")
        os.kill(proc.pid, signal.SIGINT)
        assert proc.popen.wait(timeout=5) == 0
        assert "stopping: killing the demo workers" in log_text(proc)
        assert not group_members(pids)
    finally:
        proc.stop()


def test_the_demo_keeps_its_history_in_its_own_folder_and_ends_with_a_killed_dashboard(log_dir: Path) -> None:
    before = set(REPO_ROOT.glob("*.db"))
    proc, _ = start_demo(log_dir)
    try:
        created = re.search(r"created a new history at (\S+)", log_text(proc))
        assert created, proc.log_tail()
        history = Path(created.group(1))
        demo_dir = history.parent
        assert demo_dir.name.startswith("dashboard-demo-") and history.exists()
        assert set(REPO_ROOT.glob("*.db")) == before  # nothing written to the checkout
        pids = demo_pids(proc)
        killed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        wait_until(lambda: not group_members(pids), 10, message="demo processes outlived the dashboard")
        wait_until(lambda: not demo_dir.exists(), 10 - (time.monotonic() - killed_at) + 1,
                   message="the demo folder outlived the dashboard")
    finally:
        proc.stop()
