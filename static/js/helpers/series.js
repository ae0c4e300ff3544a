// Task-count series of the charts: ranges and their URLs, `/api/stats` bodies and live `stats`
// messages merged into one series, trimming, rates per second, failure rates, and samples bucketed
// per name (queue depths, active tasks) aligned into chart columns. DOM-free.

/** The ranges a chart may show (`?range=`), shortest first, as the API names them. */
export const RANGES = ["15m", "1h", "6h", "1d", "7d"];
/** The overview's default range: per second, extended live. */
export const LIVE_RANGE = "15m";
/** Seconds the live range covers (the server keeps as many per-second counts). */
export const LIVE_WINDOW_SECONDS = 900;
/** The kinds of task event counted, in the API's order. */
export const KINDS = ["sent", "received", "started", "succeeded", "failed", "retried", "revoked", "rejected"];

const RANGE_WORDS = { "15m": "15 minutes", "1h": "hour", "6h": "6 hours", "1d": "day", "7d": "7 days" };

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/** The `range` of a query string when it is one of RANGES, else `fallback`. */
export function parseRange(search, fallback = LIVE_RANGE) {
  const range = new URLSearchParams(search).get("range");
  return RANGES.includes(range) ? range : fallback;
}

/** `search` with its `range` set to `range`, or removed when it is the page's `fallback` ("" when nothing is left). */
export function rangeSearch(search, range, fallback = LIVE_RANGE) {
  const params = new URLSearchParams(search);
  if (range === fallback || !RANGES.includes(range)) params.delete("range");
  else params.set("range", range);
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** "15 minutes", "hour", "7 days": a range in words ("in the last …"). */
export function rangeWords(range) {
  return RANGE_WORDS[range] ?? range;
}

/** "second", "minute", "5 minutes", "hour": the words of a step in seconds ("per …"). */
export function stepWords(seconds) {
  if (seconds % 3600 === 0) return seconds === 3600 ? "hour" : `${seconds / 3600} hours`;
  if (seconds % 60 === 0) return seconds === 60 ? "minute" : `${seconds / 60} minutes`;
  return seconds === 1 ? "second" : `${seconds} seconds`;
}

/** An empty series of `step` seconds: `{step, t: [], <kind>: []}`. */
export function emptySeries(step = 1) {
  return { step, t: [], ...Object.fromEntries(KINDS.map((kind) => [kind, []])) };
}

/** A series from an `/api/stats` body (or a task type's `series`): its step, times and counts, copied. */
export function fromStats(body) {
  const series = emptySeries(isNumber(body?.step) && body.step > 0 ? body.step : 1);
  const times = Array.isArray(body?.t) ? body.t : [];
  times.forEach((t, i) => {
    if (!isNumber(t)) return;
    series.t.push(t);
    for (const kind of KINDS) series[kind].push(count(body[kind]?.[i]));
  });
  return series;
}

/**
 * Merge a live `stats` message (the seconds completed since the last one) into a per-second series.
 * A second already there is replaced (the seed's last second was still counting); newer seconds are
 * appended, after nulls for any second skipped (the line breaks there until the next refetch);
 * seconds older than the series are ignored. Returns how many seconds were appended.
 */
export function mergeStats(series, message) {
  const times = Array.isArray(message?.t) ? message.t : [];
  if (message?.step !== undefined && message.step !== series.step) return 0;
  let appended = 0;
  times.forEach((t, i) => {
    if (!isNumber(t)) return;
    const values = KINDS.map((kind) => count(message[kind]?.[i]));
    const last = series.t.at(-1);
    if (last === undefined || t > last) {
      if (last !== undefined) {
        for (let missing = last + series.step; missing < t; missing += series.step) {
          push(series, missing, KINDS.map(() => null));
          appended += 1;
        }
      }
      push(series, t, values);
      appended += 1;
      return;
    }
    const index = series.t.lastIndexOf(t);
    if (index >= 0) KINDS.forEach((kind, k) => { series[kind][index] = values[k]; });
  });
  return appended;
}

/** Drop the points more than `windowSeconds` older than the newest one (in place); returns the series. */
export function trimSeries(series, windowSeconds = LIVE_WINDOW_SECONDS) {
  const newest = series.t.at(-1);
  if (newest === undefined) return series;
  const cutoff = newest - windowSeconds;
  let drop = 0;
  while (drop < series.t.length && series.t[drop] <= cutoff) drop += 1;
  if (drop) for (const key of ["t", ...KINDS]) series[key].splice(0, drop);
  return series;
}

/**
 * Events of `kind` per second at each point: the count over the step; the newest step, still
 * counting at `nowSeconds`, over the part of it that has passed. Null where the count is unknown.
 */
export function perSecond(series, kind, nowSeconds = null) {
  const { step, t } = series;
  return series[kind].map((value, i) => {
    if (!isNumber(value)) return null;
    const elapsed = i === t.length - 1 && isNumber(nowSeconds) ? Math.min(step, Math.max(1, nowSeconds - t[i])) : step;
    return value / elapsed;
  });
}

/**
 * Failed / (succeeded + failed) at each point, over that point and the `windowPoints - 1` before it
 * (a per-second rate is mostly 0 or 1 otherwise); null where no task finished in the window.
 */
export function failureRates(series, windowPoints = 1) {
  const { succeeded, failed } = series;
  const rates = [];
  let ok = 0;
  let bad = 0;
  for (let i = 0; i < series.t.length; i++) {
    ok += count(succeeded[i]) ?? 0;
    bad += count(failed[i]) ?? 0;
    const leaving = i - windowPoints;
    if (leaving >= 0) {
      ok -= count(succeeded[leaving]) ?? 0;
      bad -= count(failed[leaving]) ?? 0;
    }
    rates.push(ok + bad > 0 ? bad / (ok + bad) : null);
  }
  return rates;
}

/** Sum of `kinds` over the series (unknown points count nothing). */
export function total(series, kinds) {
  let sum = 0;
  for (const kind of kinds) for (const value of series[kind]) if (isNumber(value)) sum += value;
  return sum;
}

/**
 * Samples of several names (queues, workers) in buckets of `bucketSeconds`: the highest value per
 * bucket, oldest first. `add` raises the bucket of `t` or starts a new one; `columns` aligns them.
 */
export function createBuckets(bucketSeconds) {
  const byName = new Map(); // name -> [{t: bucket start, value}]

  return {
    bucketSeconds,
    /** Fold `value` at `t` into `name`'s bucket; returns whether it was kept (not older than its last bucket). */
    add(name, t, value) {
      if (!isNumber(t) || !isNumber(value)) return false;
      const start = t - (t % bucketSeconds);
      let samples = byName.get(name);
      if (!samples) byName.set(name, (samples = []));
      const last = samples.at(-1);
      if (last && last.t === start) {
        if (value > last.value) last.value = value;
        return true;
      }
      if (last && start < last.t) return false;
      samples.push({ t: start, value });
      return true;
    },
    /** Drop buckets that started before `cutoff` (epoch seconds), and names left with none. */
    trim(cutoff) {
      for (const [name, samples] of byName) {
        let drop = 0;
        while (drop < samples.length && samples[drop].t < cutoff) drop += 1;
        if (drop) samples.splice(0, drop);
        if (samples.length === 0) byName.delete(name);
      }
    },
    forget(name) {
      byName.delete(name);
    },
    clear() {
      byName.clear();
    },
    names: () => [...byName.keys()],
    /** Highest value of `name` over its buckets (0 when none). */
    peak(name) {
      return (byName.get(name) ?? []).reduce((max, sample) => Math.max(max, sample.value), 0);
    },
    /**
     * Chart columns for `names`: `[times, values of names[0], ...]`, every bucket start any of them
     * has, in order; null where a name has no bucket (the line breaks: nothing was sampled).
     */
    columns(names) {
      const times = [...new Set(names.flatMap((name) => (byName.get(name) ?? []).map((s) => s.t)))].sort((a, b) => a - b);
      const index = new Map(times.map((t, i) => [t, i]));
      const columns = [times];
      for (const name of names) {
        const values = new Array(times.length).fill(null);
        for (const sample of byName.get(name) ?? []) values[index.get(sample.t)] = sample.value;
        columns.push(values);
      }
      return columns;
    },
  };
}

/** The `limit` names with the highest peaks, ties by name; then sorted by name for stable colours. */
export function busiestNames(buckets, limit) {
  return buckets.names()
    .map((name) => [name, buckets.peak(name)])
    .sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])))
    .slice(0, limit)
    .map(([name]) => name)
    .sort((a, b) => String(a).localeCompare(String(b)));
}

