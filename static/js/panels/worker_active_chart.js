// The overview's active tasks per worker since the page opened (at most the last hour): the highest
// `active` per 5 s of the live worker upserts and, between two, the count the store holds. The
// busiest workers are drawn.

import { onTick } from "../helpers/clock.js";
import { setField } from "../helpers/dom.js";
import { formatInteger } from "../helpers/format.js";
import { RANGE_EVENT, busiestNames, createBuckets, rangeGauges, stepWords } from "../helpers/series.js";
import { colorFor, createPlot } from "./plot.js";

/** Time kept at most, in seconds. */
export const ACTIVE_WINDOW_SECONDS = 3600;
/** One point per this many seconds. */
export const ACTIVE_BUCKET_SECONDS = 5;
/** Least time drawn, in seconds (just after the page opened). */
export const MIN_SPAN_SECONDS = 60;
/** Workers drawn at most (the busiest over the window). */
export const MAX_WORKERS_DRAWN = 8;

/** Mount the active-tasks chart on `root` (its `[data-plot]` element). */
export function mountWorkerActiveChart(root, store) {
  const buckets = createBuckets(ACTIVE_BUCKET_SECONDS);
  const nowSeconds = () => store.serverNowMs() / 1000;
  const openedAt = nowSeconds();
  let ranged = null; // a longer range's activity (rangeGauges), drawn instead of the live window
  const plot = createPlot(root.querySelector("[data-plot]"), {
    format: formatInteger, whole: true,
    xRange: () => {
      if (ranged?.span) return ranged.span;
      const now = nowSeconds();
      return [Math.min(now - MIN_SPAN_SECONDS, Math.max(openedAt, now - ACTIVE_WINDOW_SECONDS)), now];
    },
  });

  /** Fold every live worker's active count in at the current time (offline and lost ones run nothing). */
  function sample() {
    const now = nowSeconds();
    for (const worker of store.workersSorted()) {
      if (worker.status === "online") buckets.add(worker.hostname, now, worker.active);
    }
  }

  function draw() {
    if (ranged) {
      const { names, columns, step } = ranged;
      plot.draw(() => ({ columns, series: names.map((name) => ({ label: name, color: colorFor(`worker:${name}`) })) }));
      setField(root, "worker-active-range", `the most at once in each ${stepWords(step)}`);
      setField(root, "worker-active-meta", names.length ? `the ${names.length} busiest workers` : "no activity stored");
      return;
    }
    setField(root, "worker-active-range", "since this page opened, live");
    buckets.trim(nowSeconds() - ACTIVE_WINDOW_SECONDS);
    const names = busiestNames(buckets, MAX_WORKERS_DRAWN);
    plot.draw(() => ({
      columns: buckets.columns(names),
      series: names.map((name) => ({ label: name, color: colorFor(`worker:${name}`) })),
    }));
    const known = store.workersSorted().length;
    setField(root, "worker-active-meta", known > names.length && names.length ? `the ${names.length} busiest of ${formatInteger(known)} workers` : "");
  }

  const unsubscribe = store.subscribe((event) => {
    if (event.type === "changes" && event.changed.workers.size) {
      const now = nowSeconds();
      for (const change of event.changes) {
        if (change.kind === "worker" && change.data?.status === "online") buckets.add(change.key, now, change.data.active);
      }
    } else if (event.type !== "snapshot") {
      return;
    }
    sample();
    draw();
  });
  function onRange(event) {
    ranged = rangeGauges(event.detail?.body, "workers");
    draw();
  }
  document.addEventListener(RANGE_EVENT, onRange);
  const stopTick = onTick(() => { sample(); if (!ranged) draw(); });
  sample();
  draw();
  return () => { unsubscribe(); stopTick(); plot.destroy(); document.removeEventListener(RANGE_EVENT, onRange); };
}
