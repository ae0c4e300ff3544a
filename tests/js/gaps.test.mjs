// Tests of the gap helpers: the overview's marker and the task page's note.
import { test } from "node:test";
import assert from "node:assert/strict";

import { gapMarkerText, RECENT_GAP_SECONDS, recentGaps, taskGapText } from "../../static/js/helpers/gaps.js";
import { formatTime } from "../../static/js/helpers/format.js";

const NOW = 1_800_000_000;
const gap = (start, end, cause = "broker connection lost") => ({ start, end, cause });

test("the marker names the newest gap of the last hour and counts the others", () => {
  const gaps = [gap(NOW - 7300, NOW - 7200), gap(NOW - 600, NOW - 590), gap(NOW - 100, NOW - 80, "subscriber cut")];
  assert.deepEqual(recentGaps(gaps, NOW).map((g) => g.end), [NOW - 80, NOW - 590]);
  assert.equal(gapMarkerText(gaps, NOW),
    `Events may be missing between ${formatTime(NOW - 100)} and ${formatTime(NOW - 80)} (subscriber cut); 1 more in the last hour.`);
  assert.equal(gapMarkerText([gap(NOW - RECENT_GAP_SECONDS - 10, NOW - RECENT_GAP_SECONDS - 1)], NOW), "");
  assert.equal(gapMarkerText(undefined, NOW), "");
  assert.equal(gapMarkerText([{ start: 1, end: "x", cause: "y" }], NOW), "");
});

test("a task whose life crosses gaps says so; one that crosses none says nothing", () => {
  assert.equal(taskGapText([]), "");
  assert.equal(taskGapText(null), "");
  const text = taskGapText([gap(NOW - 10, NOW - 5, "dashboard stopped"), gap(NOW - 50, NOW - 40)]);
  assert.match(text, /^This task's life crosses a gap in the event stream: events may be missing between .* \(dashboard stopped\), and 1 more\. /);
});

test("the result look-up says what the backend knows, and whether the task moved on", async () => {
  const { lookupText } = await import("../../static/js/helpers/gaps.js");
  assert.equal(lookupText({ status: 200, body: { state: "SUCCESS", result: "'ok'", applied: true } }),
    "The result backend says SUCCESS: 'ok'. The task was moved on to that state, marked as reconciled.");
  assert.equal(lookupText({ status: 200, body: { state: "FAILURE", result: "x", applied: false } }), "The result backend says FAILURE.");
  assert.match(lookupText({ status: 200, body: { state: "PENDING" } }), /does not know this task/);
  assert.equal(lookupText({ status: 503, statusText: "Service Unavailable", body: { error: "the result backend did not answer: x" } }),
    "the result backend did not answer: x");
  assert.equal(lookupText({ networkError: "offline" }), "Could not reach the dashboard: offline");
});