/** Indices of the values with no value beside them (a line cannot show them: they need a dot); null when none. */
export function isolatedIndices(values) {
  const isolated = [];
  for (let i = 0; i < values.length; i++) {
    if (values[i] != null && values[i - 1] == null && values[i + 1] == null) isolated.push(i);
  }
  return isolated.length ? isolated : null;
}

/** Markers (`{at, label}`) whose time is within `[start, end]`, oldest first. */
export function markersWithin(markers, start, end) {
  return (Array.isArray(markers) ? markers : [])
    .filter((marker) => isNumber(marker?.at) && marker.at >= start && marker.at <= end)
    .sort((a, b) => a.at - b.at);
}

function push(series, t, values) {
  series.t.push(t);
  KINDS.forEach((kind, k) => series[kind].push(values[k]));
}

function count(value) {
  return isNumber(value) ? value : null;
}

/** The event the throughput chart sends on `document` with each range it loaded (`detail: {range, body}`). */
export const RANGE_EVENT = "dashboard:stats-range";

/**
 * Chart columns of a longer range's gauges (`GET /api/stats`'s `queues` or `workers`: `{name: [value|null]}`
 * aligned with `t`): `{names, columns: [t, ...values of names], span: [start, end]}`; null for the live range.
 */
export function rangeGauges(body, key) {
  if (!body || !Array.isArray(body.t) || body.step === 1) return null;
  const gauges = body[key] && typeof body[key] === "object" ? body[key] : {};
  const names = Object.keys(gauges).filter((name) => Array.isArray(gauges[name])).sort((a, b) => a.localeCompare(b));
  const step = Number.isFinite(body.step) ? body.step : 60;
  const span = body.t.length ? [body.t[0], body.t.at(-1) + step] : null;
  return { names, columns: [body.t, ...names.map((name) => body.t.map((_, i) => gauges[name][i] ?? null))], span, step };
}
