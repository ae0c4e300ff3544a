"""Ties a demo process to the dashboard that started it: when the dashboard is gone, so is it.

``DemoCluster`` starts every worker and the producer in a process group of its own, with
``DASHBOARD_DEMO_PARENT_PID`` set to the dashboard's pid. ``watch()``, called when the demo's
Celery app is imported, starts a daemon thread in that group leader which checks twice a
second that its parent is still the dashboard and that the demo folder still exists. When
either is gone (the dashboard was killed, even with ``SIGKILL``, or its temporary folder was
removed), it kills its whole process group, pool processes included, instead of spinning on a
broker folder that no longer exists. When the dashboard died and the folder was its own
temporary one (``DASHBOARD_DEMO_OWNS_DIR``), the first process to notice removes it.
"""
from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

#: Environment variable holding the pid of the dashboard that started the demo processes.
PARENT_PID_ENV = "DASHBOARD_DEMO_PARENT_PID"
#: Environment variable holding the demo directory (see ``tasks.DEMO_DIR_ENV``).
DEMO_DIR_ENV = "DASHBOARD_DEMO_DIR"
#: Environment variable set to 1 when the demo folder is a temporary one the dashboard made.
OWNS_DIR_ENV = "DASHBOARD_DEMO_OWNS_DIR"
#: Seconds between two checks.
CHECK_SECONDS = 0.5


def watch(environ: "os._Environ[str] | dict[str, str]" = os.environ) -> bool:
    """Start the watch when this process is a demo process started by a live dashboard; return whether it did."""
    try:
        parent = int(environ.get(PARENT_PID_ENV, ""))
    except ValueError:
        return False
    if os.getppid() != parent:
        return False  # not the group leader the dashboard started (or the dashboard is already gone)
    demo_dir = Path(environ.get(DEMO_DIR_ENV, "") or ".")
    owned = environ.get(OWNS_DIR_ENV) == "1"
    leader = os.getpid()
    threading.Thread(target=_watch, args=(parent, demo_dir, owned, leader), name="demo-lifeline",
                     daemon=True).start()
    return True


def _watch(parent: int, demo_dir: Path, owned: bool, leader: int) -> None:
    while True:
        time.sleep(CHECK_SECONDS)
        if os.getpid() != leader:
            return  # a forked child carried this thread's state over: the leader does the watching
        orphaned = os.getppid() != parent
        if orphaned or not demo_dir.is_dir():
            if orphaned and owned:
                shutil.rmtree(demo_dir, ignore_errors=True)  # nobody else is left to do it
            _end_group()


def _end_group() -> None:
    try:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    finally:
        os._exit(1)
