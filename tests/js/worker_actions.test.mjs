// Tests of worker control and queue purge, DOM-free parts: the bodies from what was typed (and why
// nothing is sent), the dialogs' words, and the answers as lines.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  MAX_POOL_STEP, changeSeen, describeAction, processCount, enableEventsOutcome, isDestructive, purgeConfirmation, purgeOutcome, refreshesAfter, someWorkerAgreed,
  workerActionBody, workerActionLabel, workerConfirmation, workerOutcome, WORKER_ACTIONS,
} from "../../static/js/helpers/worker_actions.js";
import { answerOutcome, outcome } from "../../static/js/helpers/task_actions.js";

const ok = (body) => ({ ok: true, body });

test("every action the dashboard has is offered, the destructive ones ask first", () => {
  assert.deepEqual(Object.keys(WORKER_ACTIONS).sort(), [
    "add-consumer", "autoscale", "cancel-consumer", "enable-events", "ping", "pool-grow", "pool-restart",
    "pool-shrink", "rate-limit", "shutdown", "time-limit",
  ]);
  assert.deepEqual(Object.keys(WORKER_ACTIONS).filter(isDestructive).sort(), ["pool-restart", "shutdown"]);
  assert.deepEqual(Object.keys(WORKER_ACTIONS).filter(refreshesAfter).sort(), [
    "add-consumer", "autoscale", "cancel-consumer", "pool-grow", "pool-restart", "pool-shrink",
  ]);
  assert.equal(workerActionLabel("ping"), "Ping");
  assert.equal(workerActionLabel("explode"), "explode");
  assert.equal(isDestructive("explode"), false);
});

test("actions without arguments send an empty object", () => {
  for (const action of ["ping", "enable-events", "pool-restart", "shutdown"]) {
    assert.deepEqual(workerActionBody(action, { n: "x", queue: "" }), ok({}), action);
  }
  assert.deepEqual(workerActionBody("explode"), { ok: false, error: "Unknown action: explode." });
});

test("pool grow and shrink take a whole number of processes from 1 to 256", () => {
  assert.deepEqual(workerActionBody("pool-grow", { n: "1" }), ok({ n: 1 }));
  assert.deepEqual(workerActionBody("pool-shrink", { n: " 3 " }), ok({ n: 3 }));
  assert.deepEqual(workerActionBody("pool-grow", { n: String(MAX_POOL_STEP) }), ok({ n: 256 }));
  for (const n of ["", "0", "257", "1.5", "-1", "two", "?", undefined, null, "1e2"]) {
    assert.deepEqual(workerActionBody("pool-grow", { n }),
      { ok: false, error: "Processes: enter a whole number from 1 to 256." }, String(n));
  }
});

test("autoscale takes a max and a min no larger, the min 0 when left empty", () => {
  assert.deepEqual(workerActionBody("autoscale", { max: "8", min: "2" }), ok({ max: 8, min: 2 }));
  assert.deepEqual(workerActionBody("autoscale", { max: "8", min: "" }), ok({ max: 8, min: 0 }));
  assert.deepEqual(workerActionBody("autoscale", { max: "4", min: "4" }), ok({ max: 4, min: 4 }));
  assert.equal(workerActionBody("autoscale", { max: "", min: "1" }).error, "Max: enter a whole number from 1 to 256.");
  assert.equal(workerActionBody("autoscale", { max: "0" }).error, "Max: enter a whole number from 1 to 256.");
  assert.equal(workerActionBody("autoscale", { max: "4", min: "9" }).error, "Min: enter a whole number from 0 to max (4).");
  assert.equal(workerActionBody("autoscale", { max: "4", min: "-1" }).error, "Min: enter a whole number from 0 to max (4).");
});

