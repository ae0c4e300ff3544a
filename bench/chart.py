"""The comparison chart: the medians of both systems side by side, one panel per figure.

Drawn with matplotlib's Agg backend (no display needed) from the ``medians`` of a
results document; a figure a system lacks is left out of its bars and said so in
the panel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

#: Bar colours of the two systems.
COLOURS = {"dashboard": "#2b6cb0", "flower": "#d69e2e"}
LABELS = {"dashboard": "Celery Dashboard", "flower": "Flower"}
WIDTH = 0.38


def _value(medians: dict[str, float], key: str) -> float | None:
    return medians.get(key)


def _grouped(ax: Axes, groups: list[str], series: dict[str, list[float | None]], title: str, unit: str,
             log: bool = False) -> None:
    """Draw one bar per system in each group, with its value written above it."""
    for n, (system, values) in enumerate(series.items()):
        xs = [i + (n - 0.5) * WIDTH for i in range(len(groups))]
        heights = [v if v is not None else 0 for v in values]
        bars = ax.bar(xs, heights, WIDTH, color=COLOURS[system], label=LABELS[system])
        for bar, value in zip(bars, values):
            text = "n/a" if value is None else (f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}")
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.margins(y=0.15)
    ax.tick_params(axis="y", labelsize=7)


def _phases(rates: list[int]) -> list[tuple[str, str]]:
    """Return (label, key prefix) of every publishing phase: the sustained rates, then the burst."""
    return [(f"{rate / 1000:g}k/s", f"sustained.{rate}") for rate in rates] + [("burst", "burst")]


def _per_phase(medians: dict[str, dict[str, float]], rates: list[int], figure: str) -> dict[str, list[float | None]]:
    return {system: [_value(m, f"{prefix}.{figure}") for _, prefix in _phases(rates)] for system, m in medians.items()}


def _store_note(store: dict[str, Any]) -> str:
    """Return the footnote on the dashboard's history (Flower has none to compare)."""
    page = store.get("tasks_page_first_page")
    if not page:
        return "Store: no store benchmark results found (run with --store-bench)."
    return (f"Store (dashboard only; Flower keeps no history): tasks page, first page over {store['tasks']:,} stored "
            f"tasks, p50 / p95 {page['p50_ms']} / {page['p95_ms']} ms ({store['file']}).")


def draw(document: dict[str, Any], path: Path) -> None:
    """Draw the chart of a results document to ``path`` (PNG)."""
    medians: dict[str, dict[str, float]] = {s: m for s, m in document["medians"].items() if m}
    settings = document["settings"]
    rates: list[int] = settings["rates"]
    labels = [label for label, _ in _phases(rates)]
    fig, axes = plt.subplots(2, 4, figsize=(20, 9.5))
    ax = axes.flat

    _grouped(ax[0], labels, _per_phase(medians, rates, "cpu_ms_per_1000_events"), "CPU per 1,000 events", "ms")
    _grouped(ax[1], labels, _per_phase(medians, rates, "loss_pct"), "Events lost", "% of published")
    _grouped(ax[2], labels, _per_phase(medians, rates, "catch_up_seconds"),
             "Behind when publishing stopped (n/a: events were lost)", "seconds to process the rest")
    _grouped(ax[3], ["without loss", "kept up (< 2 s behind)"],
             {s: [_value(m, "sustained.max_rate_without_loss"), _value(m, "sustained.max_rate_kept_up")]
              for s, m in medians.items()}, "Highest sustained rate handled", "events/s")
    _grouped(ax[4], ["RSS", "anonymous RSS"],
             {s: [_value(m, "memory.rss_kib_per_task"), _value(m, "memory.rss_anon_kib_per_task")]
              for s, m in medians.items()},
             f"Memory per task held (after {settings['memory_rate']:,}/s)", "KiB per task")
    _grouped(ax[5], ["list p50", "list p95", "newest p50", "newest p95", "detail p50", "detail p95"],
             {s: [_value(m, f"api.requests.{name}.{p}_ms") for name in ("list", "list_newest", "detail")
                  for p in ("p50", "p95")] for s, m in medians.items()},
             f"API latency while {settings['api_rate']:,} events/s arrive", "ms (log scale)", log=True)
    _grouped(ax[6], labels, _per_phase(medians, rates, "peak_rss_mb"), "Peak RSS", "MB")
    live_groups = [f"{label} {p}" for label, _ in _phases(rates) for p in ("p50", "p95")]
    live = {s: [_value(m, f"{prefix}.live_latency.{p}_ms") for _, prefix in _phases(rates) for p in ("p50", "p95")]
            for s, m in medians.items() if s == "dashboard"}
    _grouped(ax[7], live_groups, live, "Publish → live client (dashboard)", "ms")
    ax[7].tick_params(axis="x", labelrotation=45)
    ax[7].text(0.5, 0.92, "Flower: not applicable (no live push of task events)", transform=ax[7].transAxes,
               ha="center", fontsize=8, color="#555")

    handles, names = ax[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", fontsize=10, ncols=2)
    ax[3].text(0.5, 0.92, f"(highest rate tried: {max(rates):,}/s)", transform=ax[3].transAxes, ha="center",
               fontsize=8, color="#555")
    rounds = document["rounds_completed"]
    fig.suptitle(f"Celery Dashboard vs Flower {document['versions'].get('flower', '?')}: medians of "
                 f"{rounds.get('dashboard', 0)} / {rounds.get('flower', 0)} runs, {settings['seconds']:g} s per rate, "
                 f"burst {settings['burst_tasks']:,} tasks ({document['machine']['cpus']} CPUs, "
                 f"{document['started'][:10]})", fontsize=12)
    fig.text(0.5, 0.005, _store_note(document.get("store") or {}), ha="center", fontsize=9, color="#333")
    fig.tight_layout(rect=(0, 0.02, 1, 0.95))
    fig.savefig(path, dpi=100)
    plt.close(fig)
