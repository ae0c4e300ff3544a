// Tests of the tasks page's and task page's DOM-free helpers: filters <-> URL <-> API, live matching,
// datetime-local conversion, timeline steps and attempts, and the task family tree.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  apiUrl, DEFAULT_SORT, emptyFilters, filterTime, filtersQuery, fromLocalInput, isNewestFirst, parseFilters,
  receivedSortTime, sameFilters, taskMatches, toLocalInput, totalText,
} from "../../static/js/helpers/task_filters.js";
import { attempts, retryAttempts, stepDurations, withDeltas } from "../../static/js/helpers/task_timeline.js";
import { childrenKey, MAX_TREE_NODES, treeOf, treeRootId, walkTree } from "../../static/js/helpers/task_tree.js";

const task = (fields) => ({
  uuid: "4a3f9c2e-1111-2222-3333-444455556666", name: "app.tasks.charge", state: "SUCCESS", worker: "w1@host",
  queue: "celery", args: "('cus_000123', 42)", kwargs: "{'currency': 'EUR'}", result: null, exception: null,
  sent: 100, received: 101, started: 102, succeeded: 103, failed: null, revoked: null, rejected: null, timestamp: 103,
  ...fields,
});

test("filters round-trip through the query string, defaults left out", () => {
  assert.equal(filtersQuery(emptyFilters()), "");
  const filters = parseFilters("?state=failure,SUCCESS,failure&name=app.tasks.charge&q=%20cus_1%20&since=100.5&time=started&sort=-runtime&junk=1");
  assert.deepEqual(filters.state, ["SUCCESS", "FAILURE"]);
  assert.equal(filters.name, "app.tasks.charge");
  assert.equal(filters.q, "cus_1");
  assert.equal(filters.since, 100.5);
  assert.equal(filters.until, null);
  assert.equal(filters.time, "started");
  assert.equal(filters.sort, "-runtime");
  assert.equal(filtersQuery(filters), "?state=SUCCESS%2CFAILURE&name=app.tasks.charge&q=cus_1&since=100.5&time=started&sort=-runtime");
  assert.ok(sameFilters(filters, parseFilters(filtersQuery(filters))));
  assert.ok(!sameFilters(filters, emptyFilters()));
  // "-received" is the default; "received" (a bare key) is ascending: oldest first.
  assert.equal(parseFilters("?sort=-received").sort, DEFAULT_SORT);
  assert.equal(filtersQuery(parseFilters("?sort=-received")), "");
  assert.equal(filtersQuery(parseFilters("?sort=received")), "?sort=received");
  assert.ok(isNewestFirst(parseFilters("")));
  assert.ok(!isNewestFirst(parseFilters("?sort=received")));
  assert.equal(parseFilters("?since=abc").since, null);
});

test("the API URL carries the filters, the page size and the cursor", () => {
  const filters = parseFilters("?worker=w1%40host&queue=celery");
  assert.equal(apiUrl(filters, { limit: 50 }), "/api/tasks?worker=w1%40host&queue=celery&limit=50");
  assert.equal(apiUrl(filters, { limit: 50, cursor: "abc=" }), "/api/tasks?worker=w1%40host&queue=celery&limit=50&cursor=abc%3D");
});

test("live matching: exact fields, states and times", () => {
  const t = task();
  assert.ok(taskMatches(t, emptyFilters()));
  assert.ok(taskMatches(t, parseFilters("?state=SUCCESS,FAILURE&name=app.tasks.charge&worker=w1%40host&queue=celery")));
  assert.ok(!taskMatches(t, parseFilters("?state=FAILURE")));
  assert.ok(!taskMatches(t, parseFilters("?name=app.tasks")));
  assert.ok(!taskMatches(task({ queue: null }), parseFilters("?queue=celery")));
  assert.ok(taskMatches(t, parseFilters("?since=101&until=101")));
  assert.ok(!taskMatches(t, parseFilters("?since=101.5")));
  assert.ok(taskMatches(t, parseFilters("?since=102&time=started")));
  assert.ok(taskMatches(t, parseFilters("?until=103&time=finished")));
  assert.ok(!taskMatches(task({ succeeded: null }), parseFilters("?since=0&time=finished")));
  // A task not received yet is placed (and bounded) by when it was sent, like the API.
  assert.equal(receivedSortTime(task({ received: null })), 100);
  assert.equal(filterTime(task({ succeeded: null, failed: 110 }), "finished"), 110);
  assert.equal(task({ state: undefined }).state, undefined);
  assert.ok(taskMatches(task({ state: undefined }), parseFilters("?state=PENDING")));
});

