// Words for the alert rules' alerts (`--alerts FILE`): which show in the banner and in what order,
// the banner's text, durations, silences, rules in words, safe links and the silence answers. DOM-free.
// (helpers/alerts.js is about the other `alert` messages: workers lost and queue backlogs.)

import { formatDuration } from "./duration.js";
import { EMPTY, formatClockMinutes, formatInteger } from "./format.js";

/** Summaries the banner lists before "and N more". */
export const MAX_BANNER_ALERTS = 3;
/** Characters of one summary in the banner; a longer one ends in "…". */
export const MAX_BANNER_SUMMARY_CHARS = 200;
/** The silences the page offers, in minutes (the API takes 0 to 10080). */
export const SILENCE_CHOICES = [
  { minutes: 15, label: "15 min" },
  { minutes: 60, label: "1 h" },
  { minutes: 240, label: "4 h" },
  { minutes: 1440, label: "24 h" },
];
/** Alerts of the history asked for at once (the API takes 1 to 500). */
export const HISTORY_PAGE_SIZE = 50;

const SEVERITY_ORDER = { critical: 0, warning: 1 };
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric" });

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
const plural = (count, word) => `${formatInteger(count)} ${word}${count === 1 ? "" : "s"}`;

/** Whether `alert` is silenced at `nowSeconds` (its `silenced_until` is still ahead). */
export function isSilenced(alert, nowSeconds) {
  return isNumber(alert?.silenced_until) && alert.silenced_until > nowSeconds;
}

/** Compare two alerts for display: critical first, then the oldest first, then by id. */
export function alertOrder(a, b) {
  return (SEVERITY_ORDER[a.severity] ?? 2) - (SEVERITY_ORDER[b.severity] ?? 2)
    || (isNumber(a.started) ? a.started : Infinity) - (isNumber(b.started) ? b.started : Infinity)
    || (Number(a.id) || 0) - (Number(b.id) || 0);
}

/** The active alerts the banner shows at `nowSeconds`: the unsilenced ones, in display order. */
export function bannerAlerts(active, nowSeconds) {
  return (Array.isArray(active) ? active : [])
    .filter((alert) => alert && typeof alert === "object" && !isSilenced(alert, nowSeconds))
    .sort(alertOrder);
}

/** The banner's level for `alerts` (as `bannerAlerts` gives them): "error" when one is critical, else "warning". */
export function bannerLevel(alerts) {
  return alerts.some((alert) => alert.severity === "critical") ? "error" : "warning";
}

/**
 * The banner's text: "1 alert firing: <summary>", "2 alerts firing: <summary>; <summary>", and past
 * MAX_BANNER_ALERTS "… and N more". Each summary is capped at MAX_BANNER_SUMMARY_CHARS; "" for none.
 */
export function bannerText(alerts) {
  if (!alerts.length) return "";
  const shown = alerts.slice(0, MAX_BANNER_ALERTS).map((alert) => capText(summaryText(alert), MAX_BANNER_SUMMARY_CHARS));
  const more = alerts.length - shown.length;
  return `${plural(alerts.length, "alert")} firing: ${shown.join("; ")}${more > 0 ? ` and ${formatInteger(more)} more` : ""}`;
}

/** An alert's summary as text, its rule's name when it has none. */
export function summaryText(alert) {
  const summary = typeof alert?.summary === "string" ? alert.summary.trim() : "";
  return summary || String(alert?.rule ?? "alert");
}

function capText(text, max) {
  const chars = Array.from(text); // whole code points: never half a surrogate pair
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : text;
}

/**
 * `link` when it is a path on this dashboard (one "/", then no second "/" or "\", no control
 * character or whitespace, which a browser drops or reads as a slash); null otherwise.
 */
export function safeLink(link) {
  return typeof link === "string" && /^\/(?![/\\])[^\\\s\u0000-\u001f\u007f]*$/.test(link) ? link : null;
}

/** How long an active alert has been firing at `nowSeconds`: "for 5 min". */
export function firingFor(alert, nowSeconds) {
  return isNumber(alert?.started) ? `for ${formatDuration(nowSeconds - alert.started, { whole: true })}` : "";
}

/** A stored alert's outcome: "resolved after 3 min", or "firing" while it has not resolved. */
export function resolvedText(alert) {
  if (!isNumber(alert?.resolved)) return "firing";
  return isNumber(alert.started) ? `resolved after ${formatDuration(alert.resolved - alert.started, { whole: true })}` : "resolved";
}

/** A time to come as "HH:MM", with the day when it is not today at `nowSeconds` ("09:30 Tue, Mar 3"). */
export function untilText(epochSeconds, nowSeconds) {
  if (!isNumber(epochSeconds)) return EMPTY;
  const day = new Date(epochSeconds * 1000);
  const sameDay = isNumber(nowSeconds) && new Date(nowSeconds * 1000).toDateString() === day.toDateString();
  return sameDay ? formatClockMinutes(epochSeconds) : `${formatClockMinutes(epochSeconds)} ${dayFormat.format(day)}`;
}

/** The running silence that covers `alert` longest at `nowSeconds` (its rule, its subject or all of them); null when none. */
export function coveringSilence(alert, silences, nowSeconds) {
  let found = null;
  for (const silence of Array.isArray(silences) ? silences : []) {
    if (!silence || silence.rule !== alert?.rule || !isNumber(silence.until) || silence.until <= nowSeconds) continue;
    if (silence.subject !== null && silence.subject !== alert.subject) continue;
    if (found === null || silence.until > found.until) found = silence;
  }
  return found;
}

