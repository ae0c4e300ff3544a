// A worker's Control section: ping, task events, pool size and autoscale, consumers (add one here,
// cancel one beside each queue it consumes), rate and time limits of a task type, pool restart and
// shutdown (both asked first in a <dialog> naming the worker). Only the controls the user's role
// allows show; one line says what the others need. The worker's reply, or why nothing was done,
// shows in the section's status area; after a change to its pool or queues the page inspects the
// worker again (its Refresh button) until the facts and lists show the change.

import {
  SETTLE_EVERY_MS, SETTLE_LIMIT_MS, changeSeen, describeAction, isDestructive, processCount, refreshesAfter,
  someWorkerAgreed, workerActionBody, workerActionLabel, workerConfirmation, workerControls, workerOutcome,
} from "../helpers/worker_actions.js";
import { confirmDialog, postAction, showOutcome } from "./action_ui.js";

const INPUTS = ["n", "max", "min", "queue", "task", "rate", "soft", "hard"];

/**
 * Mount the Control section (`[data-worker-control]`) of the worker page `root`.
 * @param {{hostname: string, enabled: boolean, admin: boolean}} options `enabled`: the dashboard
 *   takes actions from this user (an operator at least); `admin`: the user is an admin
 */
export function mountWorkerActions(root, { hostname, enabled, admin = false }) {
  const control = root.querySelector("[data-worker-control]");
  if (!control) return;
  const base = `/api/workers/${encodeURIComponent(hostname)}`;
  const groups = control.querySelector("[data-control-groups]");
  const off = control.querySelector('[data-field="control-off"]');
  const outcomeArea = control.querySelector("[data-action-outcome]");
  const taskSelect = control.querySelector('[data-input="task"]');
  const refreshButton = root.querySelector("[data-refresh]");
  const registered = root.querySelector('[data-section="registered"] [data-list]');
  const consumed = root.querySelector('[data-section="active_queues"] [data-list]');
  const processesField = root.querySelector('[data-field="processes"]');
  const ask = confirmDialog(control);
  let sending = false;
  let settling = 0; // the round of inspects after the latest action that changes the pool or queues

  const { actions: allowed, note } = workerControls(enabled, admin);
  off.textContent = note ?? "";
  off.hidden = note === null;
  groups.hidden = allowed.length === 0;
  if (allowed.length === 0) return;
  for (const button of control.querySelectorAll("[data-worker-action]")) button.hidden = !allowed.includes(button.dataset.workerAction);
  for (const group of control.querySelectorAll(".control-group")) {
    group.hidden = !group.querySelector("[data-worker-action]:not([hidden])");
  }
  const mayCancel = allowed.includes("cancel-consumer");
  if (!mayCancel) dropCancelColumn(root);

  function inputs() {
    const values = {};
    for (const key of INPUTS) {
      const input = control.querySelector(`[data-input="${key}"]`);
      // A number field holding something it cannot read says "" like an empty one: not the same.
      values[key] = input?.validity?.badInput ? "?" : input?.value ?? "";
    }
    return values;
  }

  /** The queue named in the row of a Cancel button of the Queues consumed list. */
  function rowQueue(button) {
    return button.closest("tr")?.querySelector('[data-field="name"]')?.textContent ?? "";
  }

  function setBusy() {
    for (const button of root.querySelectorAll("[data-worker-action]")) button.disabled = sending;
    control.toggleAttribute("aria-busy", sending);
  }

  async function run(action, button) {
    if (sending || !allowed.includes(action)) return;
    const label = workerActionLabel(action);
    const built = workerActionBody(action, action === "cancel-consumer" ? { queue: rowQueue(button) } : inputs());
    if (!built.ok) {
      showOutcome(outcomeArea, { level: "error", summary: `${label}: nothing sent.`, lines: [built.error] });
      return;
    }
    if (isDestructive(action) && !(await ask(workerConfirmation(action, hostname), button))) return;
    const before = shownState();
    sending = true;
    setBusy();
    showOutcome(outcomeArea, { level: "pending", summary: `${describeAction(action, built.body)}: sending…`, lines: [] });
    const answer = await postAction(`${base}/${action}`, built.body);
    sending = false;
    setBusy();
    const shown = workerOutcome(action, answer, built.body);
    showOutcome(outcomeArea, shown);
    if (refreshesAfter(action) && someWorkerAgreed(answer.body)) settle(action, built.body, before);
  }

  /** What the last inspect shows of the pool and the queues consumed. */
  function shownState() {
    return {
      processes: processCount(processesField?.textContent),
      queues: [...(consumed?.querySelectorAll('[data-field="name"]') ?? [])].map((node) => node.textContent),
    };
  }

  /**
   * Inspect the worker again (the page's Refresh) until the change `action` makes shows: a pool
   * resizes, and a consumer starts or stops, a few seconds after the worker replied.
   */
  async function settle(action, body, before) {
    const round = ++settling; // a later action's rounds replace these
    const deadline = Date.now() + SETTLE_LIMIT_MS;
    for (;;) {
      await inspectOnce();
      if (round !== settling || changeSeen(action, body, before, shownState()) || Date.now() >= deadline) return;
      await new Promise((resolve) => { setTimeout(resolve, SETTLE_EVERY_MS); });
      if (round !== settling) return;
    }
  }

  /** Resolve once no inspect is under way (the Refresh button is enabled). */
  function refreshIdle() {
    return new Promise((resolve) => {
      if (!refreshButton.disabled) {
        resolve();
        return;
      }
      const observer = new MutationObserver(() => {
        if (refreshButton.disabled) return;
        observer.disconnect();
        resolve();
      });
      observer.observe(refreshButton, { attributes: true, attributeFilter: ["disabled"] });
    });
  }

  /** Inspect the worker through the page's Refresh, after any inspect under way; resolve when done. */
  async function inspectOnce() {
    if (!refreshButton) return;
    await refreshIdle();
    refreshButton.click();
    await refreshIdle();
  }

  /** Offer the task types the worker registered (as the Registered list shows them after an inspect). */
  function renderTaskOptions() {
    const names = [...new Set([...(registered?.querySelectorAll('[data-field="name"]') ?? [])].map((node) => node.textContent))]
      .filter(Boolean).sort((a, b) => a.localeCompare(b));
    const chosen = taskSelect.value;
    const placeholder = document.createElement("option");
    placeholder.value = "";
    placeholder.textContent = names.length ? "Choose a task type" : "None known: Refresh to inspect";
    taskSelect.replaceChildren(placeholder, ...names.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      return option;
    }));
    taskSelect.value = names.includes(chosen) ? chosen : "";
  }

  /** Name each Cancel button of the Queues consumed list after its queue (or drop it: not allowed). */
  function labelCancelButtons() {
    for (const button of consumed?.querySelectorAll('[data-worker-action="cancel-consumer"]') ?? []) {
      if (!mayCancel) {
        (button.closest("td") ?? button).remove();
        continue;
      }
      button.setAttribute("aria-label", `Cancel consumer of ${rowQueue(button)}`);
      button.disabled = sending;
    }
  }

  root.addEventListener("click", (event) => {
    const button = event.target.closest?.("[data-worker-action]");
    if (button && root.contains(button)) run(button.dataset.workerAction, button);
  });
  if (registered) new MutationObserver(renderTaskOptions).observe(registered, { childList: true });
  if (consumed) new MutationObserver(labelCancelButtons).observe(consumed, { childList: true });
  renderTaskOptions();
  labelCancelButtons();
}

/**
 * Drop the Consumer column (a Cancel button per queue) of the Queues consumed list: from its
 * header and from the row template, before any row is made from it.
 */
function dropCancelColumn(root) {
  const template = root.querySelector('template[data-template="consumed-queue-row"]')
    ?? document.querySelector('template[data-template="consumed-queue-row"]');
  const cell = template?.content.querySelector('[data-worker-action="cancel-consumer"]')?.closest("td");
  if (!cell) return;
  const index = [...cell.parentElement.children].indexOf(cell);
  cell.remove();
  root.querySelector('[data-section="active_queues"] thead tr')?.children[index]?.remove();
}
