"""The scenarios of a comparison run, each fed the same generated events whatever the system.

A run starts one system against its own ``redis-server`` and plays, in order:
sustained rates (a memory reading after each), API latency under load, and a
burst. Every phase publishes through ``generator.py`` from spawned processes and
then waits, with a deadline, until the system has processed every event
published or its count stops moving; it never sleeps a fixed time to guess.
"""
from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from generator import Plan, Publisher, Report
from ingest import LatencyClient
from systems import MemorySampler, RedisServer, System, cpu_seconds, kib

#: Seconds without any progress after which the events still missing count as lost.
STALL_SECONDS = 10.0
#: Seconds between two reads of a system's processed count while waiting for it to catch up.
POLL_SECONDS = 0.25
#: Seconds between two API requests of the latency probe (a few people looking at pages, not a load test).
PROBE_PAUSE_SECONDS = 0.1
#: Seconds the live client may take to show the last task once the dashboard has processed it.
LIVE_GRACE_SECONDS = 3.0


@dataclass
class Settings:
    """What each run does; the same for both systems."""

    rates: list[int]
    seconds: float
    api_rate: int
    api_seconds: float
    burst_tasks: int
    memory_rate: int
    max_tasks: int
    generator: str
    sustained_processes: int
    burst_processes: int
    catch_up_timeout: float
    publisher_nice: int = 0  # niceness added to the publishing processes


def percentiles(values: list[float]) -> dict[str, float | None]:
    """Return the median, 95th percentile and maximum of ``values`` (seconds) in milliseconds."""
    if not values:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None, "count": 0}
    ordered = sorted(values)
    p95 = ordered[math.ceil(len(ordered) * 0.95) - 1]  # nearest rank: with few samples, the slowest
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1), "p95_ms": round(p95 * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1), "count": len(ordered)}


