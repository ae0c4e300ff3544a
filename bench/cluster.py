"""A 1,000-worker cluster: what it costs the dashboard and Flower, and what the dashboard's page and pushes weigh.

The cluster: ``--workers`` (1,000) simulated workers announce themselves and beat every 2 s;
``--queues`` (2,000) queues exist in Redis, of which the first ``--consumed`` (200) take the tasks
(their tasks are received, run and finish: they have consumers) and the others hold a backlog that
nobody consumes (1 to 20 messages each, made known to the monitors by a ``task-sent`` each, as a
producer's would be); tasks are published at ``--tasks-per-second`` (2,000) for ``--seconds``, through
Celery's ``EventDispatcher``, pipelined (``generator.py``), from ``--processes`` (2) processes.

For each system, on its own fresh ``redis-server``, it measures while publishing and until the system
has caught up: CPU per 1,000 events, events lost, peak memory. For the dashboard also, once the
cluster is known (``--warm-up`` seconds into publishing):

- the overview's first paint in Debian's Chromium (Playwright): from navigation start to the first
  animation frame whose page counts every worker and lists recent tasks, over ``--loads`` loads: the
  first with an empty cache, the others as a returning user's (a new page, the browser's cache kept);
  and for each load when its parts came (``breakdown``): the HTML, the last script, DOMContentLoaded,
  the page's WebSocket created and open, and the snapshot's frame;
- the live pushes to a Socket.IO client on ``/live``: the largest message of each kind (its JSON),
  how many of each, the alerts by kind (a worker found lost under load would show here), and the
  snapshot a page gets when it connects;
- the queue sampler's broker round trip for all the queues, one pipelined request (``sampler`` of
  ``/api/health``: the median, 95th percentile and slowest of the last 100 rounds);
- the snapshot a page gets when it connects under that load.

With ``--pause SECONDS`` each system's process is stopped that long once the cluster is known, as a pause
of its host would stop it, while the workers beat on: the alerts it raises (``pushes.alert.by_event``)
show whether it took the heartbeats it had not read yet for silence.

    bench/.venv/bin/python bench/cluster.py                      # the dashboard, then Flower
    bench/.venv/bin/python bench/cluster.py --systems dashboard --seconds 30

Results: ``bench/results/cluster-<time>.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

from compare import niceness
from generator import HEARTBEAT_SECONDS, Plan, Publisher, SENDERS
from ingest import socketio_client
from scenarios import Phase, Settings
from systems import SYSTEMS, RedisServer, System, stop_on_sigterm, wait_until

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CHROMIUM = "/usr/bin/chromium"
#: Events a task sends on average: sent, received, started, and its outcome; 3 % are retried once (4 more).
EVENTS_PER_TASK = 4.12
#: In the page: true once the overview shows its snapshot (every worker counted, whatever its status, and
#: recent tasks listed); then the time since navigation start.
PAINTED = """
(workers) => {
  const count = document.querySelector('[data-field="worker-count"]')?.textContent ?? "";
  const counted = (count.match(/\\d+/g) ?? []).reduce((sum, n) => sum + Number(n), 0);
  const rows = document.querySelectorAll('[data-panel="tasks"] tr[data-uuid]').length;
  return counted === workers && rows > 0 ? performance.now() : false;
}
"""
#: How long a Socket.IO client waits for ``/live`` to accept it (python-socketio's default, 1 s, is less than
#: a dashboard busy with this load may take to build the snapshot it sends on connect).
CONNECT_SECONDS = 30

#: Before the page's own scripts: note when the page creates its WebSocket, when it opens and when the
#: snapshot's frame arrives (before the page's handler sees it), since navigation start.
SOCKET_MARKS = """
(() => {
  const marks = window.__firstPaintMarks = {};
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      marks.socket_created_ms ??= performance.now();
      this.addEventListener("open", () => { marks.socket_open_ms ??= performance.now(); });
      this.addEventListener("message", (event) => {
        if (marks.snapshot_ms === undefined && typeof event.data === "string"
            && event.data.startsWith('42/live,["snapshot"')) marks.snapshot_ms = performance.now();
      });
    }
  };
})();
"""
#: Once painted: the marks, when the page's HTML had come, when its last script had come, and when its own
#: scripts had run (DOMContentLoaded), since navigation start.
BREAKDOWN = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const scripts = performance.getEntriesByType("resource").filter((e) => e.name.split("?")[0].endsWith(".js"));
  const round = (ms) => (ms === undefined ? null : Math.round(ms));
  const marks = window.__firstPaintMarks ?? {};
  return {html_ms: round(nav?.responseEnd), scripts_ms: round(Math.max(0, ...scripts.map((e) => e.responseEnd))),
          scripts: scripts.length, dom_content_loaded_ms: round(nav?.domContentLoadedEventEnd),
          socket_created_ms: round(marks.socket_created_ms), socket_open_ms: round(marks.socket_open_ms),
          snapshot_ms: round(marks.snapshot_ms)};
}
"""
#: What the overview shows, for a run whose page never got there.
SHOWN = """
() => ({workers: document.querySelector('[data-field="worker-count"]')?.textContent,
        rows: document.querySelectorAll('[data-panel="tasks"] tr[data-uuid]').length,
        connection: document.querySelector('[data-connection]')?.dataset.state})
"""


