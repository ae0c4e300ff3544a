// The periodic tasks page: the beat schedule and each entry's last and next runs.

import { mountPeriodic } from "../panels/periodic.js";

/** @param {{store: object}} page */
export function mount({ store }) {
  const root = document.querySelector('[data-panel="periodic"]');
  if (root) mountPeriodic(root, store);
}
