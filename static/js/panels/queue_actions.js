// A queue's Purge: asks first in a <dialog> naming the queue and how many messages wait in it,
// then says how many the broker removed, or why nothing was. The depth falls live afterwards.

import { purgeConfirmation, purgeOutcome } from "../helpers/worker_actions.js";
import { ACTIONS_OFF } from "../helpers/task_actions.js";
import { confirmDialog, postAction, showOutcome } from "./action_ui.js";

/**
 * Mount the actions (`[data-queue-actions]`) of the queue page `root`.
 * @param {{name: string, enabled: boolean}} options `enabled`: the dashboard takes actions
 */
export function mountQueueActions(root, store, { name, enabled }) {
  const section = root.querySelector("[data-queue-actions]");
  if (!section) return;
  const purgeButton = section.querySelector('[data-action="purge"]');
  const off = section.querySelector('[data-field="actions-off"]');
  const outcomeArea = section.querySelector("[data-action-outcome]");
  const ask = confirmDialog(section);
  let sending = false;

  off.textContent = ACTIONS_OFF;
  off.hidden = enabled;
  purgeButton.hidden = !enabled;
  if (!enabled) return;

  /** The depth last sampled, live from the store; null when not known. */
  function depth() {
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
