// What the task, worker and queue action panels share: POST a JSON action, show its outcome in a
// role=status area, and ask first in a native <dialog> naming the target (all as plain text).

import { cloneTemplate, setField } from "../helpers/dom.js";

/**
 * POST `body` as JSON to `url`.
 * @returns {Promise<{status: number, statusText: string, body: any} | {networkError: string}>}
 *   the HTTP status and the parsed JSON body (null when not JSON), or the network error's message
 */
export async function postAction(url, body = {}) {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const parsed = await response.json().catch(() => null);
    return { status: response.status, statusText: response.statusText, body: parsed };
  } catch (error) {
    return { networkError: error.message };
  }
}

/**
 * Show `{level, summary, lines, link}` in an outcome area: its `[data-field="action-summary"]`, the
 * `[data-action-link]` after it when there is a `link` (`{text, href}`: `href` a path of this site),
 * and one list item per line in `[data-list="action-lines"]`, each set as text.
 */
export function showOutcome(area, { level, summary, lines, link = null }) {
  area.dataset.level = level;
  setField(area, "action-summary", summary);
  const anchor = area.querySelector("[data-action-link]");
  if (anchor) {
    anchor.textContent = link ? link.text : "";
    if (link) anchor.setAttribute("href", link.href);
    else anchor.removeAttribute("href");
    anchor.hidden = !link;
  }
  area.querySelector('[data-list="action-lines"]').replaceChildren(...lines.map((line) => {
    const item = document.createElement("li");
    item.textContent = line;
    return item;
  }));
}

/**
 * Wrap the `<dialog data-action-dialog>` under `scope` (with the `dialog-fact` row template).
 * @returns {(question: {title: string, text: string, facts: [string, string][], confirm: string},
 *   opener: HTMLElement) => Promise<boolean>} ask the question; true once confirmed. Cancel or
 *   Escape answers false and gives the focus back to `opener`.
 */
export function confirmDialog(scope) {
  const dialog = scope.querySelector("[data-action-dialog]");
  const confirmButton = dialog.querySelector("[data-dialog-confirm]");
  let pending = null; // {resolve, opener} while the dialog is open

  dialog.addEventListener("close", () => {
    const asked = pending;
    pending = null;
    if (!asked) return;
    const confirmed = dialog.returnValue === "confirm";
    if (!confirmed && asked.opener?.isConnected && !asked.opener.closest("[hidden]")) asked.opener.focus();
    asked.resolve(confirmed);
  });

  return function ask({ title, text, facts, confirm }, opener) {
    if (pending) return Promise.resolve(false);
    setField(dialog, "dialog-title", title);
    setField(dialog, "dialog-text", text);
    dialog.querySelector('[data-list="dialog-facts"]').replaceChildren(...facts.map(([label, value]) => {
      const row = cloneTemplate(scope, "dialog-fact");
      setField(row, "fact-label", label);
      setField(row, "fact-value", value);
      return row;
    }));
    confirmButton.textContent = confirm;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      pending = { resolve, opener };
      dialog.showModal();
    });
  };
}
