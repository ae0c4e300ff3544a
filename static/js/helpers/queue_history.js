// Queue sparkline samples: seeded from the snapshot's 15-minute history, then one
// `(sampled_at, depth)` per live upsert, trimmed to the window. DOM-free.

import { appendSample, fromColumns, trimSamples } from "./chart.js";

/** Time a sparkline shows, in seconds (the server's snapshot history covers the same). */
export const SPARKLINE_WINDOW_SECONDS = 15 * 60;
/** Resolution of the snapshot's seed history, in seconds. */
export const SPARKLINE_SEED_STEP_SECONDS = 10;
/** Least time between two live samples kept, in seconds (the server samples every second). */
export const LIVE_SAMPLE_STEP_SECONDS = 0.5;

/** Create a tracker of every queue's sparkline samples (`[{t, depth}]`, oldest first). */
export function createQueueHistory({ windowSeconds = SPARKLINE_WINDOW_SECONDS, stepSeconds = LIVE_SAMPLE_STEP_SECONDS } = {}) {
  const series = new Map(); // queue name -> samples

  return {
    /** Start over from a snapshot's queues (each with its `history` columns, when it has one). */
    seed(queues) {
      series.clear();
      for (const queue of queues) series.set(queue.name, fromColumns(queue.history, ["depth"]));
    },
    /** Add a live upsert's sample; a repeat of the last `sampled_at` (a failed sample) adds nothing. */
    append(name, queue) {
      if (!series.has(name)) series.set(name, []);
      if (typeof queue?.depth !== "number") return false;
      return appendSample(series.get(name), { t: queue.sampled_at, depth: queue.depth }, stepSeconds);
    },
    /** Samples of `name` within the window before `nowSeconds` (trimmed in place). */
    samples(name, nowSeconds) {
      const samples = series.get(name);
      return samples ? trimSamples(samples, nowSeconds, windowSeconds) : [];
    },
    forget(name) {
      series.delete(name);
    },
  };
}
