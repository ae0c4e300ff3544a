// A task's event timeline as steps: the time since the previous event, its attempts (one per
// task-received), the named step durations of the latest attempt, and its retries. DOM-free.

/** Events that end a task for good. */
export const FINAL_EVENTS = new Set(["task-succeeded", "task-failed", "task-revoked", "task-rejected"]);
/** Events that end one run of a task (a retry ends the run, not the task). */
const RUN_END_EVENTS = new Set(["task-succeeded", "task-failed", "task-retried"]);

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/** Each event with `delta`, the seconds since the previous event with a time (null for the first). */
export function withDeltas(events) {
  let previous = null;
  return events.map((event) => {
    const delta = previous !== null && isNumber(event.timestamp) ? event.timestamp - previous : null;
    if (isNumber(event.timestamp)) previous = event.timestamp;
    return { event, delta };
  });
}

/**
 * Split a timeline into attempts, one per task-received (or a single one before any):
 * `{sent, received, started, ended, endType, hostname}`, times in epoch seconds or null.
 * An attempt's `sent` is the last task-sent after the previous attempt was received
 * (a retry's task-sent comes just before the task-retried of the run it replaces).
 */
export function attempts(events) {
  const list = [];
  let current = null;
  let pendingSent = null;
  const open = () => {
    current = { sent: pendingSent, received: null, started: null, ended: null, endType: null, hostname: null };
    pendingSent = null;
    list.push(current);
  };
  for (const event of events) {
    const t = isNumber(event.timestamp) ? event.timestamp : null;
    switch (event.type) {
      case "task-sent":
        if (current && current.received === null && current.sent === null) current.sent = t;
        else pendingSent = t;
        break;
      case "task-received":
        if (!current || current.received !== null) open();
        else if (pendingSent !== null) { current.sent = pendingSent; pendingSent = null; }
        current.received = t;
        current.hostname = event.hostname ?? current.hostname;
        break;
      case "task-started":
        if (!current) open();
        if (current.started === null) current.started = t;
        current.hostname = event.hostname ?? current.hostname;
        break;
      default:
        if (RUN_END_EVENTS.has(event.type) || FINAL_EVENTS.has(event.type)) {
          if (!current) open();
          if (current.ended === null) { current.ended = t; current.endType = event.type; }
        }
    }
  }
  if (!list.length && pendingSent !== null) open();
  return list;
}

/**
 * The named step durations of the latest attempt, in seconds:
 * `queueWait` (sent → received), `toStart` (received → started), `runtime` (started → end),
 * and `total` (first event → final event). A step still going counts up to `nowSeconds`
 * and is flagged in `running` (e.g. `{runtime: true}`), unless the task is final.
 */
export function stepDurations(events, nowSeconds) {
  const runs = attempts(events);
  const last = runs.at(-1) ?? null;
  const final = events.find((e) => FINAL_EVENTS.has(e.type) && isNumber(e.timestamp)) ?? null;
  const first = events.find((e) => isNumber(e.timestamp)) ?? null;
  const running = { queueWait: false, toStart: false, runtime: false, total: false };
  const span = (from, to, key) => {
    if (!isNumber(from)) return null;
    if (isNumber(to)) return Math.max(0, to - from);
    if (final || !isNumber(nowSeconds)) return null;
    running[key] = true;
    return Math.max(0, nowSeconds - from);
  };
  const result = { queueWait: null, toStart: null, runtime: null, total: null, attempt: runs.length, running };
  if (last) {
    const ended = last.ended;
    result.queueWait = last.received !== null || !ended ? span(last.sent, last.received, "queueWait") : null;
    if (last.received !== null) result.toStart = last.started !== null || !ended ? span(last.received, last.started, "toStart") : null;
    if (last.started !== null) result.runtime = span(last.started, ended, "runtime");
  }
  if (first) result.total = span(first.timestamp, final?.timestamp ?? null, "total");
  return result;
}

/** The task-retried events as numbered attempts: `{number, timestamp, hostname, exception, traceback}`. */
export function retryAttempts(events) {
  return events
    .filter((e) => e.type === "task-retried")
    .map((e, i) => ({
      number: i + 1,
      timestamp: isNumber(e.timestamp) ? e.timestamp : null,
      hostname: e.hostname ?? null,
      exception: e.exception ?? null,
      traceback: e.traceback ?? null,
    }));
}
