// The /periodic page: every beat schedule entry the dashboard reads, when it should run next, its
// last run (linked), its status and a strip of its recent runs. Refetched from /api/periodic every
// few seconds (the next-run times and the statuses move with the clock, not with events).

import { cloneTemplate, reconcileKeyed, setField, setFieldAttr } from "../helpers/dom.js";
import { formatIso, formatTime, taskHref, taskTypeHref } from "../helpers/format.js";
import { getJson } from "../helpers/http.js";
import { latestRequest } from "../helpers/latest.js";
import {
  matchText, nextRunText, runMarks, sourceText, statusLevel, statusText, summaryText,
} from "../helpers/periodic.js";

/** Refetch this often. */
export const REFRESH_MS = 3000;
/** Retry a failed fetch after this long. */
export const RETRY_FETCH_MS = 5000;

export function mountPeriodic(root, store) {
  const refreshError = root.querySelector("[data-refresh-error]");
  const stopped = root.querySelector("[data-beat-stopped]");
  const errorList = root.querySelector('[data-list="errors"]');
  const table = root.querySelector("[data-table]");
  const body = root.querySelector('[data-list="entries"]');
  const empty = root.querySelector('[data-field="empty"]');
  const rows = new Map(); // entry name -> <tr>
  const beginRequest = latestRequest();
  let timer = null;
  let loaded = false;

  async function load() {
    clearTimeout(timer);
    const isLatest = beginRequest();
    let answer;
    try {
      answer = await getJson("/api/periodic");
    } catch (error) {
      if (!isLatest()) return;
      setField(refreshError, "text", `${loaded ? "Refresh failed" : "Could not load the schedule"}: ${error.message}`);
      refreshError.hidden = false;
      schedule(RETRY_FETCH_MS);
      return;
    }
    if (!isLatest()) return;
    loaded = true;
    refreshError.hidden = true;
    render(answer);
    schedule(REFRESH_MS);
  }

  function schedule(delayMs) {
    clearTimeout(timer);
    timer = setTimeout(() => (document.hidden ? schedule(delayMs) : load()), delayMs);
  }

  function render(answer) {
    const entries = Array.isArray(answer.entries) ? answer.entries : [];
    const now = store.serverNowMs() / 1000;
    errorList.replaceChildren(...(answer.errors ?? []).map((text) => {
      const item = document.createElement("li");
      item.className = "notice";
      item.dataset.level = "error";
      item.textContent = String(text);
      return item;
    }));
    if (answer.beat_stopped) {
      const since = typeof answer.last_run_at === "number" ? ` (the last periodic run was ${formatTime(answer.last_run_at)})` : "";
      setField(stopped, "text", `Beat looks stopped: every entry missed its run${since}.`);
    }
    stopped.hidden = !answer.beat_stopped;
    table.hidden = entries.length === 0;
    empty.hidden = entries.length > 0;
    empty.textContent = answer.configured
      ? "No schedule entry (yet)."
      : "No schedule to watch: start the dashboard with --app naming the Celery app that holds beat_schedule, "
        + "--beat-db for django-celery-beat's database, or --redbeat-url for celery-redbeat's Redis.";
    setField(root, "summary", entries.length ? summaryText(entries) : "");
    reconcileKeyed(body, rows, entries, (entry) => entry.name, () => cloneTemplate(root, "periodic-row"),
      (row, entry) => fill(row, entry, now));
  }

  function fill(row, entry, now) {
    setField(row, "name", entry.name);
    setField(row, "error", entry.error ?? sourceText(entry));
    setField(row, "task", entry.task);
    setFieldAttr(row, "task", "href", taskTypeHref(entry.task));
    setField(row, "arguments", entry.args === "()" && entry.kwargs === "{}" ? "" : `${entry.args} ${entry.kwargs}`);
    setField(row, "schedule", entry.schedule);
    setField(row, "next", nextRunText(entry, now));
    setFieldAttr(row, "next", "datetime", typeof entry.next_run === "number" ? formatIso(entry.next_run) : null);
    const last = entry.last_run;
    setField(row, "last", last ? formatTime(last.at) : "none seen");
    setFieldAttr(row, "last", "href", last ? taskHref(last.uuid) : null);
    setField(row, "last-state", last ? last.state : "");
    setField(row, "status", statusText(entry));
    setFieldAttr(row, "status", "data-level", statusLevel(entry));
    setField(row, "match", entry.error ? "" : matchText(entry));
    const strip = row.querySelector('[data-field="runs"]');
    strip.replaceChildren(...runMarks(entry).map((mark) => {
      const node = document.createElement(mark.uuid ? "a" : "span");
      node.className = "run-mark";
      node.dataset.kind = mark.kind;
      if (mark.uuid) {
        node.href = taskHref(mark.uuid);
        node.title = `${mark.state} at ${formatTime(mark.at)}`;
      } else {
        node.title = "missed";
      }
      node.setAttribute("aria-label", node.title);
      return node;
    }));
  }

  load();
}
