"""The comparison's rounds: the generator's speed, then each system in turn on a fresh broker, then the summary.

A run that fails (a system that does not start, say) is recorded with its error
and the log's last lines, said on the terminal, and the other runs go on; the
results document is rewritten after every run, so an interrupted comparison
still leaves what it measured.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import chart
import scenarios
import summary
from generator import Plan, publish
from prefill import HISTORY_FILE, build_history
from systems import SYSTEMS, RedisServer, System

#: Seconds one run takes besides its publishing phases (start, catch-up, a stalled count, stop), for the estimate.
RUN_OVERHEAD_SECONDS = 20.0
#: Name of the store benchmark's figure of the tasks page: the first page with no filter.
STORE_FIRST_PAGE = "first page, no filter"


def versions(dashboard_root: Path) -> dict[str, str]:
    """Return the versions of what is measured: Flower, Celery, kombu, and the dashboard's commit."""
    found = {name: importlib.metadata.version(name) for name in ("flower", "celery", "kombu", "tornado")}
    found["redis-py"] = importlib.metadata.version("redis")
    git = ["git", "-C", str(dashboard_root)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           check=False).stdout.strip()
    found["dashboard"] = (commit or "unknown") + (" with uncommitted changes" if dirty else "")
    found["redis-server"] = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                                           check=False).stdout.split(" v=")[-1].split()[0]
    return found


def estimate_minutes(args: argparse.Namespace) -> float:
    """Return about how long the comparison takes (each paced phase drains for a few seconds after it)."""
    per_run = (len(args.rates) * (args.seconds + 4) + args.api_seconds + 4 + args.burst_tasks / 4000
               + RUN_OVERHEAD_SECONDS)
    return (args.rounds * len(args.systems) * per_run + args.capacity_tasks / 500) / 60


