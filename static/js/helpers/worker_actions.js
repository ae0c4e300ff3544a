// Worker control and queue purge, DOM-free: which controls the user's role allows, the request
// body of each action from what was typed (or why it cannot be sent), what a confirmation dialog
// names, and the answers as lines of text.

import { formatInteger } from "./format.js";
import { messagesText } from "./queue_info.js";
import { ACTIONS_OFF, answerOutcome, replyLines } from "./task_actions.js";

/** Largest pool change or autoscale bound the dashboard takes. */
export const MAX_POOL_STEP = 256;
/** Longest time limit the dashboard takes, in seconds (a week). */
export const MAX_TIME_LIMIT = 7 * 86400;
/** Longest queue or task name the dashboard takes. */
export const MAX_NAME_CHARS = 255;
/** A rate limit as Celery reads it: tasks per second, minute or hour ("10/m", "0.5/s", "100"). */
const RATE = /^\d+(\.\d+)?(\/[smh])?$/;
const WHOLE = /^\d+$/;

/**
 * The worker actions the page offers (the path's name), each with its name as the page says it,
 * whether it asks first (`destructive`), whether the worker's pool or queues change, so that the
 * page inspects the worker again after it (`refresh`), and whether it needs the admin role
 * (`admin`; the others need an operator).
 */
export const WORKER_ACTIONS = {
  ping: { label: "Ping" },
  "enable-events": { label: "Enable task events" },
  "pool-grow": { label: "Grow pool", refresh: true, admin: true },
  "pool-shrink": { label: "Shrink pool", refresh: true, admin: true },
  autoscale: { label: "Autoscale", refresh: true, admin: true },
  "add-consumer": { label: "Add consumer", refresh: true, admin: true },
  "cancel-consumer": { label: "Cancel consumer", refresh: true, admin: true },
  "rate-limit": { label: "Rate limit", admin: true },
  "time-limit": { label: "Time limits", admin: true },
  "pool-restart": { label: "Pool restart", destructive: true, refresh: true, admin: true },
  shutdown: { label: "Shutdown", destructive: true, admin: true },
};

/** What the worker page says in place of the controls an operator may not use. */
export const WORKER_ADMIN_NEEDED = "Pool, consumers, limits, restart and shutdown need the admin role.";
/** What the queue page says in place of Purge for an operator. */
export const PURGE_ADMIN_NEEDED = "Purge needs the admin role.";

/**
 * The worker actions the page shows, and the one line it says instead of the others (null when
 * none is left out). `enabled`: actions are on and the user is at least an operator; `admin`: they
 * are on and the user is an admin (as the page's bootstrap says).
 * @returns {{actions: string[], note: string|null}}
 */
export function workerControls(enabled, admin) {
  if (enabled !== true) return { actions: [], note: ACTIONS_OFF };
  const actions = Object.keys(WORKER_ACTIONS).filter((action) => admin === true || !WORKER_ACTIONS[action].admin);
  return { actions, note: admin === true ? null : WORKER_ADMIN_NEEDED };
}

/**
 * Whether the queue page shows Purge (admins only), and the line it says instead (null when shown).
 * @returns {{purge: boolean, note: string|null}}
 */
export function queueControls(enabled, admin) {
  if (enabled !== true) return { purge: false, note: ACTIONS_OFF };
  return admin === true ? { purge: true, note: null } : { purge: false, note: PURGE_ADMIN_NEEDED };
}

/** The name of a worker action as the page says it. */
export function workerActionLabel(action) {
  return WORKER_ACTIONS[action]?.label ?? String(action);
}

/** Whether the page inspects the worker again after `action` (its pool or queues changed). */
export function refreshesAfter(action) {
  return WORKER_ACTIONS[action]?.refresh === true;
}

/** Whether `action` asks for confirmation first. */
export function isDestructive(action) {
  return WORKER_ACTIONS[action]?.destructive === true;
}

const trimmed = (value) => (value === null || value === undefined ? "" : String(value).trim());

/** Inspect again this long after an action at most, waiting for its change to show, in ms. */
export const SETTLE_LIMIT_MS = 15_000;
/** Wait this long between two of those inspects, in ms (a prefork pool resizes every 5 s or so). */
export const SETTLE_EVERY_MS = 1_500;

/** The number of pool processes in the page's text of them ("101, 102" is 2); null when none is shown. */
export function processCount(text) {
  const value = trimmed(text);
  return /^\d+(, \d+)*$/.test(value) ? value.split(",").length : null;
}

/**
 * Whether what an inspect shows now (`{processes, queues}`: the number of pool processes or null,
 * the names of the queues consumed) has the change that `action`, asked with `body`, makes to what
 * it showed `before`. The change of an action that waits for nothing shows at once.
 */
