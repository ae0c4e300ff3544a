// Tests of the queue views' DOM-free helpers: sparkline samples, buckets, thinning, words, flags, alerts.
import { test } from "node:test";
import assert from "node:assert/strict";

import { addToBucket, fromColumns, linePath, thinSamples } from "../../static/js/helpers/chart.js";
import {
  createQueueHistory, LIVE_SAMPLE_STEP_SECONDS, SPARKLINE_WINDOW_SECONDS,
} from "../../static/js/helpers/queue_history.js";
import {
  backlogDetail, backlogQueues, consumersTitle, depthInfo, depthTitle, messagesText,
  oldestText, queueFlags, sparklineLabel, thresholdText, waitingRows,
} from "../../static/js/helpers/queue_info.js";
import { alertMessage } from "../../static/js/helpers/alerts.js";
import { EMPTY } from "../../static/js/helpers/format.js";

const identity = (v) => v;

test("queue history columns become {t, depth} rows", () => {
  assert.deepEqual(fromColumns({ t: [20, 10], depth: [5, 3] }, ["depth"]), [{ t: 10, depth: 3 }, { t: 20, depth: 5 }]);
  assert.deepEqual(fromColumns({ t: [1] }, ["depth"]), [{ t: 1, depth: null }]);
});

test("the sparkline tracker seeds from the snapshot, appends live samples and trims to 15 minutes", () => {
  const history = createQueueHistory();
  history.seed([{ name: "celery", history: { t: [1000, 1010], depth: [1, 2] } }, { name: "bare" }]);
  assert.deepEqual(history.samples("bare", 1010), []);
  assert.equal(history.append("celery", { sampled_at: 1015.5, depth: 4 }), true);
  // A failed sample repeats the last sampled_at (and its depth): nothing is added.
  assert.equal(history.append("celery", { sampled_at: 1015.5, depth: 4, stale: true }), false);
  assert.equal(history.append("celery", { sampled_at: 1015.5 + LIVE_SAMPLE_STEP_SECONDS / 2, depth: 4 }), false);
  assert.equal(history.append("celery", { sampled_at: 1016.5, depth: null }), false);
  assert.equal(history.append("celery", { sampled_at: null, depth: 3 }), false);
  assert.deepEqual(history.samples("celery", 1016).map((s) => s.depth), [1, 2, 4]);
  assert.deepEqual(history.samples("celery", 1010 + SPARKLINE_WINDOW_SECONDS).map((s) => s.t), [1010, 1015.5]);
  // A queue first seen in a live upsert starts its own series.
  assert.equal(history.append("new", { sampled_at: 2000, depth: 0 }), true);
  assert.equal(history.samples("new", 2000).length, 1);
  history.forget("new");
  assert.deepEqual(history.samples("new", 2000), []);
  history.seed([]);
  assert.deepEqual(history.samples("celery", 1016), []);
});

test("live samples fold into the chart's 15 s buckets, keeping the highest", () => {
  const samples = [{ t: 990, depth: 7 }];
  assert.equal(addToBucket(samples, 1001.2, "depth", 3, 15), true);
  assert.equal(addToBucket(samples, 1004.9, "depth", 9, 15), true);
  assert.equal(addToBucket(samples, 1010, "depth", 1, 15), true);
  assert.equal(addToBucket(samples, 1015, "depth", 2, 15), true);
  assert.equal(addToBucket(samples, 980, "depth", 50, 15), false); // older than the last bucket
  assert.equal(addToBucket(samples, null, "depth", 1, 15), false);
  assert.equal(addToBucket(samples, 1020, "depth", null, 15), false);
  // 1001.2 and 1004.9 fall in the 990 bucket (raised to 9); 1010 and 1015 in the 1005 bucket.
  assert.deepEqual(samples, [{ t: 990, depth: 9 }, { t: 1005, depth: 2 }]);
});

test("thinning keeps one sample per bucket (the highest) and the newest", () => {
  const samples = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((t) => ({ t, depth: t === 2 ? 50 : t }));
  assert.deepEqual(thinSamples(samples, "depth", 5).map((s) => s.t), [2, 9]);
  assert.deepEqual(thinSamples(samples, "depth", 4).map((s) => s.t), [2, 7, 9]);
  assert.deepEqual(thinSamples(samples.slice(0, 2), "depth", 5).map((s) => s.t), [0, 1]);
  assert.deepEqual(thinSamples(samples, "depth", 0).length, samples.length);
  // Thinned samples still draw one unbroken line when the gap allows the bucket size.
  assert.equal(linePath(thinSamples(samples, "depth", 4), "depth", identity, identity, 30), "M2,50 L7,7 L9,9");
});

test("the oldest waiting age counts whole seconds, as every age does", () => {
  assert.equal(oldestText({ oldest_sent: 1000 }, 996), "0 s");
  assert.equal(oldestText({ oldest_sent: 1000 }, 1045.9), "45 s");
  assert.equal(oldestText({ oldest_sent: 1000 }, 1120), "2 min");
  assert.equal(oldestText({ oldest_sent: 0 }, 3 * 3600 + 5 * 60 + 9), "3 h 5 min");
  assert.equal(oldestText({ oldest_sent: 0 }, 2 * 86400 + 4 * 3600), "2 d 4 h");
  assert.equal(oldestText({ oldest_sent: 1000 }, 1130), "2 min 10 s");
  assert.equal(oldestText({ oldest_sent: null }, 1130), EMPTY);
});

