// Tests of the alert rules' DOM-free helpers (banner, durations, silences, rules in words, links,
// history pages, silence answers) and of the store keeping the active alerts.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  alertOrder, bannerAlerts, bannerLevel, bannerText, coveringSilence, firingFor, HISTORY_PAGE_SIZE, historyQuery,
  isSilenced, MAX_BANNER_SUMMARY_CHARS, mergeHistory, notifyText, resolvedText, ruleText, safeLink, silenceOutcome,
  silenceScope, silencedText, subjectText, summaryText, untilText,
} from "../../static/js/helpers/alert_rules.js";
import { formatClockMinutes } from "../../static/js/helpers/format.js";
import { createStore } from "../../static/js/store.js";

const NOW = 1_800_000_000;
const alert = (id, extra = {}) => ({
  id, rule: "stuck", kind: "task-runtime", severity: "warning", subject: `uuid-${id}`,
  summary: `task ${id} has been running for 3 s`, started: NOW - 100 + id, resolved: null, value: 3,
  silenced_until: null, link: `/tasks/uuid-${id}`, ...extra,
});

test("the banner shows the unsilenced alerts, critical first, then the oldest first", () => {
  const active = [
    alert(1, { started: NOW - 50 }),
    alert(2, { started: NOW - 90 }),
    alert(3, { severity: "critical", started: NOW - 10 }),
    alert(4, { silenced_until: NOW + 60 }),
    alert(5, { silenced_until: NOW - 1 }), // the silence has run out
  ];
  assert.deepEqual(bannerAlerts(active, NOW).map((a) => a.id), [3, 5, 2, 1]);
  assert.deepEqual(bannerAlerts(null, NOW), []);
  assert.deepEqual(bannerAlerts([null, "x"], NOW), []);
  assert.equal(isSilenced(active[3], NOW), true);
  assert.equal(isSilenced(active[4], NOW), false);
  assert.equal(isSilenced(alert(6, { silenced_until: "later" }), NOW), false);
  assert.deepEqual([alert(2), alert(1)].sort(alertOrder).map((a) => a.id), [1, 2]);
});

test("the banner is red with a critical alert and amber without", () => {
  assert.equal(bannerLevel([alert(1), alert(2, { severity: "critical" })]), "error");
  assert.equal(bannerLevel([alert(1)]), "warning");
});

test("the banner's text lists up to three summaries, then how many more", () => {
  assert.equal(bannerText([]), "");
  assert.equal(bannerText([alert(1, { summary: "queue default holds 1200 messages" })]),
    "1 alert firing: queue default holds 1200 messages");
  const many = [1, 2, 3, 4, 5].map((id) => alert(id, { summary: `s${id}` }));
  assert.equal(bannerText(many.slice(0, 2)), "2 alerts firing: s1; s2");
  assert.equal(bannerText(many), "5 alerts firing: s1; s2; s3 and 2 more");
  // A summary is capped, on whole characters; a missing one is the rule's name.
  const long = bannerText([alert(1, { summary: "😀".repeat(300) })]);
  assert.equal(long, `1 alert firing: ${"😀".repeat(MAX_BANNER_SUMMARY_CHARS - 1)}…`);
  assert.equal(summaryText(alert(1, { summary: null })), "stuck");
  // Hostile text stays what it is: the panels put it in with textContent.
  assert.equal(bannerText([alert(1, { summary: "<img src=x onerror=alert(1)>" })]), "1 alert firing: <img src=x onerror=alert(1)>");
});

test("only paths of this dashboard are links", () => {
  assert.equal(safeLink("/tasks/0b1c"), "/tasks/0b1c");
  assert.equal(safeLink("/workers/celery%40w1"), "/workers/celery%40w1");
  assert.equal(safeLink("/"), "/");
  for (const bad of ["//evil.example/x", "/\\evil.example", "https://evil.example/", "javascript:alert(1)",
    "tasks/x", "/\t/evil.example", "/\n/evil.example", "/a b", "", null, 42, { href: "/x" }]) {
    assert.equal(safeLink(bad), null, String(bad));
  }
});

test("how long an alert fired, and how it ended", () => {
  assert.equal(firingFor(alert(1, { started: NOW - 300 }), NOW), "for 5 min");
  assert.equal(firingFor(alert(1, { started: NOW + 5 }), NOW), "for 0 s"); // never negative
  assert.equal(firingFor(alert(1, { started: null }), NOW), "");
  assert.equal(resolvedText(alert(1)), "firing");
  assert.equal(resolvedText(alert(1, { started: NOW - 180, resolved: NOW })), "resolved after 3 min");
  assert.equal(resolvedText(alert(1, { started: NOW - 2.4, resolved: NOW })), "resolved after 2 s");
});

test("silences: which covers an alert, until when and by whom", () => {
  const silenced = alert(1, { silenced_until: NOW + 900 });
  const silences = [
    { rule: "stuck", subject: "uuid-1", until: NOW + 900, who: "alice", at: NOW },
    { rule: "stuck", subject: "uuid-2", until: NOW + 9000, who: "bob", at: NOW },
    { rule: "other", subject: null, until: NOW + 9000, who: "carol", at: NOW },
  ];
  assert.equal(coveringSilence(silenced, silences, NOW).who, "alice");
  const ruleWide = { rule: "stuck", subject: null, until: NOW + 1200, who: "dave", at: NOW };
  assert.equal(coveringSilence(silenced, [...silences, ruleWide], NOW).who, "dave"); // the longest
  assert.equal(coveringSilence(silenced, silences, NOW + 1000), null); // run out
  assert.equal(silencedText(silenced, silences, NOW), `silenced until ${formatClockMinutes(NOW + 900)} by alice`);
  assert.equal(silencedText(silenced, [], NOW), `silenced until ${formatClockMinutes(NOW + 900)}`);
  assert.equal(silencedText(alert(1), silences, NOW), "");
  assert.equal(silenceScope(ruleWide), "every subject");
  assert.equal(silenceScope(silences[0]), "uuid-1");
  assert.equal(subjectText(""), "—");
});