export function changeSeen(action, body, before, now) {
  switch (action) {
    case "pool-grow":
      return before?.processes == null || now?.processes == null || now.processes > before.processes;
    case "pool-shrink":
      return before?.processes == null || now?.processes == null || now.processes < before.processes;
    case "add-consumer":
      return (now?.queues ?? []).includes(body?.queue);
    case "cancel-consumer":
      return !(now?.queues ?? []).includes(body?.queue);
    default:
      return true;
  }
}

/** A whole number typed in `raw`, from `low` to `high`; null when it is not one. */
function wholeNumber(raw, low, high) {
  const text = trimmed(raw);
  if (!WHOLE.test(text)) return null;
  const value = Number(text);
  return value >= low && value <= high ? value : null;
}

/** Seconds typed in `raw`: undefined when empty (no limit), null when unreadable or out of range. */
function seconds(raw) {
  const text = trimmed(raw);
  if (text === "") return undefined;
  const value = Number(text);
  return Number.isFinite(value) && value > 0 && value <= MAX_TIME_LIMIT ? value : null;
}

/** A queue or task name typed or chosen in `raw`; null when empty, too long or holding a NUL. */
function name(raw) {
  const text = trimmed(raw);
  return text && text.length <= MAX_NAME_CHARS && !text.includes("\0") ? text : null;
}

const refuse = (error) => ({ ok: false, error });

/**
 * The JSON body of `action` from the page's inputs (strings as typed: `n`, `max`, `min`, `queue`,
 * `task`, `rate`, `soft`, `hard`), checked as the dashboard checks it.
 * @returns {{ok: true, body: object} | {ok: false, error: string}} the body, or why nothing is sent
 */
export function workerActionBody(action, inputs = {}) {
  switch (action) {
    case "ping": case "enable-events": case "pool-restart": case "shutdown":
      return { ok: true, body: {} };
    case "pool-grow": case "pool-shrink": {
      const n = wholeNumber(inputs.n, 1, MAX_POOL_STEP);
      if (n === null) return refuse(`Processes: enter a whole number from 1 to ${MAX_POOL_STEP}.`);
      return { ok: true, body: { n } };
    }
    case "autoscale": {
      const max = wholeNumber(inputs.max, 1, MAX_POOL_STEP);
      if (max === null) return refuse(`Max: enter a whole number from 1 to ${MAX_POOL_STEP}.`);
      const min = trimmed(inputs.min) === "" ? 0 : wholeNumber(inputs.min, 0, max);
      if (min === null) return refuse(`Min: enter a whole number from 0 to max (${max}).`);
      return { ok: true, body: { max, min } };
    }
    case "add-consumer": case "cancel-consumer": {
      const queue = name(inputs.queue);
      if (queue === null) return refuse(`Queue: enter a queue name (1 to ${MAX_NAME_CHARS} characters).`);
      return { ok: true, body: { queue } };
    }
    case "rate-limit": {
      const task = name(inputs.task);
      if (task === null) return refuse("Task: choose a task type.");
      const rate = trimmed(inputs.rate);
      if (!RATE.test(rate)) {
        return refuse("Rate: enter tasks per second, minute or hour, such as 10/m or 0.5/s (0 removes the limit).");
      }
      return { ok: true, body: { task, rate } };
    }
    case "time-limit": {
      const task = name(inputs.task);
      if (task === null) return refuse("Task: choose a task type.");
      const soft = seconds(inputs.soft);
      const hard = seconds(inputs.hard);
      const range = `seconds above 0, up to ${formatInteger(MAX_TIME_LIMIT)} (a week), or nothing for no limit`;
      if (soft === null) return refuse(`Soft limit: enter ${range}.`);
      if (hard === null) return refuse(`Hard limit: enter ${range}.`);
      if (soft !== undefined && hard !== undefined && soft > hard) {
        return refuse(`Soft limit: must not be longer than the hard limit (${hard} s).`);
      }
      return { ok: true, body: { task, soft: soft ?? null, hard: hard ?? null } };
    }
    default:
      return refuse(`Unknown action: ${action}.`);
  }
}

/**
 * What the confirmation dialog says before a destructive `action` on the worker `hostname`: a
 * title, a sentence on what happens, the facts naming it as [label, value] pairs (plain text, to
 * be set as text) and the confirm button's label.
 */
export function workerConfirmation(action, hostname) {
  const facts = [["Worker", hostname || "unknown"]];
  if (action === "pool-restart") {
    return {
      title: "Restart this worker's pool?",
      text: "The worker replaces its pool processes; tasks they are running may be lost. "
        + "It refuses unless it was started with worker_pool_restarts enabled.",
      facts,
      confirm: "Restart pool",
    };
  }
  return {
    title: "Shut down this worker?",
    text: "The worker stops taking tasks, lets the ones it runs finish and exits. "
      + "Nothing here can start it again.",
    facts,
    confirm: "Shut down",
  };
}

