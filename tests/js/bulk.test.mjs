// The tasks page's bulk actions: the request bodies from the filters, the dry run read back, the
// dialog's text and the outcome of the real run.

import { test } from "node:test";
import assert from "node:assert/strict";

import {
  bulkConfirmation, bulkControls, bulkFilter, bulkOutcome, confirmBody, dryRunBody, hasBulkFilter, MAX_LISTED_TASKS,
  NO_FILTER_NOTE, nothingOutcome, readDryRun, skipReasons,
} from "../../static/js/helpers/bulk_actions.js";
import { emptyFilters, parseFilters } from "../../static/js/helpers/task_filters.js";

test("bulkFilter keeps only what narrows the match", () => {
  assert.deepEqual(bulkFilter(emptyFilters()), {});
  assert.deepEqual(bulkFilter(parseFilters("?sort=name&time=started")), {}, "sort and a bare time are no filter");
  assert.deepEqual(bulkFilter(parseFilters("?state=REVOKED,FAILURE&q=marker&name=app.*&worker=w%40h&queue=q1")),
    { state: ["FAILURE", "REVOKED"], name: "app.*", worker: "w@h", queue: "q1", q: "marker" });
  assert.deepEqual(bulkFilter(parseFilters("?since=100&time=finished")), { since: 100, time: "finished" });
  assert.deepEqual(bulkFilter(parseFilters("?until=200")), { until: 200, time: "received" });
  assert.deepEqual(bulkFilter(null), {});
  assert.deepEqual(bulkFilter({ ...emptyFilters(), q: "   " }), {});
});

test("the buttons need a filter", () => {
  assert.equal(hasBulkFilter(emptyFilters()), false);
  assert.deepEqual(bulkControls(emptyFilters()), { disabled: true, note: NO_FILTER_NOTE });
  assert.equal(NO_FILTER_NOTE, "Set a filter first");
  assert.deepEqual(bulkControls(parseFilters("?q=x")), { disabled: false, note: "" });
});

test("request bodies: the dry run, then the real run with the dry run's filter and count", () => {
  const filters = parseFilters("?q=bulk-page-marker&state=REVOKED");
  const dry = dryRunBody("retry", filters);
  assert.deepEqual(dry, { action: "retry", filter: { state: ["REVOKED"], q: "bulk-page-marker" }, dry_run: true });
  assert.deepEqual(confirmBody("retry", dry.filter, 3),
    { action: "retry", filter: { state: ["REVOKED"], q: "bulk-page-marker" }, dry_run: false, confirm_count: 3 });
});

const dryAnswer = (body, status = 200) => ({ status, statusText: status === 200 ? "OK" : "Bad Request", body });

test("readDryRun reads the count, the tasks and the skips", () => {
  const read = readDryRun("revoke", dryAnswer({
    ok: true, dry_run: true, action: "revoke", count: 2,
    tasks: [{ uuid: "a", name: "app.x", state: "PENDING" }, { uuid: "b", name: null, state: "RECEIVED" }, "junk"],
    skipped: [{ uuid: "c", reason: "already SUCCESS" }, { uuid: "d" }], skipped_count: 5, error: null,
  }));
  assert.deepEqual(read, {
    ok: true, count: 2,
    tasks: [{ uuid: "a", name: "app.x", state: "PENDING" }, { uuid: "b", name: null, state: "RECEIVED" }],
    skipped: [{ uuid: "c", reason: "already SUCCESS" }, { uuid: "d", reason: "no reason given" }], skippedCount: 5,
  });
});

test("readDryRun: refusals, network errors and unreadable answers", () => {
  assert.deepEqual(readDryRun("revoke", dryAnswer({ error: "the filter matches 2,000 tasks, more than --bulk-limit 1,000: narrow it" }, 400)),
    { ok: false, outcome: { level: "error", summary: "Revoke refused.", lines: ["the filter matches 2,000 tasks, more than --bulk-limit 1,000: narrow it"] } });
  assert.deepEqual(readDryRun("retry", { status: 403, statusText: "FORBIDDEN", body: null }).outcome.lines, ["403 FORBIDDEN"]);
  assert.deepEqual(readDryRun("retry", { networkError: "Failed to fetch" }),
    { ok: false, outcome: { level: "error", summary: "Retry not counted: could not reach the dashboard.", lines: ["Failed to fetch"] } });
  assert.equal(readDryRun("retry", dryAnswer({ ok: true })).ok, false);
  assert.equal(readDryRun("retry", dryAnswer([1])).ok, false);
});

test("skipReasons counts distinct reasons, most first, a few at most", () => {
  const skipped = [
    { uuid: "1", reason: "already SUCCESS" }, { uuid: "2", reason: "already FAILURE" }, { uuid: "3", reason: "already SUCCESS" },
    { uuid: "4", reason: "r3" }, { uuid: "5", reason: "r4" },
  ];
  assert.deepEqual(skipReasons(skipped), ["already SUCCESS (2)", "already FAILURE (1)", "r3 (1)"]);
  assert.deepEqual(skipReasons([]), []);
});

