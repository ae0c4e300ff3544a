// A task's event timeline as steps: the time since the previous event, its attempts (one per
// task-received), the named step durations of the latest attempt, its retries, and how long an
// orphaned task ran before its worker was lost. DOM-free.

import { formatDuration } from "./duration.js";
import { EMPTY as EMPTY_TEXT } from "./format.js";

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
 *
 * For an orphaned task, pass `lostAt` (orphanedSpan's): a step still going then ends there
 * instead, and is flagged in `lost` rather than `running`, so it no longer counts up.
 * A finished run's runtime is the one its task-succeeded event carries when it has one
 * (the task's own `runtime` field), so the step and the task's facts show the same number.
 */
export function stepDurations(events, nowSeconds, { lostAt = null } = {}) {
  const runs = attempts(events);
  const last = runs.at(-1) ?? null;
  const final = events.find((e) => FINAL_EVENTS.has(e.type) && isNumber(e.timestamp)) ?? null;
  const first = events.find((e) => isNumber(e.timestamp)) ?? null;
  const running = { queueWait: false, toStart: false, runtime: false, total: false };
  const lost = { queueWait: false, toStart: false, runtime: false, total: false };
  const span = (from, to, key) => {
    if (!isNumber(from)) return null;
    if (isNumber(to)) return Math.max(0, to - from);
    if (final) return null;
    if (isNumber(lostAt)) {
      lost[key] = true;
      return Math.max(0, lostAt - from);
    }
    if (!isNumber(nowSeconds)) return null;
    running[key] = true;
    return Math.max(0, nowSeconds - from);
  };
  const result = { queueWait: null, toStart: null, runtime: null, total: null, attempt: runs.length, running, lost };
  if (last) {
    const ended = last.ended;
    result.queueWait = last.received !== null || !ended ? span(last.sent, last.received, "queueWait") : null;
    if (last.received !== null) result.toStart = last.started !== null || !ended ? span(last.received, last.started, "toStart") : null;
    if (last.started !== null) result.runtime = reportedRuntime(events, last) ?? span(last.started, ended, "runtime");
  }
  if (first) result.total = span(first.timestamp, final?.timestamp ?? null, "total");
  return result;
}

/** The `runtime` the event that ended `run` carries (Celery's task-succeeded does), or null. */
function reportedRuntime(events, run) {
  if (run.ended === null) return null;
  const end = events.find((e) => e.type === run.endType && e.timestamp === run.ended);
  return isNumber(end?.runtime) && end.runtime >= 0 ? end.runtime : null;
}

/** Task states in flight on a worker: the ones its loss leaves orphaned (or reconciliation finds lost). */
const IN_FLIGHT_STATES = new Set(["RECEIVED", "STARTED"]);

/**
 * How long an orphaned task ran before its worker was lost: `{from, lostAt, seconds}` (epoch
 * seconds, and `seconds` = `lostAt` − `from`), or null for a task that is not orphaned or is no
 * longer in flight. `from` is when its latest attempt started, or was received if it never
 * started (from `events`, its timeline, when given; else the task's own `started`/`received`).
 *
 * `lostAt` is when its worker was last heard from. The task shape has no such time, so the best
 * the data allows is taken: the later of
 * - the worker's last heartbeat, from `worker` (its JSON shape) while it is not back online:
 *   `last_heartbeat` is the dashboard's receive time, moved onto the worker's own clock (the
 *   clock of the task's times) by its `clock_skew`. A worker that beats again says nothing
 *   about when it lost this task, and a page may not know the worker at all;
 * - the task's own last update (its `timestamp`, or its latest event): word from that worker
 *   too, and the only time left without the worker.
 * Both are fixed once the worker is silent, so the value does not tick.
 */
export function orphanedSpan(task, { worker = null, events = null } = {}) {
  if (!(task?.orphaned || task?.lost) || !IN_FLIGHT_STATES.has(task.state)) return null;
  const run = events?.length ? attempts(events).at(-1) : null;
  const from = firstNumber(run?.started, run?.received, task.started, task.received);
  if (from === null) return null;
  const heard = [task.timestamp, ...(events ?? []).map((e) => e?.timestamp)];
  if (worker && worker.hostname === task.worker && worker.status !== "online" && isNumber(worker.last_heartbeat)) {
    heard.push(worker.last_heartbeat - (isNumber(worker.clock_skew) ? worker.clock_skew : 0));
  }
  const lostAt = Math.max(from, ...heard.filter(isNumber));
  return { from, lostAt, seconds: lostAt - from };
}

/** What an orphaned task shows for a runtime it can no longer know: "unknown: worker lost after 20.0 s". */
export function lostRuntimeText(seconds) {
  return `unknown: worker lost after ${formatDuration(seconds)}`;
}

/**
 * The task's runtime as its facts show it: its `runtime`, or for an orphaned task still in flight
 * (`orphan`, orphanedSpan's result) how long it ran before its worker was lost.
 */
export function runtimeText(task, orphan = null) {
  return orphan ? lostRuntimeText(orphan.seconds) : formatDuration(task?.runtime);
}

/** The names of the steps, in the order the step card shows them. */
export const STEP_NAMES = ["queueWait", "toStart", "runtime", "total"];
const RUNNING_NOTE = { queueWait: "waiting", toStart: "not started yet", runtime: "running", total: "so far" };

/**
 * The text of one step of `steps` (stepDurations' result) as the step card shows it:
 * `{value, note}`. A step still going is noted as such; one cut short by the loss of the
 * worker says so (the total, from the first event, is then unknown).
 */
export function stepText(steps, step) {
  const seconds = steps[step];
  if (seconds === null || seconds === undefined) return { value: EMPTY_TEXT, note: "" };
  if (steps.lost?.[step]) {
    return step === "total" ? { value: "unknown", note: "worker lost" } : { value: lostRuntimeText(seconds), note: "" };
  }
  return { value: formatDuration(seconds), note: steps.running?.[step] ? RUNNING_NOTE[step] : "" };
}

const firstNumber = (...values) => values.find(isNumber) ?? null;

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