class PushSizes:
    """A Socket.IO client on ``/live`` that keeps the size of the largest message of each kind."""

    def __init__(self, url: str) -> None:
        self.largest: dict[str, int] = {}
        self.count: dict[str, int] = {}
        self.alerts: dict[str, int] = {}  # alert messages by their ``event`` (worker-lost, worker-online, ...)
        self.lock = threading.Lock()
        self.client = socketio_client()
        self.client.on("*", self._any, namespace="/live")
        self.client.connect(url, namespaces=["/live"], transports=["websocket"], wait_timeout=CONNECT_SECONDS)

    def _any(self, event: str, data: Any = None) -> None:
        size = len(json.dumps(data, separators=(",", ":")))
        with self.lock:
            self.largest[event] = max(self.largest.get(event, 0), size)
            self.count[event] = self.count.get(event, 0) + 1
            if event == "alert" and isinstance(data, dict):
                kind = str(data.get("event"))
                self.alerts[kind] = self.alerts.get(kind, 0) + 1

    def figures(self) -> dict[str, Any]:
        with self.lock:
            figures: dict[str, Any] = {event: {"largest_bytes": size, "messages": self.count[event]}
                                       for event, size in sorted(self.largest.items())}
            if self.alerts:
                figures["alert"]["by_event"] = dict(sorted(self.alerts.items()))
            return figures

    def close(self) -> None:
        self.client.disconnect()


def snapshot_size(url: str) -> tuple[int, float]:
    """Connect to ``/live`` and return the size of the snapshot it sends (its JSON) and the milliseconds from
    the start of the connection to its arrival, then disconnect."""
    got = threading.Event()
    size = [0]
    client = socketio_client()
    began = time.monotonic()

    def on_snapshot(data: Any) -> None:
        size[0] = len(json.dumps(data, separators=(",", ":")))
        got.set()

    client.on("snapshot", on_snapshot, namespace="/live")
    client.connect(url, namespaces=["/live"], transports=["websocket"], wait_timeout=CONNECT_SECONDS)
    try:
        if not got.wait(30):
            raise RuntimeError("no snapshot within 30 s")
        elapsed = (time.monotonic() - began) * 1000
    finally:
        client.disconnect()
    return size[0], round(elapsed, 1)


def seed_backlog(system_broker: str, redis_server: RedisServer, queues: list[str]) -> dict[str, int]:
    """Put 1-20 messages in each queue of ``queues`` and publish a ``task-sent`` for each; return the events by type."""
    client = redis_server.client
    pipe = client.pipeline(transaction=False)
    for n, name in enumerate(queues):
        body = json.dumps({"body": "", "headers": {"task": "reports.backfill", "id": str(uuidlib.uuid4())},
                           "properties": {"delivery_info": {"routing_key": name}}})
        pipe.lpush(name, *([body] * (1 + n % 20)))
    pipe.execute()
    sender = SENDERS["batched"](system_broker)
    try:
        for n, name in enumerate(queues):
            sender.send("gen1@web-backfill", "task-sent", {
                "uuid": str(uuidlib.uuid4()), "name": "reports.backfill", "args": f"({n},)", "kwargs": "{}",
                "root_id": None, "parent_id": None, "retries": 0, "eta": None, "expires": None,
                "queue": name, "exchange": "", "routing_key": name})
            if n % 200 == 199:
                sender.flush()
        sender.flush()
    finally:
        sender.close()
    return {"task-sent": len(queues)}


