// Bulk actions on the tasks page (revoke or retry every task matching the filters), DOM-free: the
// request body of POST /api/tasks/bulk from the page's filters, whether the buttons may be pressed,
// what the dry run's answer means, the confirmation dialog's text and the real run's outcome.

import { replyLines } from "./task_actions.js";

/** The bulk actions, in the order of their buttons. */
export const BULK_ACTIONS = ["revoke", "retry"];
/** Tasks the dialog lists by name and id at most; the rest are counted. */
export const MAX_LISTED_TASKS = 10;
/** Distinct skip reasons the dialog names at most. */
export const MAX_SKIP_REASONS = 3;
/** The note beside the disabled buttons when the page has no filter. */
export const NO_FILTER_NOTE = "Set a filter first";

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
const isPlainObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** "Revoke" or "Retry". */
export function bulkLabel(action) {
  return action === "retry" ? "Retry" : "Revoke";
}

/**
 * The `filter` object of a bulk request for the page's filters (as helpers/task_filters.js reads
 * them): only what narrows the match. The sort is left out, and `time` is only sent with a bound
 * (alone it would not narrow anything).
 */
export function bulkFilter(filters) {
  const out = {};
  if (!filters) return out;
  if (Array.isArray(filters.state) && filters.state.length) out.state = [...filters.state];
  for (const key of ["name", "worker", "queue", "q"]) {
    const value = typeof filters[key] === "string" ? filters[key].trim() : "";
    if (value) out[key] = value;
  }
  if (isNumber(filters.since)) out.since = filters.since;
  if (isNumber(filters.until)) out.until = filters.until;
  if ((isNumber(filters.since) || isNumber(filters.until)) && filters.time) out.time = filters.time;
  return out;
}

/** Whether the page's filters narrow the tasks at all (the bulk buttons need one). */
export function hasBulkFilter(filters) {
  return Object.keys(bulkFilter(filters)).length > 0;
}

/** The bulk buttons for `filters`: whether they are disabled, and the note beside them ("" when none). */
export function bulkControls(filters) {
  const ready = hasBulkFilter(filters);
  return { disabled: !ready, note: ready ? "" : NO_FILTER_NOTE };
}

/** The dry run's request body. */
export function dryRunBody(action, filters) {
  return { action, filter: bulkFilter(filters), dry_run: true };
}

/** The real run's request body: the `filter` the dry run was sent with, and the count it answered. */
export function confirmBody(action, filter, count) {
  return { action, filter, dry_run: false, confirm_count: count };
}

function errorText(body) {
  return isPlainObject(body) && typeof body.error === "string" && body.error ? body.error : null;
}

/**
 * Read the dry run's answer.
 * @param {{status?: number, statusText?: string, body?: any, networkError?: string}} answer
 * @returns {{ok: true, count: number, tasks: {uuid: string, name: string|null, state: string|null}[],
 *   skipped: {uuid: string, reason: string}[], skippedCount: number}
 *   | {ok: false, outcome: {level: string, summary: string, lines: string[]}}}
 */
export function readDryRun(action, { status = 0, statusText = "", body = null, networkError = null } = {}) {
  const label = bulkLabel(action);
  const failed = (summary, lines) => ({ ok: false, outcome: { level: "error", summary, lines } });
  if (networkError !== null) return failed(`${label} not counted: could not reach the dashboard.`, [String(networkError)]);
  if (status < 200 || status >= 300) {
    return failed(`${label} refused.`, [errorText(body) ?? (`${status} ${statusText}`.trim() || "no answer")]);
  }
  if (!isPlainObject(body) || !Number.isInteger(body.count) || body.count < 0) {
    return failed(`${label}: the answer could not be read.`, []);
  }
  const tasks = (Array.isArray(body.tasks) ? body.tasks : []).filter(isPlainObject).map((task) => ({
    uuid: String(task.uuid ?? ""),
    name: typeof task.name === "string" && task.name ? task.name : null,
    state: typeof task.state === "string" && task.state ? task.state : null,
  }));
  const skipped = (Array.isArray(body.skipped) ? body.skipped : []).filter(isPlainObject).map((item) => ({
    uuid: String(item.uuid ?? ""),
    reason: typeof item.reason === "string" && item.reason ? item.reason : "no reason given",
  }));
  const skippedCount = Number.isInteger(body.skipped_count) ? body.skipped_count : skipped.length;
  return { ok: true, count: body.count, tasks, skipped, skippedCount };
}

