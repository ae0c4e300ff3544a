// Tests of the DOM-free live store: snapshots, ordered changes, resync on gaps, the task window.
import { test } from "node:test";
import assert from "node:assert/strict";

import { createStore, RESYNC_RETRY_MS } from "../../static/js/store.js";

const worker = (hostname, status = "online", extra = {}) => ({ hostname, status, last_heartbeat: 100, active: 0, ...extra });
const task = (uuid, state = "RECEIVED", extra = {}) => ({ uuid, name: "app.add", state, ...extra });
const counters = (total, extra = {}) => ({
  states: { SUCCESS: total }, total, throughput: 0, events_per_second: 0, task_events: total,
  events: { received: total, malformed: 0 }, ...extra,
});
const snapshot = (extra = {}) => ({
  seq: 1,
  workers: [worker("w1@a"), worker("w2@b", "lost")],
  tasks: [task("t3"), task("t2"), task("t1")], // most recent first
  queues: [{ name: "celery", depth: 3, consumers: 2 }],
  counters: counters(3),
  broker: { url: "redis://localhost:6379/0", connected: true, status: "connected", error: null, since: 1, stream_cuts: 0 },
  ...extra,
});
const upsert = (kind, key, data) => ({ kind, op: "upsert", key, data });
const remove = (kind, key) => ({ kind, op: "remove", key, data: null });
const uuids = (store) => store.recentTasks().map((t) => t.uuid);

function setup(options = {}) {
  const resyncs = [];
  const events = [];
  const store = createStore({ onResync: () => resyncs.push(true), ...options });
  store.subscribe((event) => events.push(event));
  return { store, resyncs, events };
}

test("snapshot fills the store, newest task first", () => {
  const { store, events } = setup();
  store.applySnapshot(snapshot());
  assert.deepEqual(uuids(store), ["t3", "t2", "t1"]);
  assert.equal(store.seq, 1);
  assert.equal(store.worker("w1@a").status, "online");
  assert.deepEqual(store.queuesSorted().map((q) => q.name), ["celery"]);
  assert.equal(store.counters.total, 3);
  assert.equal(store.broker.connected, true);
  assert.equal(events.at(-1).type, "snapshot");
});

test("a new snapshot replaces all state", () => {
  const { store } = setup();
  store.applySnapshot(snapshot());
  store.applySnapshot({ seq: 7, workers: [worker("w9@z")], tasks: [task("t9")], queues: [], counters: counters(1) });
  assert.deepEqual(uuids(store), ["t9"]);
  assert.deepEqual(store.workersSorted().map((w) => w.hostname), ["w9@z"]);
  assert.equal(store.worker("w1@a"), null);
  assert.deepEqual(store.queuesSorted(), []);
  assert.equal(store.counters.total, 1);
  assert.equal(store.seq, 7);
});

test("ordered changes upsert and remove tasks and workers", () => {
  const { store, events, resyncs } = setup();
  store.applySnapshot(snapshot());
  assert.equal(store.applyChanges({
    seq: 2,
    changes: [
      upsert("task", "t2", task("t2", "STARTED", { worker: "w1@a" })),
      upsert("task", "t4", task("t4")),
      upsert("worker", "w3@c", worker("w3@c")),
      remove("worker", "w2@b"),
      upsert("queue", "high", { name: "high", depth: null, consumers: null }),
    ],
    counters: counters(4),
  }), true);
  // t2 is updated in place; the new t4 is the newest.
  assert.deepEqual(uuids(store), ["t4", "t3", "t2", "t1"]);
  assert.equal(store.task("t2").state, "STARTED");
  assert.deepEqual(store.workersSorted().map((w) => w.hostname), ["w1@a", "w3@c"]);
  assert.deepEqual(store.queuesSorted().map((q) => q.name), ["celery", "high"]);
  const sorted = store.queuesSorted();
  sorted.pop(); // a caller's copy: the store's sorted list is not changed by it
  assert.deepEqual(store.queuesSorted().map((q) => q.name), ["celery", "high"]);

  assert.equal(store.applyChanges({ seq: 3, changes: [remove("task", "t3")], counters: counters(4) }), true);
  assert.deepEqual(uuids(store), ["t4", "t2", "t1"]);
  assert.equal(store.seq, 3);
  assert.equal(resyncs.length, 0);

  const last = events.at(-1);
  assert.equal(last.type, "changes");
  assert.deepEqual([...last.changed.tasks], ["t3"]);
  assert.equal(last.changed.workers.size, 0);
});

test("counters are replaced by each batch", () => {
  const { store } = setup();
  store.applySnapshot(snapshot());
  const next = counters(10, { states: { FAILURE: 2 }, throughput: 4.5 });
  store.applyChanges({ seq: 2, changes: [], counters: next });
  assert.deepEqual(store.counters, next);
  assert.equal(store.counters.states.SUCCESS, undefined);
});

test("a gap in seq drops the batch and asks for a resync once", () => {
  const { store, resyncs } = setup();
  store.applySnapshot(snapshot());
  assert.equal(store.applyChanges({ seq: 3, changes: [upsert("task", "t5", task("t5"))], counters: counters(5) }), false);
  assert.equal(resyncs.length, 1);
  assert.equal(store.awaitingSnapshot, true);
  assert.equal(store.task("t5"), null);
  // Batches already on the wire are dropped without asking again.
  assert.equal(store.applyChanges({ seq: 4, changes: [upsert("task", "t6", task("t6"))] }), false);
  assert.equal(resyncs.length, 1);
  // The fresh snapshot replaces everything and numbering resumes from it.
  store.applySnapshot(snapshot({ seq: 10, tasks: [task("t6"), task("t5")] }));
  assert.equal(store.awaitingSnapshot, false);
  assert.equal(store.applyChanges({ seq: 11, changes: [upsert("task", "t7", task("t7"))] }), true);
  assert.deepEqual(uuids(store), ["t7", "t6", "t5"]);
  assert.equal(resyncs.length, 1);
});

