// Tests of the charts' DOM-free math: ranges in the URL, /api/stats bodies and live `stats` messages
// merged into one series, trimming, rates, failure rates, bucketed samples per name, the heatmap's
// grid, the task-type pages' words, and the store passing `stats` messages on.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  KINDS, LIVE_WINDOW_SECONDS, busiestNames, createBuckets, failureRates, fromStats, isolatedIndices,
  markersWithin, mergeStats, parseRange, perSecond, rangeGauges, rangeSearch, rangeWords, stepWords, total,
  trimSeries,
} from "../../static/js/helpers/series.js";
import { bucketAxisLabel, bucketLabel, heatmapGrid, intensity, MIN_INTENSITY } from "../../static/js/helpers/heatmap.js";
import { countsTitle, runs, topRows, typeRow, typeSummary } from "../../static/js/helpers/task_types.js";
import { EMPTY, formatPercent, taskTypeHref } from "../../static/js/helpers/format.js";
import { createStore } from "../../static/js/store.js";

const T = 1_764_000_000; // an epoch second

/** An /api/stats-shaped body of `step` seconds from `start`, with `counts[kind]` arrays (zeros elsewhere). */
function body(start, step, length, counts = {}) {
  const t = Array.from({ length }, (_, i) => start + i * step);
  return { range: "15m", step, t, ...Object.fromEntries(KINDS.map((kind) => [kind, counts[kind] ?? t.map(() => 0)])) };
}

/** A live `stats` message for the seconds `times`, `succeeded` and `failed` per second (zeros elsewhere). */
function message(times, succeeded = times.map(() => 0), failed = times.map(() => 0)) {
  return { ...body(times[0], 1, times.length), t: times, succeeded, failed };
}

test("the range comes from the URL, and goes back into it unless it is the page's default", () => {
  assert.equal(parseRange("?range=1h"), "1h");
  assert.equal(parseRange("?range=2h"), "15m");
  assert.equal(parseRange(""), "15m");
  assert.equal(parseRange("?state=FAILURE", "1h"), "1h");
  assert.equal(rangeSearch("", "6h"), "?range=6h");
  assert.equal(rangeSearch("?range=6h", "15m"), "");
  assert.equal(rangeSearch("?range=6h&x=1", "1h", "1h"), "?x=1");
  assert.equal(rangeSearch("?x=1", "7d", "1h"), "?x=1&range=7d");
  assert.equal(rangeSearch("?range=1d", "bogus"), "");
  assert.equal(rangeWords("1h"), "hour");
  assert.equal(rangeWords("7d"), "7 days");
  assert.deepEqual([1, 60, 300, 900, 3600, 7200].map(stepWords), ["second", "minute", "5 minutes", "15 minutes", "hour", "2 hours"]);
});

test("a seed is copied: times and counts, a missing count as null", () => {
  const seed = { step: 60, t: [T, T + 60, "x"], succeeded: [1, null], failed: [0, 2] };
  const series = fromStats(seed);
  assert.equal(series.step, 60);
  assert.deepEqual(series.t, [T, T + 60]);
  assert.deepEqual(series.succeeded, [1, null]);
  assert.deepEqual(series.failed, [0, 2]);
  assert.deepEqual(series.rejected, [null, null]);
  seed.t.push(T + 120);
  assert.equal(series.t.length, 2, "the seed's arrays are not shared");
  assert.deepEqual(fromStats(null).t, []);
  assert.equal(fromStats({ step: 0 }).step, 1);
});

test("a live message replaces the seed's last (still counting) second and appends the new ones", () => {
  const series = fromStats(body(T, 1, 3, { succeeded: [1, 2, 3] }));
  assert.equal(mergeStats(series, message([T + 2, T + 3, T + 4], [5, 6, 7], [0, 1, 0])), 2);
  assert.deepEqual(series.t, [T, T + 1, T + 2, T + 3, T + 4]);
  assert.deepEqual(series.succeeded, [1, 2, 5, 6, 7]);
  assert.deepEqual(series.failed, [0, 0, 0, 1, 0]);
  // A message older than the series, or of another step, changes nothing.
  assert.equal(mergeStats(series, message([T - 5], [9])), 0);
  assert.equal(mergeStats(series, { ...message([T + 5], [9]), step: 60 }), 0);
  assert.equal(mergeStats(series, {}), 0);
  assert.equal(series.t.length, 5);
});

