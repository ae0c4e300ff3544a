// The alerts page: active and past alerts, silences, and the rules.

import { mountAlerts } from "../panels/alerts.js";

/** @param {{bootstrap: object, store: object}} page */
export function mount({ bootstrap, store }) {
  const root = document.querySelector('[data-panel="alerts"]');
  if (root) mountAlerts(root, store, { actions: bootstrap.actions === true });
}
