// A queue's depth over a window (an hour by default) as inline SVG: highest depth per bucket, and the alert threshold.

import {
  HISTORY_WINDOW_SECONDS, linearScale, linePath, maxOf, niceMax, timeTicks,
} from "../helpers/chart.js";
import { formatClockMinutes } from "../helpers/format.js";
import { svgLabel as label, svgNode as node } from "../helpers/svg.js";

/** Size used before the SVG has been laid out, in CSS pixels. */
const FALLBACK_WIDTH_PX = 800;
const FALLBACK_HEIGHT_PX = 200;
/** Room around the plot for the labels, in CSS pixels. */
const MARGIN_PX = { top: 10, right: 16, bottom: 24, left: 48 };
/** A line breaks where samples are more than this many buckets apart (a bucket had no sample). */
const BUCKET_GAP_FACTOR = 1.5;
/** Label offset from its tick, in CSS pixels. */
const LABEL_OFFSET_PX = 4;

/** Seconds in a day, and the spacing of time ticks for each chart window (both in seconds). */
const DAY_SECONDS = 86_400;
const TICK_SECONDS_BY_WINDOW = [[3_600, 600], [6 * 3_600, 3_600], [DAY_SECONDS, 3 * 3_600]];

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric" });
const formatDay = (epochSeconds) => dayFormat.format(new Date(epochSeconds * 1000));

const countLabel = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

/**
 * Return `draw(samples, {nowSeconds, threshold, bucketSeconds})` drawing `[{t, depth}]` into `svg`;
 * a line breaks where a bucket is missing (no sample came in it).
 */
export function createQueueChart(svg) {
  return function draw(samples, { nowSeconds, threshold = null, bucketSeconds, windowSeconds = HISTORY_WINDOW_SECONDS }) {
    const width = svg.clientWidth || FALLBACK_WIDTH_PX;
    const height = svg.clientHeight || FALLBACK_HEIGHT_PX;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const plotBottom = height - MARGIN_PX.bottom;
    const left = MARGIN_PX.left;
    const right = width - MARGIN_PX.right;
    const start = nowSeconds - windowSeconds;
    const shown = samples.filter((s) => s.t >= start);
    const hasThreshold = Number.isFinite(threshold);
    const depthMax = niceMax(Math.max(maxOf(shown, "depth") ?? 0, hasThreshold ? threshold : 0));
    const x = linearScale([start, nowSeconds], [left, right]);
    const y = linearScale([0, depthMax], [plotBottom, MARGIN_PX.top]);

    const nodes = [node("rect", { class: "chart-frame", x: left, y: MARGIN_PX.top, width: right - left, height: plotBottom - MARGIN_PX.top })];
    for (const fraction of [0.5, 1]) {
      nodes.push(node("line", { class: "chart-grid", x1: left, x2: right, y1: y(depthMax * fraction), y2: y(depthMax * fraction) }));
    }
    // Depths are whole: label the middle only when it is a whole number.
    for (const value of Number.isInteger(depthMax / 2) ? [0, depthMax / 2, depthMax] : [0, depthMax]) {
      nodes.push(label(countLabel.format(value), "chart-axis chart-axis-depth", left - LABEL_OFFSET_PX, y(value), "end"));
    }
    const tickSeconds = TICK_SECONDS_BY_WINDOW.find(([window]) => windowSeconds <= window)?.[1] ?? DAY_SECONDS;
    for (const t of timeTicks(start, nowSeconds, tickSeconds)) {
      const text = tickSeconds >= DAY_SECONDS ? formatDay(t) : formatClockMinutes(t);
      nodes.push(node("line", { class: "chart-grid", x1: x(t), x2: x(t), y1: MARGIN_PX.top, y2: plotBottom }));
      nodes.push(label(text, "chart-axis", x(t), height - LABEL_OFFSET_PX * 2, "middle"));
    }
    if (hasThreshold) {
      nodes.push(node("line", { class: "chart-threshold", x1: left, x2: right, y1: y(threshold), y2: y(threshold) }));
    }
    nodes.push(node("path", { class: "chart-depth", d: linePath(shown, "depth", x, y, bucketSeconds * BUCKET_GAP_FACTOR) }));
    if (shown.length === 0) {
      nodes.push(label("No depth sampled in this period", "chart-empty", (left + right) / 2, (MARGIN_PX.top + plotBottom) / 2, "middle"));
    }
    svg.replaceChildren(...nodes);
  };
}
