// A task's actions: Revoke while it is not finished, Terminate (with a signal) while it runs, and
// Retry… for a failed, revoked, rejected or lost task. Revoke and Terminate ask first in a <dialog>
// naming the target; the answer of the workers shows in the panel, and the task's new state arrives
// live like any other change. Retry… shows what the dashboard would send (asked again whenever the
// task's state changes), or why it cannot; its dialog shows the name and queue and lets the args
// and kwargs be edited as JSON before they are sent. The page also links the task to the task it
// was retried from and the tasks it was retried as.

import { cloneTemplate, setField } from "../helpers/dom.js";
import { taskHref } from "../helpers/format.js";
import { latestRequest } from "../helpers/latest.js";
import {
  ACTIONS_OFF, confirmation, isOffered, offeredActions, offersRetry, outcome, pickSignal, readPreflight, requestBody,
  retryBody, retryButton, retryConfirmation, retryKey, retryLinks, retryOutcome,
} from "../helpers/task_actions.js";
import { postAction, showOutcome } from "./action_ui.js";

/**
 * Mount the actions panel on `root` (the `[data-task-actions]` section).
 * @param {{uuid: string, enabled: boolean, links?: HTMLElement|null}} options `enabled`: the
 *   dashboard takes actions from this user; `links`: the `[data-retry-links]` line of the page
 * @returns {(task: object) => void} call with the task whenever it is (re)rendered
 */
export function mountTaskActions(root, { uuid, enabled, links = null }) {
  const revokeButton = root.querySelector('[data-action="revoke"]');
  const terminateButton = root.querySelector('[data-action="terminate"]');
  const terminateGroup = root.querySelector('[data-action-group="terminate"]');
  const signalSelect = root.querySelector("[data-action-signal]");
  const dialog = root.querySelector("[data-action-dialog]");
  const confirmButton = dialog.querySelector("[data-dialog-confirm]");
  const outcomeArea = root.querySelector("[data-action-outcome]");
  const none = root.querySelector('[data-field="actions-none"]');
  const off = root.querySelector('[data-field="actions-off"]');
  const retryGroup = root.querySelector('[data-action-group="retry"]');
  const retryOpen = root.querySelector('[data-action="retry"]');
  const retry = mountRetryDialog(root);
  const showLinks = links ? mountRetryLinks(links) : () => {};
  const beginPreflight = latestRequest(); // only the answer for the latest state may show
  let task = null;
  let pending = null; // {kind, signal, opener} while the dialog is open
  let sending = false;
  let preflight = null; // what a retry would send, or why not; null while asked
  let preflightFor = null; // the retryKey it was asked for
  const retriedAs = []; // the tasks this page retried this one as

  off.textContent = ACTIONS_OFF;

  function update(next) {
    task = next;
    const offered = offeredActions(task?.state, enabled);
    const retryOffered = offersRetry(task, enabled);
    revokeButton.hidden = !offered.revoke;
    terminateGroup.hidden = !offered.terminate;
    retryGroup.hidden = !retryOffered;
    off.hidden = !offered.off;
    none.hidden = offered.off || offered.revoke || offered.terminate || retryOffered;
    for (const control of [revokeButton, terminateButton, signalSelect]) control.disabled = sending;
    if (retryOffered && retryKey(task) !== preflightFor) askPreflight();
    if (!retryOffered) preflightFor = null;
    renderRetryButton();
    root.toggleAttribute("aria-busy", sending);
    if (task) showLinks(retryLinks(task, retriedAs));
  }

  /** Ask what a retry would send now (the task's state changed, or the page loaded). */
  async function askPreflight() {
    preflightFor = retryKey(task);
    preflight = null;
    const isLatest = beginPreflight();
    let answer;
    try {
      const response = await fetch(`/api/tasks/${encodeURIComponent(uuid)}/retry`, { headers: { Accept: "application/json" } });
      const body = await response.json().catch(() => null);
      answer = { status: response.status, statusText: response.statusText, body };
    } catch (error) {
      answer = { networkError: error.message };
    }
    if (!isLatest()) return;
    preflight = readPreflight(answer);
    renderRetryButton();
  }

  function renderRetryButton() {
    const { disabled, note } = retryButton(preflight);
    retryOpen.disabled = disabled || sending;
    retryOpen.toggleAttribute("data-blocked", disabled && preflight !== null);
    setField(retryGroup, "retry-note", note);
  }

  function open(kind, opener) {
    if (sending || !task || !isOffered(kind, task.state, enabled)) return;
    const signal = pickSignal(signalSelect.value);
    const target = { uuid: task.uuid ?? uuid, name: task.name, worker: task.worker };
    const { title, text, facts, confirm } = confirmation(kind, target, signal);
    setField(dialog, "dialog-title", title);
    setField(dialog, "dialog-text", text);
    dialog.querySelector('[data-list="dialog-facts"]').replaceChildren(...facts.map(([label, value]) => factRow(root, label, value)));
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
      showOutcome(outcomeArea, { level: "warning", summary: `Nothing sent: the task is now ${task?.state ?? "unknown"}.`, lines: [] });
      return;
    }
    setSending(true);
    showOutcome(outcomeArea, { level: "pending", summary: "Sending…", lines: [] });
    const answer = await postAction(`/api/tasks/${encodeURIComponent(uuid)}/revoke`, requestBody(kind, signal));
    setSending(false);
    showOutcome(outcomeArea, outcome(kind, signal, answer));
  }

  function setSending(value) {
    sending = value;
    update(task);
  }

  async function openRetry() {
    if (sending || !offersRetry(task, enabled) || !preflight?.retryable) return;
    const asked = preflight;
    const body = await retry.ask(retryConfirmation(asked, task.uuid ?? uuid), asked, retryOpen);
    if (body === null) return;
    if (!offersRetry(task, enabled)) {
      showOutcome(outcomeArea, { level: "warning", summary: `Nothing sent: the task is now ${task?.state ?? "unknown"}.`, lines: [] });
      return;
    }
    setSending(true);
    showOutcome(outcomeArea, { level: "pending", summary: "Sending the retry…", lines: [] });
    const answer = await postAction(`/api/tasks/${encodeURIComponent(uuid)}/retry`, body);
    const shown = retryOutcome(answer);
    if (shown.taskId) retriedAs.push(shown.taskId);
    setSending(false);
    showOutcome(outcomeArea, { ...shown, link: shown.taskId ? { text: shown.taskId, href: taskHref(shown.taskId) } : null });
  }

  revokeButton.addEventListener("click", () => open("revoke", revokeButton));
  terminateButton.addEventListener("click", () => open("terminate", terminateButton));
  retryOpen.addEventListener("click", openRetry);
  update(null);
  return update;
}

