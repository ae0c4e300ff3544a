// Task actions (revoke, terminate, retry), DOM-free: which actions a task offers, what the
// confirmation names, the request body, and an answer of POST /api/tasks/<uuid>/revoke (or of any
// action that gathers the workers' replies) as lines of text; for a retry, its preflight, the
// edited arguments read from JSON (or why they cannot be sent), its answer and the links between
// a task and its retries.

/** States after which a task runs no more: nothing to revoke. */
export const FINISHED_STATES = new Set(["SUCCESS", "FAILURE", "REVOKED", "REJECTED"]);
/** Signals a running task may be terminated with, the first the default. */
export const SIGNALS = ["TERM", "KILL", "INT", "USR1"];
export const DEFAULT_SIGNAL = SIGNALS[0];
/** What the page says instead of the buttons when the dashboard refuses actions. */
export const ACTIONS_OFF = "Actions are off on this dashboard.";

/**
 * The actions a task in `state` offers: `revoke` while it is not finished, `terminate` while it
 * runs (STARTED); none when `enabled` is false (the dashboard refuses actions), and then `off`.
 * @returns {{revoke: boolean, terminate: boolean, off: boolean}}
 */
export function offeredActions(state, enabled) {
  if (enabled !== true) return { revoke: false, terminate: false, off: true };
  const current = state || "PENDING";
  return { revoke: !FINISHED_STATES.has(current), terminate: current === "STARTED", off: false };
}

/** Whether `kind` ("revoke" or "terminate") is offered for a task in `state`. */
export function isOffered(kind, state, enabled) {
  const offered = offeredActions(state, enabled);
  return kind === "terminate" ? offered.terminate : kind === "revoke" && offered.revoke;
}

/** `signal` when it is one of SIGNALS, else the default. */
export function pickSignal(signal) {
  return SIGNALS.includes(signal) ? signal : DEFAULT_SIGNAL;
}

/** The JSON body of the revoke request for `kind` ("revoke" or "terminate", with `signal`). */
export function requestBody(kind, signal) {
  if (kind === "terminate") return { terminate: true, signal: pickSignal(signal) };
  return { terminate: false };
}

/** The name of an action as the page says it: "Revoke", or "Terminate (SIGKILL)". */
export function actionLabel(kind, signal) {
  return kind === "terminate" ? `Terminate (SIG${pickSignal(signal)})` : "Revoke";
}

/**
 * What the confirmation dialog says for `kind` on `task` (`{uuid, name, worker}`): a title, a
 * sentence on what happens, the facts naming the target as [label, value] pairs (plain text,
 * to be set as text), and the confirm button's label.
 */
export function confirmation(kind, task, signal) {
  const facts = [["Task", task?.name || "unknown"], ["Id", task?.uuid ?? ""]];
  if (kind === "terminate") {
    const sig = `SIG${pickSignal(signal)}`;
    facts.push(["Worker", task?.worker || "unknown"], ["Signal", sig]);
    return {
      title: "Terminate this task?",
      text: `The task is revoked, and the worker running it sends ${sig} to the process that runs it. `
        + "Work in progress is lost.",
      facts,
      confirm: `Terminate (${sig})`,
    };
  }
  return {
    title: "Revoke this task?",
    text: "Workers discard the task when they get to it. If it has already started, it keeps running "
      + "(terminate it to stop it).",
    facts,
    confirm: "Revoke",
  };
}

/** One worker's reply as lines of text: "host: what it said". */
export function replyLines(reply) {
  if (!reply || typeof reply !== "object" || Array.isArray(reply)) return [`(unreadable reply) ${text(reply)}`];
  return Object.entries(reply).map(([hostname, answer]) => {
    if (answer && typeof answer === "object" && !Array.isArray(answer)) {
      if ("ok" in answer) return `${hostname}: ${text(answer.ok)}`;
      if ("error" in answer) return `${hostname}: error: ${text(answer.error)}`;
    }
    return `${hostname}: ${text(answer)}`;
  });
}

