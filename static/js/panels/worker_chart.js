// A worker's last hour as inline SVG: active tasks, load average (own scale) and heartbeat ticks.

import {
  HISTORY_WINDOW_SECONDS, linearScale, linePath, maxOf, niceMax, tickPath, timeTicks,
} from "../helpers/chart.js";
import { formatClockMinutes } from "../helpers/format.js";
import { svgLabel as label, svgNode as node } from "../helpers/svg.js";
/** Size used before the SVG has been laid out, in CSS pixels. */
const FALLBACK_WIDTH_PX = 800;
const FALLBACK_HEIGHT_PX = 200;
/** Room around the plot for the labels, in CSS pixels. */
const MARGIN_PX = { top: 10, right: 44, bottom: 36, left: 36 };
/** Heartbeat ticks: their height and their distance below the plot, in CSS pixels. */
const HEARTBEAT_TICK_PX = 6;
const HEARTBEAT_GAP_PX = 4;
/** Label offset from its tick, in CSS pixels. */
const LABEL_OFFSET_PX = 4;

const loadLabel = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const countLabel = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** Return `draw(samples, {nowSeconds, concurrency})` drawing into `svg`. */
export function createWorkerChart(svg) {
  return function draw(samples, { nowSeconds, concurrency = null }) {
    const width = svg.clientWidth || FALLBACK_WIDTH_PX;
    const height = svg.clientHeight || FALLBACK_HEIGHT_PX;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const plotBottom = height - MARGIN_PX.bottom;
    const start = nowSeconds - HISTORY_WINDOW_SECONDS;
    const x = linearScale([start, nowSeconds], [MARGIN_PX.left, width - MARGIN_PX.right]);
    const activeMax = niceMax(Math.max(maxOf(samples, "active") ?? 0, concurrency ?? 0));
    const loadMax = niceMax(maxOf(samples, "load") ?? 0);
    const yActive = linearScale([0, activeMax], [plotBottom, MARGIN_PX.top]);
    const yLoad = linearScale([0, loadMax], [plotBottom, MARGIN_PX.top]);
    const shown = samples.filter((s) => s.t >= start);

    const nodes = [
      node("rect", { class: "chart-frame", x: MARGIN_PX.left, y: MARGIN_PX.top, width: width - MARGIN_PX.left - MARGIN_PX.right, height: plotBottom - MARGIN_PX.top }),
    ];
    for (const fraction of [0.5, 1]) {
      const y = yActive(activeMax * fraction);
      nodes.push(node("line", { class: "chart-grid", x1: MARGIN_PX.left, x2: width - MARGIN_PX.right, y1: y, y2: y }));
    }
    // Task counts are whole: label the middle only when it is a whole number.
    for (const value of Number.isInteger(activeMax / 2) ? [0, activeMax / 2, activeMax] : [0, activeMax]) {
      nodes.push(label(countLabel.format(value), "chart-axis chart-axis-active", MARGIN_PX.left - LABEL_OFFSET_PX, yActive(value), "end"));
    }
    for (const value of [0, loadMax / 2, loadMax]) {
      nodes.push(label(loadLabel.format(value), "chart-axis chart-axis-load", width - MARGIN_PX.right + LABEL_OFFSET_PX, yLoad(value), "start"));
    }
    for (const t of timeTicks(start, nowSeconds)) {
      nodes.push(node("line", { class: "chart-grid", x1: x(t), x2: x(t), y1: MARGIN_PX.top, y2: plotBottom }));
      nodes.push(label(formatClockMinutes(t), "chart-axis", x(t), height - LABEL_OFFSET_PX, "middle"));
    }
    const tickBase = plotBottom + HEARTBEAT_GAP_PX + HEARTBEAT_TICK_PX;
    nodes.push(node("path", { class: "chart-heartbeat", d: tickPath(shown, x, tickBase, HEARTBEAT_TICK_PX) }));
    nodes.push(node("path", { class: "chart-load", d: linePath(shown, "load", x, yLoad) }));
    nodes.push(node("path", { class: "chart-active", d: linePath(shown, "active", x, yActive) }));
    if (shown.length === 0) {
      nodes.push(label("No heartbeat in the last hour", "chart-empty", width / 2, (MARGIN_PX.top + plotBottom) / 2, "middle"));
    }
    svg.replaceChildren(...nodes);
  };
}
