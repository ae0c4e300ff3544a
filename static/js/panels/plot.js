// One uPlot chart in a container, the way every chart of the pages wants it: as wide as its container,
// coloured from app.css's custom properties, no zoom (live data would undo it every second), no redraw
// while the tab is hidden (the newest data is drawn once it is visible again), markers as vertical
// lines with their label as a tooltip, and `data-points` and `data-last` saying how many points are
// drawn and the time of the newest.
// uPlot styles its elements through the CSSOM (`el.style.x = ...`), which the strict CSP allows.

import uPlot from "../../vendor/uplot/uPlot.esm.js";
import { niceMax } from "../helpers/chart.js";
import { afterNextFrame } from "../helpers/dom.js";
import { EMPTY, formatClockMinutes, formatTime } from "../helpers/format.js";
import { isolatedIndices, markersWithin } from "../helpers/series.js";

/** Height of a chart (plot and axes; the legend is below it), in CSS pixels. */
export const PLOT_HEIGHT_PX = 180;
/** Width used before the container has been laid out, in CSS pixels. */
const FALLBACK_WIDTH_PX = 600;
/** Room for the y axis' labels ("1.25 s", "100%"), in CSS pixels. */
const Y_AXIS_PX = 64;
/** Width of a line, in CSS pixels. */
const LINE_WIDTH_PX = 1.5;
/** Dashes of a dashed line (on, off), in CSS pixels. */
const DASH_PX = [5, 4];
/** Steps between two y ticks of a chart of whole numbers (1, 2, 5 × 10^n): never a fraction. */
const WHOLE_INCREMENTS = Array.from({ length: 10 }, (_, n) => [1, 2, 5].map((m) => m * 10 ** n)).flat();
const MINUTE_SECONDS = 60;
const DAY_SECONDS = 86_400;
/** Colours of series named at run time (queues, workers): app.css's custom properties. */
export const PALETTE = ["--series-1", "--series-2", "--series-3", "--series-4", "--series-5", "--series-6", "--series-7", "--series-8"];

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric" });

const paletteOf = new Map(); // name -> palette entry, in order of first use on this page

/** The palette colour of `name`, the same for the life of the page. */
export function colorFor(name) {
  if (!paletteOf.has(name)) paletteOf.set(name, PALETTE[paletteOf.size % PALETTE.length]);
  return paletteOf.get(name);
}

/**
 * Create a chart in `container` (empty until the first `draw`).
 * @param {{series?: {label: string, color: string, dash?: boolean}[], format?: (value: number) => string,
 *   axisFormat?: (value: number) => string, whole?: boolean, yFloor?: number,
 *   xRange?: () => [number, number]|null, height?: number}} options
 *   `series`: one per column after the times; `color` names a custom property (`--ok`). `format`
 *   prints a y value in the legend, and on the axis unless `axisFormat` does; `whole`: the values are
 *   counts (no tick between two whole numbers); `yFloor` is the least top of the y axis; `xRange`
 *   the times to show (default: those of the data).
 * @returns {{draw(columns: Array<Array<number|null>>|(() => {columns: Array, series: object[]}), series?: object[]): void,
 *   setMarkers(markers: {at: number, label: string, who?: string}[]): void, destroy(): void}}
 *   `draw` takes `[times, values...]`, or a function returning `{columns, series}` that is called only
 *   when the chart is drawn (not while the tab is hidden); a different `series` (a queue appeared)
 *   builds the chart again.
 */
