"""run.py patches with eventlet before anything else is imported, and is the only eventlet importer."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Imported by run.py's start-up; each must find sockets and threads already green.
WATCHED = ("dashboard", "flask", "flask_socketio", "celery", "kombu", "redis", "socketio", "engineio")

PROBE = f"""
import sys, runpy
seen = {{}}
class Probe:
    def find_spec(self, name, path=None, target=None):
        top = name.split('.')[0]
        if top in {WATCHED!r} and top not in seen:
            patcher = sys.modules.get('eventlet.patcher')
            seen[top] = bool(patcher and patcher.is_monkey_patched('socket') and patcher.is_monkey_patched('thread'))
        return None
sys.meta_path.insert(0, Probe())
sys.argv = ['run.py', '--help']
try:
    runpy.run_path({str(ROOT / 'run.py')!r}, run_name='__main__')
except SystemExit:
    pass
print('SEEN', sorted(seen.items()))
"""


def test_first_statements_import_and_patch_eventlet() -> None:
    tree = ast.parse((ROOT / "run.py").read_text())
    first, second = tree.body[0], tree.body[1]
    assert isinstance(first, ast.Import) and first.names[0].name == "eventlet"
    assert ast.unparse(second) == "eventlet.monkey_patch()"


def test_everything_is_imported_after_the_patch() -> None:
    result = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", PROBE],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    line = next(line for line in result.stdout.splitlines() if line.startswith("SEEN"))
    seen = dict(ast.literal_eval(line[len("SEEN "):]))
    assert {"dashboard", "flask", "celery", "kombu"} <= set(seen), result.stderr
    assert all(seen.values()), seen


def test_only_run_py_imports_eventlet() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "dashboard").rglob("*.py")
                 if "import eventlet" in p.read_text() or "from eventlet" in p.read_text()]
    assert offenders == []


def test_the_dashboard_tunes_the_garbage_collector_for_a_large_model() -> None:
    import gc

    from dashboard.server import GC_THRESHOLDS, tune_gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] >= 10_000
    finally:
        gc.set_threshold(*before)


def test_under_eventlet_the_event_loop_gets_python_s_lock_back_within_a_millisecond() -> None:
    from dashboard.server import SWITCH_INTERVAL_SECONDS, tune_switching

    before = sys.getswitchinterval()
    try:
        tune_switching()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_SECONDS) and SWITCH_INTERVAL_SECONDS <= 0.001
    finally:
        sys.setswitchinterval(before)


NATIVE_LOCK_PROBE = """
import eventlet
eventlet.monkey_patch()
import time
from eventlet import tpool
from dashboard.store import NativeLock
lock, order = NativeLock(), []
def hold():
    with lock:
        order.append("held")
        eventlet.patcher.original("time").sleep(0.3)
        order.append("released")
def take():
    with lock:
        order.append("took")
first = eventlet.spawn(tpool.execute, hold)
while not order:
    eventlet.sleep(0.01)
second = eventlet.spawn(tpool.execute, take)
first.wait(); second.wait()
print("ORDER", order)
"""


def test_the_stores_write_lock_holds_between_native_threads_under_eventlet() -> None:
    # A threading lock is green once patched: contended between two tpool threads, its waiter never wakes.
    result = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", NATIVE_LOCK_PROBE],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "ORDER ['held', 'released', 'took']" in result.stdout, result.stderr


LOG_RACE = """
import eventlet; eventlet.monkey_patch()
import logging, sys
from eventlet import tpool
from dashboard.logs import configure
configure("INFO")
log = logging.getLogger("race")
def lines(count):
    for n in range(count):
        log.info("line %d", n)
    return count
pool = eventlet.GreenPool()
jobs = [pool.spawn(tpool.execute, lines, 3000) for _ in range(3)] + [pool.spawn(lines, 3000)]
print("LOGGED", sum(job.wait() for job in jobs), file=sys.__stdout__)
"""


def test_the_log_handler_serves_native_threads_and_the_event_loop_at_once() -> None:
    """Under eventlet a record may come from the event loop's thread and from tpool's native threads at the same
    moment; with ``threading``'s (green) lock the handler hung there within seconds, every later record behind it."""
    result = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", LOG_RACE],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "LOGGED 12000" in result.stdout, result.stderr[-2000:]
    assert result.stderr.count("race: line ") == 12000
