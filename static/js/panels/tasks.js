// Recent tasks table: newest first, capped, rows updated in place on state changes.

import { cloneTemplate, placeInOrder, setField, setFieldAttr } from "../helpers/dom.js";
import { formatDuration } from "../helpers/duration.js";
import { EMPTY, formatIso, formatTime, shortUuid, taskHref } from "../helpers/format.js";

/** Rows shown at most in the recent tasks table. */
export const MAX_TASK_ROWS = 100;

export function mountTasks(root, store) {
  const body = root.querySelector("[data-list]");
  const empty = root.querySelector("[data-empty]");
  const rows = new Map(); // uuid -> <tr>

  function render(event) {
    const changed = event?.type === "changes" ? event.changed.tasks : null;
    if (changed && changed.size === 0) return;
    const tasks = store.recentTasks().slice(0, MAX_TASK_ROWS);
    const keep = new Set();
    const ordered = tasks.map((task) => {
      let row = rows.get(task.uuid);
      if (!row) {
        row = cloneTemplate(root, "task-row");
        rows.set(task.uuid, row);
        fill(row, task);
      } else if (!changed || changed.has(task.uuid)) {
        fill(row, task);
      }
      keep.add(task.uuid);
      return row;
    });
    for (const [uuid, row] of rows) {
      if (!keep.has(uuid)) { row.remove(); rows.delete(uuid); }
    }
    placeInOrder(body, ordered);
    if (empty) empty.hidden = tasks.length > 0;
    setField(root, "task-count", `${tasks.length} shown`);
  }

  render();
  return store.subscribe(render);
}

function fill(row, task) {
  row.dataset.uuid = task.uuid;
  row.dataset.state = task.state ?? "PENDING";
  setField(row, "name", task.name ?? "unknown");
  setField(row, "uuid", shortUuid(task.uuid));
  setFieldAttr(row, "uuid", "href", taskHref(task.uuid));
  setFieldAttr(row, "uuid", "title", task.uuid);
  setField(row, "state", task.state ?? "PENDING");
  setFieldAttr(row, "state", "data-state", task.state ?? "PENDING");
  setField(row, "worker", task.worker ?? EMPTY);
  setField(row, "received", formatTime(task.received));
  setFieldAttr(row, "received", "title", formatIso(task.received));
  setField(row, "started", formatTime(task.started));
  setFieldAttr(row, "started", "title", formatIso(task.started));
  setField(row, "runtime", formatDuration(task.runtime));
  row.toggleAttribute("data-orphaned", Boolean(task.orphaned));
  setField(row, "orphaned", task.orphaned ? "orphaned" : "");
  for (const badge of row.querySelectorAll('[data-field="orphaned"]')) badge.hidden = !task.orphaned;
}
