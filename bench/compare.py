"""Comparison benchmark: the dashboard against Flower, fed the same Celery events in alternating runs.

    ./dashboard.sh bench                 # 3 rounds, 60 s per rate: about 25 minutes
    ./dashboard.sh bench --quick         # 1 round, 10 s per rate: about 4 minutes
    ./dashboard.sh bench --quick --mode per-worker   # one event per PUBLISH, one process per simulated worker
    python3 bench/compare.py --dashboard-root /path/to/another/checkout
    ./dashboard.sh bench cluster         # the other benchmarks, in the same environment: cluster.py,
    ./dashboard.sh bench idle            # idle.py and browser_latency.py (``browser``), with their own flags

It creates ``bench/.venv`` (the project's ``requirements.txt`` and
``bench/requirements.txt``, with Flower) when it is missing or out of date, and
runs itself there. It measures how fast one and two generator processes
publish, then, for each round, runs the dashboard and then Flower, each against
a fresh ``redis-server`` of its own and a fresh data folder, through the same
scenarios (``scenarios.py``): sustained rates, API latency under load, a burst.
Results: ``bench/results/compare-<time>.json`` (every run's raw figures, the
medians per system, the ratios) and ``compare-<time>.png``, copied to
``compare-latest.json`` / ``compare-latest.png``. See ``bench/README.md``.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
REQUIREMENTS = (ROOT / "requirements.txt", BENCH / "requirements.txt")
#: The other benchmarks ``compare.py NAME [FLAGS]`` runs in ``bench/.venv``.
SCRIPTS = {"cluster": "cluster.py", "idle": "idle.py", "browser": "browser_latency.py"}


def ensure_environment() -> None:
    """Create or update ``bench/.venv``, then run this script in it when it is not running there already."""
    if not VENV_PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    stamp = VENV / ".requirements.sha256"
    want = hashlib.sha256(b"".join(path.read_bytes() for path in REQUIREMENTS)).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != want:
        print(f"installing {' and '.join(str(p.relative_to(ROOT)) for p in REQUIREMENTS)} into {VENV}", flush=True)
        subprocess.run([str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        *(arg for path in REQUIREMENTS for arg in ("-r", str(path)))], check=True)
        stamp.write_text(want + "\n")
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])


def niceness(text: str) -> int:
    """An argparse type: a niceness to add, 0 or more (lowering it needs root)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}: "
                                         "the publishers may only be given a lower priority")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="1 round, 10 s per rate, 5 s of API probing, a burst of 20,000 tasks")
    parser.add_argument("--rounds", type=int, help="rounds of (dashboard, Flower) (default 3; --quick 1)")
    parser.add_argument("--seconds", type=float, help="publishing time per sustained rate (default 60; --quick 10)")
    parser.add_argument("--rates", default="2500,5000,10000", help="sustained rates, events/s, comma-separated")
    parser.add_argument("--api-rate", type=int, default=5000, help="events/s while the API is probed")
    parser.add_argument("--api-seconds", type=float, help="API probing time (default 15; --quick 5)")
    parser.add_argument("--burst-tasks", type=int, help="tasks of the burst (default 50,000; --quick 20,000)")
    parser.add_argument("--memory-rate", type=int, default=5000,
                        help="the sustained rate after which memory per task is read (one of --rates)")
    parser.add_argument("--max-tasks", type=int, default=100_000, help="tasks each system holds in memory")
    parser.add_argument("--systems", default="dashboard,flower", help="which systems, in the order they run")
    parser.add_argument("--mode", choices=("per-worker", "pipelined"), default="pipelined",
                        help="per-worker: as a real cluster publishes, one event per PUBLISH (EventDispatcher alone) "
                             "from one process per simulated worker (8); pipelined (default): EventDispatcher in "
                             "kombu's Producer.batch() from 1 process (2 in the burst). --generator and the "
                             "--*-processes options override the mode's choices")
    parser.add_argument("--generator", choices=("batched", "dispatcher", "raw"), default=None,
                        help="batched: EventDispatcher in kombu's Producer.batch(); dispatcher: "
                             "EventDispatcher alone; raw: the same wire format written straight to Redis")
    parser.add_argument("--sustained-processes", type=int, default=None, help="generator processes at a set rate")
    parser.add_argument("--burst-processes", type=int, default=None, help="generator processes of the burst")
    parser.add_argument("--publisher-nice", type=niceness, default=0, metavar="N",
                        help="run the publishing processes N steps nicer (lower CPU priority) than the system "
                             "measured, as if the workers ran on other machines, as a real cluster's do; the CPU "
                             "per event is counted the same way (default 0: the same priority)")
    parser.add_argument("--capacity-tasks", type=int, help="tasks per generator speed test (default 20,000; "
                                                           "--quick 10,000; 0 skips it)")
    parser.add_argument("--catch-up-timeout", type=float, default=180.0,
                        help="longest wait, in seconds, for a system to process what was published")
    parser.add_argument("--store-bench", action="store_true",
                        help="run bench/store_bench.py over 1,000,000 tasks (about 5 minutes more) instead of "
                             "reading its newest results")
    parser.add_argument("--history-tasks", type=int, default=0, metavar="N",
                        help="start the dashboard on a history already holding N realistic tasks that end now, as a "
                             "long-running dashboard's does (1,000,000 is its default --max-tasks-stored: each write "
                             "then pays what a full history costs, pruning included); built once, about 2 minutes "
                             "a million, and copied for each run (default 0: a fresh history)")
    parser.add_argument("--dashboard-root", type=Path, default=ROOT,
                        help="the checkout whose run.py is measured (default: this repository)")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="folder for the results")
    args = parser.parse_args(argv)
    quick = args.quick
    for name, default, quick_default in (("rounds", 3, 1), ("seconds", 60.0, 10.0), ("api_seconds", 15.0, 5.0),
                                         ("burst_tasks", 50_000, 20_000), ("capacity_tasks", 20_000, 10_000)):
        if getattr(args, name) is None:
            setattr(args, name, quick_default if quick else default)
    per_worker = args.mode == "per-worker"
    for name, per_worker_value, pipelined_value in (("generator", "dispatcher", "batched"),
                                                    ("sustained_processes", 8, 1), ("burst_processes", 8, 2)):
        if getattr(args, name) is None:
            setattr(args, name, per_worker_value if per_worker else pipelined_value)
    args.rates = [int(rate) for rate in args.rates.split(",")]
    args.systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    if args.memory_rate not in args.rates:
        parser.error(f"--memory-rate {args.memory_rate} must be one of --rates {args.rates}")
    unknown = set(args.systems) - {"dashboard", "flower"}
    if unknown:
        parser.error(f"unknown system(s) {sorted(unknown)}: use dashboard and/or flower")
    if args.history_tasks < 0:
        parser.error("--history-tasks must be 0 or more")
    args.dashboard_root = args.dashboard_root.resolve()
    if not (args.dashboard_root / "run.py").exists():
        parser.error(f"--dashboard-root {args.dashboard_root} has no run.py")
    return args


def main() -> int:
    if sys.argv[1:2] and sys.argv[1] in SCRIPTS:
        ensure_environment()
        script = BENCH / SCRIPTS[sys.argv[1]]
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(script), *sys.argv[2:]])
    args = parse_args()
    ensure_environment()
    sys.path.insert(0, str(BENCH))
    # Imported once bench/.venv is in place: the runner needs its packages (Flower, matplotlib, psutil).
    from runner import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