test("the resync flag works without a callback and the request is repeated if unanswered", () => {
  let nowMs = 1_000;
  const store = createStore({ now: () => nowMs });
  store.applySnapshot(snapshot());
  store.applyChanges({ seq: 5, changes: [] });
  assert.equal(store.awaitingSnapshot, true);
  assert.equal(store.resyncCount, 1);
  nowMs += RESYNC_RETRY_MS - 1;
  store.applyChanges({ seq: 6, changes: [] });
  assert.equal(store.resyncCount, 1);
  nowMs += 1;
  store.applyChanges({ seq: 7, changes: [] });
  assert.equal(store.resyncCount, 2);
});

test("a stale batch at or below the last seq is ignored without a resync", () => {
  const { store, resyncs } = setup();
  store.applySnapshot(snapshot({ seq: 5 }));
  assert.equal(store.applyChanges({ seq: 5, changes: [upsert("task", "tx", task("tx"))] }), false);
  assert.equal(store.task("tx"), null);
  assert.equal(resyncs.length, 0);
});

test("changes before any snapshot or after a disconnect are not applied", () => {
  const { store, resyncs } = setup();
  assert.equal(store.applyChanges({ seq: 1, changes: [upsert("task", "t1", task("t1"))] }), false);
  store.applySnapshot(snapshot());
  store.markDisconnected();
  assert.equal(store.applyChanges({ seq: 2, changes: [upsert("task", "t9", task("t9"))] }), false);
  assert.equal(store.task("t9"), null);
  assert.equal(resyncs.length, 0); // the reconnect brings its own snapshot
});

test("the task window is capped, dropping the oldest", () => {
  const { store } = setup({ maxTasks: 3 });
  store.applySnapshot(snapshot({ tasks: [task("t5"), task("t4"), task("t3"), task("t2"), task("t1")] }));
  assert.deepEqual(uuids(store), ["t5", "t4", "t3"]);
  store.applyChanges({ seq: 2, changes: [upsert("task", "t6", task("t6")), upsert("task", "t7", task("t7"))] });
  assert.deepEqual(uuids(store), ["t7", "t6", "t5"]);
  // Updating a task inside the window does not move or evict anything.
  store.applyChanges({ seq: 3, changes: [upsert("task", "t5", task("t5", "SUCCESS"))] });
  assert.deepEqual(uuids(store), ["t7", "t6", "t5"]);
  assert.equal(store.task("t5").state, "SUCCESS");
});

test("the default task window is 100", () => {
  const { store } = setup();
  const many = Array.from({ length: 150 }, (_, i) => task(`t${150 - i}`));
  store.applySnapshot(snapshot({ tasks: many }));
  assert.equal(store.recentTasks().length, 100);
  assert.equal(store.recentTasks()[0].uuid, "t150");
});

test("workers sort lost first, then online, then offline", () => {
  const { store } = setup();
  store.applySnapshot(snapshot({ workers: [worker("b", "offline"), worker("c", "online"), worker("a", "online"), worker("z", "lost")] }));
  assert.deepEqual(store.workersSorted().map((w) => w.hostname), ["z", "a", "c", "b"]);
});

test("broker status updates and stream cuts are counted from the first value seen", () => {
  const { store } = setup();
  const broker = snapshot().broker;
  store.applySnapshot(snapshot({ broker: { ...broker, stream_cuts: 2 } }));
  assert.equal(store.streamCutsLost, 0);
  store.setBroker({ ...broker, connected: false, status: "reconnecting", error: "Connection refused", stream_cuts: 2 });
  assert.equal(store.broker.connected, false);
  assert.equal(store.broker.error, "Connection refused");
  store.applyChanges({ seq: 2, changes: [], broker: { ...broker, stream_cuts: 3 } });
  assert.equal(store.streamCutsLost, 1);
  assert.equal(store.broker.connected, true);
});

test("unknown change kinds and ops are ignored", () => {
  const { store } = setup();
  store.applySnapshot(snapshot());
  assert.equal(store.applyChanges({ seq: 2, changes: [{ kind: "beat", op: "upsert", key: "x", data: {} }, { kind: "task", op: "merge", key: "t1", data: {} }] }), true);
  assert.deepEqual(uuids(store), ["t3", "t2", "t1"]);
  assert.equal(store.task("t1").name, "app.add");
});

test("tasks are ordered by when they first showed up, and the oldest is evicted", () => {
  const { store } = setup({ maxTasks: 3 });
  store.applySnapshot(snapshot({ tasks: [task("c", "STARTED", { received: 30 }), task("b", "SUCCESS", { received: 20 }), task("a", "SUCCESS", { sent: 10, received: 11 })] }));
  // An update to an old task outside the window does not jump to the top: it is older than all, so it is dropped.
  store.applyChanges({ seq: 2, changes: [upsert("task", "old", task("old", "SUCCESS", { received: 5 }))] });
  assert.deepEqual(uuids(store), ["c", "b", "a"]);
  // A new task goes on top and pushes out the oldest; a state change keeps the order.
  store.applyChanges({ seq: 3, changes: [upsert("task", "d", task("d", "RECEIVED", { received: 40 })), upsert("task", "b", task("b", "FAILURE", { received: 20 }))] });
  assert.deepEqual(uuids(store), ["d", "c", "b"]);
  assert.equal(store.task("b").state, "FAILURE");
});
