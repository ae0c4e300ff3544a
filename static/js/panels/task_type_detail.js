// One task type's page (/api/task-types/<name>): its counts and percentiles, runtime and wait
// percentiles over time, the runtime heatmap, markers on both, the most common exceptions with an
// example task each, and the slowest runs. The range is in the URL (`?range=6h`); refetched every minute.

import { url } from "../helpers/base.js";
import { cloneTemplate, setField, setFieldAttr } from "../helpers/dom.js";
import { formatDuration } from "../helpers/duration.js";
import { formatInteger, formatIso, formatTime, shortUuid, taskHref } from "../helpers/format.js";
import { RANGES, markersWithin, parseRange, rangeSearch, rangeWords, stepWords } from "../helpers/series.js";
import { typeRow, typeSummary } from "../helpers/task_types.js";
import { mountMarkerForm } from "./marker_form.js";
import { createPlot } from "./plot.js";
import { createHeatmap } from "./runtime_heatmap.js";
import { createDetailLoader } from "./detail_loader.js";

/** The page's range when the URL names none (the API's own default). */
export const DEFAULT_RANGE = "1h";
/** Refetch this often. */
export const REFRESH_MS = 60_000;
/** The percentiles drawn: the series' key, its label and colour, dashed for waits. */
const PERCENTILES = [
  { key: "runtime_p50", label: "runtime p50", color: "--info" },
  { key: "runtime_p95", label: "runtime p95", color: "--warn" },
  { key: "runtime_p99", label: "runtime p99", color: "--error" },
  { key: "wait_p50", label: "wait p50", color: "--idle", dash: true },
  { key: "wait_p95", label: "wait p95", color: "--revoked", dash: true },
];
/** The facts filled from a type's row, by their `data-field`. */
const FACT_FIELDS = ["runs", "failed", "failure-rate", "retried", "received", "runtime-p50", "runtime-p95", "runtime-p99", "runtime-mean"];
/** Least top of the percentiles' axis, in seconds. */
const DURATION_FLOOR_SECONDS = 0.01;

/**
 * Mount the task type page.
 * @param {{name: string, actions: boolean}} options `actions`: the marker form is shown.
 */