test("seconds skipped between two messages are unknown (null), not zero", () => {
  const series = fromStats(body(T, 1, 2));
  assert.equal(mergeStats(series, message([T + 4], [3])), 3);
  assert.deepEqual(series.t, [T, T + 1, T + 2, T + 3, T + 4]);
  assert.deepEqual(series.succeeded, [0, 0, null, null, 3]);
  assert.deepEqual(perSecond(series, "succeeded"), [0, 0, null, null, 3]);
  // An empty series takes the message as it is.
  const empty = fromStats({ step: 1, t: [] });
  assert.equal(mergeStats(empty, message([T, T + 1], [1, 2])), 2);
  assert.deepEqual(empty.succeeded, [1, 2]);
});

test("the live series keeps the last 15 minutes", () => {
  const series = fromStats(body(T, 1, LIVE_WINDOW_SECONDS));
  mergeStats(series, message([T + LIVE_WINDOW_SECONDS, T + LIVE_WINDOW_SECONDS + 1], [4, 5]));
  trimSeries(series);
  assert.equal(series.t.length, LIVE_WINDOW_SECONDS);
  assert.equal(series.t[0], T + 2);
  assert.equal(series.succeeded.length, LIVE_WINDOW_SECONDS);
  assert.deepEqual(series.succeeded.slice(-2), [4, 5]);
  for (const kind of KINDS) assert.equal(series[kind].length, LIVE_WINDOW_SECONDS, kind);
  assert.deepEqual(trimSeries(fromStats({ step: 1, t: [] })).t, []);
});

test("rates per second: over the step, the newest step over its elapsed part", () => {
  const series = fromStats(body(T, 60, 3, { succeeded: [60, 120, 30] }));
  assert.deepEqual(perSecond(series, "succeeded"), [1, 2, 0.5]);
  // 15 s into the newest minute: its 30 tasks are 2 a second.
  assert.deepEqual(perSecond(series, "succeeded", T + 120 + 15), [1, 2, 2]);
  // Never divided by less than a second, nor by more than the step.
  assert.deepEqual(perSecond(series, "succeeded", T + 120.2), [1, 2, 30]);
  assert.deepEqual(perSecond(series, "succeeded", T + 999), [1, 2, 0.5]);
  assert.equal(total(series, ["succeeded", "failed"]), 210);
});

test("failure rates: failed of finished, over a window of points, null where nothing finished", () => {
  const series = fromStats(body(T, 1, 5, { succeeded: [3, 0, 0, 1, 0], failed: [1, 0, 1, null, 0] }));
  assert.deepEqual(failureRates(series), [0.25, null, 1, 0, null]);
  assert.deepEqual(failureRates(series, 2), [0.25, 0.25, 1, 0.5, 0]);
  assert.deepEqual(failureRates(series, 10), [0.25, 0.25, 0.4, 1 / 3, 1 / 3]);
});

