// Tests of the task actions' DOM-free parts: what a task offers, the request body, the dialog's
// text and the answer as lines.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  ACTIONS_OFF, DEFAULT_SIGNAL, SIGNALS, actionLabel, confirmation, isOffered, offeredActions, outcome, pickSignal,
  requestBody,
} from "../../static/js/helpers/task_actions.js";

test("a task not finished offers revoke; a running one terminate too", () => {
  for (const state of ["PENDING", "RECEIVED", "RETRY", undefined, null, ""]) {
    assert.deepEqual(offeredActions(state, true), { revoke: true, terminate: false, off: false }, String(state));
  }
  assert.deepEqual(offeredActions("STARTED", true), { revoke: true, terminate: true, off: false });
  for (const state of ["SUCCESS", "FAILURE", "REVOKED", "REJECTED"]) {
    assert.deepEqual(offeredActions(state, true), { revoke: false, terminate: false, off: false }, state);
  }
});

test("with actions off, nothing is offered whatever the state", () => {
  for (const enabled of [false, undefined, null, "true", 1]) {
    assert.deepEqual(offeredActions("STARTED", enabled), { revoke: false, terminate: false, off: true });
  }
  assert.match(ACTIONS_OFF, /Actions are off/);
});

test("isOffered names one action", () => {
  assert.equal(isOffered("revoke", "RECEIVED", true), true);
  assert.equal(isOffered("terminate", "RECEIVED", true), false);
  assert.equal(isOffered("terminate", "STARTED", true), true);
  assert.equal(isOffered("revoke", "REVOKED", true), false);
  assert.equal(isOffered("revoke", "STARTED", false), false);
  assert.equal(isOffered("retry", "STARTED", true), false);
});

test("the request body: revoke alone, or terminate with a known signal", () => {
  assert.deepEqual(requestBody("revoke", "KILL"), { terminate: false });
  assert.deepEqual(requestBody("terminate", "KILL"), { terminate: true, signal: "KILL" });
  assert.deepEqual(requestBody("terminate", "HUP"), { terminate: true, signal: DEFAULT_SIGNAL });
  assert.deepEqual(requestBody("terminate"), { terminate: true, signal: "TERM" });
  assert.deepEqual(SIGNALS, ["TERM", "KILL", "INT", "USR1"]);
  assert.equal(pickSignal("USR1"), "USR1");
  assert.equal(pickSignal("kill"), "TERM");
  assert.equal(actionLabel("terminate", "INT"), "Terminate (SIGINT)");
  assert.equal(actionLabel("revoke", "INT"), "Revoke");
});

test("the confirmation names the task, and for terminate the worker and the signal", () => {
  const task = { uuid: "abc-1", name: "<img src=x onerror=alert(1)>", worker: "w@host" };
  const revoke = confirmation("revoke", task, "KILL");
  assert.equal(revoke.title, "Revoke this task?");
  assert.deepEqual(revoke.facts, [["Task", task.name], ["Id", "abc-1"]]);
  assert.equal(revoke.confirm, "Revoke");
  const terminate = confirmation("terminate", task, "KILL");
  assert.deepEqual(terminate.facts, [["Task", task.name], ["Id", "abc-1"], ["Worker", "w@host"], ["Signal", "SIGKILL"]]);
  assert.equal(terminate.confirm, "Terminate (SIGKILL)");
  assert.match(terminate.text, /SIGKILL/);
  const unknown = confirmation("terminate", { uuid: "u" }, undefined);
  assert.deepEqual(unknown.facts, [["Task", "unknown"], ["Id", "u"], ["Worker", "unknown"], ["Signal", "SIGTERM"]]);
});

test("each worker's reply is a line; a worker that answered with an error makes it a warning", () => {
  const body = { ok: true, error: null, replies: [{ "a@h": { ok: "tasks {'x'} flagged as revoked" } }, { "b@h": { error: "nope" } }] };
  assert.deepEqual(outcome("revoke", "TERM", { status: 200, body }), {
    level: "warning", summary: "Revoke sent; 2 workers replied, 1 refused:",
    lines: ["a@h: tasks {'x'} flagged as revoked", "b@h: error: nope"],
  });
  const one = outcome("terminate", "KILL", { status: 200, body: { ok: true, error: null, replies: [{ "a@h": { ok: "terminate: x" } }] } });
  assert.equal(one.summary, "Terminate (SIGKILL) sent; 1 worker replied:");
  assert.deepEqual(one.lines, ["a@h: terminate: x"]);
});

