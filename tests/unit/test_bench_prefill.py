"""The benchmark's full history (bench/prefill.py, ``compare.py --history-tasks``): built by the measured
checkout's own code, its tasks ending now, and opened by the dashboard's store as it is."""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from prefill import build_history  # noqa: E402

from dashboard.store import SCHEMA_VERSION, TaskStore  # noqa: E402


def test_a_history_is_built_with_its_last_task_now(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    figures = build_history(path, 1_200, ROOT)
    assert figures["tasks"] == 1_200 and figures["events"] == 4 * 1_200
    store = TaskStore(str(path))
    try:
        assert store.stats()["tasks"] == 1_200 and store.stats()["schema_version"] == SCHEMA_VERSION
        assert store._conn().execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0  # statistics taken
        [(newest, events)] = store.recent(1)
        assert abs(newest["timestamp"] - time.time()) < 600  # within the default --max-age: nothing is pruned
        assert [e["type"] for e in events][1:3] == ["task-received", "task-started"]
    finally:
        store.close()