test("samples per name fold into buckets (the highest) and align into chart columns", () => {
  const buckets = createBuckets(10);
  assert.equal(buckets.add("celery", T + 1, 3), true);
  assert.equal(buckets.add("celery", T + 9, 7), true);
  assert.equal(buckets.add("celery", T + 5, 2), true); // same bucket, lower: kept at 7
  assert.equal(buckets.add("celery", T + 21, 1), true);
  assert.equal(buckets.add("celery", T - 10, 9), false); // older than its last bucket
  assert.equal(buckets.add("celery", T + 30, null), false);
  assert.equal(buckets.add("celery", undefined, 1), false);
  assert.equal(buckets.add("reports", T + 12, 4), true);
  assert.deepEqual(buckets.columns(["celery", "reports"]), [[T, T + 10, T + 20], [7, null, 1], [null, 4, null]]);
  assert.deepEqual(buckets.columns([]), [[]]);
  assert.equal(buckets.peak("celery"), 7);
  assert.equal(buckets.peak("nobody"), 0);
  buckets.trim(T + 10);
  assert.deepEqual(buckets.columns(["celery", "reports"]), [[T + 10, T + 20], [null, 1], [4, null]]);
  buckets.trim(T + 20);
  assert.deepEqual(buckets.names(), ["celery"]); // a name left with no bucket is forgotten
  buckets.forget("celery");
  assert.deepEqual(buckets.names(), []);
});

test("the busiest names are drawn, in a stable order", () => {
  const buckets = createBuckets(5);
  for (const [name, value] of [["b", 5], ["a", 5], ["c", 9], ["d", 1]]) buckets.add(name, T, value);
  assert.deepEqual(busiestNames(buckets, 3), ["a", "b", "c"]);
  assert.deepEqual(busiestNames(buckets, 1), ["c"]);
  buckets.clear();
  assert.deepEqual(busiestNames(buckets, 3), []);
});

test("a lone value between gaps is found (it needs a dot), markers are kept within the range", () => {
  assert.deepEqual(isolatedIndices([null, 1, null, 2, 3, null, 0]), [1, 6]);
  assert.equal(isolatedIndices([1, 2]), null);
  assert.equal(isolatedIndices([]), null);
  const markers = [{ at: T + 50, label: "b" }, { at: T, label: "a" }, { at: T + 500, label: "late" }, { at: null, label: "bad" }];
  assert.deepEqual(markersWithin(markers, T, T + 100).map((m) => m.label), ["a", "b"]);
  assert.deepEqual(markersWithin(null, 0, 1), []);
});

test("the heatmap's grid: counts per step and bucket, the rows used, intensity", () => {
  const series = {
    t: [T, T + 60, T + 120],
    buckets: [0.1, 1, 10],
    runtime_histogram: [null, [0, 3, 1, 0], [0, 1, 0, 2]],
  };
  const grid = heatmapGrid(series);
  assert.equal(grid.rows, 4);
  assert.deepEqual(grid.cells, [[0, 0, 0, 0], [0, 3, 1, 0], [0, 1, 0, 2]]);
  assert.equal(grid.max, 3);
  assert.equal(grid.low, 1);
  assert.equal(grid.high, 3);
  const empty = heatmapGrid({ t: [T], buckets: [0.1], runtime_histogram: [null] });
  assert.equal(empty.low, null);
  assert.equal(empty.max, 0);
  assert.equal(heatmapGrid(undefined).cells.length, 0);
  assert.equal(intensity(0, 3), 0);
  assert.equal(intensity(3, 3), 1);
  assert.equal(intensity(1, 0), 0);
  assert.ok(intensity(1, 1000) >= MIN_INTENSITY, "a single run still shows");
  assert.ok(intensity(1, 3) < intensity(2, 3));
});

test("a bucket's words name its bounds through the one duration format", () => {
  const bounds = [0.005, 0.25, 3600];
  assert.equal(bucketLabel(bounds, 0), "≤ 5 ms");
  assert.equal(bucketLabel(bounds, 1), "5 ms – 250 ms");
  assert.equal(bucketLabel(bounds, 3), "> 1 h");
  assert.equal(bucketAxisLabel(bounds, 1), "≤ 250 ms");
  assert.equal(bucketAxisLabel(bounds, 3), "> 1 h");
});

test("failure rates print as percents", () => {
  assert.equal(formatPercent(0.063), "6.3%");
  assert.equal(formatPercent(1), "100%");
  assert.equal(formatPercent(0), "0%");
  assert.equal(formatPercent(0.0004), "<0.1%");
  assert.equal(formatPercent(null), EMPTY);
});

