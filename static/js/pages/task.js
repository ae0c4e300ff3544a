// The task page's own panels: the task's detail and timeline, its actions and its result look-up.

import { mountResultLookup } from "../panels/result_lookup.js";
import { mountTaskActions } from "../panels/task_actions.js";
import { mountTaskDetail } from "../panels/task_detail.js";

/** @param {{bootstrap: object, store: object, live: object, announce: Function}} page */
export function mount({ bootstrap, store, live, announce }) {
  const detail = document.querySelector('[data-panel="task-detail"]');
  if (!detail || !bootstrap.uuid) return;
  const actions = detail.querySelector("[data-task-actions]");
  const onTask = actions ? mountTaskActions(actions, {
    uuid: bootstrap.uuid, enabled: bootstrap.actions === true, links: detail.querySelector("[data-retry-links]"),
  }) : undefined;
  mountTaskDetail(detail, store, { uuid: bootstrap.uuid, live, announce, onTask });
  const lookup = detail.querySelector("[data-result-lookup]");
  if (lookup && bootstrap.result_backend === true) mountResultLookup(lookup, { uuid: bootstrap.uuid });
}