test("live matching: free text is approximate: substrings of the payloads, or a uuid prefix", () => {
  const t = task({ exception: "CardDeclined('insufficient funds')" });
  assert.ok(taskMatches(t, parseFilters("?q=CUS_000")));
  assert.ok(taskMatches(t, parseFilters("?q=charge%20eur")));
  assert.ok(taskMatches(t, parseFilters("?q=declined")));
  assert.ok(taskMatches(t, parseFilters("?q=4a3f9c")));
  assert.ok(!taskMatches(t, parseFilters("?q=9c2e")));
  assert.ok(!taskMatches(t, parseFilters("?q=charge%20usd")));
  assert.ok(taskMatches(task({ result: { total: 42 } }), parseFilters("?q=total")));
});

test("datetime-local values are local time, both ways", () => {
  assert.equal(fromLocalInput(""), null);
  assert.equal(fromLocalInput("not a date"), null);
  const seconds = fromLocalInput("2026-03-04T05:06");
  assert.equal(seconds, new Date(2026, 2, 4, 5, 6).getTime() / 1000);
  assert.equal(toLocalInput(seconds), "2026-03-04T05:06");
  assert.equal(toLocalInput(fromLocalInput("2026-03-04T05:06:07")), "2026-03-04T05:06:07");
  assert.equal(toLocalInput(null), "");
});

test("totals say about when estimated", () => {
  assert.equal(totalText(1, false), "1 task");
  assert.equal(totalText(0, false), "0 tasks");
  assert.equal(totalText(1200, true), "about 1200 tasks");
  assert.equal(totalText(null, false), "");
});

// The timeline of a task that was retried once and then succeeded, as the API returns it.
const RETRIED = [
  { type: "task-sent", timestamp: 10.0, hostname: "producer" },
  { type: "task-received", timestamp: 10.5, hostname: "w1" },
  { type: "task-started", timestamp: 10.75, hostname: "w1" },
  { type: "task-sent", timestamp: 11.0, hostname: "w1" },
  { type: "task-retried", timestamp: 11.25, hostname: "w1", exception: "Timeout()", traceback: "Traceback…" },
  { type: "task-received", timestamp: 12.0, hostname: "w2" },
  { type: "task-started", timestamp: 13.0, hostname: "w2" },
  { type: "task-succeeded", timestamp: 15.0, hostname: "w2", result: "ok", runtime: 2 },
];

test("each event gets the time since the previous one", () => {
  const rows = withDeltas([{ timestamp: 1 }, { timestamp: null }, { timestamp: 3.5 }]);
  assert.deepEqual(rows.map((r) => r.delta), [null, null, 2.5]);
});

test("a retried task has one attempt per task-received, each with its own sent time", () => {
  assert.deepEqual(attempts(RETRIED), [
    { sent: 10.0, received: 10.5, started: 10.75, ended: 11.25, endType: "task-retried", hostname: "w1" },
    { sent: 11.0, received: 12.0, started: 13.0, ended: 15.0, endType: "task-succeeded", hostname: "w2" },
  ]);
  assert.deepEqual(retryAttempts(RETRIED), [
    { number: 1, timestamp: 11.25, hostname: "w1", exception: "Timeout()", traceback: "Traceback…" },
  ]);
});