const limitText = (value) => (value === null || value === undefined ? "none" : `${value} s`);

/**
 * The action as the page names it with what it asks (`body`, as `workerActionBody` made it):
 * "Grow pool by 2", "Add consumer (reports)", "Rate limit (tasks.add, 10/m)".
 */
export function describeAction(action, body = {}) {
  const label = workerActionLabel(action);
  switch (action) {
    case "pool-grow": case "pool-shrink":
      return Number.isInteger(body?.n) ? `${label} by ${body.n}` : label;
    case "autoscale":
      return `${label} (max ${body?.max}, min ${body?.min})`;
    case "add-consumer": case "cancel-consumer":
      return `${label} (${body?.queue})`;
    case "rate-limit":
      return `${label} (${body?.task}, ${body?.rate})`;
    case "time-limit":
      return `${label} (${body?.task}, soft ${limitText(body?.soft)}, hard ${limitText(body?.hard)})`;
    default:
      return label;
  }
}

/** Whether a worker said it did what was asked: a reply of `{ok: ...}` in the answer's body. */
export function someWorkerAgreed(body) {
  const replies = Array.isArray(body?.replies) ? body.replies : [];
  return replies.some((reply) => reply && typeof reply === "object"
    && Object.values(reply).some((answer) => answer && typeof answer === "object" && "ok" in answer));
}

/** The answer of a worker action asked with `body` as `{level, summary, lines}` (see `answerOutcome`). */
export function workerOutcome(action, answer, body = {}) {
  return answerOutcome(describeAction(action, body), answer, { quietIsFine: action === "shutdown" });
}

/**
 * The answers of "enable task events" sent to several workers, one request each.
 * @param {{hostname: string, answer: object}[]} results each worker and the answer of its request
 * @returns {{level: "ok"|"warning"|"error", summary: string, lines: string[]}}
 */
export function enableEventsOutcome(results) {
  if (!results.length) return { level: "warning", summary: "No worker is online.", lines: [] };
  let replied = 0;
  const lines = results.flatMap(({ hostname, answer }) => {
    const shown = answerOutcome("Enable task events", answer);
    const body = answer?.body;
    const replies = shown.level === "ok" && Array.isArray(body?.replies) ? body.replies.flatMap(replyLines) : [];
    if (replies.length) {
      replied += 1;
      return replies;
    }
    return [`${hostname}: ${[shown.summary, ...shown.lines].join(" ")}`];
  });
  const sent = `${results.length} worker${results.length === 1 ? "" : "s"}`;
  const level = replied === results.length ? "ok" : replied === 0 ? "error" : "warning";
  return { level, summary: `Enable task events sent to ${sent}; ${replied} replied:`, lines };
}

/**
 * What the purge confirmation says for `queue` holding `depth` messages (a number, or null when
 * unknown): the title asks the question, naming both.
 */
export function purgeConfirmation(queue, depth) {
  const known = Number.isFinite(depth) && depth >= 0;
  let title = `Remove all messages waiting in ${queue}?`;
  if (known) title = depth === 1 ? `Remove the 1 message waiting in ${queue}?` : `Remove all ${messagesText(depth)} waiting in ${queue}?`;
  return {
    title,
    text: "The broker deletes them: their tasks never run. Messages a worker has already taken are not touched, "
      + "and the depth shown may be a few seconds old.",
    facts: [["Queue", queue], ["Waiting", known ? messagesText(depth) : "unknown"]],
    confirm: "Purge",
  };
}

/**
 * The answer of POST /api/queues/<name>/purge as `{level, summary, lines}`.
 * @param {{status?: number, statusText?: string, body?: any, networkError?: string}} answer
 */
export function purgeOutcome({ status = 0, statusText = "", body = null, networkError = null } = {}) {
  if (networkError !== null) {
    return { level: "error", summary: "Purge not sent: could not reach the dashboard.", lines: [networkError] };
  }
  const isObject = body !== null && typeof body === "object" && !Array.isArray(body);
  const error = isObject && typeof body.error === "string" && body.error ? body.error : null;
  if (status < 200 || status >= 300) {
    return { level: "error", summary: "Purge refused.", lines: [error ?? `${status} ${statusText}`.trim()] };
  }
  if (!isObject) return { level: "error", summary: "Purge: the answer could not be read.", lines: [] };
  if (body.ok !== true) {
    return { level: "error", summary: "Purge failed.", lines: [error ?? "the request did not reach the broker"] };
  }
  if (Number.isInteger(body.purged) && body.purged >= 0) {
    return { level: "ok", summary: `Removed ${messagesText(body.purged)}`, lines: [] };
  }
  return { level: "ok", summary: "Purged; the broker did not say how many messages it removed.", lines: [] };
}
