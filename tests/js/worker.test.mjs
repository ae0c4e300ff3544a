// Tests of the worker page's DOM-free helpers: chart math, inspect facts, alert texts, lost workers.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  appendSample, fromColumns, HISTORY_STEP_SECONDS, HISTORY_WINDOW_SECONDS, linearScale, linePath, maxOf,
  niceMax, tickPath, timeTicks, trimSamples,
} from "../../static/js/helpers/chart.js";
import {
  activeText, outcomesText, brokerText, compactValue, etaSeconds, filterByHostname, formatBytes, formatUptime, heartbeatIntervalText,
  poolName, rusageText, skewText,
} from "../../static/js/helpers/worker_info.js";
import { alertMessage, lostWorkers } from "../../static/js/helpers/alerts.js";
import { EMPTY } from "../../static/js/helpers/format.js";

const identity = (v) => v;

test("column history becomes sorted rows, dropping bad times", () => {
  const rows = fromColumns({ t: [20, 10, null], active: [2, 1, 9], load: [0.5, null, 1] });
  assert.deepEqual(rows, [{ t: 10, active: 1, load: null }, { t: 20, active: 2, load: 0.5 }]);
  assert.deepEqual(fromColumns(null), []);
});

test("samples are appended at most every step and trimmed to the window", () => {
  const samples = [{ t: 100, active: 0, load: 0 }];
  assert.equal(appendSample(samples, { t: 100 + HISTORY_STEP_SECONDS - 1, active: 1, load: 0 }), false);
  assert.equal(appendSample(samples, { t: 100 + HISTORY_STEP_SECONDS, active: 1, load: 0 }), true);
  assert.equal(appendSample(samples, { t: null, active: 1, load: 0 }), false);
  assert.equal(samples.length, 2);
  trimSamples(samples, 100 + HISTORY_WINDOW_SECONDS + 1);
  assert.deepEqual(samples.map((s) => s.t), [100 + HISTORY_STEP_SECONDS]);
  assert.equal(appendSample([], { t: 1, active: 0, load: null }), true);
});

test("scales and round maxima", () => {
  const x = linearScale([0, 10], [100, 200]);
  assert.equal(x(0), 100);
  assert.equal(x(5), 150);
  assert.equal(linearScale([3, 3], [7, 9])(3), 7);
  const y = linearScale([0, 4], [100, 0]); // SVG y grows downwards
  assert.equal(y(1), 75);
  assert.equal(niceMax(0), 1);
  assert.equal(niceMax(3), 5);
  assert.equal(niceMax(5), 5);
  assert.equal(niceMax(7), 10);
  assert.equal(niceMax(0.3, 0.1), 0.5);
  assert.equal(niceMax(140), 200);
  assert.equal(maxOf([{ a: 1 }, { a: null }, { a: 3 }], "a"), 3);
  assert.equal(maxOf([{ a: null }], "a"), null);
});

test("line paths break at missing values and at long gaps", () => {
  const samples = [
    { t: 0, active: 1, load: 0.5 },
    { t: 5, active: 2, load: null },
    { t: 10, active: 3, load: 0.7 },
    { t: 100, active: 0, load: 0.1 },
  ];
  assert.equal(linePath(samples, "active", identity, identity, 15), "M0,1 L5,2 L10,3 M100,0");
  assert.equal(linePath(samples, "load", identity, identity, 15), "M0,0.5 M10,0.7 M100,0.1");
  assert.equal(linePath([], "active", identity, identity), "");
  assert.equal(tickPath([{ t: 1 }, { t: 2.25 }], identity, 50, 6), "M1,50 v-6 M2.3,50 v-6");
});

test("time ticks are aligned to whole steps", () => {
  assert.deepEqual(timeTicks(1000, 2500, 600), [1200, 1800, 2400]);
  assert.deepEqual(timeTicks(1200, 1200, 600), [1200]);
});

test("inspect facts", () => {
  assert.equal(poolName("celery.concurrency.prefork:TaskPool"), "prefork");
  assert.equal(poolName("celery.concurrency.eventlet:TaskPool"), "eventlet");
  assert.equal(poolName(null, "solo"), "solo");
  assert.equal(poolName(undefined), EMPTY);
  assert.equal(brokerText({ transport: "amqp", userid: "guest", hostname: "rabbit", port: 5672, virtual_host: "/" }), "amqp://guest@rabbit:5672//");
  assert.equal(brokerText({ transport: "redis", userid: null, hostname: "127.0.0.1", port: 6379, virtual_host: "14" }), "redis://127.0.0.1:6379/14");
  assert.equal(brokerText(null), EMPTY);
  assert.equal(formatUptime(42.9), "42 s");
  assert.equal(formatUptime(3725), "1 h 2 min");
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(78496 * 1024), "76.7 MiB");
  assert.equal(rusageText({ utime: 1.5, stime: 0.25, maxrss: 1024 }, "Linux"), "user 1.50 s · system 250 ms · max RSS 1 MiB");
  assert.equal(rusageText({ utime: 1.5, stime: 0.25, maxrss: 1024 }, "Darwin"), "user 1.50 s · system 250 ms · max RSS 1 KiB");
  assert.equal(skewText(0.002), "in sync (+2 ms)");
  assert.equal(skewText(3), "worker clock 3.00 s behind the dashboard");
  assert.equal(skewText(-75), "worker clock 1 min 15 s ahead of the dashboard");
  assert.equal(heartbeatIntervalText(2), "every 2 s");
  assert.equal(heartbeatIntervalText(null), EMPTY);
});

