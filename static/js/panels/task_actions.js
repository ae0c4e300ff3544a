// A task's actions: Revoke while it is not finished, Terminate (with a signal) while it runs. Each
// asks first in a <dialog> naming the target; the answer of the workers shows in the panel, and
// the task's new state arrives live like any other change.

import { cloneTemplate, setField } from "../helpers/dom.js";
import {
  ACTIONS_OFF, confirmation, isOffered, offeredActions, outcome, pickSignal, requestBody,
} from "../helpers/task_actions.js";

/**
 * Mount the actions panel on `root` (the `[data-task-actions]` section).
 * @param {{uuid: string, enabled: boolean}} options `enabled`: the dashboard takes actions
 * @returns {(task: object) => void} call with the task whenever it is (re)rendered
 */
export function mountTaskActions(root, { uuid, enabled }) {
  const revokeButton = root.querySelector('[data-action="revoke"]');
  const terminateButton = root.querySelector('[data-action="terminate"]');
  const terminateGroup = root.querySelector('[data-action-group="terminate"]');
  const signalSelect = root.querySelector("[data-action-signal]");
  const dialog = root.querySelector("[data-action-dialog]");
  const confirmButton = dialog.querySelector("[data-dialog-confirm]");
  const outcomeArea = root.querySelector("[data-action-outcome]");
  const none = root.querySelector('[data-field="actions-none"]');
  const off = root.querySelector('[data-field="actions-off"]');
  let task = null;
  let pending = null; // {kind, signal, opener} while the dialog is open
  let sending = false;

  off.textContent = ACTIONS_OFF;

  function update(next) {
    task = next;
    const offered = offeredActions(task?.state, enabled);
    revokeButton.hidden = !offered.revoke;
    terminateGroup.hidden = !offered.terminate;
    off.hidden = !offered.off;
    none.hidden = offered.off || offered.revoke || offered.terminate;
    for (const control of [revokeButton, terminateButton, signalSelect]) control.disabled = sending;
    root.toggleAttribute("aria-busy", sending);
  }

  function open(kind, opener) {
    if (sending || !task || !isOffered(kind, task.state, enabled)) return;
    const signal = pickSignal(signalSelect.value);
    const target = { uuid: task.uuid ?? uuid, name: task.name, worker: task.worker };
    const { title, text, facts, confirm } = confirmation(kind, target, signal);
    setField(dialog, "dialog-title", title);
    setField(dialog, "dialog-text", text);
    dialog.querySelector('[data-list="dialog-facts"]').replaceChildren(...facts.map(([label, value]) => {
      const row = cloneTemplate(root, "dialog-fact");
      setField(row, "fact-label", label);
      setField(row, "fact-value", value);
      return row;
    }));
    confirmButton.textContent = confirm;
    dialog.dataset.kind = kind;
    pending = { kind, signal, opener };
    dialog.returnValue = "";
    dialog.showModal();
  }

  dialog.addEventListener("close", () => {
    const chosen = pending;
    pending = null;
    if (!chosen) return;
    if (dialog.returnValue === "confirm") send(chosen.kind, chosen.signal);
    else if (!chosen.opener.closest("[hidden]")) chosen.opener.focus();
  });

  async function send(kind, signal) {
    if (!task || !isOffered(kind, task.state, enabled)) {
      show({ level: "warning", summary: `Nothing sent: the task is now ${task?.state ?? "unknown"}.`, lines: [] });
      return;
    }
    sending = true;
    update(task);
    show({ level: "pending", summary: "Sending…", lines: [] });
    let answer;
    try {
      const response = await fetch(`/api/tasks/${encodeURIComponent(uuid)}/revoke`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(requestBody(kind, signal)),
      });
      const body = await response.json().catch(() => null);
      answer = { status: response.status, statusText: response.statusText, body };
    } catch (error) {
      answer = { networkError: error.message };
    }
    sending = false;
    update(task);
    show(outcome(kind, signal, answer));
  }

  function show({ level, summary, lines }) {
    outcomeArea.dataset.level = level;
    setField(outcomeArea, "action-summary", summary);
    outcomeArea.querySelector('[data-list="action-lines"]').replaceChildren(...lines.map((line) => {
      const item = document.createElement("li");
      item.textContent = line;
      return item;
    }));
  }

  revokeButton.addEventListener("click", () => open("revoke", revokeButton));
  terminateButton.addEventListener("click", () => open("terminate", terminateButton));
  update(null);
  return update;
}