function isObjectValue(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function text(value) {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Turn the answer of the request into what the page shows.
 * @param {string} kind "revoke" or "terminate"
 * @param {string} signal the signal asked for (terminate)
 * @param {{status?: number, statusText?: string, body?: any, networkError?: string}} answer
 *   the HTTP status and parsed JSON body (null when not JSON), or the network error's message
 * @returns {{level: "ok"|"warning"|"error", summary: string, lines: string[]}}
 */
export function outcome(kind, signal, answer) {
  return answerOutcome(actionLabel(kind, signal), answer);
}

/**
 * Turn the answer of any action that gathers replies (`{ok, replies, error}`) into what the page
 * shows, naming it `action` ("Ping", "Revoke").
 * @param {string} action the name of the action as the page says it
 * @param {{status?: number, statusText?: string, body?: any, networkError?: string}} answer
 *   the HTTP status and parsed JSON body (null when not JSON), or the network error's message
 * @param {{quietIsFine?: boolean}} options `quietIsFine`: no reply and no error is not a warning
 *   (a worker told to shut down may go before it answers)
 * @returns {{level: "ok"|"warning"|"error", summary: string, lines: string[]}}
 */
export function answerOutcome(action, { status = 0, statusText = "", body = null, networkError = null } = {},
  { quietIsFine = false } = {}) {
  if (networkError !== null) {
    return { level: "error", summary: `${action} not sent: could not reach the dashboard.`, lines: [networkError] };
  }
  const isObject = body !== null && typeof body === "object" && !Array.isArray(body);
  const error = isObject && typeof body.error === "string" && body.error ? body.error : null;
  if (status < 200 || status >= 300) {
    const reason = error ?? `${status} ${statusText}`.trim();
    return { level: "error", summary: `${action} refused.`, lines: [reason] };
  }
  if (!isObject) return { level: "error", summary: `${action}: the answer could not be read.`, lines: [] };
  const replies = Array.isArray(body.replies) ? body.replies : [];
  const lines = replies.flatMap(replyLines);
  if (body.ok !== true) {
    return { level: "error", summary: `${action} failed.`, lines: [error ?? "the request did not reach the broker", ...lines] };
  }
  if (lines.length === 0) {
    if (quietIsFine && !error) return { level: "ok", summary: `${action} sent; no reply (it may have gone before answering).`, lines: [] };
    return { level: "warning", summary: `${action} sent, but no worker replied.`, lines: error ? [error] : [] };
  }
  const count = `${lines.length} worker${lines.length === 1 ? "" : "s"}`;
  const refused = replies.filter(isObjectValue).flatMap(Object.values).filter((answer) => isObjectValue(answer)
    && !("ok" in answer) && "error" in answer).length;  // each worker's error is in its line already
  if (refused === lines.length) return { level: "error", summary: `${action} sent; refused:`, lines };
  if (refused > 0) return { level: "warning", summary: `${action} sent; ${count} replied, ${refused} refused:`, lines };
  return { level: "ok", summary: `${action} sent; ${count} replied:`, lines: error ? [...lines, error] : lines };
}

// -- Retry: send a failed, revoked, rejected or lost task again as a new task --------------------

/** States a task is retried from; a lost task (orphaned while RECEIVED or STARTED) too. */
export const RETRY_STATES = new Set(["FAILURE", "REVOKED", "REJECTED"]);
export const LOST_STATES = new Set(["RECEIVED", "STARTED"]);
/** Deepest nesting of arguments the dashboard takes (as it checks them). */
export const MAX_ARGUMENT_DEPTH = 32;
/** What the dialog names as the queue when the task had none: the app's default one. */
export const DEFAULT_QUEUE = "the default queue";

/** Whether the page offers Retry… for `task` (`{state, orphaned}`); never when actions are off. */
export function offersRetry(task, enabled) {
  if (enabled !== true || !task) return false;
  return RETRY_STATES.has(task.state) || (task.orphaned === true && LOST_STATES.has(task.state));
}

/** What the preflight depends on: it is asked again when this changes. */
export function retryKey(task) {
  return `${task?.state ?? "PENDING"}|${task?.orphaned === true}`;
}

const isPlainObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * The answer of GET /api/tasks/<uuid>/retry as the page uses it: `{retryable, reason, name, args,
 * kwargs, queue}`, retryable only with a name, an args array and a kwargs object; otherwise with a
 * reason, also when the answer could not be had or read.
 * @param {{status?: number, statusText?: string, body?: any, networkError?: string}} answer
 */
export function readPreflight({ status = 0, statusText = "", body = null, networkError = null } = {}) {
  const refused = (reason) => ({ retryable: false, reason, name: null, args: null, kwargs: null, queue: null });
  if (networkError !== null) return refused(`could not ask the dashboard: ${networkError}`);
  if (status < 200 || status >= 300) {
    const error = isPlainObject(body) && typeof body.error === "string" && body.error ? body.error : `${status} ${statusText}`.trim();
    return refused(`could not ask the dashboard: ${error}`);
  }
  if (!isPlainObject(body)) return refused("the dashboard's answer could not be read");
  const queue = typeof body.queue === "string" && body.queue ? body.queue : null;
  const name = typeof body.name === "string" && body.name ? body.name : null;
  if (body.retryable !== true) {
    const reason = typeof body.reason === "string" && body.reason ? body.reason : "the dashboard did not say why";
    return { retryable: false, reason, name, args: null, kwargs: null, queue };
  }
  if (name === null || !Array.isArray(body.args) || !isPlainObject(body.kwargs)) {
    return refused("the dashboard's answer could not be read");
  }
  return { retryable: true, reason: null, name, args: body.args, kwargs: body.kwargs, queue };
}

/**
 * The Retry… button for a preflight (null while it is asked): whether it is disabled, and the note
 * beside it (the reason it cannot be pressed, as text; "" when it can).
 */
export function retryButton(preflight) {
  if (!preflight) return { disabled: true, note: "Checking whether it can be sent again…" };
  if (preflight.retryable) return { disabled: false, note: "" };
  return { disabled: true, note: `Cannot retry: ${preflight.reason}.`.replace(/\.\.$/, ".") };
}

/** `value` as the dialog shows it for editing: JSON, two spaces an indent. */
export function prettyJson(value) {
  return JSON.stringify(value, null, 2);
}

/**
 * What the retry dialog shows for a retryable `preflight` of the task `uuid`: a title, a sentence,
 * the facts of what is sent as [label, value] pairs (plain text, to be set as text), the args and
 * kwargs to put in the two text boxes, and the confirm button's label.
 */
export function retryConfirmation(preflight, uuid) {
  return {
    title: "Retry this task?",
    text: "A new task is sent with this name, to this queue, with the arguments below (edit them as JSON "
      + "if needed). This task stays as it is, linked to the new one.",
    facts: [["Task", preflight?.name || "unknown"], ["Queue", preflight?.queue || DEFAULT_QUEUE], ["Retry of", uuid ?? ""]],
    args: prettyJson(preflight?.args ?? []),
    kwargs: prettyJson(preflight?.kwargs ?? {}),
    confirm: "Send as a new task",
  };
}

function kindOf(value) {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return "a string";
  if (typeof value === "number") return "a number";
  return String(value);
}

/** Why `value` (parsed from JSON) cannot be sent exactly, or null: too deep, or a number JSON or a browser cannot carry. */
function unsendable(value, depth = 0) {
  if (depth > MAX_ARGUMENT_DEPTH) return `nested more than ${MAX_ARGUMENT_DEPTH} levels deep`;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return "a number is too large for JSON";
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      return `the whole number ${value} is beyond what a browser keeps exact (±${Number.MAX_SAFE_INTEGER})`;
    }
    return null;
  }
  const items = Array.isArray(value) ? value : isPlainObject(value) ? Object.values(value) : [];
  for (const item of items) {
    const why = unsendable(item, depth + 1);
    if (why) return why;
  }
  return null;
}