test("consumers take a queue name, trimmed, of 1 to 255 characters", () => {
  assert.deepEqual(workerActionBody("add-consumer", { queue: " reports " }), ok({ queue: "reports" }));
  assert.deepEqual(workerActionBody("cancel-consumer", { queue: "a<b>&c" }), ok({ queue: "a<b>&c" }));
  for (const queue of ["", "   ", "x".repeat(256), "a\0b", undefined]) {
    assert.deepEqual(workerActionBody("add-consumer", { queue }),
      { ok: false, error: "Queue: enter a queue name (1 to 255 characters)." });
  }
});

test("a rate limit takes a task type and tasks per second, minute or hour", () => {
  for (const rate of ["10/m", "0.5/s", "100", "0", "3/h"]) {
    assert.deepEqual(workerActionBody("rate-limit", { task: "tasks.add", rate }), ok({ task: "tasks.add", rate }), rate);
  }
  assert.deepEqual(workerActionBody("rate-limit", { task: "tasks.add", rate: " 10/m " }), ok({ task: "tasks.add", rate: "10/m" }));
  assert.equal(workerActionBody("rate-limit", { task: "", rate: "10/m" }).error, "Task: choose a task type.");
  for (const rate of ["", "fast", "10/d", "/m", "-1", "1e3"]) {
    assert.match(workerActionBody("rate-limit", { task: "tasks.add", rate }).error, /^Rate: enter tasks per second/, rate);
  }
});

test("time limits take a task type and seconds, each empty for none, soft no longer than hard", () => {
  assert.deepEqual(workerActionBody("time-limit", { task: "t", soft: "10", hard: "20" }), ok({ task: "t", soft: 10, hard: 20 }));
  assert.deepEqual(workerActionBody("time-limit", { task: "t", soft: "1.5", hard: "" }), ok({ task: "t", soft: 1.5, hard: null }));
  assert.deepEqual(workerActionBody("time-limit", { task: "t", soft: "", hard: "" }), ok({ task: "t", soft: null, hard: null }));
  assert.deepEqual(workerActionBody("time-limit", { task: "t", soft: "5", hard: "5" }), ok({ task: "t", soft: 5, hard: 5 }));
  assert.equal(workerActionBody("time-limit", { soft: "1" }).error, "Task: choose a task type.");
  assert.match(workerActionBody("time-limit", { task: "t", soft: "0" }).error, /^Soft limit: enter seconds above 0/);
  assert.match(workerActionBody("time-limit", { task: "t", soft: "?" }).error, /^Soft limit: enter/);
  assert.match(workerActionBody("time-limit", { task: "t", hard: String(7 * 86400 + 1) }).error, /^Hard limit: enter/);
  assert.equal(workerActionBody("time-limit", { task: "t", soft: "30", hard: "10" }).error,
    "Soft limit: must not be longer than the hard limit (10 s).");
});

test("an action is described with what it asks", () => {
  assert.equal(describeAction("pool-grow", { n: 2 }), "Grow pool by 2");
  assert.equal(describeAction("pool-shrink", {}), "Shrink pool");
  assert.equal(describeAction("autoscale", { max: 8, min: 0 }), "Autoscale (max 8, min 0)");
  assert.equal(describeAction("add-consumer", { queue: "q1" }), "Add consumer (q1)");
  assert.equal(describeAction("cancel-consumer", { queue: "q1" }), "Cancel consumer (q1)");
  assert.equal(describeAction("rate-limit", { task: "t", rate: "10/m" }), "Rate limit (t, 10/m)");
  assert.equal(describeAction("time-limit", { task: "t", soft: 10, hard: null }), "Time limits (t, soft 10 s, hard none)");
  assert.equal(describeAction("shutdown"), "Shutdown");
});

test("the confirmation of shutdown and pool restart names the worker", () => {
  const shutdown = workerConfirmation("shutdown", "<b>w</b>@host");
  assert.equal(shutdown.title, "Shut down this worker?");
  assert.deepEqual(shutdown.facts, [["Worker", "<b>w</b>@host"]]);
  assert.equal(shutdown.confirm, "Shut down");
  const restart = workerConfirmation("pool-restart", "w@host");
  assert.equal(restart.title, "Restart this worker's pool?");
  assert.equal(restart.confirm, "Restart pool");
  assert.match(restart.text, /worker_pool_restarts/);
  assert.deepEqual(workerConfirmation("shutdown", "").facts, [["Worker", "unknown"]]);
});