/**
 * The first `max` distinct skip reasons with how many of the listed skips gave each, most first:
 * "already SUCCESS (2)".
 */
export function skipReasons(skipped, max = MAX_SKIP_REASONS) {
  const counts = new Map();
  for (const { reason } of skipped ?? []) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, max).map(([reason, n]) => `${reason} (${n})`);
}

/** What the page says for a dry run that matched nothing to act on: a summary and the skip reasons. */
export function nothingOutcome(action, dry) {
  const verb = action === "retry" ? "retry" : "revoke";
  const lines = dry.skippedCount > 0 ? [`${plural(dry.skippedCount, "task")} skipped: ${skipReasons(dry.skipped).join("; ")}`] : [];
  return { level: "warning", summary: `Nothing to ${verb}.`, lines };
}

/**
 * The confirmation dialog for a dry run with a count above zero: the title ("Revoke 3 tasks?"),
 * a sentence on what happens, the facts (each listed task as [name, uuid], then how many more and
 * how many are skipped and why), all plain text, and the confirm button ("Revoke 3 tasks").
 */
export function bulkConfirmation(action, dry) {
  const label = bulkLabel(action);
  const tasks = plural(dry.count, "task");
  const listed = dry.tasks.slice(0, MAX_LISTED_TASKS);
  const facts = listed.map((task) => [task.name ?? "unknown task", task.uuid]);
  if (dry.count > listed.length) facts.push(["More", `and ${plural(dry.count - listed.length, "more task")}`]);
  if (dry.skippedCount > 0) {
    const reasons = skipReasons(dry.skipped);
    facts.push(["Skipped", `${dry.skippedCount}${reasons.length ? `: ${reasons.join("; ")}` : ""}`]);
  }
  const text = action === "retry"
    ? `Each of the ${tasks} matching the filters is sent again as a new task, with its arguments.`
    : `Workers discard the ${tasks} matching the filters when they get to them. Started tasks keep running.`;
  return { title: `${label} ${tasks}?`, text, facts, confirm: `${label} ${tasks}` };
}

/**
 * The real run's answer as what the page shows: "3 revoked; 1 worker replied" with the replies,
 * "3 sent again as new tasks" with the new ids; for a 409, that the matches changed and the button
 * counts them again.
 * @param {{status?: number, statusText?: string, body?: any, networkError?: string}} answer
 * @returns {{level: "ok"|"warning"|"error", summary: string, lines: string[]}}
 */
export function bulkOutcome(action, { status = 0, statusText = "", body = null, networkError = null } = {}) {
  const label = bulkLabel(action);
  if (networkError !== null) {
    return { level: "error", summary: `${label} not sent: could not reach the dashboard.`, lines: [String(networkError)] };
  }
  const error = errorText(body);
  if (status === 409) {
    return {
      level: "error",
      summary: `The matching tasks changed since they were counted; nothing was sent. Press “${label} matching…” again to count them again.`,
      lines: error ? [error] : [],
    };
  }
  if (status < 200 || status >= 300) {
    return { level: "error", summary: `${label} refused.`, lines: [error ?? (`${status} ${statusText}`.trim() || "no answer")] };
  }
  if (!isPlainObject(body)) return { level: "error", summary: `${label}: the answer could not be read.`, lines: [] };
  const count = Number.isInteger(body.count) ? body.count : 0;
  if (action === "retry") {
    const ids = (Array.isArray(body.task_ids) ? body.task_ids : []).map(String);
    const sent = `${ids.length === count ? ids.length : `${ids.length} of ${count}`} sent again as new task${ids.length === 1 && count <= 1 ? "" : "s"}`;
    if (body.ok !== true) return { level: ids.length ? "warning" : "error", summary: sent, lines: [...ids, error ?? "some could not be sent"] };
    return { level: "ok", summary: sent, lines: ids };
  }
  const lines = (Array.isArray(body.replies) ? body.replies : []).flatMap(replyLines);
  if (body.ok !== true) {
    return { level: "error", summary: `${label} failed.`, lines: [error ?? "the request did not reach the broker", ...lines] };
  }
  const replied = lines.length ? `${plural(lines.length, "worker")} replied` : "no worker replied";
  return { level: lines.length || count === 0 ? "ok" : "warning", summary: `${count} revoked; ${replied}`, lines: error ? [...lines, error] : lines };
}