function parseOne(text, field, label, wanted) {
  const source = String(text ?? "").trim();
  const example = wanted === "array" ? "a JSON array, such as [] for none" : "a JSON object, such as {} for none";
  if (source === "") return { ok: false, field, error: `${label}: enter ${example}.` };
  let value;
  try {
    value = JSON.parse(source);
  } catch (error) {
    return { ok: false, field, error: `${label}: not valid JSON (${error.message}).` };
  }
  const fits = wanted === "array" ? Array.isArray(value) : isPlainObject(value);
  if (!fits) return { ok: false, field, error: `${label}: must be ${example}, not ${kindOf(value)}.` };
  const why = unsendable(value);
  if (why) return { ok: false, field, error: `${label}: ${why}.` };
  return { ok: true, value };
}

/**
 * Read the args and kwargs as edited in the dialog: args a JSON array, kwargs a JSON object.
 * @returns {{ok: true, args: any[], kwargs: object} | {ok: false, field: "args"|"kwargs", error: string}}
 */
export function parseRetryArguments(argsText, kwargsText) {
  const args = parseOne(argsText, "args", "Args", "array");
  if (!args.ok) return args;
  const kwargs = parseOne(kwargsText, "kwargs", "Kwargs", "object");
  if (!kwargs.ok) return kwargs;
  return { ok: true, args: args.value, kwargs: kwargs.value };
}

