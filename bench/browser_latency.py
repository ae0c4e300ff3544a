"""Publish → visible in a real browser: how long after a task's final event is published Chromium shows it.

It starts its own ``redis-server`` and the dashboard (``run.py``), opens the overview in Debian's
Chromium through Playwright, and installs a ``MutationObserver`` on the recent-tasks panel that notes,
at the next animation frame (when the change is painted), the first moment each task's row shows
SUCCESS or FAILURE. Then ``generator.py`` publishes at ``--rate`` for ``--seconds`` (pipelined, as
``compare.py``'s default mode), noting the wall time each task's final event reached Redis. The page's
clock is compared with this process's at the start (same machine: the offset is the round trip's
half at most). The overview shows the 100 most recently updated tasks, so every task that finished
is seen only while it is among them: at high rates a sample, taken evenly over the run.

    .venv/bin/python bench/browser_latency.py --rate 5000 --seconds 30
    .venv/bin/python bench/browser_latency.py --rate 5000 --seconds 600   # the soak: 10 minutes

It also counts the events the dashboard received (``/api/health``) against those published, once it
has caught up, and samples its memory every 5 s: RSS and anonymous RSS at the middle of the run,
and how far they strayed from that over the second half (the soak's figure).

Results: ``bench/results/browser-latency-<time>.json``. It uses the project's ``.venv`` (Playwright is a
test dependency), stops everything it started, and deletes its temporary folder (the history of a
ten-minute run is about 2.3 GB); after a failure only the logs stay there, and it says where.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis
import requests
from playwright.sync_api import sync_playwright

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from generator import Plan, publish  # noqa: E402
from ingest import free_port, wait_for  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
#: Installed in the page: the time each task's row first shows a final state, at the next frame.
OBSERVER = """
() => {
  window.__seen = {};
  const panel = document.querySelector('[data-panel="tasks"]');
  const check = () => {
    const now = Date.now() / 1000;
    requestAnimationFrame(() => {
      const painted = Date.now() / 1000;
      for (const row of panel.querySelectorAll('tr[data-uuid]')) {
        const uuid = row.dataset.uuid;
        if (window.__seen[uuid] !== undefined) continue;
        const state = row.querySelector('[data-field="state"]')?.textContent;
        if (state === 'SUCCESS' || state === 'FAILURE') window.__seen[uuid] = painted;
      }
    });
    return now;
  };
  new MutationObserver(check).observe(panel, {subtree: true, childList: true, characterData: true});
}
"""


#: Seconds between two memory samples of the dashboard.
MEMORY_SAMPLE_SECONDS = 5.0
#: Seconds the received count may stand still, once publishing is over, before the rest counts as lost.
CATCH_UP_STALL_SECONDS = 10.0


class MemoryLog(threading.Thread):
    """Samples a process's RSS and anonymous RSS (KiB) every ``MEMORY_SAMPLE_SECONDS`` until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, int, int]] = []  # (seconds since start, VmRSS, RssAnon)
        self.stopping = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while True:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines())
            kib = {k: int(fields[k].split()[0]) for k in ("VmRSS", "RssAnon")}
            self.samples.append((time.monotonic() - start, kib["VmRSS"], kib["RssAnon"]))
            if self.stopping.wait(MEMORY_SAMPLE_SECONDS):
                return

    def figures(self) -> dict[str, Any]:
        """RSS and anonymous RSS (MiB) at the middle of the run, and their largest change after it (%); every
        sample as [seconds, RSS MiB, anonymous MiB]."""
        if len(self.samples) < 3:
            return {}
        middle = self.samples[-1][0] / 2
        at = min(self.samples, key=lambda s: abs(s[0] - middle))
        later = [s for s in self.samples if s[0] >= at[0]]
        result: dict[str, Any] = {"memory_reference_seconds": round(at[0]), "memory_samples": [
            [round(t), round(rss / 1024, 1), round(anon / 1024, 1)] for t, rss, anon in self.samples]}
        for index, name in ((1, "rss"), (2, "rss_anon")):
            reference = at[index]
            result[f"{name}_mib_at_reference"] = round(reference / 1024, 1)
            result[f"{name}_mib_at_end"] = round(later[-1][index] / 1024, 1)
            result[f"{name}_largest_change_after_pct"] = round(
                max(abs(s[index] - reference) for s in later) * 100 / reference, 1)
        return result