test("step durations are the latest attempt's; running steps count up to now", () => {
  const done = stepDurations(RETRIED, 100);
  assert.equal(done.queueWait, 1.0);
  assert.equal(done.toStart, 1.0);
  assert.equal(done.runtime, 2.0);
  assert.equal(done.total, 5.0);
  assert.equal(done.attempt, 2);
  assert.deepEqual(done.running, { queueWait: false, toStart: false, runtime: false, total: false });

  const running = stepDurations(RETRIED.slice(0, 3), 20);
  assert.equal(running.queueWait, 0.5);
  assert.equal(running.runtime, 20 - 10.75);
  assert.ok(running.running.runtime && running.running.total);

  const waiting = stepDurations([{ type: "task-sent", timestamp: 10 }], 12);
  assert.equal(waiting.queueWait, 2);
  assert.ok(waiting.running.queueWait);
  assert.equal(waiting.toStart, null);

  // Revoked while waiting: nothing runs on, and no step is invented.
  const revoked = stepDurations([{ type: "task-sent", timestamp: 10 }, { type: "task-revoked", timestamp: 11 }], 50);
  assert.equal(revoked.runtime, null);
  assert.equal(revoked.total, 1);
  assert.ok(!revoked.running.total);
  assert.equal(stepDurations([], 5).total, null);
});

function fakeFamily(tasks) {
  const byId = new Map(tasks.map((t) => [t.uuid, t]));
  const fetched = [];
  const fetchTask = async (uuid) => { fetched.push(uuid); return byId.get(uuid) ?? null; };
  return { fetchTask, fetched };
}

test("the family tree is walked breadth-first from the root, cutting self-loops and cycles", async () => {
  const { fetchTask, fetched } = fakeFamily([
    { uuid: "root", state: "SUCCESS", children: ["a", "b", "root"] },
    { uuid: "a", state: "SUCCESS", children: ["c"] },
    { uuid: "b", state: "FAILURE", children: ["a"] },
    { uuid: "c", state: "STARTED", children: ["root"] },
  ]);
  const walk = await walkTree("root", fetchTask, { known: new Map([["b", { uuid: "b", state: "FAILURE", children: ["a"] }]]) });
  assert.deepEqual(fetched, ["root", "a", "c"]); // b was known
  assert.equal(walk.truncated, false);
  const tree = treeOf(walk, "c");
  assert.deepEqual(tree.children.map((n) => n.uuid), ["a", "b"]);
  assert.deepEqual(tree.children[0].children.map((n) => [n.uuid, n.current]), [["c", true]]);
  assert.deepEqual(tree.children[1].children, []);
});

test("the family tree stops at its cap and says so; unknown tasks are null nodes", async () => {
  const children = Array.from({ length: MAX_TREE_NODES + 10 }, (_, i) => `c${i}`);
  const { fetchTask } = fakeFamily([{ uuid: "root", children }]);
  const walk = await walkTree("root", fetchTask);
  assert.equal(walk.nodes.size, MAX_TREE_NODES);
  assert.equal(walk.truncated, true);
  assert.equal(walk.nodes.get("c0"), null);
  assert.equal(treeOf(walk, "root").children.length, MAX_TREE_NODES - 1);

  const small = await walkTree("x", fetchTask, { maxNodes: 3 });
  assert.deepEqual([...small.nodes.keys()], ["x"]);
});

test("a tree starts at the root, else at the task itself", () => {
  assert.equal(treeRootId({ uuid: "a", root_id: "r" }), "r");
  assert.equal(treeRootId({ uuid: "a", root_id: null }), "a");
  assert.equal(childrenKey({ children: ["a", "b"] }), "a,b");
  assert.equal(childrenKey({}), "");
});

// The tasks page's results and what live changes do to them (helpers/task_page.js).
import { PAGE_SIZE, TaskPage } from "../../static/js/helpers/task_page.js";

const row = (uuid, received, fields = {}) => task({ uuid, received, sent: received, ...fields });
const upsert = (data) => ({ kind: "task", op: "upsert", key: data.uuid, data });

