// Tests of the one duration format every page uses, and of the runtimes a task shows: its facts,
// its step card, and an orphaned task's "unknown: worker lost after N" that never ticks.
import { test } from "node:test";
import assert from "node:assert/strict";

import { formatAge, formatDuration } from "../../static/js/helpers/duration.js";
import { EMPTY } from "../../static/js/helpers/format.js";
import { oldestText } from "../../static/js/helpers/queue_info.js";
import { formatUptime } from "../../static/js/helpers/worker_info.js";
import {
  lostRuntimeText, orphanedSpan, runtimeText, stepDurations, stepText,
} from "../../static/js/helpers/task_timeline.js";

const T = 1_764_000_000; // an epoch second: at this size a double keeps about 0.2 µs

/** A task that ran `runtime` seconds from T + 1, as the API returns it (fields and timeline). */
function finishedTask(runtime, { reported = true } = {}) {
  const started = T + 1;
  const succeeded = started + runtime;
  const events = [
    { type: "task-sent", timestamp: T },
    { type: "task-received", timestamp: T + 0.5, hostname: "w1" },
    { type: "task-started", timestamp: started, hostname: "w1" },
    { type: "task-succeeded", timestamp: succeeded, hostname: "w1", ...(reported ? { runtime } : {}) },
  ];
  return { uuid: "t1", state: "SUCCESS", worker: "w1", started, succeeded, timestamp: succeeded, runtime, events };
}

/** The runtime as the step card prints it. */
const stepCardRuntime = (task, nowSeconds = T + 100, orphan = null) =>
  stepText(stepDurations(task.events, nowSeconds, { lostAt: orphan?.lostAt ?? null }), "runtime").value;

test("a duration is rounded once, from the microsecond: float noise never changes the text", () => {
  assert.equal(formatDuration(0.0695), "70 ms");
  assert.equal(formatDuration(T + 1.0695 - (T + 1)), "70 ms"); // 0.069499969…
  assert.equal(formatDuration(0.0694), "69 ms");
  assert.equal(formatDuration(0.9996), "1.00 s"); // never "1000 ms"
  assert.equal(formatDuration(1.005), "1.01 s"); // toFixed alone says "1.00"
  assert.equal(formatDuration(9.996), "10.0 s");
  assert.equal(formatDuration(59.96), "1 min"); // never "60.0 s"
  assert.equal(formatDuration(-1), "0 ms");
  assert.equal(formatDuration(undefined), EMPTY);
});

test("ages, uptimes and queue waits are the same format in whole seconds", () => {
  assert.equal(formatDuration(185.7, { whole: true }), "3 min 5 s");
  assert.equal(formatAge(185.7), "3 min 5 s ago");
  assert.equal(formatUptime(185.7), "3 min 5 s");
  assert.equal(oldestText({ oldest_sent: 1000 }, 1185.7), "3 min 5 s");
  assert.equal(formatAge(0.4), "0 s ago");
});

test("0.0695 s prints the same in the task's facts and in its step card", () => {
  const task = finishedTask(0.0695);
  assert.equal(runtimeText(task), "70 ms");
  assert.equal(stepCardRuntime(task), "70 ms");
});

test("the step card takes the runtime the task-succeeded event reports, as the facts do", () => {
  // Celery measures the runtime itself; the event timestamps around it may differ a little.
  const task = finishedTask(0.0694);
  task.events[3].timestamp += 0.0012; // sent 1.2 ms after the task returned
  assert.equal(runtimeText(task), "69 ms");
  assert.equal(stepCardRuntime(task), "69 ms");
});

test("without a reported runtime (task-failed), both print the same timestamp difference", () => {
  const task = finishedTask(0.0695, { reported: false });
  task.runtime = Math.round((task.succeeded - task.started) * 1e6) / 1e6; // as the server rounds it
  assert.equal(runtimeText(task), "70 ms");
  assert.equal(stepCardRuntime(task), "70 ms");
});