test("the dialog names the count, lists the tasks and the skips", () => {
  const dry = {
    ok: true, count: 3,
    tasks: [{ uuid: "u1", name: "app.echo" }, { uuid: "u2", name: null }, { uuid: "u3", name: "<b>x</b>" }],
    skipped: [{ uuid: "u4", reason: "already SUCCESS" }], skippedCount: 1,
  };
  const question = bulkConfirmation("revoke", dry);
  assert.equal(question.title, "Revoke 3 tasks?");
  assert.equal(question.confirm, "Revoke 3 tasks");
  assert.deepEqual(question.facts, [
    ["app.echo", "u1"], ["unknown task", "u2"], ["<b>x</b>", "u3"], ["Skipped", "1: already SUCCESS (1)"],
  ]);
  assert.match(question.text, /discard/);

  const one = bulkConfirmation("retry", { count: 1, tasks: [{ uuid: "u1", name: "app.echo" }], skipped: [], skippedCount: 0 });
  assert.equal(one.title, "Retry 1 task?");
  assert.equal(one.confirm, "Retry 1 task");
  assert.deepEqual(one.facts, [["app.echo", "u1"]]);
  assert.match(one.text, /new task/);
});

test("the dialog lists the first tasks and counts the rest", () => {
  const tasks = Array.from({ length: 100 }, (_, i) => ({ uuid: `u${i}`, name: "app.t" }));
  const question = bulkConfirmation("revoke", { count: 250, tasks, skipped: [], skippedCount: 0 });
  assert.equal(question.facts.length, MAX_LISTED_TASKS + 1);
  assert.deepEqual(question.facts.at(-1), ["More", `and ${250 - MAX_LISTED_TASKS} more tasks`]);
});

test("nothing to act on", () => {
  assert.deepEqual(nothingOutcome("revoke", { count: 0, tasks: [], skipped: [], skippedCount: 0 }),
    { level: "warning", summary: "Nothing to revoke.", lines: [] });
  assert.deepEqual(nothingOutcome("retry", { count: 0, tasks: [], skipped: [{ uuid: "a", reason: "not retryable" }], skippedCount: 4 }),
    { level: "warning", summary: "Nothing to retry.", lines: ["4 tasks skipped: not retryable (1)"] });
});

test("the outcome of a revoke", () => {
  const ok = bulkOutcome("revoke", {
    status: 200, body: { ok: true, dry_run: false, action: "revoke", count: 3,
      replies: [{ "bulker@test": { ok: "tasks a, b, c flagged as revoked" } }], task_ids: [], error: null },
  });
  assert.deepEqual(ok, { level: "ok", summary: "3 revoked; 1 worker replied", lines: ["bulker@test: tasks a, b, c flagged as revoked"] });
  const quiet = bulkOutcome("revoke", { status: 200, body: { ok: true, count: 2, replies: [], error: null } });
  assert.deepEqual(quiet, { level: "warning", summary: "2 revoked; no worker replied", lines: [] });
  const failed = bulkOutcome("revoke", { status: 200, body: { ok: false, count: 2, replies: [], error: "broker down" } });
  assert.deepEqual(failed, { level: "error", summary: "Revoke failed.", lines: ["broker down"] });
});

test("the outcome of a retry", () => {
  const ok = bulkOutcome("retry", { status: 200, body: { ok: true, count: 3, replies: [], task_ids: ["n1", "n2", "n3"], error: null } });
  assert.deepEqual(ok, { level: "ok", summary: "3 sent again as new tasks", lines: ["n1", "n2", "n3"] });
  const one = bulkOutcome("retry", { status: 200, body: { ok: true, count: 1, task_ids: ["n1"] } });
  assert.equal(one.summary, "1 sent again as new task");
  const part = bulkOutcome("retry", { status: 200, body: { ok: false, count: 3, task_ids: ["n1"], error: "no route" } });
  assert.deepEqual(part, { level: "warning", summary: "1 of 3 sent again as new tasks", lines: ["n1", "no route"] });
});

test("the outcome of a refused real run", () => {
  const changed = bulkOutcome("revoke", { status: 409, statusText: "CONFLICT", body: { ok: false, error: "confirm_count: the filter matches 4 tasks" } });
  assert.equal(changed.level, "error");
  assert.match(changed.summary, /changed/);
  assert.match(changed.summary, /Revoke matching…/);
  assert.deepEqual(changed.lines, ["confirm_count: the filter matches 4 tasks"]);
  assert.deepEqual(bulkOutcome("retry", { status: 403, statusText: "FORBIDDEN", body: { error: "actions are off" } }),
    { level: "error", summary: "Retry refused.", lines: ["actions are off"] });
  assert.deepEqual(bulkOutcome("retry", { networkError: "offline" }),
    { level: "error", summary: "Retry not sent: could not reach the dashboard.", lines: ["offline"] });
  assert.equal(bulkOutcome("retry", { status: 200, body: "x" }).level, "error");
});
