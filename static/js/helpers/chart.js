// History chart math (worker and queue charts, queue sparklines): samples, trimming, buckets,
// scales, SVG path strings and time ticks. DOM-free.

/** Time the chart shows, in seconds (the server keeps the same hour). */
export const HISTORY_WINDOW_SECONDS = 3600;
/** Least time between two samples, in seconds (as the server samples). */
export const HISTORY_STEP_SECONDS = 5;
/** A line breaks where two samples are further apart than this, in seconds (heartbeats stopped). */
export const LINE_GAP_SECONDS = 3 * HISTORY_STEP_SECONDS;
/** Distance between two time labels, in seconds. */
export const TIME_TICK_SECONDS = 600;

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/**
 * Turn the API's column history (`{t, active, load}` for a worker, `{t, depth}` for a queue)
 * into `[{t, ...keys}]` rows, oldest first; a missing value becomes null.
 */
export function fromColumns(history, keys = ["active", "load"]) {
  const times = history?.t ?? [];
  return times
    .map((t, i) => Object.fromEntries([["t", t], ...keys.map((key) => [key, history[key]?.[i] ?? null])]))
    .filter((sample) => isNumber(sample.t))
    .sort((a, b) => a.t - b.t);
}

/** Append `sample` when it is at least `stepSeconds` newer than the last one; returns whether it was added. */
export function appendSample(samples, sample, stepSeconds = HISTORY_STEP_SECONDS) {
  if (!isNumber(sample?.t)) return false;
  const last = samples.at(-1);
  if (last && sample.t - last.t < stepSeconds) return false;
  samples.push(sample);
  return true;
}

/**
 * Fold `value` at time `t` into bucketed samples (`{t: bucket start, [key]: max in bucket}`, as the
 * server keeps its hour): raise the last bucket or start a new one; returns whether it was used.
 */
export function addToBucket(samples, t, key, value, bucketSeconds) {
  if (!isNumber(t) || !isNumber(value)) return false;
  const start = t - (t % bucketSeconds);
  const last = samples.at(-1);
  if (last && last.t === start) {
    if (!isNumber(last[key]) || value > last[key]) last[key] = value;
    return true;
  }
  if (last && start < last.t) return false;
  samples.push({ t: start, [key]: value });
  return true;
}

/**
 * At most one sample per `bucketSeconds` (the one with the largest `key`), plus the newest
 * sample, so a long series draws with about one point per pixel and its peaks kept.
 */
export function thinSamples(samples, key, bucketSeconds) {
  if (!(bucketSeconds > 0) || samples.length < 3) return samples.slice();
  const kept = [];
  let bucket = null;
  for (const sample of samples) {
    const index = Math.floor(sample.t / bucketSeconds);
    const last = kept.at(-1);
    if (index !== bucket) {
      kept.push(sample);
      bucket = index;
    } else if (isNumber(sample[key]) && (!isNumber(last[key]) || sample[key] > last[key])) {
      kept[kept.length - 1] = sample;
    }
  }
  const newest = samples.at(-1);
  if (kept.at(-1) !== newest) kept.push(newest);
  return kept;
}

/** Drop samples older than `windowSeconds` before `nowSeconds` (in place); returns the array. */
export function trimSamples(samples, nowSeconds, windowSeconds = HISTORY_WINDOW_SECONDS) {
  const cutoff = nowSeconds - windowSeconds;
  let drop = 0;
  while (drop < samples.length && samples[drop].t < cutoff) drop += 1;
  if (drop) samples.splice(0, drop);
  return samples;
}

/** A linear scale mapping `[d0, d1]` onto `[r0, r1]`; a zero-width domain maps to r0. */
export function linearScale([d0, d1], [r0, r1]) {
  const span = d1 - d0;
  return (value) => (span === 0 ? r0 : r0 + ((value - d0) / span) * (r1 - r0));
}

/** A round upper bound ≥ `value` (1, 2, 5 × 10^n), at least `floor`. */
export function niceMax(value, floor = 1) {
  const target = Math.max(isNumber(value) ? value : 0, floor);
  const magnitude = 10 ** Math.floor(Math.log10(target));
  for (const step of [1, 2, 5, 10]) {
    if (step * magnitude >= target) return step * magnitude;
  }
  return 10 * magnitude;
}

/** Largest finite `key` of the samples, or null. */
export function maxOf(samples, key) {
  let max = null;
  for (const sample of samples) {
    const value = sample[key];
    if (isNumber(value) && (max === null || value > max)) max = value;
  }
  return max;
}

/**
 * SVG path `d` of `key` over the samples: a new segment ("M") after a missing
 * value or a gap longer than `maxGapSeconds`; "" when nothing to draw.
 */
export function linePath(samples, key, x, y, maxGapSeconds = LINE_GAP_SECONDS) {
  const parts = [];
  let previousT = null;
  for (const sample of samples) {
    const value = sample[key];
    if (!isNumber(value)) {
      previousT = null;
      continue;
    }
    const command = previousT === null || sample.t - previousT > maxGapSeconds ? "M" : "L";
    parts.push(`${command}${round(x(sample.t))},${round(y(value))}`);
    previousT = sample.t;
  }
  return parts.join(" ");
}

/** SVG path `d` of one vertical tick of `height` up from `baseline` at each sample time. */
export function tickPath(samples, x, baseline, height) {
  return samples.map((sample) => `M${round(x(sample.t))},${round(baseline)} v${-height}`).join(" ");
}

/** Times (epoch seconds) that are whole multiples of `stepSeconds` within `[start, end]`. */
export function timeTicks(start, end, stepSeconds = TIME_TICK_SECONDS) {
  const ticks = [];
  for (let t = Math.ceil(start / stepSeconds) * stepSeconds; t <= end; t += stepSeconds) ticks.push(t);
  return ticks;
}

const round = (value) => Math.round(value * 10) / 10;
