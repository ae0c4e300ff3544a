// One task as a table row (cloned from <template data-template="task-row">): used by the
// recent tasks panel and the tasks search. Fields a template lacks are skipped.

import { setField, setFieldAttr } from "../helpers/dom.js";
import { formatDuration } from "../helpers/duration.js";
import { EMPTY, formatInteger, formatIso, formatTime, shortUuid, taskHref, workerHref } from "../helpers/format.js";

/** Fill (or refill) `row` from `task`; all text goes in with textContent. */
export function fillTaskRow(row, task) {
  const state = task.state ?? "PENDING";
  row.dataset.uuid = task.uuid;
  row.dataset.state = state;
  setField(row, "name", task.name ?? "unknown");
  setFieldAttr(row, "name", "title", task.name ?? null);
  setField(row, "uuid", shortUuid(task.uuid));
  setFieldAttr(row, "uuid", "href", taskHref(task.uuid));
  setFieldAttr(row, "uuid", "title", task.uuid);
  setField(row, "state", state);
  setFieldAttr(row, "state", "data-state", state);
  setField(row, "worker", task.worker ?? EMPTY);
  for (const link of row.querySelectorAll('a[data-field="worker"]')) {
    if (task.worker) link.setAttribute("href", workerHref(task.worker));
    else link.removeAttribute("href");
  }
  setField(row, "queue", task.queue ?? EMPTY);
  setField(row, "received", formatTime(task.received));
  setFieldAttr(row, "received", "title", formatIso(task.received));
  setField(row, "started", formatTime(task.started));
  setFieldAttr(row, "started", "title", formatIso(task.started));
  setField(row, "runtime", formatDuration(task.runtime));
  setField(row, "retries", task.retries ? formatInteger(task.retries) : "");
  const flag = task.lost ? "unknown" : task.orphaned ? "orphaned" : "";
  row.toggleAttribute("data-orphaned", flag !== "");
  setField(row, "orphaned", flag);
  setFieldAttr(row, "orphaned", "title", task.lost ? task.lost : "Its worker was lost while it was in flight");
  for (const badge of row.querySelectorAll('[data-field="orphaned"]')) badge.hidden = flag === "";
}