test("depth words: numbers, stale depths, transports without depths", () => {
  assert.deepEqual(depthInfo({ depth: 12, stale: false, error: null }), { text: "12", stale: false, error: null, available: true });
  assert.equal(depthTitle({ depth: 12, stale: false, error: null }), "");
  const stale = { depth: 12, stale: true, error: "Connection refused" };
  assert.equal(depthInfo(stale).stale, true);
  assert.equal(depthTitle(stale), "The last sample failed: Connection refused. This is the previous depth.");
  const sqs = { depth: null, stale: false, error: "depth is not available for the 'sqs' transport" };
  assert.equal(depthInfo(sqs).text, "depth not available");
  assert.equal(depthInfo(sqs).available, false);
  assert.equal(depthTitle(sqs), "depth is not available for the 'sqs' transport");
  assert.equal(depthInfo({ depth: null, error: null }).text, EMPTY);
  assert.equal(depthTitle({ depth: null, error: null }), "Not sampled yet");
  assert.equal(messagesText(1), "1 message");
  assert.equal(messagesText(0), "0 messages");
});

test("consumers, thresholds and waiting task types", () => {
  assert.equal(consumersTitle({ consumers: 2, workers: ["a@h", "b@h"] }), "Consumed by a@h, b@h");
  assert.match(consumersTitle({ consumers: 3, workers: [] }), /reported by the broker/);
  assert.equal(consumersTitle({ consumers: 0, workers: [] }), "No worker consumes this queue");
  assert.equal(thresholdText(null), "none");
  assert.equal(thresholdText({ depth: 0, seconds: 3 }), "over 0 messages for 3 s");
  assert.equal(thresholdText({ depth: 1, seconds: 0 }), "over 1 message");
  assert.deepEqual(waitingRows({ "b.task": 2, "a.task": 2, "c.task": 9, bad: null }), [
    { name: "c.task", count: 9 }, { name: "a.task", count: 2 }, { name: "b.task", count: 2 },
  ]);
  assert.deepEqual(waitingRows(null), []);
});

test("flags in display order with their levels", () => {
  assert.deepEqual(queueFlags({}), []);
  const all = queueFlags({ no_consumer: true, growing: true, alerting: true, alert_threshold: { depth: 10, seconds: 60 } });
  assert.deepEqual(all.map((f) => [f.key, f.text, f.level]), [
    ["no-consumer", "no consumer", "error"],
    ["growing", "growing", "warning"],
    ["alerting", "over threshold", "error"],
  ]);
  assert.equal(all[2].title, "Backlog alert: over 10 messages for 60 s");
});

test("the backlog banner lists alerting queues by name", () => {
  const queues = [
    { name: "z", depth: 12, alerting: true, alert_threshold: { depth: 10, seconds: 0 } },
    { name: "ok", depth: 99, alerting: false, alert_threshold: null },
    { name: "a", depth: 1, alerting: true, alert_threshold: { depth: 0, seconds: 3 } },
  ];
  assert.deepEqual(backlogQueues(queues), [
    { name: "a", detail: "has 1 message (threshold 0)" },
    { name: "z", detail: "has 12 messages (threshold 10)" },
  ]);
  assert.deepEqual(backlogQueues([]), []);
  assert.equal(backlogDetail(null, 5), "has an unknown depth (threshold 5)");
  assert.equal(backlogDetail(5, null), "has 5 messages");
});

test("sparkline labels", () => {
  assert.equal(sparklineLabel([]), "Depth over the last 15 minutes: no samples");
  assert.equal(sparklineLabel([{ t: 1, depth: 12 }, { t: 2, depth: 3 }]), "Depth over the last 15 minutes: now 3, highest 12");
});

test("queue backlog alerts: texts, links and notification tags", () => {
  const alert = { event: "queue-backlog", queue: "celery", depth: 12, threshold: 10, seconds: 60, since: 1, time: 61 };
  const message = alertMessage(alert);
  assert.equal(message.title, "Celery queue backlog: celery");
  assert.equal(message.body, "12 messages waiting (alert when over 10 messages for 60 s)");
  assert.equal(message.announcement, "Queue backlog: celery has 12 messages (threshold 10).");
  assert.equal(message.href, "/queues/celery");
  assert.equal(message.tag, "queue-backlog:celery");
  const cleared = alertMessage({ ...alert, event: "queue-backlog-cleared", depth: 2 });
  assert.equal(cleared.title, "Celery queue backlog cleared: celery");
  assert.equal(cleared.body, "2 messages waiting, back within its alert threshold");
  assert.equal(cleared.announcement, "Queue backlog cleared: celery.");
  assert.equal(alertMessage({ event: "queue-something", queue: "q" }), null);
  // Untrusted names stay in the path segment.
  assert.equal(alertMessage({ ...alert, queue: "a/b?c" }).href, "/queues/a%2Fb%3Fc");
  const lost = alertMessage({ event: "worker-lost", hostname: "w@h", orphaned: [] });
  assert.equal(lost.href, "/workers/w%40h");
  assert.equal(lost.tag, "worker-lost:w@h");
});

test("a table of many queues shows the flagged, the growing and the deepest, in name order", async () => {
  const { shownQueues, queueCountText } = await import("../../static/js/helpers/queue_info.js");
  const queues = Array.from({ length: 10 }, (_, i) => ({ name: `q-${i}`, depth: i }));
  assert.equal(shownQueues(queues, 10), queues);
  queues[1].no_consumer = true;
  queues[2].growing = true;
  assert.deepEqual(shownQueues(queues, 4).map((q) => q.name), ["q-1", "q-2", "q-8", "q-9"]);
  assert.equal(queueCountText(4, 2000), "4 of 2,000 watched (the flagged and deepest)");
  assert.equal(queueCountText(3, 3), "3 watched");
  assert.equal(queueCountText(0, 0), "");
});
