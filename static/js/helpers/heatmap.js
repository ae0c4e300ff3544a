// Runtime heatmap math: a task type's runtime histogram per time step (the API's `runtime_histogram`)
// as a grid of cells, the rows worth drawing, colour intensity and the words of a bucket. DOM-free.

import { formatDuration } from "./duration.js";
import { formatInteger, formatTime } from "./format.js";

/** Least intensity of a cell with at least one run, so a single run still shows (0..1). */
export const MIN_INTENSITY = 0.15;

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/**
 * The grid of a series with `buckets` (upper bounds, seconds) and `runtime_histogram` (per step: null
 * or one count per bucket, then +Inf): `{times, rows, cells, max, low, high}`. `cells[column][row]`
 * counts the runs of that step in that bucket; `low`..`high` are the rows from the fastest bucket
 * used to the slowest (null when no run at all), so the drawing skips the empty ends.
 */
export function heatmapGrid(series) {
  const bounds = Array.isArray(series?.buckets) ? series.buckets.filter(isNumber) : [];
  const rows = bounds.length + 1;
  const times = Array.isArray(series?.t) ? series.t : [];
  const histograms = Array.isArray(series?.runtime_histogram) ? series.runtime_histogram : [];
  let max = 0;
  let low = null;
  let high = null;
  const cells = times.map((_, column) => {
    const histogram = histograms[column];
    const counts = new Array(rows).fill(0);
    if (!Array.isArray(histogram)) return counts;
    for (let row = 0; row < rows; row++) {
      const value = histogram[row];
      if (!isNumber(value) || value <= 0) continue;
      counts[row] = value;
      max = Math.max(max, value);
      low = low === null ? row : Math.min(low, row);
      high = high === null ? row : Math.max(high, row);
    }
    return counts;
  });
  return { times, bounds, rows, cells, max, low, high };
}

/** How strongly to colour a cell of `count` runs when the busiest has `max` (0: not at all); square root, so few runs still show. */
export function intensity(count, max) {
  if (!isNumber(count) || count <= 0 || !(max > 0)) return 0;
  return MIN_INTENSITY + (1 - MIN_INTENSITY) * Math.sqrt(Math.min(count, max) / max);
}

/** The runtimes of bucket `row`: "≤ 5 ms" for the first, "5 ms – 10 ms", "> 1 h" for +Inf. */
export function bucketLabel(bounds, row) {
  if (row >= bounds.length) return `> ${formatDuration(bounds.at(-1))}`;
  if (row === 0) return `≤ ${formatDuration(bounds[0])}`;
  return `${formatDuration(bounds[row - 1])} – ${formatDuration(bounds[row])}`;
}

/** The axis label of row `row`: its upper bound ("≤ 250 ms"), "> 1 h" for +Inf. */
export function bucketAxisLabel(bounds, row) {
  return row >= bounds.length ? `> ${formatDuration(bounds.at(-1))}` : `≤ ${formatDuration(bounds[row])}`;
}

/** The words of one cell, for its tooltip: "12:05:00 · 250 ms – 500 ms: 3 runs". */
export function cellTitle(grid, column, row, nowMs = Date.now()) {
  const runs = grid.cells[column]?.[row] ?? 0;
  return `${formatTime(grid.times[column], nowMs)} · ${bucketLabel(grid.bounds, row)}: ${formatInteger(runs)} ${runs === 1 ? "run" : "runs"}`;
}
