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

test("each worker's reply is a line", () => {
  const body = { ok: true, error: null, replies: [{ "a@h": { ok: "tasks {'x'} flagged as revoked" } }, { "b@h": { error: "nope" } }] };
  assert.deepEqual(outcome("revoke", "TERM", { status: 200, body }), {
    level: "ok", summary: "Revoke sent; 2 workers replied:",
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
