// Tests of the pure display helpers: durations, ages, values and the no-task-events hint.
import { test } from "node:test";
import assert from "node:assert/strict";

import { formatAge, formatDelta, formatDuration } from "../../static/js/helpers/duration.js";
import { EMPTY, formatValue, orUnknown, shortUuid, taskHref, zonedSeconds } from "../../static/js/helpers/format.js";
import { createNoTaskEventsHint, NO_TASK_EVENTS_HINT_DELAY_MS } from "../../static/js/helpers/hint.js";
import { latestRequest } from "../../static/js/helpers/latest.js";

test("durations", () => {
  assert.equal(formatDuration(null), "—");
  assert.equal(formatDuration(0.0123), "12 ms");
  assert.equal(formatDuration(1.234), "1.23 s");
  assert.equal(formatDuration(42.25), "42.3 s");
  assert.equal(formatDuration(185), "3 min 5 s");
  assert.equal(formatDuration(7200), "2 h");
  assert.equal(formatDuration(90000), "1 d 1 h");
});

test("ages never go negative", () => {
  assert.equal(formatAge(-3), "0 s ago");
  assert.equal(formatAge(5.9), "5 s ago");
  assert.equal(formatAge(61), "1 min 1 s ago");
  assert.equal(formatAge(null), "never");
});

test("deltas are signed", () => {
  assert.equal(formatDelta(0.5), "+500 ms");
  assert.equal(formatDelta(-2), "−2.00 s");
});

test("values and links", () => {
  assert.equal(formatValue(null), EMPTY);
  assert.equal(formatValue("(1, 2)"), "(1, 2)");
  assert.equal(formatValue({ a: 1 }), '{\n  "a": 1\n}');
  assert.equal(orUnknown(null, "unknown (no task-sent event)"), "unknown (no task-sent event)");
  assert.equal(orUnknown("celery", "x"), "celery");
  assert.equal(shortUuid("0123456789abcdef"), "01234567");
  assert.equal(taskHref("javascript:alert(1)"), "/tasks/javascript%3Aalert(1)");
});

test("the no-task-events hint waits for its delay and resets", () => {
  const hint = createNoTaskEventsHint();
  assert.equal(hint.update(2, 0, 0), false);
  assert.equal(hint.update(2, 0, NO_TASK_EVENTS_HINT_DELAY_MS - 1), false);
  assert.equal(hint.update(2, 0, NO_TASK_EVENTS_HINT_DELAY_MS), true);
  assert.equal(hint.update(2, 5, NO_TASK_EVENTS_HINT_DELAY_MS + 1), false);
  assert.equal(hint.update(0, 0, NO_TASK_EVENTS_HINT_DELAY_MS + 2), false);
  assert.equal(hint.update(1, 0, NO_TASK_EVENTS_HINT_DELAY_MS + 3), false);
});

test("only the latest request may render", () => {
  const begin = latestRequest();
  const first = begin();
  assert.equal(first(), true);
  const second = begin();
  assert.equal(first(), false); // a slow answer to the first request is dropped
  assert.equal(second(), true);
  const other = latestRequest()(); // each panel counts its own requests
  assert.equal(second(), true);
  assert.equal(other(), true);
});

test("the page's own paths go under the dashboard's prefix; other URLs are left alone", async () => {
  const { underBase, installCsrf } = await import("../../static/js/helpers/csrf.js");
  assert.equal(underBase("/api/tasks?limit=5", "/celery"), "/celery/api/tasks?limit=5");
  assert.equal(underBase("/api/tasks", ""), "/api/tasks");
  assert.equal(underBase("//elsewhere.example/x", "/celery"), "//elsewhere.example/x");
  assert.equal(underBase("https://elsewhere.example/x", "/celery"), "https://elsewhere.example/x");
  const sent = [];
  const target = { location: { href: "http://dash.example/celery/tasks", origin: "http://dash.example" },
    fetch: (input, init) => { sent.push([input, init]); return Promise.resolve(null); } };
  installCsrf(target, "tok", "/celery");
  await target.fetch("/api/tasks/a/revoke", { method: "POST" });
  await target.fetch("https://other.example/hook", { method: "POST" });
  assert.equal(sent[0][0], "/celery/api/tasks/a/revoke");
  assert.equal(new Headers(sent[0][1].headers).get("X-CSRF-Token"), "tok");
  assert.equal(sent[1][0], "https://other.example/hook");
  assert.equal(sent[1][1].headers, undefined); // no token to another site
});

test("an ETA or expiry with its zone is read as a time; one without, or anything else, is not", () => {
  assert.equal(zonedSeconds("2026-12-01T07:25:03.426121+00:00"), Date.UTC(2026, 11, 1, 7, 25, 3, 426) / 1000);
  assert.equal(zonedSeconds("2026-12-01T16:25:03+09:00"), Date.UTC(2026, 11, 1, 7, 25, 3) / 1000);
  assert.equal(zonedSeconds("2026-12-01 07:25:03Z"), Date.UTC(2026, 11, 1, 7, 25, 3) / 1000);
  assert.equal(zonedSeconds("2026-12-01T07:25:03-0500"), Date.UTC(2026, 11, 1, 12, 25, 3) / 1000);
  assert.equal(zonedSeconds(1764574000.5), 1764574000.5);
  assert.equal(zonedSeconds("2026-11-29T12:00:00"), null);  // no zone: the sender's, unknown here
  assert.equal(zonedSeconds("tomorrow"), null);
  assert.equal(zonedSeconds("2026-13-45T99:99:99Z"), null);
  assert.equal(zonedSeconds(null), null);
});