test("odd replies are still shown as text", () => {
  const body = { ok: true, error: null, replies: [{ "a@h": 42 }, "weird", { "b@h": { other: [1] } }] };
  assert.deepEqual(outcome("revoke", "TERM", { status: 200, body }).lines, ["a@h: 42", "(unreadable reply) weird", 'b@h: {"other":[1]}']);
});

test("no worker replying is a warning with the server's explanation", () => {
  const body = { ok: true, replies: [], error: "no worker replied within 1 s; workers that start later do not know of this revoke" };
  const shown = outcome("revoke", "TERM", { status: 200, body });
  assert.equal(shown.level, "warning");
  assert.equal(shown.summary, "Revoke sent, but no worker replied.");
  assert.deepEqual(shown.lines, [body.error]);
});

test("a request the broker did not take is an error", () => {
  const body = { ok: false, replies: [], error: "the broker did not take the request: ConnectionError: refused" };
  assert.deepEqual(outcome("revoke", "TERM", { status: 200, body }), {
    level: "error", summary: "Revoke failed.", lines: [body.error],
  });
});

test("HTTP errors show their error message, or the status", () => {
  const refused = outcome("revoke", "TERM", { status: 403, statusText: "FORBIDDEN", body: { error: "actions are off: the dashboard runs with --read-only" } });
  assert.deepEqual(refused, { level: "error", summary: "Revoke refused.", lines: ["actions are off: the dashboard runs with --read-only"] });
  assert.deepEqual(outcome("terminate", "INT", { status: 502, statusText: "Bad Gateway", body: null }).lines, ["502 Bad Gateway"]);
  assert.deepEqual(outcome("revoke", "TERM", { status: 404, body: { error: "unknown task: x" } }).lines, ["unknown task: x"]);
});

test("a network failure and an unreadable answer are errors", () => {
  const lost = outcome("revoke", "TERM", { networkError: "Failed to fetch" });
  assert.equal(lost.level, "error");
  assert.deepEqual(lost.lines, ["Failed to fetch"]);
  assert.equal(outcome("revoke", "TERM", { status: 200, body: null }).level, "error");
  assert.equal(outcome("revoke", "TERM", { status: 200, body: [1] }).level, "error");
});

import { withCsrf } from "../../static/js/helpers/csrf.js";

test("state-changing requests carry the session's CSRF token, reads do not", () => {
  const post = withCsrf({ method: "POST", headers: { "Content-Type": "application/json" } }, "t0k");
  assert.equal(post.headers.get("X-CSRF-Token"), "t0k");
  assert.equal(post.headers.get("Content-Type"), "application/json");
  assert.equal(withCsrf({ method: "GET" }, "t0k").headers, undefined);
  assert.equal(withCsrf(undefined, "t0k"), undefined);
  const init = { method: "POST" };
  assert.equal(withCsrf(init, null), init);
});

import {
  DEFAULT_QUEUE, MAX_ARGUMENT_DEPTH, offersRetry, parseRetryArguments, prettyJson, readPreflight, retryBody,
  retryButton, retryConfirmation, retryKey, retryLinks, retryOutcome, sameJson,
} from "../../static/js/helpers/task_actions.js";

test("retry is offered for a failed, revoked or rejected task, and a lost one still in flight", () => {
  for (const state of ["FAILURE", "REVOKED", "REJECTED"]) {
    assert.equal(offersRetry({ state }, true), true, state);
    assert.equal(offersRetry({ state, orphaned: true }, true), true, state);
  }
  for (const state of ["RECEIVED", "STARTED"]) {
    assert.equal(offersRetry({ state, orphaned: true }, true), true, `lost ${state}`);
    assert.equal(offersRetry({ state, orphaned: false }, true), false, state);
    assert.equal(offersRetry({ state }, true), false, state);
  }
  for (const state of ["SUCCESS", "PENDING", "RETRY", undefined, null, "failure"]) {
    assert.equal(offersRetry({ state }, true), false, String(state));
    assert.equal(offersRetry({ state, orphaned: true }, true), false, `orphaned ${state}`);
  }
  assert.equal(offersRetry({ state: "STARTED", orphaned: "yes" }, true), false);
  assert.equal(offersRetry(null, true), false);
  for (const enabled of [false, undefined, null, "true", 1]) {
    assert.equal(offersRetry({ state: "FAILURE" }, enabled), false, String(enabled));
  }
});

