// The overview's throughput charts: tasks per second by outcome and the failure rate. The last 15
// minutes are per second, seeded from /api/stats and extended by every live `stats` message; a longer
// range (`?range=1h`, bookmarkable) is drawn at its own step and refetched every minute.

import { setField } from "../helpers/dom.js";
import { formatInteger, formatPercent, formatRate } from "../helpers/format.js";
import { latestRequest } from "../helpers/latest.js";
import {
  LIVE_RANGE, LIVE_WINDOW_SECONDS, RANGE_EVENT, RANGES, failureRates, fromStats, mergeStats, parseRange, perSecond,
  rangeSearch, rangeWords, stepWords, total, trimSeries,
} from "../helpers/series.js";
import { createPlot } from "./plot.js";

/** Refetch a longer range this often (its newest step is still filling). */
export const RANGE_REFRESH_MS = 60_000;
/** Retry a failed fetch (network or 5xx) after this long. */
export const RETRY_FETCH_MS = 5000;
/** Wait this long after a reconnect's snapshot before refetching (several may come at once). */
export const REFETCH_DEBOUNCE_MS = 500;
/** The live failure rate is taken over this many seconds (one second alone is mostly 0 or 100 %). */
export const LIVE_FAILURE_WINDOW_SECONDS = 10;
/** Live messages kept while the seed is loading (one a second), at most. */
const MAX_PENDING_MESSAGES = LIVE_WINDOW_SECONDS;
/** The outcomes drawn, with their colours (app.css custom properties). */
const OUTCOMES = [
  { kind: "succeeded", label: "succeeded", color: "--ok" },
  { kind: "failed", label: "failed", color: "--error" },
  { kind: "retried", label: "retried", color: "--warn" },
];

const axisRateFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const formatAxisRate = (value) => axisRateFormat.format(value);

/** Mount the throughput charts in `root` (its `[data-range]` select and two `[data-plot]` elements). */
export function mountThroughputChart(root, store) {
  const select = root.querySelector("[data-range]");
  const outcomesElement = root.querySelector('[data-plot="outcomes"]');
  const refreshError = root.querySelector("[data-refresh-error]");
  const outcomes = createPlot(outcomesElement, {
    series: OUTCOMES.map(({ label, color }) => ({ label, color })), format: formatRate, axisFormat: formatAxisRate,
  });
  const failures = createPlot(root.querySelector('[data-plot="failure-rate"]'), {
    series: [{ label: "failed / finished", color: "--error" }], format: formatPercent, yFloor: 0.01,
  });
  let range = parseRange(window.location.search, LIVE_RANGE);
  let series = null;
  let loading = false;
  let pending = []; // live messages that came while the seed was loading
  let timer = null;
  let snapshots = 0;
  const beginRequest = latestRequest(); // only the latest request may render

  async function load() {
    clearTimeout(timer);
    timer = null;
    const isLatest = beginRequest();
    loading = true;
    let response;
    let body = null;
    try {
      response = await fetch(`/api/stats?range=${encodeURIComponent(range)}`, { headers: { Accept: "application/json" } });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (isLatest()) failed(`Could not reach the dashboard: ${error.message}`);
      return;
    }
    if (!isLatest()) return;
    if (!response.ok || body === null) return failed(body?.error ?? `${response.status} ${response.statusText}`);
    refreshError.hidden = true;
    series = fromStats(body);
    // The queue and worker charts draw a longer range's depths and activity from the same answer.
    document.dispatchEvent(new CustomEvent(RANGE_EVENT, { detail: { range, body: range === LIVE_RANGE ? null : body } }));
    catchUp();
    render();
    if (range !== LIVE_RANGE) schedule(RANGE_REFRESH_MS);
  }

  /** Stop buffering: merge the live messages that came while loading (the live range only). */
  function catchUp() {
    loading = false;
    if (range === LIVE_RANGE && series) {
      for (const message of pending) mergeStats(series, message);
      trimSeries(series, LIVE_WINDOW_SECONDS);
    }
    pending = [];
  }

  function failed(message) {
    catchUp(); // keep what is shown, extended live
    setField(refreshError, "text", `Could not load the throughput: ${message}`);
    refreshError.hidden = false;
    schedule(RETRY_FETCH_MS);
  }

  /** Fetch again after `delayMs`, skipping rounds while the tab is hidden. */
  function schedule(delayMs) {
    clearTimeout(timer);
    timer = setTimeout(() => (document.hidden ? schedule(delayMs) : load()), delayMs);
  }

  function render() {
    if (!series) return;
    const live = range === LIVE_RANGE;
    const nowSeconds = store.serverNowMs() / 1000;
    // A copy of the times: the series grows and is trimmed in place, and the charts draw after the next frame.
    const times = series.t.slice();
    outcomes.draw([times, ...OUTCOMES.map(({ kind }) => perSecond(series, kind, live ? null : nowSeconds))]);
    failures.draw([times, failureRates(series, live ? LIVE_FAILURE_WINDOW_SECONDS : 1)]);
    const finished = total(series, ["succeeded", "failed"]);
    const failedCount = total(series, ["failed"]);
    // What the series holds (the chart's own `data-points` and `data-last` say what it drew).
    outcomesElement.dataset.tasks = String(total(series, OUTCOMES.map(({ kind }) => kind)));
    root.dataset.seriesLast = String(series.t.at(-1) ?? "");
    root.dataset.range = range;
    setField(root, "throughput-summary", `${formatInteger(finished)} finished in the last ${rangeWords(range)}`
      + (finished ? `, ${formatPercent(failedCount / finished)} failed` : ""));
    setField(root, "step", live ? "per second, live" : `per ${stepWords(series.step)}, refreshed every minute`);
  }

  const unsubscribeStats = store.subscribeStats((message) => {
    if (range !== LIVE_RANGE) return;
    if (loading) {
      pending.push(message);
      if (pending.length > MAX_PENDING_MESSAGES) pending.shift();
      return;
    }
    if (!series) return;
    mergeStats(series, message);
    trimSeries(series, LIVE_WINDOW_SECONDS);
    render();
  });

  const unsubscribe = store.subscribe((event) => {
    // Reconnected or resynced: the live messages of the time away are lost, refetch them.
    if (event.type === "snapshot" && ++snapshots > 1 && range === LIVE_RANGE) schedule(REFETCH_DEBOUNCE_MS);
  });

  if (select) {
    select.value = range;
    select.addEventListener("change", () => {
      range = RANGES.includes(select.value) ? select.value : LIVE_RANGE;
      const { pathname, search, hash } = window.location;
      window.history.replaceState(window.history.state, "", `${pathname}${rangeSearch(search, range, LIVE_RANGE)}${hash}`);
      series = null;
      pending = [];
      load();
    });
  }

  load();
  return () => { unsubscribeStats(); unsubscribe(); clearTimeout(timer); outcomes.destroy(); failures.destroy(); };
}
