// A queue's Purge (admins only): asks first in a <dialog> naming the queue and how many messages
// wait in it, then says how many the broker removed, or why nothing was. The depth falls live
// afterwards.

import { purgeConfirmation, purgeOutcome, queueControls } from "../helpers/worker_actions.js";
import { confirmDialog, postAction, showOutcome } from "./action_ui.js";

/**
 * Mount the actions (`[data-queue-actions]`) of the queue page `root`.
 * @param {{name: string, enabled: boolean, admin: boolean, shownDepth?: () => number|null}} options
 *   `enabled`: the dashboard takes actions from this user (an operator at least); `admin`: the user is an
 *   admin, who may purge; `shownDepth`: the depth the page shows (its panel may have it before the store)
 */
export function mountQueueActions(root, store, { name, enabled, admin = false, shownDepth = () => null }) {
  const section = root.querySelector("[data-queue-actions]");
  if (!section) return;
  const purgeButton = section.querySelector('[data-action="purge"]');
  const off = section.querySelector('[data-field="actions-off"]');
  const outcomeArea = section.querySelector("[data-action-outcome]");
  const ask = confirmDialog(section);
  let sending = false;

  const { purge: allowed, note } = queueControls(enabled, admin);
  off.textContent = note ?? "";
  off.hidden = note === null;
  purgeButton.hidden = !allowed;
  if (!allowed) return;

  /** The depth the page shows, else the one last sampled, live from the store; null when not known. */
  function depth() {
    const shown = shownDepth();
    if (typeof shown === "number") return shown;
    const queue = store.queuesSorted().find((q) => q.name === name);
    return typeof queue?.depth === "number" ? queue.depth : null;
  }

  async function purge() {
    if (sending || !(await ask(purgeConfirmation(name, depth()), purgeButton))) return;
    sending = true;
    purgeButton.disabled = true;
    section.setAttribute("aria-busy", "true");
    showOutcome(outcomeArea, { level: "pending", summary: "Purging…", lines: [] });
    const answer = await postAction(`/api/queues/${encodeURIComponent(name)}/purge`, {});
    sending = false;
    purgeButton.disabled = false;
    section.removeAttribute("aria-busy");
    showOutcome(outcomeArea, purgeOutcome(answer));
  }

  purgeButton.addEventListener("click", purge);
}