test("a worker's reply is a line; its silence a warning, except after a shutdown", () => {
  const pong = workerOutcome("ping", { status: 200, body: { ok: true, error: null, replies: [{ "w@h": { ok: "pong" } }] } });
  assert.deepEqual(pong, { level: "ok", summary: "Ping sent; 1 worker replied:", lines: ["w@h: pong"] });
  const grown = workerOutcome("pool-grow", { status: 200, body: { ok: true, error: null, replies: [{ "w@h": { ok: "pool will grow" } }] } }, { n: 1 });
  assert.equal(grown.summary, "Grow pool by 1 sent; 1 worker replied:");
  const refused = workerOutcome("autoscale", { status: 200, body: { ok: true, error: null, replies: [{ "w@h": { error: "Autoscale not enabled" } }] } }, { max: 2, min: 0 });
  assert.deepEqual(refused, { level: "error", summary: "Autoscale (max 2, min 0) sent; refused:", lines: ["w@h: error: Autoscale not enabled"] });
  const withItsError = { ok: true, error: "w@h: unknown task", replies: [{ "w@h": { error: "unknown task" } }] };
  assert.deepEqual(workerOutcome("ping", { status: 200, body: withItsError }).lines, ["w@h: error: unknown task"]);  // once
  const some = answerOutcome("Revoke", { status: 200, body: { ok: true, error: "b@h: no", replies: [{ "a@h": { ok: "done" } }, { "b@h": { error: "no" } }] } });
  assert.deepEqual(some, { level: "warning", summary: "Revoke sent; 2 workers replied, 1 refused:", lines: ["a@h: done", "b@h: error: no"] });
  const silent = { status: 200, body: { ok: true, replies: [], error: "w@h did not reply within 1 s" } };
  assert.deepEqual(workerOutcome("ping", silent), { level: "warning", summary: "Ping sent, but no worker replied.", lines: ["w@h did not reply within 1 s"] });
  const gone = workerOutcome("shutdown", { status: 200, body: { ok: true, replies: [], error: null } });
  assert.equal(gone.level, "ok");
  assert.equal(gone.summary, "Shutdown sent; no reply (it may have gone before answering).");
  assert.equal(workerOutcome("shutdown", { status: 200, body: { ok: false, replies: [], error: "down" } }).level, "error");
});

test("a refused or unsent worker action is an error with its reason", () => {
  assert.deepEqual(workerOutcome("pool-grow", { status: 400, statusText: "BAD REQUEST", body: { error: "n: expected a whole number" } }, { n: 1 }),
    { level: "error", summary: "Grow pool by 1 refused.", lines: ["n: expected a whole number"] });
  assert.deepEqual(workerOutcome("ping", { status: 403, body: { error: "actions are off" } }).lines, ["actions are off"]);
  assert.deepEqual(workerOutcome("ping", { networkError: "Failed to fetch" }),
    { level: "error", summary: "Ping not sent: could not reach the dashboard.", lines: ["Failed to fetch"] });
});

test("the task actions' outcome is the general one under its name", () => {
  const answer = { status: 200, body: { ok: true, replies: [{ a: { ok: "x" } }], error: null } };
  assert.deepEqual(outcome("terminate", "KILL", answer), answerOutcome("Terminate (SIGKILL)", answer));
});