test("a time to come shows its day when it is not today", () => {
  const noon = new Date(2027, 2, 3, 12, 0).getTime() / 1000;
  assert.equal(untilText(noon + 3600, noon), formatClockMinutes(noon + 3600));
  assert.match(untilText(noon + 86400, noon), new RegExp(`^${formatClockMinutes(noon + 86400)} .+4`));
  assert.equal(untilText(null, noon), "—");
});

test("rules in words", () => {
  assert.equal(ruleText({ name: "backing up", kind: "queue-depth", severity: "warning", for: 120, queue: "default", above: 1000 }),
    "queue-depth: default over 1,000 messages for 2 min");
  assert.equal(ruleText({ name: "q", kind: "queue-depth", for: 0, queue: "*", above: 1 }), "queue-depth: any queue over 1 message");
  assert.equal(ruleText({ kind: "worker-lost", for: 0 }), "worker-lost: a worker stops sending heartbeats without shutting down");
  assert.equal(ruleText({ kind: "queue-wait", for: 0, queue: "billing-*", seconds: 300 }),
    "queue-wait: the oldest message in billing-* waiting over 5 min");
  assert.equal(ruleText({ kind: "failure-rate", for: 0, task: "billing.*", above: 5, window: 300, min_count: 20 }),
    "failure-rate: billing.* failing over 5 % of its runs over 5 min (once 20 runs finished)");
  assert.equal(ruleText({ kind: "task-runtime", for: 0, task: "reports.*", seconds: 1800 }), "task-runtime: reports.* running over 30 min");
  assert.equal(ruleText({ kind: "task-runtime", for: 0, task: "*", seconds: 1 }), "task-runtime: any task running over 1 s");
  assert.equal(ruleText({ kind: "no-success", for: 0, task: "reports.nightly", seconds: 90000 }),
    "no-success: no reports.nightly succeeding for 1 d 1 h");
  assert.equal(ruleText({ kind: "event-stream", for: 0, seconds: 30 }),
    "event-stream: the event stream cut, or silent for 30 s while workers are online");
  // A kind this page does not know lists its fields as they come.
  assert.equal(ruleText({ name: "n", kind: "disk-full", severity: "warning", for: 0, path: "/var", above: 90 }), "disk-full: path /var, above 90");
});

test("where the alerts are sent", () => {
  assert.equal(notifyText({ webhooks: 0, slack: 0 }), "");
  assert.equal(notifyText({ webhooks: 1, slack: 2 }), "Also sent to 1 webhook and 2 Slack channels.");
  assert.equal(notifyText(undefined), "");
});

test("history pages: the first, the next, and a refresh merged into the pages loaded", () => {
  assert.equal(historyQuery(), `?limit=${HISTORY_PAGE_SIZE}`);
  assert.equal(historyQuery(42), `?limit=${HISTORY_PAGE_SIZE}&before=42`);
  const shown = [alert(5), alert(4), alert(2)];
  const fresh = [alert(6), alert(5, { resolved: NOW }), alert(4)];
  const merged = mergeHistory(shown, fresh);
  assert.deepEqual(merged.map((a) => a.id), [6, 5, 4, 2]);
  assert.equal(merged[1].resolved, NOW);
});

test("what a silence request came to", () => {
  const silence = (extra) => ({ ok: true, silence: { rule: "stuck", subject: "uuid-1", until: NOW + 900, who: "alice", at: NOW, ...extra } });
  assert.deepEqual(silenceOutcome({ status: 200, body: silence() }, NOW),
    { level: "ok", summary: `Silenced until ${formatClockMinutes(NOW + 900)}`, lines: [] });
  assert.equal(silenceOutcome({ status: 200, body: silence({ subject: null }) }, NOW).summary,
    `Rule silenced until ${formatClockMinutes(NOW + 900)}`);
  assert.equal(silenceOutcome({ status: 200, body: silence({ until: NOW }) }, NOW).summary, "Silence lifted");
  assert.deepEqual(silenceOutcome({ status: 404, statusText: "NOT FOUND", body: { error: "no rule named 'x'" } }, NOW),
    { level: "error", summary: "Refused.", lines: ["no rule named 'x'"] });
  assert.deepEqual(silenceOutcome({ status: 403, statusText: "FORBIDDEN", body: null }, NOW).lines, ["403 FORBIDDEN"]);
  assert.equal(silenceOutcome({ networkError: "Failed to fetch" }, NOW).level, "error");
  assert.equal(silenceOutcome({ status: 200, body: { ok: true } }, NOW).summary, "The answer could not be read.");
});

test("the store keeps the active alerts from the snapshot and each alerts message", () => {
  const store = createStore();
  const events = [];
  store.subscribe((event) => events.push(event.type));
  assert.deepEqual(store.alerts, []);
  store.applySnapshot({ seq: 1, workers: [], tasks: [], queues: [], alerts: [alert(1)] });
  assert.deepEqual(store.alerts.map((a) => a.id), [1]);
  store.setAlerts({ active: [alert(1), alert(2)] });
  assert.deepEqual(store.alerts.map((a) => a.id), [1, 2]);
  assert.deepEqual(events, ["snapshot", "alerts"]);
  store.setAlerts({ active: "nonsense" });
  assert.deepEqual(store.alerts, []);
  store.setAlerts({ active: [alert(3)] });
  store.applySnapshot({ seq: 2, workers: [], tasks: [], queues: [] }); // a snapshot replaces all state
  assert.deepEqual(store.alerts, []);
});
