"""Medians per system and the ratios between the systems, from the raw figures of every run.

Each run's figures are flattened to ``scenario.part.figure`` keys; a key's median
is taken over the runs of one system where it is a number. Ratios are what gets
quoted: for costs (CPU, memory, latency, lag, loss) Flower ÷ dashboard, for rates
dashboard ÷ Flower, so a ratio above 1 always favours the dashboard.
"""
from __future__ import annotations

import statistics
from typing import Any

#: A rate kept up with: nothing lost and every event processed this soon after publishing stopped.
KEPT_UP_SECONDS = 2.0
#: Figures that describe what was fed, not how a system did: no ratio.
INPUT_FIGURES = ("published", "published_rate", "publish_seconds", "tasks", "counted", "tasks_held",
                 "tasks_finished", "tasks_seen", "count", "processed", "after_rate", "caught_up", "cpu_seconds",
                 "errors", "subscriber_cuts", "count_stopped_seconds")
#: Figures where more is better: the ratio is dashboard ÷ Flower.
RATE_FIGURES = ("processed_rate", "max_rate_without_loss", "max_rate_kept_up")
#: The ratios quoted first, with a label each.
HEADLINES = {
    "sustained.max_rate_without_loss": "highest sustained rate without loss (events/s)",
    "sustained.max_rate_kept_up": f"highest sustained rate kept up with (no loss, < {KEPT_UP_SECONDS:g} s behind)",
    "memory.rss_kib_per_task": "memory per task held (RSS, KiB)",
    "api.requests.list.p50_ms": "task list, median (ms) under load",
    "api.requests.list.p95_ms": "task list, p95 (ms) under load",
    "api.requests.list_newest.p95_ms": "task list newest first, p95 (ms) under load",
    "api.requests.detail.p95_ms": "task detail, p95 (ms) under load",
    "burst.loss_pct": "burst: events lost (%)",
    "burst.catch_up_seconds": "burst: seconds behind after publishing (when nothing was lost)",
    "burst.peak_rss_mb": "burst: peak RSS (MB)",
    "burst.cpu_ms_per_1000_events": "burst: CPU per 1,000 events (ms)",
}


def derive(results: dict[str, Any]) -> None:
    """Add the figures computed from several scenarios (the highest rates handled) to a run's results."""
    sustained = results.get("sustained") or {}
    ok = [f for f in sustained.values() if isinstance(f, dict) and "error" not in f]
    without_loss = [f["published_rate"] for f in ok if f["lost"] == 0 and f["caught_up"]]
    kept_up = [f["published_rate"] for f in ok
               if f["lost"] == 0 and f["caught_up"] and f["catch_up_seconds"] < KEPT_UP_SECONDS]
    sustained["max_rate_without_loss"] = max(without_loss, default=0)
    sustained["max_rate_kept_up"] = max(kept_up, default=0)


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """Return every number in a nested result as ``dotted.key: value`` (the generator's own report left out)."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, (int, float)):
        return {prefix: float(value)}
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for key, item in value.items():
            if key in ("generator", "by_type", "system_says"):
                continue
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {}


def medians(runs: list[dict[str, Any]], system: str) -> dict[str, float]:
    """Return the median of every figure over the successful runs of ``system``."""
    values: dict[str, list[float]] = {}
    for run in runs:
        if run["system"] != system or not run.get("results"):
            continue
        for key, value in flatten(run["results"]).items():
            values.setdefault(key, []).append(value)
    return {key: round(statistics.median(vals), 3) for key, vals in sorted(values.items())}


def kind(key: str) -> str | None:
    """Return ``"rate"``, ``"cost"`` or None (an input figure) for a flattened key."""
    last = key.rsplit(".", 1)[-1]
    if last in INPUT_FIGURES or key.startswith("baseline."):
        return None
    return "rate" if last in RATE_FIGURES else "cost"


def ratios(dashboard: dict[str, float], flower: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Return, for each figure both systems have, the ratio that favours the dashboard when above 1."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(dashboard) & set(flower)):
        direction = kind(key)
        if direction is None:
            continue
        d, f = dashboard[key], flower[key]
        numerator, denominator = (d, f) if direction == "rate" else (f, d)
        ratio = round(numerator / denominator, 2) if denominator > 0 else None
        out[key] = {"ratio": ratio, "dashboard": d, "flower": f,
                    "means": "dashboard ÷ Flower" if direction == "rate" else "Flower ÷ dashboard",
                    "note": None if ratio is not None else "undefined: the denominator is 0"}
    return out


def headlines(table: dict[str, dict[str, Any]], rates: list[int]) -> dict[str, dict[str, Any]]:
    """Return the ratios to quote first: the headline figures and CPU per 1,000 events at each rate."""
    wanted = dict(HEADLINES)
    for rate in rates:
        wanted[f"sustained.{rate}.cpu_ms_per_1000_events"] = f"CPU per 1,000 events at {rate:,}/s (ms)"
    return {key: {"what": label, **table[key]} for key, label in wanted.items() if key in table}