/** "silenced until 14:05 by alice" for an alert silenced at `nowSeconds` ("" when it is not), `who` from its silence. */
export function silencedText(alert, silences, nowSeconds) {
  if (!isSilenced(alert, nowSeconds)) return "";
  const silence = coveringSilence(alert, silences, nowSeconds);
  const who = silence && typeof silence.who === "string" && silence.who ? ` by ${silence.who}` : "";
  return `silenced until ${untilText(alert.silenced_until, nowSeconds)}${who}`;
}

/** What a silence covers: its subject, or "every subject" when it silences the whole rule. */
export function silenceScope(silence) {
  return silence?.subject === null || silence?.subject === undefined ? "every subject" : subjectText(silence.subject);
}

/** An alert's or silence's subject as text ("—" for the event stream's empty one). */
export function subjectText(subject) {
  return typeof subject === "string" && subject ? subject : EMPTY;
}

const glob = (pattern, every) => (pattern === undefined || pattern === null || pattern === "*" ? every : String(pattern));
const seconds = (value) => formatDuration(Number(value), { whole: true });

/** Each kind's limits in words, from the rule as `GET /api/alerts` lists it. */
const KIND_WORDS = {
  "worker-lost": () => "a worker stops sending heartbeats without shutting down",
  "queue-depth": (rule) => `${glob(rule.queue, "any queue")} over ${plural(Number(rule.above), "message")}`,
  "queue-wait": (rule) => `the oldest message in ${glob(rule.queue, "any queue")} waiting over ${seconds(rule.seconds)}`,
  "failure-rate": (rule) => `${glob(rule.task, "any task type")} failing over ${Number(rule.above)} % of its runs over ${seconds(rule.window)}`
    + (isNumber(rule.min_count) ? ` (once ${plural(rule.min_count, "run")} finished)` : ""),
  "task-runtime": (rule) => `${glob(rule.task, "any task")} running over ${seconds(rule.seconds)}`,
  "no-success": (rule) => `no ${glob(rule.task, "task")} succeeding for ${seconds(rule.seconds)}`,
  "event-stream": (rule) => `the event stream cut, or silent for ${seconds(rule.seconds)} while workers are online`,
};
const RULE_KEYS = new Set(["name", "kind", "severity", "for"]);

/** A rule's kind and limits in words: "queue-depth: default over 1,000 messages for 2 min". */
export function ruleText(rule) {
  const kind = String(rule?.kind ?? "unknown");
  const words = KIND_WORDS[kind]
    ? KIND_WORDS[kind](rule)
    : Object.entries(rule ?? {}).filter(([key]) => !RULE_KEYS.has(key)).map(([key, value]) => `${key} ${value}`).join(", ");
  const held = isNumber(rule?.for) && rule.for > 0 ? ` for ${seconds(rule.for)}` : "";
  return `${kind}: ${words}${held}`;
}

/** Where the alerts go besides the pages: "Also sent to 1 webhook and 2 Slack channels.", or "" when nowhere. */
export function notifyText(notify) {
  const parts = [];
  if (isNumber(notify?.webhooks) && notify.webhooks > 0) parts.push(plural(notify.webhooks, "webhook"));
  if (isNumber(notify?.slack) && notify.slack > 0) parts.push(plural(notify.slack, "Slack channel"));
  return parts.length ? `Also sent to ${parts.join(" and ")}.` : "";
}

/**
 * Merge a fresh first page of the history into the alerts shown: the fresh ones replace those of
 * the same id, the older pages already loaded stay; newest (highest id) first.
 */
export function mergeHistory(shown, fresh) {
  const byId = new Map();
  for (const alert of [...shown, ...fresh]) if (alert && Number.isFinite(alert.id)) byId.set(alert.id, alert);
  return [...byId.values()].sort((a, b) => b.id - a.id);
}

/** The query of a history page: the first one, or the one after alert id `before`. */
export function historyQuery(before = null) {
  const params = new URLSearchParams({ limit: String(HISTORY_PAGE_SIZE) });
  if (Number.isFinite(before)) params.set("before", String(before));
  return `?${params}`;
}

/**
 * What a silence request came to, as `{level, summary, lines}` (panels/action_ui.js's showOutcome):
 * "Silenced until 14:05", "Silence lifted", or why nothing was done.
 * @param {{status?: number, statusText?: string, body?: any, networkError?: string}} answer
 */
export function silenceOutcome({ status = 0, statusText = "", body = null, networkError = null } = {}, nowSeconds) {
  if (networkError !== null) {
    return { level: "error", summary: "Not sent: could not reach the dashboard.", lines: [String(networkError)] };
  }
  const isObject = body !== null && typeof body === "object" && !Array.isArray(body);
  const error = isObject && typeof body.error === "string" && body.error ? body.error : null;
  if (status < 200 || status >= 300) {
    return { level: "error", summary: "Refused.", lines: [error ?? `${status} ${statusText}`.trim()] };
  }
  const silence = isObject && body.ok === true ? body.silence : null;
  if (!silence || typeof silence !== "object") return { level: "error", summary: "The answer could not be read.", lines: [] };
  if (!isNumber(silence.until) || silence.until <= silence.at) return { level: "ok", summary: "Silence lifted", lines: [] };
  const scope = silence.subject === null ? "Rule silenced" : "Silenced";
  return { level: "ok", summary: `${scope} until ${untilText(silence.until, nowSeconds)}`, lines: [] };
}
