// Pure helpers of the /periodic page: status words, the next-run text and the recent-runs strip.

import { formatDuration } from "./duration.js";

/** The badge text and level of each entry status. */
export const STATUS = {
  ok: { text: "ok", level: "ok" },
  late: { text: "late", level: "warning" },
  missed: { text: "missed", level: "error" },
  failed: { text: "failed", level: "error" },
  unknown: { text: "no run seen yet", level: "muted" },
};

/** The status of an entry in words, with its missed count ("missed 3 runs"). */
export function statusText(entry) {
  if (entry.error) return "unreadable";
  if (entry.enabled === false) return "disabled";
  const base = (STATUS[entry.status] ?? STATUS.unknown).text;
  if (entry.status === "missed" && entry.missed > 1) return `${base} ${entry.missed} runs`;
  return base;
}

export function statusLevel(entry) {
  if (entry.error) return "error";
  return entry.enabled === false ? "muted" : (STATUS[entry.status] ?? STATUS.unknown).level;
}

/** Where the entry is kept, when not in the app's beat_schedule: "django-celery-beat", "redbeat". */
export function sourceText(entry) {
  return entry.source && entry.source !== "app" ? `from ${entry.source}` : "";
}

/** "in 4 s", "12 s ago" for the next expected run, relative to `nowSeconds`. */
export function nextRunText(entry, nowSeconds) {
  if (typeof entry.next_run !== "number") return "—";
  const delta = entry.next_run - nowSeconds;
  const span = formatDuration(Math.abs(delta), { whole: true });
  return delta >= 0 ? `in ${span}` : `${span} ago`;
}

/** How runs are matched to the entry, in words. */
export function matchText(entry) {
  return entry.match === "arguments" ? "matched by task and arguments" : "matched by task name";
}

/**
 * The recent-runs strip, oldest first: one mark per run ("on-time", "late", "failed", "running"),
 * with a "missed" mark before it for each run missed in between (at most `limit` marks in all).
 */
export function runMarks(entry, limit = 30) {
  const marks = [];
  for (const run of entry.runs ?? []) {
    for (let n = 0; n < Math.min(run.missed_before ?? 0, limit); n += 1) marks.push({ kind: "missed", uuid: null });
    marks.push({ kind: run.timing, uuid: run.uuid, state: run.state, at: run.at });
  }
  for (let n = 0; n < Math.min(entry.status === "missed" ? entry.missed : 0, limit); n += 1) {
    marks.push({ kind: "missed", uuid: null });
  }
  return marks.slice(-limit);
}

/** The page's headline: how many entries, how many need attention. */
export function summaryText(entries) {
  const trouble = entries.filter((e) => e.error || e.status === "missed" || e.status === "failed").length;
  const count = `${entries.length} entr${entries.length === 1 ? "y" : "ies"}`;
  return trouble ? `${count}, ${trouble} need${trouble === 1 ? "s" : ""} attention` : count;
}
