// Recent tasks table: newest first, capped, rows updated in place on state changes.

import { cloneTemplate, reconcileKeyed, setField } from "../helpers/dom.js";
import { fillTaskRow as fill } from "./task_row.js";

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
    reconcileKeyed(body, rows, tasks, (task) => task.uuid, () => cloneTemplate(root, "task-row"),
      (row, task, isNew) => { if (isNew || !changed || changed.has(task.uuid)) fill(row, task); });
    if (empty) empty.hidden = tasks.length > 0;
    setField(root, "task-count", `${tasks.length} shown`);
  }

  render();
  return store.subscribe(render);
}
