// The task types page's own panel: every task name with its counts and runtimes.

import { mountTaskTypes } from "../panels/task_types.js";

/** @param {{store: object}} page */
export function mount({ store }) {
  for (const root of document.querySelectorAll('[data-panel="task-types"]')) mountTaskTypes(root, store);
}
