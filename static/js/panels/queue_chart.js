// A queue's last hour as inline SVG: its depth (highest per bucket) and the alert threshold.

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

const countLabel = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

/**
 * Return `draw(samples, {nowSeconds, threshold, bucketSeconds})` drawing `[{t, depth}]` into `svg`;
 * a line breaks where a bucket is missing (no sample came in it).
 */
export function createQueueChart(svg) {
  return function draw(samples, { nowSeconds, threshold = null, bucketSeconds }) {
    const width = svg.clientWidth || FALLBACK_WIDTH_PX;
    const height = svg.clientHeight || FALLBACK_HEIGHT_PX;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const plotBottom = height - MARGIN_PX.bottom;
    const left = MARGIN_PX.left;
    const right = width - MARGIN_PX.right;
    const start = nowSeconds - HISTORY_WINDOW_SECONDS;
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
    for (const t of timeTicks(start, nowSeconds)) {
      nodes.push(node("line", { class: "chart-grid", x1: x(t), x2: x(t), y1: MARGIN_PX.top, y2: plotBottom }));
      nodes.push(label(formatClockMinutes(t), "chart-axis", x(t), height - LABEL_OFFSET_PX * 2, "middle"));
    }
    if (hasThreshold) {
      nodes.push(node("line", { class: "chart-threshold", x1: left, x2: right, y1: y(threshold), y2: y(threshold) }));
    }
    nodes.push(node("path", { class: "chart-depth", d: linePath(shown, "depth", x, y, bucketSeconds * BUCKET_GAP_FACTOR) }));
    if (shown.length === 0) {
      nodes.push(label("No depth sampled in the last hour", "chart-empty", (left + right) / 2, (MARGIN_PX.top + plotBottom) / 2, "middle"));
    }
    svg.replaceChildren(...nodes);
  };
}