/** One [label, value] row of a dialog's facts, both set as text. */
function factRow(scope, label, value) {
  const row = cloneTemplate(scope, "dialog-fact");
  setField(row, "fact-label", label);
  setField(row, "fact-value", value);
  return row;
}

/**
 * Wrap the retry `<dialog data-retry-dialog>` under `scope`.
 * @returns {{ask: (question: object, preflight: object, opener: HTMLElement) => Promise<object|null>}}
 *   `ask` shows `question` (from `retryConfirmation`) and resolves with the request body once
 *   confirmed with arguments that read as JSON (until then the dialog stays open and says what is
 *   wrong), or null on Cancel or Escape, which give the focus back to `opener`.
 */
function mountRetryDialog(scope) {
  const dialog = scope.querySelector("[data-retry-dialog]");
  const form = dialog.querySelector("[data-retry-form]");
  const inputs = { args: dialog.querySelector('[data-retry-input="args"]'), kwargs: dialog.querySelector('[data-retry-input="kwargs"]') };
  const errorLine = dialog.querySelector('[data-field="retry-error"]');
  const confirmButton = dialog.querySelector("[data-retry-confirm]");
  let pending = null; // {resolve, preflight, opener, body} while the dialog is open

  function showError(field, message) {
    errorLine.textContent = message;
    errorLine.hidden = !message;
    for (const [name, input] of Object.entries(inputs)) {
      if (name === field) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", errorLine.id);
      } else {
        input.removeAttribute("aria-invalid");
        input.removeAttribute("aria-describedby");
      }
    }
  }

  form.addEventListener("submit", (event) => {
    if (!pending || event.submitter?.value !== "confirm") return;
    const built = retryBody(pending.preflight, inputs.args.value, inputs.kwargs.value);
    if (!built.ok) {
      event.preventDefault(); // the dialog stays open: nothing is sent
      showError(built.field, built.error);
      inputs[built.field].focus();
      return;
    }
    pending.body = built.body;
  });

  for (const input of Object.values(inputs)) {
    input.addEventListener("input", () => { if (!errorLine.hidden) showError(null, ""); });
  }

  dialog.addEventListener("close", () => {
    const asked = pending;
    pending = null;
    if (!asked) return;
    const confirmed = dialog.returnValue === "confirm" && asked.body !== null;
    if (!confirmed && asked.opener?.isConnected && !asked.opener.closest("[hidden]")) asked.opener.focus();
    asked.resolve(confirmed ? asked.body : null);
  });

  function ask({ title, text, facts, args, kwargs, confirm }, preflight, opener) {
    if (pending) return Promise.resolve(null);
    setField(dialog, "retry-title", title);
    setField(dialog, "retry-text", text);
    dialog.querySelector('[data-list="retry-facts"]').replaceChildren(...facts.map(([label, value]) => factRow(scope, label, value)));
    inputs.args.value = args;
    inputs.kwargs.value = kwargs;
    showError(null, "");
    confirmButton.textContent = confirm;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      pending = { resolve, preflight, opener, body: null };
      dialog.showModal();
    });
  }

  return { ask };
}

/**
 * Fill the `[data-retry-links]` line: "Retried from <id>" and "Retried as <id>, <id>", each id a
 * link to its task's page; hidden when the task has neither.
 * @returns {(links: {from: string|null, as: string[]}) => void}
 */
function mountRetryLinks(line) {
  const ofPart = line.querySelector("[data-retry-of]");
  const asPart = line.querySelector("[data-retried-as]");
  const asList = asPart.querySelector('[data-list="retried-as"]');
  let shownAs = "";

  return function show({ from, as }) {
    setField(ofPart, "retry-of", from ?? "");
    const anchor = ofPart.querySelector('[data-field="retry-of"]');
    if (from) anchor.setAttribute("href", taskHref(from));
    else anchor.removeAttribute("href");
    ofPart.hidden = !from;
    const key = as.join("\n");
    if (key !== shownAs) {
      shownAs = key;
      const parts = [];
      as.forEach((id, index) => {
        if (index > 0) parts.push(document.createTextNode(", "));
        const link = document.createElement("a");
        link.className = "mono";
        link.textContent = id;
        link.setAttribute("href", taskHref(id));
        parts.push(link);
      });
      asList.replaceChildren(...parts);
    }
    asPart.hidden = as.length === 0;
    line.hidden = !from && as.length === 0;
  };
}