def caught_up(base: str, target: int) -> int:
    """Wait until the dashboard has received ``target`` events or its count stands still; return the count."""
    count, moved = -1, time.monotonic()
    while time.monotonic() - moved < CATCH_UP_STALL_SECONDS:
        now = requests.get(f"{base}/api/health", timeout=30).json()["events"]["received"]
        if now != count:
            count, moved = now, time.monotonic()
        if count >= target:
            break
        time.sleep(0.25)
    return count


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="events a second")
    parser.add_argument("--seconds", type=float, default=30.0, help="publishing time")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="browser-latency-"))
    redis_port, port = free_port(), free_port()
    started: list[subprocess.Popen[bytes]] = []
    finished = False
    try:
        with open(folder / "redis.log", "wb") as log:
            started.append(subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                             "--save", "", "--appendonly", "no"], stdout=log, stderr=log))
        wait_for(redis.Redis(port=redis_port).ping, 20, "redis-server")
        broker = f"redis://127.0.0.1:{redis_port}/0"
        with open(folder / "dashboard.log", "wb") as log:
            started.append(subprocess.Popen(
                [sys.executable, str(ROOT / "run.py"), "--broker", broker, "--port", str(port), "--db",
                 str(folder / "bench.db"), "--log-level", "WARNING"], cwd=ROOT, stdout=log, stderr=log,
                env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}))
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{base}/api/ready", timeout=2).status_code == 200, 60, "the dashboard")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base + "/")
            page.wait_for_selector('[data-connection][data-state="connected"]', timeout=30_000)
            offsets = []
            for _ in range(20):  # the page's clock minus ours, from the tightest round trip
                before = time.time()
                theirs = page.evaluate("Date.now() / 1000")
                after = time.time()
                offsets.append((after - before, theirs - (before + after) / 2))
            round_trip, offset = min(offsets)
            page.evaluate(OBSERVER)
            received_before = requests.get(f"{base}/api/health", timeout=30).json()["events"]["received"]
            memory = MemoryLog(started[-1].pid)
            memory.start()
            print(f"publishing {args.rate:,.0f} events/s for {args.seconds:g} s; clock offset {offset * 1000:.1f} ms "
                  f"(round trip {round_trip * 1000:.1f} ms)", flush=True)
            report = publish(Plan(broker, rate=args.rate, seconds=args.seconds, generator="batched"), 1)
            memory.stopping.set()
            memory.join()
            received = caught_up(base, received_before + report.events) - received_before
            page.wait_for_timeout(3000)  # the last pushes
            seen: dict[str, float] = page.evaluate("window.__seen")
            browser.close()
        latencies = [(seen[uuid] - offset - at) * 1000 for uuid, at in report.finals.items() if uuid in seen]
        result: dict[str, Any] = {
            "rate_asked": args.rate, "seconds": args.seconds, "published": report.events,
            "published_rate": round(report.rate), "tasks_finished": len(report.finals),
            "tasks_seen_final": len(latencies), "clock_offset_ms": round(offset * 1000, 2),
            "offset_round_trip_ms": round(round_trip * 1000, 2), "received": received,
            "lost": max(report.events - received, 0), **memory.figures()}
        if latencies:
            result.update(p50_ms=round(statistics.median(latencies), 1), p95_ms=round(percentile(latencies, 0.95), 1),
                          max_ms=round(max(latencies), 1), min_ms=round(min(latencies), 1))
        args.out.mkdir(parents=True, exist_ok=True)
        out = args.out / f"browser-latency-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        print(f"results: {out}")
        finished = True
    finally:
        for proc in reversed(started):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if finished:  # the history of a ten-minute run is about 2.3 GB
            shutil.rmtree(folder, ignore_errors=True)
        else:  # the logs say what went wrong; the history goes either way
            for name in ("bench.db", "bench.db-wal", "bench.db-shm"):
                (folder / name).unlink(missing_ok=True)
            print(f"logs kept in {folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