test("a first page newest first takes newer matching tasks, not older ones", () => {
  const page = new TaskPage();
  page.loaded({ items: [row("b", 200), row("a", 150)], total: 60, next: "c1" }, true, 300);
  assert.equal(page.floor, 150);
  const { fresh } = page.applyChanges([upsert(row("old", 100)), upsert(row("new", 250)), upsert(row("b", 200))], emptyFilters());
  assert.deepEqual(fresh.map((t) => t.uuid), ["new"]);
  assert.deepEqual(page.insert(fresh).map((t) => t.uuid), ["new"]);
  assert.deepEqual(page.items.map((t) => t.uuid), ["new", "b", "a"]);
  assert.equal(page.total, 61);
  assert.deepEqual(page.applyChanges([upsert(row("new", 250))], emptyFilters()).fresh, []); // already seen
});

test("a shown task is updated in place even when it stops matching", () => {
  const page = new TaskPage();
  page.loaded({ items: [row("b", 200, { state: "STARTED" }), row("a", 150)], total: 2, next: null }, true, 300);
  const filters = { ...emptyFilters(), state: ["STARTED"] };
  const { updated, fresh } = page.applyChanges([upsert(row("b", 200, { state: "SUCCESS" }))], filters);
  assert.deepEqual(updated.map((t) => t.state), ["SUCCESS"]);
  assert.deepEqual(fresh, []);
  assert.deepEqual(page.items.map((t) => [t.uuid, t.state]), [["b", "SUCCESS"], ["a", "SUCCESS"]]);
});

test("a full first page stays at the page size and marks its next cursor stale", () => {
  const page = new TaskPage();
  const items = Array.from({ length: PAGE_SIZE }, (_, i) => row(`t${i}`, 1000 - i));
  page.loaded({ items, total: 500, next: "n" }, true, 2000);
  assert.ok(!page.nextStale && page.hasNext);
  const added = page.insert([row("late", 5000)]);
  assert.equal(added.length, 1);
  assert.equal(page.items.length, PAGE_SIZE);
  assert.equal(page.items[0].uuid, "late");
  assert.ok(page.nextStale);
  assert.deepEqual(page.insert([row("older", 1)]), []); // the page is full of newer ones
});

test("the next page goes on after the row shown last once live rows pushed rows off", () => {
  const page = new TaskPage();
  const items = Array.from({ length: PAGE_SIZE }, (_, i) => row(`t${i}`, 1000 - i));
  page.loaded({ items, total: 500, next: "n" }, true, 2000);
  assert.deepEqual(page.nextRequest, { cursor: "n" });
  page.insert([row("late", 5000), row("later", 5001)]);
  // t48 and t49 were pushed off: the server's cursor (after t49) would skip them, a fresh first
  // page's (after whatever is newest by then) would repeat rows still shown: go on after t47.
  assert.deepEqual(page.nextRequest, { after: `t${PAGE_SIZE - 3}` });
  page.loaded({ items: [], total: 0, next: null }, true, 3000);
  assert.equal(page.nextRequest, null);
});

test("waiting tasks are refreshed, taken once, and dropped by a restart", () => {
  const page = new TaskPage();
  page.loaded({ items: [], total: 0, next: null }, false, 100);
  const { fresh } = page.applyChanges([upsert(row("x", 150, { state: "STARTED" }))], emptyFilters());
  page.wait(fresh);
  page.applyChanges([upsert(row("x", 150, { state: "SUCCESS" }))], emptyFilters());
  assert.deepEqual(page.takePending().map((t) => t.state), ["SUCCESS"]);
  assert.equal(page.pending.size, 0);
  page.wait([row("y", 160)]);
  page.forward("c2");
  assert.equal(page.number, 2);
  page.restart();
  assert.ok(page.firstPage && page.pending.size === 0 && !page.back());
});

