// Display formatting of numbers, timestamps and untrusted values (via Intl).
import { url } from "./base.js";

/** Shown for a missing value. */
export const EMPTY = "—";
/** Characters of a task uuid shown in tables. */
export const SHORT_UUID_CHARS = 8;

const integerFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const rateFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const loadFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const percentFormat = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
/** The smallest non-zero fraction a percent shows as itself; below it, "<0.1%" rather than "0%". */
const PERCENT_FLOOR = 0.001;
const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
const clockMinutesFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
const preciseFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3, hourCycle: "h23",
});

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

export function formatInteger(value) {
  return isNumber(value) ? integerFormat.format(value) : EMPTY;
}

export function formatRate(value) {
  return isNumber(value) ? rateFormat.format(value) : EMPTY;
}

/** Format a fraction (a failure rate, 0..1) as a percent: "6.3%"; "<0.1%" for a tiny non-zero one. */
export function formatPercent(fraction) {
  if (!isNumber(fraction)) return EMPTY;
  if (fraction > 0 && fraction < PERCENT_FLOOR) return `<${percentFormat.format(PERCENT_FLOOR)}`;
  return percentFormat.format(fraction);
}

/** Format a worker's [1m, 5m, 15m] load averages. */
export function formatLoadavg(loadavg) {
  return Array.isArray(loadavg) && loadavg.length ? loadavg.map((v) => (isNumber(v) ? loadFormat.format(v) : EMPTY)).join(" ") : EMPTY;
}

/** Format epoch seconds as a local time (with the date when not today). */
export function formatTime(epochSeconds, nowMs = Date.now()) {
  if (!isNumber(epochSeconds)) return EMPTY;
  const date = new Date(epochSeconds * 1000);
  const sameDay = new Date(nowMs).toDateString() === date.toDateString();
  return (sameDay ? timeFormat : dateTimeFormat).format(date);
}

/** Format epoch seconds as a local "HH:MM" (chart time axes). */
export function formatClockMinutes(epochSeconds) {
  return isNumber(epochSeconds) ? clockMinutesFormat.format(new Date(epochSeconds * 1000)) : EMPTY;
}

/** Format epoch seconds as a full local date and time with milliseconds. */
export function formatTimePrecise(epochSeconds) {
  return isNumber(epochSeconds) ? preciseFormat.format(new Date(epochSeconds * 1000)) : EMPTY;
}

/** A number as epoch seconds, or an ISO 8601 date-time with its zone (Celery's ETA and expiry, e.g.
 * "2026-12-01T07:25:03.426+00:00"): its epoch seconds; null for anything else. A time without a zone is left
 * unread: it is in the sender's time zone, which the page does not know. */
export function zonedSeconds(value) {
  if (isNumber(value)) return value;
  if (typeof value !== "string" || !/^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/i.test(value)) {
    return null;
  }
  // ECMAScript's date-time form: "T", milliseconds (Celery sends microseconds) and "+hh:mm"
  const ms = Date.parse(value.replace(" ", "T").replace(/(\.\d{3})\d+/, "$1").replace(/([+-]\d\d)(\d\d)$/, "$1:$2"));
  return Number.isFinite(ms) ? ms / 1000 : null;
}

/** Format epoch seconds as an ISO 8601 UTC string (for `datetime` / `title` attributes). */
export function formatIso(epochSeconds) {
  return isNumber(epochSeconds) ? new Date(epochSeconds * 1000).toISOString() : "";
}

export function shortUuid(uuid) {
  return typeof uuid === "string" ? uuid.slice(0, SHORT_UUID_CHARS) : EMPTY;
}

/** Text for an untrusted value of any JSON type (strings are shown as they are). */
export function formatValue(value) {
  if (value === null || value === undefined || value === "") return EMPTY;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value, null, 2);
}

/** Text for a field that may be null, with an explanation when it is. */
export function orUnknown(value, why) {
  return value === null || value === undefined || value === "" ? why : String(value);
}

/** URL path of a task's detail page (uuid encoded: never a scheme of its own). */
export const taskHref = (uuid) => url(`/tasks/${encodeURIComponent(uuid)}`);
/** URL path of a worker's page. */
export const workerHref = (hostname) => url(`/workers/${encodeURIComponent(hostname)}`);
/** URL path of a queue's page. */
export const queueHref = (name) => url(`/queues/${encodeURIComponent(name)}`);
/** URL path of a task type's page, with the range to show when one is given. */
export const taskTypeHref = (name, range = null) =>
  url(`/task-types/${encodeURIComponent(name)}${range ? `?range=${encodeURIComponent(range)}` : ""}`);