def wait_caught_up(system: System, target: int, timeout: float) -> tuple[int, float, bool]:
    """Wait until ``system.processed()`` reaches ``target``; return the count, when it last moved, and success.

    Gives up when the count has not moved for ``STALL_SECONDS`` (the rest was lost) or after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    count, moved_at = -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            now_count = system.processed()
        except (requests.RequestException, ValueError):  # a busy system may answer late; that is no progress
            now_count = count
        if now_count != count:
            count, moved_at = now_count, time.monotonic()
        if count >= target:
            return count, moved_at, True
        if time.monotonic() - moved_at > STALL_SECONDS:
            break
        time.sleep(POLL_SECONDS)
    return max(count, 0), moved_at, False


class Phase:
    """One publishing phase: CPU, memory, processed events and live latency around a publish."""

    def __init__(self, system: System, redis_server: RedisServer, settings: Settings, live: bool) -> None:
        self.system = system
        self.redis_server = redis_server
        self.settings = settings
        self.client = LatencyClient(system.base) if live else None

    def run(self, plan: Plan, processes: int, during: Callable[[Publisher], Any] | None = None) -> dict[str, Any]:
        """Publish ``plan`` (calling ``during`` while it publishes), wait for the system; return the figures."""
        system = self.system
        before = system.processed()
        cuts_before = self.redis_server.cuts()
        cpu_before = cpu_seconds(system.pid)
        with MemorySampler(system.pid) as memory:
            publisher = Publisher(plan, processes)
            publisher.start()
            try:
                extra = during(publisher) if during is not None else None
                report = publisher.wait(timeout=plan.seconds * 3 + 600 if plan.seconds else 1800)
            finally:
                publisher.terminate()  # only a publisher left running by an error is still alive
            ended = time.monotonic()
            expected = system.counts(report.by_type)
            count, moved_at, caught_up = wait_caught_up(system, before + expected,
                                                         self.settings.catch_up_timeout)
        cpu = cpu_seconds(system.pid) - cpu_before
        processed = count - before
        figures = self._figures(report, expected, processed, cpu, caught_up, max(moved_at - ended, 0.0))
        figures["subscriber_cuts"] = self.redis_server.cuts() - cuts_before
        figures["system_says"] = _guarded(system.diagnostics)
        figures.update(peak_rss_mb=round(memory.peak_rss_kib / 1024, 1),
                       peak_rss_anon_mb=round(memory.peak_anon_kib / 1024, 1))
        figures.update(self._live(report))
        if extra is not None:
            figures["requests"] = extra
        return figures

    def _figures(self, report: Report, expected: int, processed: int, cpu: float, caught_up: bool,
                 catch_up: float) -> dict[str, Any]:
        lost = max(expected - processed, 0)
        handled = report.events * min(processed / max(expected, 1), 1.0)  # the published events it dealt with
        return {
            "generator": report.summary(), "published": report.events, "published_rate": round(report.rate),
            "publish_seconds": round(report.seconds, 2), "tasks": report.tasks,
            "counted": expected, "processed": processed, "lost": lost,
            "loss_pct": round(lost * 100 / max(expected, 1), 3), "caught_up": caught_up,
            # behind: only meaningful when everything arrived; a count that stopped short is loss, not speed
            "catch_up_seconds": round(catch_up, 2) if caught_up else None,
            "count_stopped_seconds": round(catch_up, 2), "cpu_seconds": round(cpu, 2),
            "cpu_ms_per_1000_events": round(cpu * 1e6 / max(handled, 1), 1),
            "processed_rate": round(processed / max(report.seconds + catch_up, 1e-9)),
        }

    def _live(self, report: Report) -> dict[str, Any]:
        """Return publish-to-client latency of the tasks the live client saw finish (dashboard only)."""
        client = self.client
        if client is None:
            return {"live_latency": "not applicable"}
        if report.finals:
            last = max(report.finals, key=report.finals.__getitem__)
            deadline = time.monotonic() + LIVE_GRACE_SECONDS
            while last not in client.seen and time.monotonic() < deadline:
                time.sleep(0.05)
        latencies = [client.seen[uuid] - at for uuid, at in report.finals.items() if uuid in client.seen]
        client.seen.clear()
        return {"live_latency": {**percentiles(latencies), "tasks_seen": len(latencies),
                                 "tasks_finished": len(report.finals)}}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def memory_reading(system: System, baseline: dict[str, int], tasks_held: int) -> dict[str, Any]:
    """Return RSS (and anonymous RSS) now, and their growth per task held since ``baseline``."""
    rss, anon = kib(system.pid, "VmRSS"), kib(system.pid, "RssAnon")
    per = max(tasks_held, 1)
    return {"tasks_held": tasks_held, "rss_mb": round(rss / 1024, 1), "rss_anon_mb": round(anon / 1024, 1),
            "rss_kib_per_task": round((rss - baseline["rss"]) / per, 2),
            "rss_anon_kib_per_task": round((anon - baseline["anon"]) / per, 2)}


def probe_api(system: System, publisher: Publisher) -> dict[str, Any]:
    """GET the task list (as is, and newest first) and the newest task's detail while ``publisher`` publishes,
    on one kept-alive connection, as a page does."""
    session = requests.Session()
    timings: dict[str, list[float]] = {"list": [], "list_newest": [], "detail": []}
    errors = 0
    distinct_newest = system.list_newest_url() != system.list_url()
    while not publisher.finished():
        try:
            seconds, newest = _timed_get(session, system.list_url())
            timings["list"].append(seconds)
            if distinct_newest:
                seconds, newest = _timed_get(session, system.list_newest_url())
                timings["list_newest"].append(seconds)
            uuid = system.first_uuid(newest)
            if uuid is not None:
                timings["detail"].append(_timed_get(session, system.detail_url(uuid))[0])
        except (requests.RequestException, ValueError):  # an error status, a timeout, a body that is not JSON
            errors += 1
        time.sleep(PROBE_PAUSE_SECONDS)
    session.close()
    if not distinct_newest:
        timings["list_newest"] = timings["list"]  # the dashboard's list is newest first already
    return {**{name: percentiles(values) for name, values in timings.items()}, "errors": errors}


def _timed_get(session: requests.Session, url: str) -> tuple[float, Any]:
    """Return the seconds a GET took and its JSON body."""
    started = time.perf_counter()
    response = session.get(url, timeout=60)
    response.raise_for_status()
    return time.perf_counter() - started, response.json()


def play(system: System, redis_server: RedisServer, settings: Settings, live: bool) -> dict[str, Any]:
    """Play every scenario against a started system; return the figures (a failed scenario records its error)."""
    results: dict[str, Any] = {}
    time.sleep(1.0)  # let start-up allocations settle before the baseline; nothing is published yet
    baseline = {"rss": kib(system.pid, "VmRSS"), "anon": kib(system.pid, "RssAnon")}
    results["baseline"] = {"rss_mb": round(baseline["rss"] / 1024, 1), "rss_anon_mb": round(baseline["anon"] / 1024, 1)}
    phase = Phase(system, redis_server, settings, live)
    tasks_published = 0
    seeds = itertools.count(1)  # each phase its own task ids; the same seeds for both systems
    try:
        sustained: dict[str, Any] = {}
        results["sustained"] = sustained
        for rate in settings.rates:
            plan = Plan(redis_server.url, rate=rate, seconds=settings.seconds, generator=settings.generator,
                        seed=next(seeds), nice=settings.publisher_nice)
            figures = _guarded(lambda plan=plan: phase.run(plan, settings.sustained_processes))
            if "error" not in figures:
                tasks_published += figures["tasks"]
                figures["memory"] = memory_reading(system, baseline, min(tasks_published, settings.max_tasks))
            sustained[str(rate)] = figures
            print(f"    {rate:>6,} events/s: {_line(figures)}", flush=True)
            if rate == settings.api_rate:  # the API under this load, right after it (not after a higher one)
                results["api"] = _api_phase(phase, system, redis_server, settings, next(seeds))
                tasks_published += results["api"].get("tasks", 0)
        if "api" not in results:
            results["api"] = _api_phase(phase, system, redis_server, settings, next(seeds))
        results["memory"] = dict(sustained.get(str(settings.memory_rate), {}).get("memory") or {},
                                 after_rate=settings.memory_rate)
        plan = Plan(redis_server.url, tasks=settings.burst_tasks, pace=0.0, generator=settings.generator,
                    seed=next(seeds), nice=settings.publisher_nice)
        results["burst"] = _guarded(lambda: phase.run(plan, settings.burst_processes))
        print(f"    burst of {settings.burst_tasks:,} tasks: {_line(results['burst'])}", flush=True)
    finally:
        phase.close()
    return results


def _api_phase(phase: Phase, system: System, redis_server: RedisServer, settings: Settings,
               seed: int) -> dict[str, Any]:
    """Probe the API for ``api_seconds`` while ``api_rate`` events a second arrive."""
    plan = Plan(redis_server.url, rate=settings.api_rate, seconds=settings.api_seconds, generator=settings.generator,
                seed=seed, nice=settings.publisher_nice)
    figures = _guarded(lambda: phase.run(plan, settings.sustained_processes,
                                         during=lambda publisher: probe_api(system, publisher)))
    print(f"    API at {settings.api_rate:,} events/s: {_api_line(figures)}", flush=True)
    return figures


def _guarded(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one scenario; an error is recorded in its figures instead of ending the run."""
    try:
        return call()
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


def _line(figures: dict[str, Any]) -> str:
    if "error" in figures:
        return f"failed: {figures['error']}"
    live = figures.get("live_latency")
    latency = f", live p50/p95 {live['p50_ms']}/{live['p95_ms']} ms" if isinstance(live, dict) else ""
    cuts = f" (Redis cut the subscriber {figures['subscriber_cuts']}x)" if figures["subscriber_cuts"] else ""
    behind = (f"caught up {figures['catch_up_seconds']} s after" if figures["caught_up"]
              else f"its count stopped {figures['count_stopped_seconds']} s after")
    return (f"published {figures['published']:,} at {figures['published_rate']:,}/s, lost {figures['lost']:,}{cuts}, "
            f"{behind}, {figures['cpu_ms_per_1000_events']} ms CPU per "
            f"1,000 events, peak RSS {figures['peak_rss_mb']} MB{latency}")


def _api_line(figures: dict[str, Any]) -> str:
    if "error" in figures:
        return f"failed: {figures['error']}"
    api = figures["requests"]
    return ", ".join(f"{name} p50/p95 {api[name]['p50_ms']}/{api[name]['p95_ms']} ms"
                     for name in ("list", "list_newest", "detail"))