test("a received-earlier task is not news on a page sorted otherwise", () => {
  const page = new TaskPage();
  page.loaded({ items: [], total: 0, next: null }, false, 100);
  assert.deepEqual(page.applyChanges([upsert(row("before", 90))], emptyFilters()).fresh, []);
  assert.equal(page.applyChanges([upsert(row("after", 110))], emptyFilters()).fresh.length, 1);
});

// The page's cursor in the URL and the pages before it in history.state; the column headers' sorts.
import { ariaSort, headerSort, pageQuery, parseCursor, SORT_COLUMNS, sortArrow, SORTS, splitSort } from "../../static/js/helpers/task_filters.js";
import { isPosition, positionFor } from "../../static/js/helpers/task_page.js";

test("the page URL is the filters' query, then the cursor of a later page", () => {
  const filters = parseFilters("?state=FAILURE&sort=-runtime");
  assert.equal(pageQuery(filters), "?state=FAILURE&sort=-runtime");
  assert.equal(pageQuery(filters, null), filtersQuery(filters));
  assert.equal(pageQuery(filters, "eyJzIjoi-_x"), "?state=FAILURE&sort=-runtime&cursor=eyJzIjoi-_x");
  assert.equal(pageQuery(emptyFilters()), "");
  assert.equal(pageQuery(emptyFilters(), "abc"), "?cursor=abc");
  const search = pageQuery(filters, "a b=");
  assert.equal(parseCursor(search), "a b=");
  assert.ok(sameFilters(parseFilters(search), filters)); // the cursor is not a filter
  assert.equal(parseCursor(""), null);
  assert.equal(parseCursor("?state=FAILURE&cursor="), null);
  assert.equal(parseCursor(new URLSearchParams("cursor=xyz")), "xyz");
});

test("a URL's cursor is shown at the position history.state kept, else after a gap", () => {
  const kept = { cursors: [null, "c2", "c3"], gap: false };
  assert.deepEqual(positionFor("c3", kept), kept);
  assert.notEqual(positionFor("c3", kept).cursors, kept.cursors); // a copy
  // A state that does not end at the URL's cursor (or is not a position at all) is not used.
  assert.deepEqual(positionFor("c2", kept), { cursors: [null, "c2"], gap: true });
  assert.deepEqual(positionFor(null, kept), { cursors: [null], gap: false });
  assert.deepEqual(positionFor(null, null), { cursors: [null], gap: false });
  assert.deepEqual(positionFor("x", null), { cursors: [null, "x"], gap: true });
  assert.deepEqual(positionFor("x", { cursors: ["x"], gap: false }), { cursors: [null, "x"], gap: true });
  assert.deepEqual(positionFor("x", { cursors: [null, 7, "x"], gap: false }), { cursors: [null, "x"], gap: true });
  assert.ok(!isPosition({ cursors: [null], gap: true }));
  assert.ok(!isPosition({ cursors: [null] }));
  assert.ok(!isPosition("page 2"));
  assert.ok(isPosition({ cursors: [null, "x"], gap: true }));
});

test("the page number follows the cursors; a page opened from its URL has none until the first page", () => {
  const page = new TaskPage();
  assert.equal(page.label, "Page 1");
  page.forward("c2");
  page.forward("c3");
  assert.deepEqual(page.position, { cursors: [null, "c2", "c3"], gap: false });
  assert.equal(page.label, "Page 3");
  assert.ok(page.back());
  assert.equal(page.number, 2);
  assert.equal(page.cursor, "c2");

  const opened = new TaskPage();
  opened.moveTo(positionFor("x", null));
  assert.equal(opened.number, null);
  assert.equal(opened.label, "A later page");
  assert.equal(opened.cursor, "x");
  assert.ok(opened.hasPrevious && !opened.firstPage);
  opened.forward("y");
  assert.equal(opened.number, null);
  assert.deepEqual(opened.position, { cursors: [null, "x", "y"], gap: true });
  opened.back();
  opened.back(); // Previous from the opened page: the first page of the same filters
  assert.ok(opened.firstPage);
  assert.equal(opened.cursor, null);
  assert.equal(opened.label, "Page 1");
  assert.equal(opened.position.gap, false);

  // Moving keeps what waits behind the pill; a restart drops it and the gap.
  opened.wait([row("w", 1)]);
  opened.moveTo({ cursors: [null, "x"], gap: true });
  assert.equal(opened.pending.size, 1);
  opened.restart();
  assert.deepEqual(opened.position, { cursors: [null], gap: false });
  assert.equal(opened.pending.size, 0);
});

