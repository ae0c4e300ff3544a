// Tests of the /periodic page's DOM-free helpers: status words, next-run text, the runs strip.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  matchText, nextRunText, runMarks, sourceText, statusLevel, statusText, summaryText,
} from "../../static/js/helpers/periodic.js";

const NOW = 1_800_000_000;
const entry = (extra = {}) => ({
  name: "cleanup", task: "app.cleanup", args: "()", kwargs: "{}", schedule: "every 5 minutes", error: null,
  next_run: NOW + 4, last_run: null, missed: 0, status: "ok", match: "name", runs: [], ...extra,
});

test("a status reads as words with its level, and a missed count when more than one", () => {
  assert.equal(statusText(entry()), "ok");
  assert.equal(statusLevel(entry()), "ok");
  assert.equal(statusText(entry({ status: "missed", missed: 1 })), "missed");
  assert.equal(statusText(entry({ status: "missed", missed: 3 })), "missed 3 runs");
  assert.equal(statusLevel(entry({ status: "late" })), "warning");
  assert.equal(statusText(entry({ status: "unknown" })), "no run seen yet");
  assert.equal(statusText(entry({ error: "ImproperlyConfigured: ephem" })), "unreadable");
  assert.equal(statusLevel(entry({ error: "x" })), "error");
  assert.equal(statusText(entry({ status: "something new" })), "no run seen yet");
});

test("the next run is relative to now, in the future or gone by", () => {
  assert.equal(nextRunText(entry(), NOW), "in 4 s");
  assert.equal(nextRunText(entry({ next_run: NOW - 125 }), NOW), "2 min 5 s ago");
  assert.equal(nextRunText(entry({ next_run: null }), NOW), "—");
});

test("the runs strip puts the missed runs before the run that followed them and after the last", () => {
  const runs = [
    { uuid: "a", at: NOW - 900, state: "SUCCESS", timing: "on-time", missed_before: 0 },
    { uuid: "b", at: NOW - 300, state: "FAILURE", timing: "failed", missed_before: 1 },
    { uuid: "c", at: NOW - 10, state: "STARTED", timing: "running", missed_before: 0 },
  ];
  const marks = runMarks(entry({ runs, status: "missed", missed: 2 }));
  assert.deepEqual(marks.map((m) => m.kind), ["on-time", "missed", "failed", "running", "missed", "missed"]);
  assert.deepEqual(marks.map((m) => m.uuid), ["a", null, "b", "c", null, null]);
  assert.equal(runMarks(entry({ runs, status: "missed", missed: 500 }), 4).length, 4);
});

test("the summary counts entries needing attention; the match is said in words", () => {
  assert.equal(summaryText([entry()]), "1 entry");
  assert.equal(summaryText([entry(), entry({ status: "failed" }), entry({ error: "x" })]), "3 entries, 2 need attention");
  assert.equal(matchText(entry({ match: "arguments" })), "matched by task and arguments");
  assert.equal(matchText(entry()), "matched by task name");
});

test("a disabled entry and one kept outside the app say so", () => {
  assert.equal(statusText(entry({ enabled: false, status: "unknown" })), "disabled");
  assert.equal(statusLevel(entry({ enabled: false })), "muted");
  assert.equal(sourceText(entry({ source: "redbeat" })), "from redbeat");
  assert.equal(sourceText(entry({ source: "app" })), "");
});
