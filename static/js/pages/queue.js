// One queue's page: its depth over time, what waits in it, and purging it.

import { mountQueueActions } from "../panels/queue_actions.js";
import { mountQueueDetail } from "../panels/queue_detail.js";

/** @param {{bootstrap: object, store: object}} page */
export function mount({ bootstrap, store }) {
  const root = document.querySelector('[data-panel="queue-detail"]');
  if (!root || typeof bootstrap.queue !== "string") return;
  let shown = null; // the depth the detail panel shows, which the purge dialog names
  mountQueueDetail(root, store, { name: bootstrap.queue, onShown: (depth) => { shown = depth; } });
  mountQueueActions(root, store, { name: bootstrap.queue, enabled: bootstrap.actions === true, admin: bootstrap.admin === true,
    shownDepth: () => shown });
}
