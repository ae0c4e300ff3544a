// Words for a queue: depth (stale, not available), consumers, oldest waiting age, flags,
// threshold, waiting task types and the backlog banner. DOM-free.

import { formatDuration } from "./duration.js";
import { EMPTY, formatInteger } from "./format.js";

const secondsFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/** "1 message", "12 messages" (grouped by the locale). */
export function messagesText(count) {
  return `${formatInteger(count)} message${count === 1 ? "" : "s"}`;
}

/**
 * The depth cell: `text` (a number, "depth not available" when the broker gave none and
 * said why, "—" before the first sample), whether it is `stale`, and the `error` to show.
 */
export function depthInfo(queue) {
  const error = typeof queue?.error === "string" && queue.error ? queue.error : null;
  if (!isNumber(queue?.depth)) {
    return { text: error ? "depth not available" : EMPTY, stale: false, error, available: false };
  }
  return { text: formatInteger(queue.depth), stale: Boolean(queue.stale), error, available: true };
}

/** Tooltip of the depth cell: why it is stale or missing; "" when there is nothing to say. */
export function depthTitle(queue) {
  const { stale, error, available } = depthInfo(queue);
  if (stale) return `The last sample failed${error ? `: ${error}` : ""}. This is the previous depth.`;
  if (error) return error;
  if (!available) return "Not sampled yet";
  return "";
}

/** Tooltip of the consumers cell: the worker hostnames, or where the count comes from. */
export function consumersTitle(queue) {
  const workers = Array.isArray(queue?.workers) ? queue.workers : [];
  if (workers.length) return `Consumed by ${workers.join(", ")}`;
  if (isNumber(queue?.consumers) && queue.consumers > 0) return "Consumers reported by the broker (no worker the dashboard sees)";
  return "No worker consumes this queue";
}

/** Age of the oldest task still waiting, ticking from `oldest_sent`: "2 min 10 s", or "—" when none. */
export function oldestText(queue, nowSeconds) {
  return isNumber(queue?.oldest_sent) ? formatDuration(nowSeconds - queue.oldest_sent, { whole: true }) : EMPTY;
}

/** The alert threshold in words: "over 1,000 messages for 60 s", or "none". */
export function thresholdText(threshold) {
  if (!threshold || !isNumber(threshold.depth)) return "none";
  const over = `over ${messagesText(threshold.depth)}`;
  return isNumber(threshold.seconds) && threshold.seconds > 0 ? `${over} for ${secondsFormat.format(threshold.seconds)} s` : over;
}

/**
 * The flags of a queue, in display order, each `{key, text, level, title}`:
 * "no consumer" (error), "growing" (warning), "over threshold" (error).
 */
export function queueFlags(queue) {
  const flags = [];
  if (queue?.no_consumer) {
    flags.push({ key: "no-consumer", text: "no consumer", level: "error", title: "Messages are waiting and no worker consumes this queue" });
  }
  if (queue?.growing) {
    flags.push({ key: "growing", text: "growing", level: "warning", title: "The depth kept rising over the last samples" });
  }
  if (queue?.alerting) {
    flags.push({ key: "alerting", text: "over threshold", level: "error", title: `Backlog alert: ${thresholdText(queue.alert_threshold)}` });
  }
  return flags;
}

/** The `waiting_tasks` map as rows `{name, count}`, most waiting first, then by name. */
export function waitingRows(waitingTasks) {
  if (!waitingTasks || typeof waitingTasks !== "object") return [];
  return Object.entries(waitingTasks)
    .filter(([, count]) => isNumber(count))
    .map(([name, count]) => ({ name, count }))
    .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
}

/** The alerting queues, by name, each `{name, detail}` for the backlog banner ("has 12 messages (threshold 0)"). */
export function backlogQueues(queues) {
  return queues
    .filter((q) => q?.alerting)
    .sort((a, b) => String(a.name).localeCompare(String(b.name)))
    .map((q) => ({ name: String(q.name), detail: backlogDetail(q.depth, q.alert_threshold?.depth) }));
}

/** "has 12 messages (threshold 10)"; the threshold part is left out when unknown. */
export function backlogDetail(depth, threshold) {
  const has = isNumber(depth) ? `has ${messagesText(depth)}` : "has an unknown depth";
  return isNumber(threshold) ? `${has} (threshold ${formatInteger(threshold)})` : has;
}

/** Accessible name of a sparkline: "Depth over the last 15 minutes: now 3, highest 12". */
export function sparklineLabel(samples, key = "depth") {
  const values = samples.map((s) => s[key]).filter(isNumber);
  if (!values.length) return "Depth over the last 15 minutes: no samples";
  return `Depth over the last 15 minutes: now ${formatInteger(values.at(-1))}, highest ${formatInteger(Math.max(...values))}`;
}

/** Rows a queue table shows at most: the overview's compact table and the Queues page's. */
export const MAX_QUEUE_ROWS = { compact: 50, full: 500 };

/**
 * The queues a table shows, in the order given (by name): all of them when they fit in `max`;
 * otherwise the `max` that matter most: flagged (over threshold, no consumer) first, then growing,
 * then the deepest.
 */
export function shownQueues(sorted, max) {
  if (sorted.length <= max) return sorted;
  const rank = (q) => (q.alerting || q.no_consumer ? 0 : 2) + (q.growing ? 0 : 1);
  const depth = (q) => (isNumber(q.depth) ? q.depth : -1);
  const chosen = new Set([...sorted].sort((a, b) => rank(a) - rank(b) || depth(b) - depth(a)).slice(0, max));
  return sorted.filter((q) => chosen.has(q));
}

/** The table's count: "12 watched", or "50 of 2,000 watched (the flagged and deepest)"; "" for none. */
export function queueCountText(shown, total) {
  if (!total) return "";
  if (shown >= total) return `${formatInteger(total)} watched`;
  return `${formatInteger(shown)} of ${formatInteger(total)} watched (the flagged and deepest)`;
}