test("payloads, ETAs and hostname search", () => {
  assert.equal(compactValue([1, "a"]), '[1,"a"]');
  assert.equal(compactValue("x".repeat(10), 4), "xxxx…");
  assert.equal(compactValue(null), EMPTY);
  assert.equal(etaSeconds("2030-01-01T00:00:00+00:00"), 1893456000);
  assert.equal(etaSeconds(12.5), 12.5);
  assert.equal(etaSeconds("soon"), null);
  const workers = [{ hostname: "b-prefork@h" }, { hostname: "a-Prefork@h" }, { hostname: "eventlet@h" }, { hostname: null }];
  assert.deepEqual(filterByHostname(workers, " PREfork").map((w) => w.hostname), ["a-Prefork@h", "b-prefork@h"]);
  assert.equal(filterByHostname(workers, "").length, 3);
});

test("alert texts", () => {
  const lost = alertMessage({ event: "worker-lost", hostname: "w1@a", time: 1, last_heartbeat: 0, orphaned: ["t1", "t2"] });
  assert.equal(lost.title, "Celery worker lost: w1@a");
  assert.equal(lost.body, "2 tasks in flight orphaned");
  assert.match(lost.announcement, /^Worker lost: w1@a\./);
  assert.equal(alertMessage({ event: "worker-lost", hostname: "w", orphaned: ["t"] }).body, "1 task in flight orphaned");
  assert.equal(alertMessage({ event: "worker-lost", hostname: "w", orphaned: [] }).body, "No task was in flight on it");
  assert.equal(alertMessage({ event: "worker-online", hostname: "w" }).title, "Celery worker back online: w");
  assert.equal(alertMessage({ event: "something-else", hostname: "w" }), null);
});

test("lost workers with their heartbeat ages", () => {
  const workers = [
    { hostname: "z@b", status: "lost", last_heartbeat: 90 },
    { hostname: "ok@a", status: "online", last_heartbeat: 99 },
    { hostname: "a@b", status: "lost", last_heartbeat: null },
  ];
  assert.deepEqual(lostWorkers(workers, 100), [
    { hostname: "a@b", lastHeartbeat: null, age: null },
    { hostname: "z@b", lastHeartbeat: 90, age: "10 s" },
  ]);
  assert.deepEqual(lostWorkers([], 100), []);
});

test("a lost worker's active count is unknown, not its last heartbeat's", () => {
  const fmt = (n) => String(n);
  assert.equal(activeText({ status: "online", active: 1 }, fmt), "1");
  assert.equal(activeText({ status: "offline", active: 0 }, fmt), "0");
  assert.equal(activeText({ status: "lost", active: 1 }, fmt), "unknown");
});

test("a worker's outcomes read as one line, missing counts as zero", () => {
  const fmt = (n) => String(n);
  assert.equal(outcomesText({ succeeded: 12, failed: 1, retried: 3 }, fmt), "12 succeeded · 1 failed · 3 retried");
  assert.equal(outcomesText({}, fmt), "0 succeeded · 0 failed · 0 retried");
});

test("a worker whose heartbeats count tasks but whose task events never came is started without -E", async () => {
  const { withoutEventsText, NO_EVENTS_AFTER_TASKS } = await import("../../static/js/helpers/worker_info.js");
  const worker = { status: "online", processed_base: 10, processed: 10 + NO_EVENTS_AFTER_TASKS, succeeded: 0, failed: 0, retried: 0 };
  assert.equal(withoutEventsText(worker), "started without -E");
  assert.equal(withoutEventsText({ ...worker, processed: 11 }), ""); // a heartbeat may run ahead of an event
  assert.equal(withoutEventsText({ ...worker, succeeded: 1 }), "");
  assert.equal(withoutEventsText({ ...worker, status: "lost" }), "");
  assert.equal(withoutEventsText({ ...worker, processed_base: null }), "");
});

test("the worker page reads the worker again when its next inspect round is due", async () => {
  const { nextInspectReadMs, INSPECT_SETTLE_MS } = await import("../../static/js/panels/worker_detail.js");
  const now = 1_000_000;
  // inspected 10 s ago, every 30 s: 20 s from now, plus the moment the round takes
  assert.equal(nextInspectReadMs({ inspected_at: now / 1000 - 10, inspect_interval: 30 }, now), 20_000 + INSPECT_SETTLE_MS);
  // the round is overdue (a silent worker is asked less often): an interval from now
  assert.equal(nextInspectReadMs({ inspected_at: now / 1000 - 300, inspect_interval: 30 }, now), 30_000 + INSPECT_SETTLE_MS);
  assert.equal(nextInspectReadMs({}, now), 30_000 + INSPECT_SETTLE_MS);
  // a short interval settles for half of it, so that each round is read; a huge one waits as long as a timer can
  assert.equal(nextInspectReadMs({ inspected_at: now / 1000 - 1, inspect_interval: 2 }, now), 2_000);
  assert.equal(nextInspectReadMs({ inspected_at: null, inspect_interval: 1e9 }, now), 2 ** 31 - 1);
});