def first_paints(base: str, workers: int, loads: int) -> dict[str, Any]:
    """Load the overview ``loads`` times in one Chromium context (the first with an empty cache); return
    each first paint in ms (see ``PAINTED``) and, for each load, when its parts came (see ``BREAKDOWN``)."""
    from playwright.sync_api import sync_playwright

    paints: list[float] = []
    breakdowns: list[dict[str, Any]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_init_script(SOCKET_MARKS)
            for _ in range(loads):
                page = context.new_page()
                page.goto(base + "/", wait_until="commit")
                try:
                    handle = page.wait_for_function(PAINTED, arg=workers, polling="raf", timeout=60_000)
                except Exception:
                    shown = page.evaluate(SHOWN)
                    raise RuntimeError(f"the overview never showed {workers} workers and recent tasks: "
                                       f"it showed {shown}") from None
                paints.append(round(float(handle.json_value()), 1))
                breakdowns.append(page.evaluate(BREAKDOWN))
                page.close()
        finally:
            browser.close()
    warm = paints[1:]
    return {"first_paint_ms": paints, "cold_ms": paints[0],
            "warm_median_ms": round(statistics.median(warm), 1) if warm else None,
            "warm_max_ms": max(warm) if warm else None, "breakdown": breakdowns}


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds, 0 or more")
    return value


def pause(pid: int, seconds: float) -> float:
    """Stop the process ``pid`` for ``seconds`` (SIGSTOP, then SIGCONT), as a pause of its host would; the
    workers beat on meanwhile. Return how long it was stopped."""
    os.kill(pid, signal.SIGSTOP)
    began = time.monotonic()
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    return round(time.monotonic() - began, 2)


def measure(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    redis_server = RedisServer(workdir)
    system: System = SYSTEMS[name](name=name, python=Path(sys.executable), workdir=workdir, broker=redis_server.url,
                                   max_tasks=100_000)
    if hasattr(system, "root"):
        system.root = ROOT
    pushes: PushSizes | None = None
    result: dict[str, Any] = {"system": name}
    try:
        system.start(redis_server)
        names = [f"q-{n:04d}" for n in range(args.queues)]
        backlog = seed_backlog(redis_server.url, redis_server, names[args.consumed:])
        wait_until(lambda: system.processed() >= backlog["task-sent"], 60, f"{name} to take the backlog's events")
        if name == "dashboard":
            pushes = PushSizes(system.base)
        settings = Settings(rates=[], seconds=args.seconds, api_rate=0, api_seconds=0, burst_tasks=0, memory_rate=0,
                            max_tasks=100_000, generator="batched", sustained_processes=args.processes,
                            burst_processes=args.processes, catch_up_timeout=300)
        rate = args.tasks_per_second * EVENTS_PER_TASK + args.workers / HEARTBEAT_SECONDS
        plan = Plan(redis_server.url, rate=rate, seconds=args.seconds, generator="batched", workers=args.workers,
                    queues=args.consumed, nice=args.publisher_nice)

        def during(publisher: Publisher) -> dict[str, Any]:
            time.sleep(args.warm_up)  # the workers' first heartbeats and the queues' first samples
            extra: dict[str, Any] = {}
            if args.pause:
                extra["paused_seconds"] = pause(system.pid, args.pause)
            if name == "dashboard":
                extra["overview"] = first_paints(system.base, args.workers, args.loads)
                extra["snapshot_bytes"], extra["snapshot_ms"] = snapshot_size(system.base)
            return extra

        phase = Phase(system, redis_server, settings, live=False)
        try:
            figures = phase.run(plan, args.processes, during)
        finally:
            phase.close()
        generator = figures["generator"]
        result.update(
            tasks_per_second=round(generator["by_type"].get("task-sent", 0) / max(generator["seconds"], 1e-9)),
            events_per_second=figures["published_rate"], backlog_events=backlog["task-sent"],
            published=figures["published"], lost=figures["lost"], loss_pct=figures["loss_pct"],
            caught_up=figures["caught_up"], catch_up_seconds=figures["catch_up_seconds"],
            cpu_seconds=figures["cpu_seconds"], cpu_ms_per_1000_events=figures["cpu_ms_per_1000_events"],
            core_share=round(figures["cpu_seconds"] / max(generator["seconds"] + (figures["catch_up_seconds"] or 0),
                                                          1e-9), 3),
            peak_rss_mb=figures["peak_rss_mb"], subscriber_cuts=figures["subscriber_cuts"])
        result.update(figures.get("requests") or {})
        if name == "dashboard":
            health = system.health()  # type: ignore[attr-defined]
            result["sampler"] = health.get("sampler")
            result["workers_known"] = len(_get_json(system.base + "/api/workers"))
            result["queues_known"] = len(_get_json(system.base + "/api/queues"))
        if pushes is not None:
            result["pushes"] = pushes.figures()
    except Exception as error:  # say what the system logged, which often names the cause
        raise RuntimeError(f"{type(error).__name__}: {error}; its log ends: {system.log_tail(5)}") from error
    finally:
        if pushes is not None:
            pushes.close()
        system.stop()
        redis_server.stop()
    return result


def _get_json(url: str) -> Any:
    import requests

    return requests.get(url, timeout=30).json()


def summary_line(result: dict[str, Any]) -> str:
    line = (f"{result['system']}: {result['tasks_per_second']:,} tasks/s ({result['events_per_second']:,} events/s), "
            f"{result['cpu_ms_per_1000_events']} ms CPU per 1,000 events ({result['core_share']:.2f} of a core), "
            f"lost {result['lost']:,} ({result['loss_pct']} %), peak RSS {result['peak_rss_mb']} MB")
    if result.get("paused_seconds"):
        line += f"; stopped for {result['paused_seconds']} s"
    if "overview" in result:
        overview = result["overview"]
        line += (f"; overview first paint {overview['cold_ms']} ms with an empty cache, "
                 f"{overview['warm_median_ms']} ms median ({overview['warm_max_ms']} max) with the cache")
        cold = overview["breakdown"][0] if overview.get("breakdown") else None
        if cold:
            line += (f" (first visit: HTML at {cold['html_ms']} ms, its {cold['scripts']} scripts by {cold['scripts_ms']}, "
                     f"DOMContentLoaded {cold['dom_content_loaded_ms']}, WebSocket created {cold['socket_created_ms']}, "
                     f"open {cold['socket_open_ms']}, snapshot in {cold['snapshot_ms']})")
    if result.get("pushes"):
        pushes = result["pushes"]
        live = max((v["largest_bytes"] for k, v in pushes.items() if k != "snapshot"), default=0)
        line += (f"; largest live push {live / 1024:.1f} KiB, snapshot under load {result['snapshot_bytes'] / 1024:.0f} KiB "
                 f"in {result['snapshot_ms']:.0f} ms")
        alerts = pushes.get("alert", {}).get("by_event", {})
        line += "; alerts " + (", ".join(f"{kind} {count:,}" for kind, count in alerts.items()) or "none")
    if result.get("sampler"):
        sampler = result["sampler"]
        line += (f"; queue sampler, {sampler['queues']} queues, round trip p50 / p95 / max of the last "
                 f"{sampler['rounds']} rounds: {sampler['p50_ms']} / {sampler['p95_ms']} / {sampler['max_ms']} ms")
    return line


def main() -> int:
    stop_on_sigterm()  # a SIGTERM stops the systems, their redis-server and the generator too
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="dashboard,flower", help="which systems, in the order they run")
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=2000)
    parser.add_argument("--consumed", type=int, default=200, help="queues that take the tasks (have consumers)")
    parser.add_argument("--tasks-per-second", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=60.0, help="publishing time per system")
    parser.add_argument("--warm-up", type=float, default=20.0, help="seconds into publishing before the page loads")
    parser.add_argument("--loads", type=int, default=5, help="overview loads in Chromium")
    parser.add_argument("--processes", type=int, default=2, help="generator processes")
    parser.add_argument("--publisher-nice", type=niceness, default=0, metavar="N",
                        help="run the generator processes N steps nicer than the systems measured (see compare.py)")
    parser.add_argument("--pause", type=_seconds, default=0.0, metavar="SECONDS",
                        help="stop each system's process for SECONDS once the cluster is known (SIGSTOP, then "
                             "SIGCONT), as a pause of its host would, while the workers beat on; the alerts it "
                             "raises are counted (default 0: no pause)")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    if not 0 < args.consumed <= args.queues:
        parser.error("--consumed must be between 1 and --queues")
    document: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "settings": vars(args) | {"out": None},
                                "results": []}
    for name in args.systems.split(","):
        with tempfile.TemporaryDirectory(prefix=f"cluster-{name}-") as workdir:
            try:
                result = measure(name, args, Path(workdir))
            except Exception as error:  # a system that fails is recorded; the others still run
                result = {"system": name, "error": f"{type(error).__name__}: {error}"}
        document["results"].append(result)
        print(summary_line(result) if "error" not in result else f"{name}: failed: {result['error']}", flush=True)
    by_name = {r["system"]: r for r in document["results"] if "error" not in r}
    if "dashboard" in by_name and "flower" in by_name:
        document["cpu_ratio"] = round(by_name["dashboard"]["cpu_ms_per_1000_events"]
                                      / max(by_name["flower"]["cpu_ms_per_1000_events"], 1e-9), 3)
        print(f"CPU per 1,000 events, dashboard / Flower: {document['cpu_ratio']}")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {out}")
    return 0 if all("error" not in r for r in document["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
