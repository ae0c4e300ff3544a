// One task type's page: its charts, runtimes and failures.

import { mountTaskTypeDetail } from "../panels/task_type_detail.js";

/** @param {{bootstrap: object}} page */
export function mount({ bootstrap }) {
  const root = document.querySelector('[data-panel="task-type-detail"]');
  if (root && typeof bootstrap.task_type === "string") {
    mountTaskTypeDetail(root, { name: bootstrap.task_type, actions: bootstrap.actions === true });
  }
}