test("enabling task events on every online worker says who replied", () => {
  const replied = (hostname) => ({ status: 200, body: { ok: true, error: null, replies: [{ [hostname]: { ok: "task events enabled" } }] } });
  assert.deepEqual(enableEventsOutcome([{ hostname: "a@h", answer: replied("a@h") }, { hostname: "b@h", answer: replied("b@h") }]), {
    level: "ok", summary: "Enable task events sent to 2 workers; 2 replied:",
    lines: ["a@h: task events enabled", "b@h: task events enabled"],
  });
  const mixed = enableEventsOutcome([
    { hostname: "a@h", answer: replied("a@h") },
    { hostname: "b@h", answer: { status: 200, body: { ok: true, replies: [], error: "b@h did not reply within 1 s" } } },
  ]);
  assert.equal(mixed.level, "warning");
  assert.deepEqual(mixed.lines, ["a@h: task events enabled",
    "b@h: Enable task events sent, but no worker replied. b@h did not reply within 1 s"]);
  const none = enableEventsOutcome([{ hostname: "a@h", answer: { status: 403, body: { error: "actions are off" } } }]);
  assert.deepEqual(none, { level: "error", summary: "Enable task events sent to 1 worker; 0 replied:",
    lines: ["a@h: Enable task events refused. actions are off"] });
  assert.deepEqual(enableEventsOutcome([]), { level: "warning", summary: "No worker is online.", lines: [] });
});

test("the purge confirmation names the queue and how many messages wait in it", () => {
  const five = purgeConfirmation("<i>q</i>", 5);
  assert.equal(five.title, "Remove all 5 messages waiting in <i>q</i>?");
  assert.deepEqual(five.facts, [["Queue", "<i>q</i>"], ["Waiting", "5 messages"]]);
  assert.equal(five.confirm, "Purge");
  assert.equal(purgeConfirmation("q", 1).title, "Remove the 1 message waiting in q?");
  assert.equal(purgeConfirmation("q", 0).title, "Remove all 0 messages waiting in q?");
  const unknown = purgeConfirmation("q", null);
  assert.equal(unknown.title, "Remove all messages waiting in q?");
  assert.deepEqual(unknown.facts, [["Queue", "q"], ["Waiting", "unknown"]]);
  assert.equal(purgeConfirmation("q", Number.NaN).title, "Remove all messages waiting in q?");
});

test("the purge answer says how many messages went, or why none did", () => {
  assert.deepEqual(purgeOutcome({ status: 200, body: { ok: true, purged: 5, error: null } }),
    { level: "ok", summary: "Removed 5 messages", lines: [] });
  assert.equal(purgeOutcome({ status: 200, body: { ok: true, purged: 1, error: null } }).summary, "Removed 1 message");
  assert.equal(purgeOutcome({ status: 200, body: { ok: true, purged: null, error: null } }).summary,
    "Purged; the broker did not say how many messages it removed.");
  assert.deepEqual(purgeOutcome({ status: 200, body: { ok: false, purged: null, error: "the broker did not take the request: x" } }),
    { level: "error", summary: "Purge failed.", lines: ["the broker did not take the request: x"] });
  assert.deepEqual(purgeOutcome({ status: 404, body: { error: "unknown queue: q" } }),
    { level: "error", summary: "Purge refused.", lines: ["unknown queue: q"] });
  assert.deepEqual(purgeOutcome({ status: 502, statusText: "Bad Gateway", body: null }).lines, ["502 Bad Gateway"]);
  assert.equal(purgeOutcome({ status: 200, body: "ok" }).level, "error");
  assert.deepEqual(purgeOutcome({ networkError: "Failed to fetch" }),
    { level: "error", summary: "Purge not sent: could not reach the dashboard.", lines: ["Failed to fetch"] });
});

test("the pool processes shown are counted from their text", () => {
  assert.equal(processCount("4121"), 1);
  assert.equal(processCount("4121, 4122, 4130"), 3);
  assert.equal(processCount(" 4121, 4122 "), 2);
  for (const text of ["—", "", null, undefined, "a, b", "4121,"]) assert.equal(processCount(text), null, String(text));
});

