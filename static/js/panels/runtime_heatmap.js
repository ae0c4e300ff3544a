// A task type's runtimes per period as a heatmap on a canvas: a column per time step, a row per runtime
// bucket (from the fastest bucket used to the slowest), the colour's strength the count of runs; the
// bucket bounds on the left, times below, markers as vertical lines, and a cell's count as the canvas'
// tooltip. No redraw while the tab is hidden.

import { timeTicks } from "../helpers/chart.js";
import { formatClockMinutes, formatInteger } from "../helpers/format.js";
import { bucketAxisLabel, cellTitle, heatmapGrid, intensity } from "../helpers/heatmap.js";
import { markersWithin } from "../helpers/series.js";
import { markerTitle } from "./plot.js";

/** Size used before the canvas has been laid out, in CSS pixels (app.css sets the real one). */
const FALLBACK_WIDTH_PX = 600;
const FALLBACK_HEIGHT_PX = 220;
/** Room around the cells for the labels, in CSS pixels. */
const MARGIN_PX = { top: 6, right: 12, bottom: 22, left: 84 };
/** Least height of a row that gets its own label, in CSS pixels (others label every few rows). */
const LABELLED_ROW_PX = 13;
/** Gap between two cells once they are wide enough to afford one, in CSS pixels. */
const CELL_GAP_PX = 1;
const CELL_GAP_FROM_PX = 4;
/** Time labels along the bottom, at most. */
const MAX_TIME_LABELS = 7;
/** Spacings of the time labels to pick from, in seconds. */
const TICK_SECONDS = [60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400];
const DAY_SECONDS = 86_400;
const FONT = "11px system-ui, sans-serif";
/** Label offset from its cell or tick, in CSS pixels. */
const LABEL_OFFSET_PX = 4;

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric" });

/** Return `{draw(series, markers), destroy()}` painting into `canvas`. */
export function createHeatmap(canvas) {
  let grid = null;
  let markers = [];
  let layout = null; // where the cells were painted, for the tooltip
  let stale = false;

  function paint() {
    if (document.visibilityState === "hidden") {
      stale = true;
      return;
    }
    stale = false;
    if (!grid) return;
    const style = getComputedStyle(canvas);
    const color = (name) => style.getPropertyValue(name).trim() || "currentColor";
    const width = canvas.clientWidth || FALLBACK_WIDTH_PX;
    const height = canvas.clientHeight || FALLBACK_HEIGHT_PX;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;
    const left = MARGIN_PX.left;
    const right = width - MARGIN_PX.right;
    const top = MARGIN_PX.top;
    const bottom = height - MARGIN_PX.bottom;
    const { times, cells, max, low, high, bounds } = grid;
    const step = times.length > 1 ? times[1] - times[0] : 60;
    const start = times[0];
    const end = times.at(-1) + step;
    ctx.strokeStyle = color("--border");
    ctx.strokeRect(left + 0.5, top + 0.5, right - left - 1, bottom - top - 1);
    let filled = 0;
    if (low === null || !times.length) {
      layout = null;
      ctx.fillStyle = color("--text-muted");
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("No run succeeded in this period", (left + right) / 2, (top + bottom) / 2);
    } else {
      const rowCount = high - low + 1;
      const rowHeight = (bottom - top) / rowCount;
      const columnWidth = (right - left) / times.length;
      const gap = columnWidth >= CELL_GAP_FROM_PX ? CELL_GAP_PX : 0;
      layout = { left, top, bottom, rowHeight, columnWidth, low, high };
      ctx.fillStyle = color("--info");
      times.forEach((_, column) => {
        for (let row = low; row <= high; row++) {
          const alpha = intensity(cells[column][row], max);
          if (!alpha) continue;
          filled += 1;
          ctx.globalAlpha = alpha;
          ctx.fillRect(left + column * columnWidth, bottom - (row - low + 1) * rowHeight, columnWidth - gap, rowHeight - gap);
        }
      });
      ctx.globalAlpha = 1;
      ctx.fillStyle = color("--text-muted");
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      const every = Math.max(1, Math.ceil(LABELLED_ROW_PX / rowHeight));
      for (let row = low; row <= high; row += every) {
        ctx.fillText(bucketAxisLabel(bounds, row), left - LABEL_OFFSET_PX, bottom - (row - low + 0.5) * rowHeight);
      }
    }
    const x = (t) => left + ((t - start) / (end - start)) * (right - left);
    ctx.fillStyle = color("--text-muted");
    ctx.textAlign = "center";
    ctx.textBaseline = "alphabetic";
    const tickSeconds = TICK_SECONDS.find((seconds) => (end - start) / seconds <= MAX_TIME_LABELS) ?? DAY_SECONDS;
    for (const t of timeTicks(start, end, tickSeconds)) {
      const text = tickSeconds >= DAY_SECONDS ? dayFormat.format(new Date(t * 1000)) : formatClockMinutes(t);
      ctx.fillText(text, x(t), height - LABEL_OFFSET_PX);
    }
    ctx.strokeStyle = color("--warn");
    for (const marker of markersWithin(markers, start, end)) {
      const at = Math.round(x(marker.at)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(at, top);
      ctx.lineTo(at, bottom);
      ctx.stroke();
    }
    canvas.dataset.cells = String(filled);
    const shown = markersWithin(markers, start, end);
    canvas.setAttribute("aria-label", `Runtime histogram: ${formatInteger(filled)} periods and runtime buckets with runs`
      + (shown.length ? `; markers: ${shown.map(markerTitle).join("; ")}` : ""));
  }

  function onPointer(event) {
    if (!layout || !grid) return canvas.removeAttribute("title");
    const box = canvas.getBoundingClientRect();
    const column = Math.floor((event.clientX - box.left - layout.left) / layout.columnWidth);
    const row = layout.low + Math.floor((layout.bottom - (event.clientY - box.top)) / layout.rowHeight);
    if (column < 0 || column >= grid.times.length || row < layout.low || row > layout.high) return canvas.removeAttribute("title");
    canvas.setAttribute("title", cellTitle(grid, column, row));
  }

  function onVisibility() {
    if (document.visibilityState === "visible" && stale) paint();
  }

  const resize = new ResizeObserver(() => paint());
  resize.observe(canvas);
  canvas.addEventListener("mousemove", onPointer);
  canvas.addEventListener("mouseleave", () => canvas.removeAttribute("title"));
  document.addEventListener("visibilitychange", onVisibility);

  return {
    draw(series, nextMarkers = []) {
      grid = heatmapGrid(series);
      markers = nextMarkers;
      paint();
    },
    destroy() {
      resize.disconnect();
      document.removeEventListener("visibilitychange", onVisibility);
    },
  };
}
