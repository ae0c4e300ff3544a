// One worker's page: its detail, live activity and the controls an operator may use on it.

import { mountWorkerActions } from "../panels/worker_actions.js";
import { mountWorkerDetail } from "../panels/worker_detail.js";

/** @param {{bootstrap: object, store: object, live: object, announce: Function}} page */
export function mount({ bootstrap, store, live, announce }) {
  const root = document.querySelector('[data-panel="worker-detail"]');
  if (!root || !bootstrap.hostname) return;
  mountWorkerDetail(root, store, { hostname: bootstrap.hostname, live, announce });
  mountWorkerActions(root, { hostname: bootstrap.hostname, enabled: bootstrap.actions === true, admin: bootstrap.admin === true });
}
