// A queue's last 15 minutes of depth as a small inline SVG line (one per queues-table row).

import { linearScale, linePath, maxOf, niceMax, thinSamples } from "../helpers/chart.js";
import { SPARKLINE_SEED_STEP_SECONDS, SPARKLINE_WINDOW_SECONDS } from "../helpers/queue_history.js";
import { sparklineLabel } from "../helpers/queue_info.js";
import { svgNode } from "../helpers/svg.js";

/** The size app.css gives `.sparkline`, in CSS pixels. Drawn to it rather than read from the page:
 * reading a laid-out size makes the browser lay out the whole page at once, which with hundreds of
 * worker cards and queue rows took a quarter of a second on a page's first render. */
export const SPARKLINE_SIZE = Object.freeze({ width: 96, height: 22 });
/** Room kept free above and below the line so the stroke is not clipped, in CSS pixels. */
const PADDING_PX = 2;
/** A line breaks where two samples are further apart than this, in seconds (sampling stopped). */
const SPARKLINE_GAP_SECONDS = 3 * SPARKLINE_SEED_STEP_SECONDS;

/** Draw `samples` (`[{t, depth}]`) ending at `nowSeconds` into `svg`, of `size`. */
export function drawSparkline(svg, samples, nowSeconds, size = SPARKLINE_SIZE) {
  const { width, height } = size;
  const start = nowSeconds - SPARKLINE_WINDOW_SECONDS;
  // About one point per pixel: the peaks are kept, the path stays short.
  const shown = thinSamples(samples.filter((s) => s.t >= start), "depth", SPARKLINE_WINDOW_SECONDS / width);
  const x = linearScale([start, nowSeconds], [0, width]);
  const y = linearScale([0, niceMax(maxOf(shown, "depth") ?? 0)], [height - PADDING_PX, PADDING_PX]);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("aria-label", sparklineLabel(shown));
  if (svg.childElementCount === 0) svg.append(svgNode("line", { class: "sparkline-base" }), svgNode("path", { class: "sparkline-line" }));
  const [base, line] = svg.children;
  for (const [name, value] of Object.entries({ x1: 0, x2: width, y1: height - PADDING_PX, y2: height - PADDING_PX })) {
    base.setAttribute(name, String(value));
  }
  line.setAttribute("d", linePath(shown, "depth", x, y, SPARKLINE_GAP_SECONDS));
}