test("the page inspects again until the change an action makes shows", () => {
  const before = { processes: 1, queues: ["q"] };
  assert.equal(changeSeen("pool-grow", { n: 1 }, before, { processes: 1, queues: ["q"] }), false);
  assert.equal(changeSeen("pool-grow", { n: 1 }, before, { processes: 2, queues: ["q"] }), true);
  assert.equal(changeSeen("pool-shrink", { n: 1 }, { processes: 2 }, { processes: 2 }), false);
  assert.equal(changeSeen("pool-shrink", { n: 1 }, { processes: 2 }, { processes: 1 }), true);
  assert.equal(changeSeen("pool-grow", { n: 1 }, { processes: null }, { processes: 1 }), true); // nothing to compare
  assert.equal(changeSeen("add-consumer", { queue: "new" }, before, { queues: ["q"] }), false);
  assert.equal(changeSeen("add-consumer", { queue: "new" }, before, { queues: ["q", "new"] }), true);
  assert.equal(changeSeen("cancel-consumer", { queue: "q" }, before, { queues: ["q"] }), false);
  assert.equal(changeSeen("cancel-consumer", { queue: "q" }, before, { queues: [] }), true);
  assert.equal(changeSeen("autoscale", { max: 2, min: 0 }, before, before), true);
  assert.equal(changeSeen("pool-restart", {}, before, before), true);
});

test("the page inspects again only when a worker said it did what was asked", () => {
  assert.equal(someWorkerAgreed({ ok: true, replies: [{ "w@h": { ok: "pool will grow" } }] }), true);
  assert.equal(someWorkerAgreed({ ok: true, replies: [{ "w@h": { error: "Autoscale not enabled" } }] }), false);
  assert.equal(someWorkerAgreed({ ok: true, replies: [], error: "w@h did not reply within 1 s" }), false);
  assert.equal(someWorkerAgreed({ ok: true, replies: ["odd", null, { "w@h": "text" }] }), false);
  assert.equal(someWorkerAgreed(null), false);
});

import { PURGE_ADMIN_NEEDED, WORKER_ADMIN_NEEDED, queueControls, workerControls } from "../../static/js/helpers/worker_actions.js";
import { ACTIONS_OFF } from "../../static/js/helpers/task_actions.js";

test("an operator sees ping and task events, with one line on what needs an admin", () => {
  assert.deepEqual(workerControls(true, false), { actions: ["ping", "enable-events"], note: WORKER_ADMIN_NEEDED });
  assert.equal(WORKER_ADMIN_NEEDED, "Pool, consumers, limits, restart and shutdown need the admin role.");
  assert.deepEqual(workerControls(true, undefined).actions, ["ping", "enable-events"]);
  assert.deepEqual(workerControls(true, "true").actions, ["ping", "enable-events"]);
});

test("an admin sees every worker control; with actions off, none", () => {
  assert.deepEqual(workerControls(true, true), { actions: Object.keys(WORKER_ACTIONS), note: null });
  for (const [enabled, admin] of [[false, false], [false, true], [undefined, true], ["true", true]]) {
    assert.deepEqual(workerControls(enabled, admin), { actions: [], note: ACTIONS_OFF }, `${enabled} ${admin}`);
  }
});

test("the roles of the worker actions are the dashboard's", () => {
  const admin = Object.keys(WORKER_ACTIONS).filter((action) => WORKER_ACTIONS[action].admin === true).sort();
  assert.deepEqual(admin, ["add-consumer", "autoscale", "cancel-consumer", "pool-grow", "pool-restart", "pool-shrink",
    "rate-limit", "shutdown", "time-limit"]);
});

test("purge is for admins; an operator is told so", () => {
  assert.deepEqual(queueControls(true, true), { purge: true, note: null });
  assert.deepEqual(queueControls(true, false), { purge: false, note: PURGE_ADMIN_NEEDED });
  assert.equal(PURGE_ADMIN_NEEDED, "Purge needs the admin role.");
  assert.deepEqual(queueControls(false, true), { purge: false, note: ACTIONS_OFF });
  assert.deepEqual(queueControls(false, false), { purge: false, note: ACTIONS_OFF });
});