export function mountTaskTypeDetail(root, { name, actions }) {
  const base = `/api/task-types/${encodeURIComponent(name)}`;
  const select = root.querySelector("[data-range]");
  const percentiles = createPlot(root.querySelector('[data-plot="percentiles"]'), {
    series: PERCENTILES.map(({ label, color, dash }) => ({ label, color, dash })),
    format: formatDuration, yFloor: DURATION_FLOOR_SECONDS, xRange: () => span,
  });
  const heatmap = createHeatmap(root.querySelector("[data-heatmap]"));
  let range = parseRange(window.location.search, DEFAULT_RANGE);
  let detail = null;
  let span = null; // [start, end] of the range drawn, epoch seconds
  const { load, show, stop } = createDetailLoader(root, {
    what: "task type",
    url: () => `${base}?range=${encodeURIComponent(range)}`,
    loaded(body) {
      detail = body;
      render();
      return REFRESH_MS;
    },
    missing() {
      detail = null;
      setField(root, "range-words", rangeWords(range));
      return REFRESH_MS; // it may run soon
    },
  });

  setField(root, "requested-name", name);

  function render() {
    show("type");
    const cells = typeRow(detail, range);
    setField(root, "name", cells.name);
    setField(root, "summary", `${typeSummary(detail)} in the last ${rangeWords(range)}`);
    for (const field of FACT_FIELDS) setField(root, field, cells[field]);
    setFieldAttr(root, "runs", "title", cells.title);
    setField(root, "wait", `${cells["wait-p50"]} / ${cells["wait-p95"]}`);
    renderCharts(detail.series ?? {}, Array.isArray(detail.markers) ? detail.markers : []);
    renderExceptions(Array.isArray(detail.exceptions) ? detail.exceptions : []);
    renderSlowest(Array.isArray(detail.slowest) ? detail.slowest : []);
  }

  function renderCharts(series, markers) {
    const times = Array.isArray(series.t) ? series.t : [];
    const step = Number.isFinite(series.step) ? series.step : 60;
    span = times.length ? [times[0], times.at(-1) + step] : null;
    percentiles.draw([times, ...PERCENTILES.map(({ key }) => (Array.isArray(series[key]) ? series[key] : times.map(() => null)))]);
    percentiles.setMarkers(markers);
    heatmap.draw(series, markers);
    setField(root, "step", `per ${stepWords(step)}`);
    const runs = (series.runtime_histogram ?? []).reduce((sum, counts) => sum + (Array.isArray(counts) ? counts.reduce((a, b) => a + b, 0) : 0), 0);
    setField(root, "heatmap-meta", `${formatInteger(runs)} successful ${runs === 1 ? "run" : "runs"}, per ${stepWords(step)}`);
    renderMarkers(span ? markersWithin(markers, span[0], span[1]) : markers);
  }

  function renderMarkers(markers) {
    const list = root.querySelector('[data-list="markers"]');
    list.replaceChildren(...markers.map((marker) => {
      const item = cloneTemplate(root, "marker-item");
      setField(item, "at", formatTime(marker.at));
      setFieldAttr(item, "at", "datetime", formatIso(marker.at));
      setField(item, "label", String(marker.label ?? ""));
      setField(item, "who", marker.who ? `by ${marker.who}` : "");
      return item;
    }));
    setField(root, "markers-empty", markers.length ? "" : `No marker in the last ${rangeWords(range)}.`);
  }

  function renderExceptions(exceptions) {
    const list = root.querySelector('[data-list="exceptions"]');
    list.replaceChildren(...exceptions.map((entry) => {
      const row = cloneTemplate(root, "exception-row");
      setField(row, "exception", String(entry.exception));
      setField(row, "count", formatInteger(entry.count));
      setField(row, "example", shortUuid(entry.example));
      setFieldAttr(row, "example", "href", typeof entry.example === "string" ? taskHref(entry.example) : null);
      setFieldAttr(row, "example", "title", typeof entry.example === "string" ? `The latest task that raised it: ${entry.example}` : null);
      return row;
    }));
    setField(root, "exceptions-empty", exceptions.length ? "" : "No run failed in this period.");
  }

  function renderSlowest(slowest) {
    const list = root.querySelector('[data-list="slowest"]');
    list.replaceChildren(...slowest.map((run) => {
      const row = cloneTemplate(root, "slowest-row");
      setField(row, "runtime", formatDuration(run.runtime));
      setField(row, "at", formatTime(run.at));
      setFieldAttr(row, "at", "title", formatIso(run.at));
      setField(row, "task", shortUuid(run.uuid));
      setFieldAttr(row, "task", "href", typeof run.uuid === "string" ? taskHref(run.uuid) : null);
      setFieldAttr(row, "task", "title", typeof run.uuid === "string" ? run.uuid : null);
      return row;
    }));
    setField(root, "slowest-empty", slowest.length ? "" : "No run succeeded in this period.");
  }

  select.value = range;
  select.addEventListener("change", () => {
    range = RANGES.includes(select.value) ? select.value : DEFAULT_RANGE;
    const { pathname, search, hash } = window.location;
    window.history.replaceState(window.history.state, "", `${pathname}${rangeSearch(search, range, DEFAULT_RANGE)}${hash}`);
    setFieldAttr(root, "back", "href", url(`/task-types${rangeSearch("", range, DEFAULT_RANGE)}`));
    load();
  });
  setFieldAttr(root, "back", "href", url(`/task-types${rangeSearch("", range, DEFAULT_RANGE)}`));

  const form = root.querySelector("[data-marker-form]");
  if (form && actions) mountMarkerForm(form, { onAdded: load });

  load();
  return () => { stop(); percentiles.destroy(); heatmap.destroy(); };
}