test("the preflight is asked again when the state, or being lost, changes", () => {
  assert.equal(retryKey({ state: "FAILURE" }), retryKey({ state: "FAILURE", orphaned: false, name: "x" }));
  assert.notEqual(retryKey({ state: "FAILURE" }), retryKey({ state: "REVOKED" }));
  assert.notEqual(retryKey({ state: "STARTED" }), retryKey({ state: "STARTED", orphaned: true }));
});

const RETRYABLE = { retryable: true, reason: null, name: "app.add", args: [40, 2], kwargs: {}, queue: "maths" };

test("a retryable preflight is taken as it is; a refused one keeps its reason", () => {
  assert.deepEqual(readPreflight({ status: 200, body: RETRYABLE }), RETRYABLE);
  const refused = { retryable: false, reason: "a SUCCESS task is not retried: only failed, revoked, rejected or lost ones",
    name: "app.add", args: null, kwargs: null, queue: null };
  assert.deepEqual(readPreflight({ status: 200, body: refused }), refused);
  assert.equal(readPreflight({ status: 200, body: { retryable: false } }).reason, "the dashboard did not say why");
  assert.equal(readPreflight({ status: 200, body: { ...RETRYABLE, queue: "" } }).queue, null);
});

test("a preflight that could not be had or read is not retryable, with why", () => {
  assert.deepEqual(readPreflight({ networkError: "Failed to fetch" }),
    { retryable: false, reason: "could not ask the dashboard: Failed to fetch", name: null, args: null, kwargs: null, queue: null });
  assert.equal(readPreflight({ status: 404, body: { error: "unknown task: x" } }).reason, "could not ask the dashboard: unknown task: x");
  assert.equal(readPreflight({ status: 502, statusText: "Bad Gateway", body: null }).reason, "could not ask the dashboard: 502 Bad Gateway");
  for (const body of [null, [1], "yes", { ...RETRYABLE, args: null }, { ...RETRYABLE, args: "(1, 2)" },
    { ...RETRYABLE, kwargs: [] }, { ...RETRYABLE, name: null }, { ...RETRYABLE, kwargs: null }]) {
    const read = readPreflight({ status: 200, body });
    assert.equal(read.retryable, false, JSON.stringify(body));
    assert.equal(read.reason, "the dashboard's answer could not be read");
  }
  assert.equal(readPreflight().retryable, false);
});

test("the Retry button waits for the preflight, and says why when it cannot be pressed", () => {
  assert.deepEqual(retryButton(null), { disabled: true, note: "Checking whether it can be sent again…" });
  assert.deepEqual(retryButton(RETRYABLE), { disabled: false, note: "" });
  assert.deepEqual(retryButton({ retryable: false, reason: "its arguments are not known exactly: the args were cut by the worker (…)" }),
    { disabled: true, note: "Cannot retry: its arguments are not known exactly: the args were cut by the worker (…)." });
  assert.deepEqual(retryButton({ retryable: false, reason: "no online worker has app.add registered." }),
    { disabled: true, note: "Cannot retry: no online worker has app.add registered." });
  const hostile = { retryable: false, reason: "<img src=x onerror=alert(1)>" };
  assert.equal(retryButton(hostile).note, "Cannot retry: <img src=x onerror=alert(1)>."); // set as text
});

