"""A history already full, for ``compare.py --history-tasks``: a long-running dashboard writes into a history
of up to ``--max-tasks-stored`` tasks (a million by default), where each write costs more than in a fresh one."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

#: The prefilled history, built once in the work folder and copied for each run of the dashboard.
HISTORY_FILE = "history.db"


def build_history(path: Path, tasks: int, root: Path) -> dict[str, Any]:
    """Write ``tasks`` realistic tasks (``store_bench.make_batch``: four events each, spread over five days that
    end now) into a new history at ``path``, with the code of the checkout ``root`` (its schema is the one its
    dashboard expects), and take its query statistics, as a dashboard that has run has them (else it would take
    them at start, during the first measurement); return the build's figures."""
    code = ("import sys, time; sys.path[:0] = ['.', 'bench']; import store_bench as b; "
            "figures = b.build(sys.argv[1], int(sys.argv[2]), time.time() - b.SPAN_SECONDS)[0]; "
            "store = b.open_store(sys.argv[1]); store.analyze(True); store.close(); print(figures)")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tasks)], cwd=root, check=True,
                          capture_output=True, text=True)
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])