// A task started at T + 1 on w1, which was then lost; w1 last beat at T + 21 by the dashboard's
// clock, its own clock being 0.5 s behind (clock_skew = receive time - worker time).
const ORPHAN_EVENTS = [
  { type: "task-sent", timestamp: T },
  { type: "task-received", timestamp: T + 0.5, hostname: "w1" },
  { type: "task-started", timestamp: T + 1, hostname: "w1" },
];
const orphanTask = () => ({
  uuid: "o1", state: "STARTED", worker: "w1", orphaned: true, received: T + 0.5, started: T + 1,
  timestamp: T + 1, runtime: null, events: ORPHAN_EVENTS.map((e) => ({ ...e })),
});
const LOST_WORKER = { hostname: "w1", status: "lost", last_heartbeat: T + 21, clock_skew: 0.5 };

test("an orphaned task ran until its worker was last heard from, on the worker's clock", () => {
  const task = orphanTask();
  const orphan = orphanedSpan(task, { worker: LOST_WORKER, events: task.events });
  assert.equal(orphan.from, T + 1);
  assert.equal(orphan.lostAt, T + 20.5);
  assert.equal(runtimeText(task, orphan), "unknown: worker lost after 19.5 s");
  assert.equal(stepCardRuntime(task, T + 100, orphan), "unknown: worker lost after 19.5 s");
});

test("an orphaned task's runtime does not tick", () => {
  const task = orphanTask();
  const orphan = orphanedSpan(task, { worker: LOST_WORKER, events: task.events });
  for (const now of [T + 30, T + 31, T + 3600]) {
    const steps = stepDurations(task.events, now, { lostAt: orphan.lostAt });
    assert.equal(stepText(steps, "runtime").value, "unknown: worker lost after 19.5 s");
    assert.deepEqual(stepText(steps, "total"), { value: "unknown", note: "worker lost" });
    assert.ok(!Object.values(steps.running).some(Boolean), "nothing counts up");
  }
});

test("without its worker's last heartbeat, the task's own last update stands in", () => {
  const task = orphanTask();
  task.events.push({ type: "task-progress", timestamp: T + 7.25, hostname: "w1", current: 3, total: 10 });
  // The worker is unknown to the page, or back online (its heartbeats say nothing about this task).
  for (const worker of [null, { ...LOST_WORKER, status: "online", last_heartbeat: T + 500 }]) {
    assert.equal(orphanedSpan(task, { worker, events: task.events }).seconds, 6.25);
  }
  // A task row has the task's fields alone: its timestamp.
  assert.equal(orphanedSpan({ ...task, events: undefined, timestamp: T + 4 }).seconds, 3);
});

test("a task received but never started counts from its receipt", () => {
  const task = { ...orphanTask(), state: "RECEIVED", started: null, timestamp: T + 0.5, events: ORPHAN_EVENTS.slice(0, 2) };
  const orphan = orphanedSpan(task, { worker: LOST_WORKER, events: task.events });
  assert.equal(orphan.seconds, 20);
  assert.equal(runtimeText(task, orphan), "unknown: worker lost after 20.0 s");
  const steps = stepDurations(task.events, T + 100, { lostAt: orphan.lostAt });
  assert.equal(stepText(steps, "toStart").value, "unknown: worker lost after 20.0 s");
  assert.equal(stepText(steps, "runtime").value, EMPTY);
});

test("only an orphaned task still in flight has a lost runtime", () => {
  assert.equal(orphanedSpan({ ...orphanTask(), orphaned: false }), null);
  const finished = { ...orphanTask(), state: "SUCCESS", runtime: 2.5 }; // its worker came back and finished it
  assert.equal(orphanedSpan(finished, { worker: LOST_WORKER }), null);
  assert.equal(runtimeText(finished, orphanedSpan(finished)), "2.50 s");
  assert.equal(lostRuntimeText(0.0695), "unknown: worker lost after 70 ms");
});

test("a running task's step still counts up to now", () => {
  const task = { ...orphanTask(), orphaned: false };
  const steps = stepDurations(task.events, T + 21);
  assert.deepEqual(stepText(steps, "runtime"), { value: "20.0 s", note: "running" });
  assert.equal(runtimeText(task), EMPTY); // the facts show a runtime only once the task reports one
});