/** Whether two values parsed from JSON are the same. */
export function sameJson(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i]));
  }
  if (isPlainObject(a) || isPlainObject(b)) {
    if (!isPlainObject(a) || !isPlainObject(b)) return false;
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length
      && keys.every((key) => Object.hasOwn(b, key) && sameJson(a[key], b[key]));
  }
  return a === b;
}

/**
 * The JSON body of POST /api/tasks/<uuid>/retry from the dialog's text boxes. Arguments left as
 * the preflight gave them are left out of it: the dashboard then sends the originals exactly as it
 * read them (and records the retry as not edited).
 * @returns {{ok: true, body: object, edited: boolean} | {ok: false, field: "args"|"kwargs", error: string}}
 */
export function retryBody(preflight, argsText, kwargsText) {
  const parsed = parseRetryArguments(argsText, kwargsText);
  if (!parsed.ok) return parsed;
  const body = {};
  if (!sameJson(parsed.args, preflight?.args)) body.args = parsed.args;
  if (!sameJson(parsed.kwargs, preflight?.kwargs)) body.kwargs = parsed.kwargs;
  return { ok: true, body, edited: Object.keys(body).length > 0 };
}

/**
 * The answer of POST /api/tasks/<uuid>/retry as what the page shows: `{level, summary, lines,
 * taskId}`, `taskId` the new task's id once it was sent (the page links it after the summary).
 * @param {{status?: number, statusText?: string, body?: any, networkError?: string}} answer
 */
export function retryOutcome({ status = 0, statusText = "", body = null, networkError = null } = {}) {
  if (networkError !== null) {
    return { level: "error", summary: "Retry not sent: could not reach the dashboard.", lines: [networkError], taskId: null };
  }
  const isObject = isPlainObject(body);
  const error = isObject && typeof body.error === "string" && body.error ? body.error : null;
  if (status < 200 || status >= 300) {
    return { level: "error", summary: "Retry refused.", lines: [error ?? `${status} ${statusText}`.trim()], taskId: null };
  }
  if (!isObject) return { level: "error", summary: "Retry: the answer could not be read.", lines: [], taskId: null };
  if (body.ok !== true) {
    return { level: "error", summary: "Retry failed.", lines: [error ?? "the broker did not take the task"], taskId: null };
  }
  if (typeof body.task_id !== "string" || !body.task_id) {
    return { level: "warning", summary: "Retry sent, but the dashboard did not say the new task's id.", lines: [], taskId: null };
  }
  return { level: "ok", summary: "Sent as", lines: [], taskId: body.task_id };
}

/**
 * The tasks `task` was retried from and as: `{from, as}`, `as` with `added` (retries sent from
 * this page since it was loaded) after the task's own `retried_as`, each once, ids only.
 */
export function retryLinks(task, added = []) {
  const from = typeof task?.retry_of === "string" && task.retry_of ? task.retry_of : null;
  const known = Array.isArray(task?.retried_as) ? task.retried_as : [];
  const as = [...new Set([...known, ...added].filter((id) => typeof id === "string" && id))];
  return { from, as };
}