const summary = (name, extra = {}) => ({
  name, sent: 10, received: 10, started: 10, succeeded: 8, failed: 2, retried: 1, revoked: 0, rejected: 0,
  failure_rate: 0.2, runtime: { p50: 0.12, p95: 1.5, p99: 2.25, mean: 0.3 }, wait: { p50: 0.004, p95: null }, ...extra,
});

test("a task type's row: runs, percent, durations, and a link that encodes its name", () => {
  const row = typeRow(summary("app.tasks/odd name?"), "6h");
  assert.equal(row.href, "/task-types/app.tasks%2Fodd%20name%3F?range=6h");
  assert.equal(row.runs, "10");
  assert.equal(row["failure-rate"], "20%");
  assert.equal(row["runtime-p50"], "120 ms");
  assert.equal(row["runtime-p95"], "1.50 s");
  assert.equal(row["wait-p95"], EMPTY);
  assert.match(row.title, /^sent 10 · received 10 · .* · rejected 0$/);
  assert.equal(runs({ succeeded: 3 }), 3);
  assert.equal(countsTitle({}).split(" · ").length, KINDS.length);
  assert.equal(typeSummary(summary("x")), "10 runs, 20% failed, p95 1.50 s");
  assert.equal(typeSummary({ succeeded: 1, failed: 0, failure_rate: null, runtime: {} }), "1 run");
  assert.equal(taskTypeHref("a"), "/task-types/a");
});

test("the top lists link each name to its own page", () => {
  const rows = topRows({
    slowest_types: [summary("slow")],
    failing_types: [summary("bad")],
    busiest_workers: [{ name: "w1@host/x", processed: 42, failed: 3 }],
    longest_waits: [{ name: "q/1", p50: 0.5, p95: 2, count: 7 }],
    longest_waiting_types: [summary("waits"), { bogus: true }],
  }, "1d");
  assert.deepEqual(rows.slowest_types[0], {
    name: "slow", href: "/task-types/slow?range=1d", value: "1.50 s", detail: "120 ms",
    title: "runtime p50 120 ms, p95 1.50 s, p99 2.25 s",
  });
  assert.equal(rows.failing_types[0].value, "20%");
  assert.equal(rows.failing_types[0].title, "2 of 10 finished runs failed");
  assert.equal(rows.busiest_workers[0].href, "/workers/w1%40host%2Fx");
  assert.equal(rows.busiest_workers[0].value, "42");
  assert.equal(rows.longest_waits[0].href, "/queues/q%2F1");
  assert.equal(rows.longest_waits[0].value, "2.00 s");
  assert.equal(rows.longest_waiting_types.length, 1, "an entry without a name is skipped");
  assert.deepEqual(topRows(null).busiest_workers, []);
});

test("the store passes `stats` messages to their own listeners only", () => {
  const store = createStore();
  const events = [];
  const stats = [];
  store.subscribe((event) => events.push(event));
  const stop = store.subscribeStats((m) => stats.push(m));
  store.applyStats(message([T], [1]));
  assert.equal(stats.length, 1);
  assert.equal(events.length, 0, "panels that redraw on every store event never see them");
  stop();
  store.applyStats(message([T + 1], [1]));
  assert.equal(stats.length, 1);
});

test("a longer range's gauges become chart columns; the live range has none", () => {
  const body = { step: 60, t: [0, 60, 120], queues: { b: [1, null, 3], a: [null, 5, null], bad: "x" } };
  const gauges = rangeGauges(body, "queues");
  assert.deepEqual(gauges.names, ["a", "b"]);
  assert.deepEqual(gauges.columns, [[0, 60, 120], [null, 5, null], [1, null, 3]]);
  assert.deepEqual(gauges.span, [0, 180]);
  assert.equal(rangeGauges({ step: 1, t: [0] }, "queues"), null);
  assert.deepEqual(rangeGauges({ step: 60, t: [0] }, "workers").names, []);
});