export function createPlot(container, {
  series = [], format = String, axisFormat = format, whole = false, yFloor = 1, xRange = null, height = PLOT_HEIGHT_PX,
} = {}) {
  let shown = series;
  let columns = [[], ...series.map(() => [])];
  let markers = [];
  let plot = null;
  let builtFor = null; // the series the chart was built for, as a key
  let source = null; // what draws next, when it was given as a function
  let stale = false; // data came while the tab was hidden
  let pending = null; // cancels the render a draw scheduled, until it runs

  function build() {
    plot?.destroy();
    const style = getComputedStyle(container);
    const color = (name) => style.getPropertyValue(name).trim() || "currentColor";
    const axis = {
      stroke: color("--text-muted"),
      grid: { stroke: color("--border"), width: 1 },
      ticks: { stroke: color("--border"), width: 1 },
    };
    plot = new uPlot({
      width: container.clientWidth || FALLBACK_WIDTH_PX,
      height,
      series: [
        { value: (u, t) => (t == null ? EMPTY : formatTime(t)) },
        ...shown.map((s) => ({
          label: s.label,
          stroke: color(s.color),
          width: LINE_WIDTH_PX,
          dash: s.dash ? DASH_PX : undefined,
          value: (u, v) => (v == null ? EMPTY : format(v)),
          // uPlot draws dots only where points are sparse; a lone value between gaps needs one anyway.
          points: { filter: (u, index, show) => (show ? null : isolatedIndices(u.data[index])) },
        })),
      ],
      axes: [
        { ...axis, values: timeLabels },
        { ...axis, size: Y_AXIS_PX, values: (u, splits) => splits.map((v) => axisFormat(v)), ...(whole ? { incrs: WHOLE_INCREMENTS } : {}) },
      ],
      scales: {
        x: { time: true, ...(xRange ? { range: (u, min, max) => xRange() ?? [min, max] } : {}) },
        y: { range: (u, min, max) => [0, niceMax(max, yFloor)] },
      },
      cursor: { drag: { x: false, y: false, setScale: false } },
      hooks: { draw: [placeMarkers] },
    }, columns, container);
    builtFor = seriesKey(shown);
    renderMarkers();
  }

  /**
   * Render once the page has painted what changed with the data: after the next frame. Building a chart
   * makes the browser lay out the page there and then, so a page that gets a snapshot (a thousand worker
   * cards, the tasks, the queues) showed nothing until its charts were built; now they follow a frame
   * later. Several draws before then render once, with the newest data.
   */
  function schedule() {
    pending ??= afterNextFrame(() => { pending = null; render(); });
  }

  /** Draw what `draw` was last given (and build the chart first if its series changed). */
  function render() {
    stale = false;
    if (source) ({ columns, series: shown } = source());
    if (!plot || builtFor !== seriesKey(shown)) build();
    else plot.setData(columns);
    container.dataset.points = String(columns[0].length);
    container.dataset.last = String(columns[0].at(-1) ?? "");
  }

  function renderMarkers() {
    if (!plot) return;
    for (const old of plot.over.querySelectorAll(".chart-marker")) old.remove();
    for (const marker of markers) {
      const line = document.createElement("div");
      line.className = "chart-marker";
      line.dataset.at = String(marker.at);
      line.setAttribute("title", markerTitle(marker)); // an attribute, so the label stays text
      plot.over.append(line);
    }
    placeMarkers(plot);
  }

  function placeMarkers(u) {
    const { min, max } = u.scales.x;
    for (const line of u.over.querySelectorAll(".chart-marker")) {
      const at = Number(line.dataset.at);
      line.hidden = !(at >= min && at <= max);
      if (!line.hidden) line.style.left = `${u.valToPos(at, "x")}px`;
    }
  }

  function onVisibility() {
    if (document.visibilityState === "visible" && stale) schedule();
  }

  const resize = new ResizeObserver(() => {
    const width = container.clientWidth;
    if (plot && width && width !== plot.width) plot.setSize({ width, height });
  });
  resize.observe(container);
  document.addEventListener("visibilitychange", onVisibility);

  return {
    draw(next, nextSeries = shown) {
      source = typeof next === "function" ? next : null;
      if (!source) {
        columns = next;
        shown = nextSeries;
      }
      if (document.visibilityState === "hidden") stale = true; // drawn when the tab is visible again
      else schedule();
    },
    setMarkers(next) {
      markers = markersWithin(next, -Infinity, Infinity);
      renderMarkers();
    },
    destroy() {
      pending?.();
      pending = null;
      resize.disconnect();
      document.removeEventListener("visibilitychange", onVisibility);
      plot?.destroy();
      plot = null;
    },
  };
}

/** A marker's tooltip: "deployed v2.3 · 14:02:11 · alice". */
export function markerTitle(marker) {
  return [marker.label, formatTime(marker.at), marker.who].filter((part) => part).join(" · ");
}

/** Labels of the time axis for ticks `increment` seconds apart: the day at midnight or when ticks are days apart, else the local time (with seconds under a minute). */
function timeLabels(u, splits, axisIndex, space, increment) {
  return splits.map((t) => {
    const date = new Date(t * 1000);
    if (increment >= DAY_SECONDS || (date.getHours() === 0 && date.getMinutes() === 0 && date.getSeconds() === 0)) {
      return dayFormat.format(date);
    }
    return increment < MINUTE_SECONDS ? formatTime(t) : formatClockMinutes(t);
  });
}

const seriesKey = (series) => JSON.stringify(series.map((s) => [s.label, s.color, Boolean(s.dash)]));