def generator_speed(workroot: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Publish ``--capacity-tasks`` tasks as fast as possible to a Redis nobody reads, from 1 and 2 processes."""
    if not args.capacity_tasks:
        return {}
    folder = workroot / "generator"
    folder.mkdir()
    redis_server = RedisServer(folder)
    speeds: dict[str, Any] = {}
    try:
        runs = [("batched, 1 process", "batched", 1, args.capacity_tasks),
                ("batched, 2 processes", "batched", 2, args.capacity_tasks),
                ("EventDispatcher alone, 1 process", "dispatcher", 1, args.capacity_tasks // 4)]
        if args.generator == "dispatcher" and args.sustained_processes > 1:  # the per-worker mode's own speed
            runs.append((f"EventDispatcher alone, {args.sustained_processes} processes (one per simulated worker)",
                         "dispatcher", args.sustained_processes, args.capacity_tasks // 2))
        for label, generator, processes, tasks in runs:
            report = publish(Plan(redis_server.url, tasks=tasks, pace=0.0, generator=generator), processes)
            speeds[label] = report.summary()
            print(f"  {label}: {report.rate:,.0f} events/s ({report.events:,} events in {report.seconds:.1f} s)",
                  flush=True)
    finally:
        redis_server.stop()
    return speeds


def run_once(name: str, round_number: int, workroot: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Start one system on a fresh broker and data folder, play the scenarios, stop it; return the run."""
    workdir = workroot / f"{round_number}-{name}"
    workdir.mkdir()
    run: dict[str, Any] = {"round": round_number, "system": name, "ok": False, "error": None, "results": None}
    started = time.monotonic()
    redis_server: RedisServer | None = None
    system: System | None = None
    try:
        redis_server = RedisServer(workdir)
        options: dict[str, Any] = {"root": args.dashboard_root} if name == "dashboard" else {}
        system = SYSTEMS[name](name=name, python=Path(sys.executable), workdir=workdir, broker=redis_server.url,
                               max_tasks=args.max_tasks, **options)
        if name == "dashboard" and args.history_tasks:
            shutil.copyfile(workroot / HISTORY_FILE, workdir / "bench.db")  # the file the dashboard's --db names
        system.start(redis_server)
        results = scenarios.play(system, redis_server, settings(args), live=name == "dashboard")
        summary.derive(results)
        run.update(ok=True, results=results)
        if system.process is not None and system.process.poll() is not None:
            raise RuntimeError(f"{name} exited during the run (status {system.process.returncode})")
    except Exception as error:
        run["error"] = f"{type(error).__name__}: {error}"
        if system is not None:
            run["log_tail"] = system.log_tail()
        print(f"  {name} FAILED: {run['error']}", flush=True)
    finally:
        if system is not None:
            system.stop()
        if redis_server is not None:
            redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    run["seconds"] = round(time.monotonic() - started, 1)
    return run


def settings(args: argparse.Namespace) -> scenarios.Settings:
    return scenarios.Settings(rates=args.rates, seconds=args.seconds, api_rate=args.api_rate,
                              api_seconds=args.api_seconds, burst_tasks=args.burst_tasks,
                              memory_rate=args.memory_rate, max_tasks=args.max_tasks, generator=args.generator,
                              sustained_processes=args.sustained_processes, burst_processes=args.burst_processes,
                              catch_up_timeout=args.catch_up_timeout, publisher_nice=args.publisher_nice)


def store_figures(args: argparse.Namespace) -> dict[str, Any]:
    """Return the store benchmark's figures: run it (``--store-bench``) or read its newest results."""
    folders = [args.dashboard_root / "bench" / "results", args.out]
    if args.store_bench:
        print("store benchmark: 1,000,000 tasks", flush=True)
        subprocess.run([sys.executable, str(args.dashboard_root / "bench" / "store_bench.py"), "--tasks",
                        "1000000", "--runs", "20", "--no-prune"], cwd=args.dashboard_root, check=True)
    found = sorted({p for folder in folders if folder.exists() for p in folder.glob("store-*.json")},
                   key=lambda p: p.name)
    if not found:
        return {"note": "no bench/results/store-*.json found: run with --store-bench"}
    newest = found[-1]
    data = json.loads(newest.read_text())
    queries = data.get("queries", {})
    p95s = [row["p95_ms"] for row in queries.values()]
    return {"file": newest.name, "tasks": data.get("tasks"), "ran_now": args.store_bench,
            "tasks_page_first_page": queries.get(STORE_FIRST_PAGE),
            "queries_p95_ms_range": [min(p95s), max(p95s)] if p95s else None,
            "startup_ms": data.get("startup"),
            "write_tasks_per_second": (data.get("build") or {}).get("tasks_per_second"),
            "flower": "not applicable: Flower keeps no history beyond the tasks held in memory"}


def summarize(document: dict[str, Any]) -> None:
    """Add the medians per system, the ratios and the headline ratios to the document."""
    runs = document["runs"]
    names = document["settings"]["systems"]
    document["medians"] = {name: summary.medians(runs, name) for name in names}
    document["rounds_completed"] = {name: sum(1 for r in runs if r["system"] == name and r["ok"]) for name in names}
    dashboard, flower = document["medians"].get("dashboard"), document["medians"].get("flower")
    if dashboard and flower:
        document["ratios"] = summary.ratios(dashboard, flower)
        document["headlines"] = summary.headlines(document["ratios"], document["settings"]["rates"])
    else:
        document["ratios"] = document["headlines"] = {}
        document["notes"].append("ratios left out: a system has no successful run")


def write(document: dict[str, Any], out: Path, stamp: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"compare-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def print_headlines(document: dict[str, Any]) -> None:
    for key, row in document.get("headlines", {}).items():
        ratio = "undefined" if row["ratio"] is None else f"{row['ratio']:g}x"
        print(f"  {row['what']:<62} dashboard {row['dashboard']:>10g}  Flower {row['flower']:>10g}  "
              f"{row['means']} {ratio}", flush=True)
    for name, count in document["rounds_completed"].items():
        if count == 0:
            print(f"  {name}: no successful run (see the runs' errors in the JSON)", flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the comparison; return 0 when every run succeeded, 1 otherwise (the results are written either way)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    document: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "versions": versions(args.dashboard_root),
        "settings": {**{k: v for k, v in vars(args).items() if k not in ("dashboard_root", "out")},
                     "dashboard_root": str(args.dashboard_root)},
        "feeding": "both systems get the same generated streams (generator.py, same seeds) on a fresh redis-server "
                   "each; the dashboard is also watched by one live Socket.IO client, Flower by none",
        "runs": [],
        "notes": ["publish → live client latency is not applicable to Flower: Flower 2 has no live push of task "
                  "events (its pages poll the server)",
                  "Flower's processed count is flower_events_total (task events only); the dashboard's is "
                  "/api/health events.received (all events); each is compared with the matching part published"],
    }
    print(f"comparison: {args.rounds} round(s) of {', '.join(args.systems)}; about "
          f"{estimate_minutes(args):.0f} minutes", flush=True)
    workroot = Path(tempfile.mkdtemp(prefix="compare-"))
    began = time.monotonic()
    interrupted = False
    signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM stops like Ctrl-C: what was started is stopped
    try:
        if args.history_tasks and "dashboard" in args.systems:
            print(f"building a history of {args.history_tasks:,} tasks", flush=True)
            document["history"] = build_history(workroot / HISTORY_FILE, args.history_tasks, args.dashboard_root)
            print(f"  {document['history']}", flush=True)
        print("generator speed (no reader):", flush=True)
        document["generator_speed"] = generator_speed(workroot, args)
        for round_number in range(1, args.rounds + 1):
            for name in args.systems:
                print(f"round {round_number}/{args.rounds}: {name}", flush=True)
                document["runs"].append(run_once(name, round_number, workroot, args))
                write(document, args.out, stamp)
    except KeyboardInterrupt:
        interrupted = True
        document["notes"].append("interrupted: only the runs completed before are included")
        print("interrupted: writing the runs completed so far", flush=True)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    document["store"] = store_figures(args) if not interrupted else {"note": "skipped: interrupted"}
    document["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    document["total_minutes"] = round((time.monotonic() - began) / 60, 1)
    summarize(document)
    path = write(document, args.out, stamp)
    picture = path.with_suffix(".png")
    chart.draw(document, picture)
    shutil.copyfile(path, args.out / "compare-latest.json")
    shutil.copyfile(picture, args.out / "compare-latest.png")
    print_headlines(document)
    print(f"wrote {path} and {picture.name} (also compare-latest.json / .png) in {document['total_minutes']} min",
          flush=True)
    if interrupted:
        return 130
    return 0 if document["runs"] and all(r["ok"] for r in document["runs"]) else 1


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
