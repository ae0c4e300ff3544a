// Text for a worker's inspect facts: pool, broker, uptime, rusage, clock skew, payloads. DOM-free.

import { formatDuration } from "./duration.js";
import { EMPTY } from "./format.js";

/**
 * The worker's active task count as its last heartbeat said, or "unknown" once it is lost:
 * what it was doing when it went silent is not what it is doing now.
 */
export function activeText(worker, formatInteger) {
  return worker?.status === "lost" ? "unknown" : formatInteger(worker?.active);
}

/** The task outcomes a worker sent since the dashboard started: "12 succeeded · 1 failed · 0 retried". */
export function outcomesText(worker, formatInteger) {
  const count = (n) => formatInteger(Number.isFinite(n) ? n : 0);
  return `${count(worker?.succeeded)} succeeded · ${count(worker?.failed)} failed · ${count(worker?.retried)} retried`;
}

/** Tasks a worker must have processed since the dashboard first saw it, with no task event, to be
 * taken as started without -E (a heartbeat may count a task just before its event arrives). */
export const NO_EVENTS_AFTER_TASKS = 3;

/**
 * "started without -E" when the worker's heartbeats count tasks processed since the dashboard first saw
 * it but none of their outcome events arrived; "" otherwise.
 */
export function withoutEventsText(worker) {
  const base = worker?.processed_base;
  if (worker?.status !== "online" || !Number.isFinite(base) || !Number.isFinite(worker.processed)) return "";
  const outcomes = [worker.succeeded, worker.failed, worker.retried].reduce((sum, n) => sum + (Number.isFinite(n) ? n : 0), 0);
  return worker.processed - base >= NO_EVENTS_AFTER_TASKS && outcomes === 0 ? "started without -E" : "";
}

const BYTES_PER_KIB = 1024;
/** Systems whose `ru_maxrss` is in bytes; elsewhere (Linux) it is in KiB. */
const MAXRSS_IN_BYTES = new Set(["Darwin"]);
/** Longest compact payload shown in a table cell, in characters. */
export const MAX_PAYLOAD_CHARS = 200;
/** Clock skew below this, in seconds, is shown as "in sync". */
export const SKEW_IN_SYNC_SECONDS = 0.5;

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
const sizeFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const secondsFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

/** Short pool name from Celery's implementation path ("celery.concurrency.prefork:TaskPool" → "prefork"). */
export function poolName(implementation, fallback = null) {
  if (typeof implementation !== "string" || !implementation) return fallback ?? EMPTY;
  const module = implementation.split(":")[0];
  return module.split(".").at(-1) || implementation;
}

/** The broker connection as `transport://userid@hostname:port/vhost` (the password is never shown). */
export function brokerText(broker) {
  if (!broker || typeof broker !== "object") return EMPTY;
  const user = broker.userid ? `${broker.userid}@` : "";
  const port = broker.port ? `:${broker.port}` : "";
  return `${broker.transport ?? "?"}://${user}${broker.hostname ?? ""}${port}/${broker.virtual_host ?? ""}`;
}

/** A whole number of seconds as "42 s", "3 min 4 s", "2 d 1 h". */
export function formatUptime(seconds) {
  return formatDuration(seconds, { whole: true });
}

/** A size in bytes as "512 B", "76.7 MiB". */
export function formatBytes(bytes) {
  if (!isNumber(bytes)) return EMPTY;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= BYTES_PER_KIB && unit < units.length - 1) {
    value /= BYTES_PER_KIB;
    unit += 1;
  }
  return `${sizeFormat.format(value)} ${units[unit]}`;
}

/** "user 1.2 s · system 0.3 s · max RSS 76.7 MiB" from `inspect stats` rusage. */
export function rusageText(rusage, swSys = null) {
  if (!rusage || typeof rusage !== "object") return EMPTY;
  const maxrss = isNumber(rusage.maxrss) ? rusage.maxrss * (MAXRSS_IN_BYTES.has(swSys) ? 1 : BYTES_PER_KIB) : null;
  return [
    `user ${formatDuration(rusage.utime)}`,
    `system ${formatDuration(rusage.stime)}`,
    `max RSS ${formatBytes(maxrss)}`,
  ].join(" · ");
}

/** Clock skew (dashboard receive time − worker time, s) in words. */
export function skewText(skew) {
  if (!isNumber(skew)) return EMPTY;
  const size = formatDuration(Math.abs(skew));
  if (Math.abs(skew) < SKEW_IN_SYNC_SECONDS) return `in sync (${skew < 0 ? "−" : "+"}${size})`;
  return `worker clock ${size} ${skew > 0 ? "behind" : "ahead of"} the dashboard`;
}

/** A heartbeat interval in seconds as "every 2 s". */
export function heartbeatIntervalText(freq) {
  return isNumber(freq) ? `every ${secondsFormat.format(freq)} s` : EMPTY;
}

/** One-line text of an untrusted payload (args, kwargs, conf values), cut at `maxChars`. */
export function compactValue(value, maxChars = MAX_PAYLOAD_CHARS) {
  if (value === null || value === undefined || value === "") return EMPTY;
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

/** Epoch seconds of an ETA given as epoch seconds or an ISO 8601 string; null when unreadable. */
export function etaSeconds(eta) {
  if (isNumber(eta)) return eta;
  if (typeof eta !== "string") return null;
  const ms = Date.parse(eta);
  return Number.isNaN(ms) ? null : ms / 1000;
}

/** Workers whose hostname contains `query` (case-insensitive), sorted by hostname. */
export function filterByHostname(workers, query) {
  const needle = String(query ?? "").trim().toLowerCase();
  return workers
    .filter((w) => typeof w?.hostname === "string" && w.hostname.toLowerCase().includes(needle))
    .sort((a, b) => a.hostname.localeCompare(b.hostname));
}