test("the retry dialog shows the name, the queue and the arguments as pretty JSON", () => {
  const shown = retryConfirmation(RETRYABLE, "abc-1");
  assert.equal(shown.title, "Retry this task?");
  assert.deepEqual(shown.facts, [["Task", "app.add"], ["Queue", "maths"], ["Retry of", "abc-1"]]);
  assert.equal(shown.args, "[\n  40,\n  2\n]");
  assert.equal(shown.kwargs, "{}");
  assert.equal(shown.confirm, "Send as a new task");
  assert.match(shown.text, /new task/);
  const defaults = retryConfirmation({ ...RETRYABLE, queue: null, kwargs: { to: "a@b", n: [1, { x: null }] } }, "abc-2");
  assert.deepEqual(defaults.facts[1], ["Queue", DEFAULT_QUEUE]);
  assert.equal(DEFAULT_QUEUE, "the default queue");
  assert.equal(defaults.kwargs, '{\n  "to": "a@b",\n  "n": [\n    1,\n    {\n      "x": null\n    }\n  ]\n}');
  assert.equal(prettyJson(["<b>", "ü"]), '[\n  "<b>",\n  "ü"\n]');
});

test("edited arguments: args a JSON array, kwargs a JSON object", () => {
  assert.deepEqual(parseRetryArguments("[20, 22]", "{}"), { ok: true, args: [20, 22], kwargs: {} });
  assert.deepEqual(parseRetryArguments(' \n["a", {"b": [1.5, true, null]}]\n', '{"x": "y"}'),
    { ok: true, args: ["a", { b: [1.5, true, null] }], kwargs: { x: "y" } });
  assert.deepEqual(parseRetryArguments("[]", "{}"), { ok: true, args: [], kwargs: {} });
});

