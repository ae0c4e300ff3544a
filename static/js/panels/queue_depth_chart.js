// The overview's queue depths over the last 15 minutes: seeded from each queue's `history` (10 s
// buckets), then the highest depth per 10 s of the live upserts and, between two (a queue is upserted
// only when it changes), the depth the store holds. The deepest queues are drawn.

import { onTick } from "../helpers/clock.js";
import { setField } from "../helpers/dom.js";
import { formatInteger } from "../helpers/format.js";
import { RANGE_EVENT, busiestNames, createBuckets, rangeGauges, stepWords } from "../helpers/series.js";
import { SPARKLINE_SEED_STEP_SECONDS, SPARKLINE_WINDOW_SECONDS } from "../helpers/queue_history.js";
import { colorFor, createPlot } from "./plot.js";

/** Time drawn, in seconds (the snapshot's history covers the same). */
export const DEPTH_WINDOW_SECONDS = SPARKLINE_WINDOW_SECONDS;
/** One point per this many seconds: the resolution of the snapshot's history. */
export const DEPTH_BUCKET_SECONDS = SPARKLINE_SEED_STEP_SECONDS;
/** Queues drawn at most (the deepest over the window). */
export const MAX_QUEUES_DRAWN = 8;

/** Mount the queue depth chart on `root` (its `[data-plot]` element). */
export function mountQueueDepthChart(root, store) {
  const buckets = createBuckets(DEPTH_BUCKET_SECONDS);
  const nowSeconds = () => store.serverNowMs() / 1000;
  let ranged = null; // a longer range's depths (rangeGauges), drawn instead of the live window
  const plot = createPlot(root.querySelector("[data-plot]"), {
    format: formatInteger, whole: true,
    xRange: () => ranged?.span ?? [nowSeconds() - DEPTH_WINDOW_SECONDS, nowSeconds()],
  });

  function seed() {
    buckets.clear();
    for (const queue of store.queuesSorted()) {
      const times = queue.history?.t ?? [];
      times.forEach((t, i) => buckets.add(queue.name, t, queue.history.depth?.[i]));
    }
    sample();
  }

  /** Fold every queue's current depth in at the current time (a fresh or a failed sample aside). */
  function sample() {
    const now = nowSeconds();
    for (const queue of store.queuesSorted()) {
      if (!queue.stale) buckets.add(queue.name, now, queue.depth);
    }
  }

  function draw() {
    if (ranged) {
      const { names, columns, step } = ranged;
      plot.draw(() => ({ columns, series: names.map((name) => ({ label: name, color: colorFor(`queue:${name}`) })) }));
      setField(root, "queue-depth-range", `the highest of each ${stepWords(step)}`);
      setField(root, "queue-depth-meta", names.length ? `the ${names.length} deepest queues` : "no depth stored");
      return;
    }
    setField(root, "queue-depth-range", "last 15 minutes, live");
    buckets.trim(nowSeconds() - DEPTH_WINDOW_SECONDS);
    const names = busiestNames(buckets, MAX_QUEUES_DRAWN);
    plot.draw(() => ({
      columns: buckets.columns(names),
      series: names.map((name) => ({ label: name, color: colorFor(`queue:${name}`) })),
    }));
    const known = store.queuesSorted().length;
    setField(root, "queue-depth-meta", known > names.length ? `the ${names.length} deepest of ${formatInteger(known)} queues` : "");
  }

  const unsubscribe = store.subscribe((event) => {
    if (event.type === "snapshot") {
      seed();
    } else if (event.type === "changes" && event.changed.queues.size) {
      for (const change of event.changes) {
        if (change.kind !== "queue") continue;
        if (change.op === "remove") buckets.forget(change.key);
        else if (change.data && !change.data.stale) buckets.add(change.key, change.data.sampled_at, change.data.depth);
      }
    } else {
      return;
    }
    draw();
  });
  function onRange(event) {
    ranged = rangeGauges(event.detail?.body, "queues");
    draw();
  }
  document.addEventListener(RANGE_EVENT, onRange);
  const stopTick = onTick(() => { sample(); if (!ranged) draw(); });
  seed();
  draw();
  return () => { unsubscribe(); stopTick(); plot.destroy(); document.removeEventListener(RANGE_EVENT, onRange); };
}
