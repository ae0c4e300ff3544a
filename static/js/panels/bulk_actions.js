// The tasks page's bulk bar (operators, with actions on): "Revoke matching…" and "Retry matching…"
// count the tasks matching the page's filters with a dry run, ask in a <dialog> listing them, then
// send the real run with that count and show what came of it (all as plain text).

import {
  bulkConfirmation, bulkControls, bulkOutcome, confirmBody, dryRunBody, nothingOutcome, readDryRun,
} from "../helpers/bulk_actions.js";
import { confirmDialog, postAction, showOutcome } from "./action_ui.js";

const BULK_URL = "/api/tasks/bulk";

/**
 * Mount the bulk bar (`[data-bulk-actions]`) under `root`, the tasks page's panel.
 * @param {{enabled: boolean, filters: object}} options `enabled`: the dashboard takes actions from
 *   this user; `filters`: the page's filters now. Later ones come with `task-filters` events on `root`.
 */
export function mountBulkActions(root, { enabled, filters }) {
  const section = root.querySelector("[data-bulk-actions]");
  if (!section) return;
  section.hidden = enabled !== true;
  if (enabled !== true) return;
  const buttons = [...section.querySelectorAll("[data-bulk]")];
  const note = section.querySelector('[data-field="bulk-note"]');
  const outcomeArea = section.querySelector("[data-action-outcome]");
  const ask = confirmDialog(section);
  let current = filters;
  let sending = false;

  function render() {
    const { disabled, note: text } = bulkControls(current);
    for (const button of buttons) button.disabled = disabled || sending;
    note.textContent = text;
    note.hidden = !text;
  }

  function busy(on) {
    sending = on;
    if (on) section.setAttribute("aria-busy", "true");
    else section.removeAttribute("aria-busy");
    render();
  }

  async function run(action, button) {
    if (sending || bulkControls(current).disabled) return;
    const body = dryRunBody(action, current);
    busy(true);
    showOutcome(outcomeArea, { level: "pending", summary: "Counting the matching tasks…", lines: [] });
    const dry = readDryRun(action, await postAction(BULK_URL, body));
    if (!dry.ok) {
      busy(false);
      showOutcome(outcomeArea, dry.outcome);
      return;
    }
    if (dry.count === 0) {
      busy(false);
      showOutcome(outcomeArea, nothingOutcome(action, dry));
      return;
    }
    clearOutcome();
    busy(false); // Cancel gives the focus back to the button: it must be enabled by then
    if (!(await ask(bulkConfirmation(action, dry), button))) return;
    busy(true);
    showOutcome(outcomeArea, { level: "pending", summary: "Sending…", lines: [] });
    const answer = await postAction(BULK_URL, confirmBody(action, body.filter, dry.count));
    busy(false);
    showOutcome(outcomeArea, bulkOutcome(action, answer));
  }

  function clearOutcome() {
    showOutcome(outcomeArea, { level: "", summary: "", lines: [] });
    delete outcomeArea.dataset.level;
  }

  for (const button of buttons) button.addEventListener("click", () => run(button.dataset.bulk, button));
  root.addEventListener("task-filters", (event) => {
    current = event.detail;
    render();
  });
  render();
}