test("edited arguments that are not JSON, or not the right kind, say why", () => {
  const error = (argsText, kwargsText) => {
    const parsed = parseRetryArguments(argsText, kwargsText);
    assert.equal(parsed.ok, false, `${argsText} / ${kwargsText}`);
    return [parsed.field, parsed.error];
  };
  assert.deepEqual(error("", "{}"), ["args", "Args: enter a JSON array, such as [] for none."]);
  assert.deepEqual(error("  ", "{}"), ["args", "Args: enter a JSON array, such as [] for none."]);
  assert.deepEqual(error("[]", ""), ["kwargs", "Kwargs: enter a JSON object, such as {} for none."]);
  const [field, message] = error("[20, 22", "{}");
  assert.equal(field, "args");
  assert.match(message, /^Args: not valid JSON \(.+\)\.$/);
  assert.match(error("[]", "{'a': 1}")[1], /^Kwargs: not valid JSON \(/);
  assert.match(error("(1, 2)", "{}")[1], /^Args: not valid JSON \(/); // a Python tuple is not JSON
  assert.deepEqual(error('{"x": 1}', "{}"), ["args", "Args: must be a JSON array, such as [] for none, not an object."]);
  assert.deepEqual(error("20", "{}"), ["args", "Args: must be a JSON array, such as [] for none, not a number."]);
  assert.deepEqual(error('"a"', "{}"), ["args", "Args: must be a JSON array, such as [] for none, not a string."]);
  assert.deepEqual(error("null", "{}"), ["args", "Args: must be a JSON array, such as [] for none, not null."]);
  assert.deepEqual(error("[]", "[1]"), ["kwargs", "Kwargs: must be a JSON object, such as {} for none, not an array."]);
  assert.deepEqual(error("[]", "true"), ["kwargs", "Kwargs: must be a JSON object, such as {} for none, not true."]);
  assert.deepEqual(error("[1, 2", "[1"), error("[1, 2", "{}")); // the args are read first
});

test("edited arguments a browser cannot send exactly are refused", () => {
  assert.deepEqual(parseRetryArguments("[1e999]", "{}"),
    { ok: false, field: "args", error: "Args: a number is too large for JSON." });
  assert.deepEqual(parseRetryArguments("[]", '{"n": 12345678901234567890}'), {
    ok: false, field: "kwargs",
    error: "Kwargs: the whole number 12345678901234567000 is beyond what a browser keeps exact (±9007199254740991).",
  });
  assert.equal(parseRetryArguments("[9007199254740991, -9007199254740991, 0.1]", "{}").ok, true);
  const nest = (depth) => "[".repeat(depth) + "]".repeat(depth);
  assert.equal(parseRetryArguments(nest(MAX_ARGUMENT_DEPTH + 1), "{}").ok, true); // the dashboard's own limit
  assert.deepEqual(parseRetryArguments(nest(MAX_ARGUMENT_DEPTH + 2), "{}"),
    { ok: false, field: "args", error: "Args: nested more than 32 levels deep." });
});

test("the retry body holds only the arguments that were edited", () => {
  const preflight = { ...RETRYABLE, args: [40, 2], kwargs: { a: 1, b: [1] } };
  assert.deepEqual(retryBody(preflight, "[\n  40,\n  2\n]", '{"a": 1, "b": [1]}'), { ok: true, body: {}, edited: false });
  assert.deepEqual(retryBody(preflight, "[40,2]", '{"b": [1], "a": 1}'), { ok: true, body: {}, edited: false });
  assert.deepEqual(retryBody(preflight, "[20, 22]", '{"a": 1, "b": [1]}'), { ok: true, body: { args: [20, 22] }, edited: true });
  assert.deepEqual(retryBody(preflight, "[40, 2]", "{}"), { ok: true, body: { kwargs: {} }, edited: true });
  assert.deepEqual(retryBody(preflight, '[40, "2"]', '{"a": 1.5, "b": [1]}'),
    { ok: true, body: { args: [40, "2"], kwargs: { a: 1.5, b: [1] } }, edited: true });
  assert.deepEqual(retryBody(preflight, "[40, 2", "{}"),
    { ok: false, field: "args", error: parseRetryArguments("[40, 2", "{}").error });
});

test("sameJson compares parsed JSON values", () => {
  assert.equal(sameJson([1, { a: [null, "x"] }], [1, { a: [null, "x"] }]), true);
  assert.equal(sameJson({ a: 1, b: 2 }, { b: 2, a: 1 }), true);
  assert.equal(sameJson([1], [1, 2]), false);
  assert.equal(sameJson({ a: 1 }, { a: 1, b: undefined }), false);
  assert.equal(sameJson([], {}), false);
  assert.equal(sameJson(null, {}), false);
  assert.equal(sameJson(1, "1"), false);
});

test("a sent retry links its new task; a refused or failed one says why", () => {
  const id = "9f1c2e3a-0000-4000-8000-000000000001";
  assert.deepEqual(retryOutcome({ status: 200, body: { ok: true, task_id: id, replies: [], error: null } }),
    { level: "ok", summary: "Sent as", lines: [], taskId: id });
  assert.deepEqual(retryOutcome({ status: 409, statusText: "CONFLICT", body: { error: "cannot retry: no online worker has app.add registered" } }),
    { level: "error", summary: "Retry refused.", lines: ["cannot retry: no online worker has app.add registered"], taskId: null });
  assert.deepEqual(retryOutcome({ status: 400, body: { error: "args: expected a JSON array, got dict" } }).lines,
    ["args: expected a JSON array, got dict"]);
  assert.deepEqual(retryOutcome({ status: 403, statusText: "FORBIDDEN", body: null }).lines, ["403 FORBIDDEN"]);
  assert.deepEqual(retryOutcome({ status: 200, body: { ok: false, task_id: null, error: "the broker did not take it: refused" } }),
    { level: "error", summary: "Retry failed.", lines: ["the broker did not take it: refused"], taskId: null });
  assert.equal(retryOutcome({ status: 200, body: { ok: true, task_id: null } }).level, "warning");
  assert.equal(retryOutcome({ status: 200, body: "x" }).level, "error");
  assert.deepEqual(retryOutcome({ networkError: "Failed to fetch" }),
    { level: "error", summary: "Retry not sent: could not reach the dashboard.", lines: ["Failed to fetch"], taskId: null });
});

test("the links to and from retries: ids only, each once, this page's retries after the known ones", () => {
  assert.deepEqual(retryLinks({ retry_of: null, retried_as: [] }), { from: null, as: [] });
  assert.deepEqual(retryLinks({}), { from: null, as: [] });
  assert.deepEqual(retryLinks({ retry_of: "old", retried_as: ["a", "b"] }, ["b", "c"]), { from: "old", as: ["a", "b", "c"] });
  assert.deepEqual(retryLinks({ retry_of: "", retried_as: "a" }, ["c", null, 5, ""]), { from: null, as: ["c"] });
  assert.deepEqual(retryLinks(null, ["c"]), { from: null, as: ["c"] });
});
