// Task actions (revoke, terminate), DOM-free: which actions a task offers, what the confirmation
// names, the request body, and an answer of POST /api/tasks/<uuid>/revoke (or of any action that
// gathers the workers' replies) as lines of text.

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
  return { level: "ok", summary: `${action} sent; ${count} replied:`, lines: error ? [...lines, error] : lines };
}