test("a column header sorts by its key, first in its own direction, then the other way", () => {
  assert.deepEqual(splitSort("-runtime"), { key: "runtime", descending: true });
  assert.deepEqual(splitSort(""), { key: "received", descending: true });
  assert.equal(headerSort(DEFAULT_SORT, "runtime"), "-runtime");
  assert.equal(headerSort("-runtime", "runtime"), "runtime");
  assert.equal(headerSort("runtime", "runtime"), "-runtime");
  assert.equal(headerSort("-runtime", "name"), "name");
  assert.equal(headerSort("name", "name"), "-name");
  assert.equal(headerSort("-name", "received"), "-received");
  assert.equal(headerSort(DEFAULT_SORT, "received"), "received"); // already newest first: flips to oldest
  assert.equal(headerSort(undefined, "received"), "received");
  assert.equal(ariaSort(DEFAULT_SORT, "received"), "descending");
  assert.equal(ariaSort("runtime", "runtime"), "ascending");
  assert.equal(ariaSort("runtime", "name"), "none");
  assert.equal(sortArrow("descending"), "▼");
  assert.equal(sortArrow("ascending"), "▲");
  assert.equal(sortArrow("none"), "");
  // Every header sort is one the select offers.
  const offered = new Set(SORTS.map((s) => s.value));
  for (const key of Object.keys(SORT_COLUMNS)) {
    assert.ok(offered.has(headerSort(DEFAULT_SORT, key)) && offered.has(headerSort(headerSort(DEFAULT_SORT, key), key)), key);
  }
});

import { fieldMatches, nameSuggestions } from "../../static/js/helpers/task_filters.js";

test("a task name ending in * is a prefix, live as in the API", () => {
  assert.ok(fieldMatches("name", "app.payments.charge", "app.payments.*"));
  assert.ok(!fieldMatches("name", "app.emails.send", "app.payments.*"));
  assert.ok(!fieldMatches("name", null, "app.*"));
  assert.ok(fieldMatches("name", "app.x", "app.x") && !fieldMatches("worker", "w1", "w*"));
  const filters = { ...emptyFilters(), name: "app.payments.*" };
  assert.ok(taskMatches(task({ name: "app.payments.refund" }), filters));
  assert.ok(!taskMatches(task({ name: "app.paymentsx" }), filters));
});

test("name suggestions offer the names typed and their dotted prefixes", () => {
  const names = ["app.payments.charge", "app.payments.refund", "app.emails.send", "other", null];
  assert.deepEqual(nameSuggestions(names, "", 10),
    ["app.*", "app.emails.*", "app.emails.send", "app.payments.*", "app.payments.charge", "app.payments.refund", "other"]);
  assert.deepEqual(nameSuggestions(names, "app.pay", 10), ["app.payments.*", "app.payments.charge", "app.payments.refund"]);
  assert.equal(nameSuggestions(names, "", 2).length, 2);
});

test("a retried attempt's exception matches free text live", () => {
  assert.ok(taskMatches(task({ retry_errors: "ConnectionError('Timed out fetching')" }), { ...emptyFilters(), q: "timed out" }));
});

import { newTasksPill } from "../../static/js/helpers/task_page.js";

test("the new-tasks pill points up when newest first and offers a reload in another order", () => {
  assert.deepEqual(newTasksPill(1, true), { text: "1 new task", mark: "↑", title: "Show them at the top" });
  const other = newTasksPill(1200, false);
  assert.equal(other.text, "1,200 new tasks");
  assert.equal(other.mark, "↻");
  assert.match(other.title, /first page again/);
});
