// An "Enable task events" button on the note that workers are online but send no task events:
// it asks every online worker, one request each, to send them, and says who replied. Once task
// events arrive the note goes, and the button with it.

import { enableEventsOutcome } from "../helpers/worker_actions.js";
import { postAction } from "./action_ui.js";

/** The key of the note in the banner area (see hints.js). */
const HINT_KEY = "no-task-events";

/** Add the button to the note whenever it shows in the banner area `area`. */
export function mountEnableEventsHint(area, store) {
  function attach() {
    const note = area.querySelector(`[data-banner-key="${HINT_KEY}"]`);
    if (!note || note.querySelector("[data-enable-events]")) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button-small";
    button.dataset.enableEvents = "";
    button.textContent = "Enable task events";
    const status = document.createElement("span");
    status.className = "banner-status";
    status.setAttribute("role", "status");
    button.addEventListener("click", () => enable(button, status));
    note.toggleAttribute("data-has-action", true);
    const dismiss = note.querySelector("[data-dismiss]");
    if (dismiss) dismiss.before(button, status);
    else note.append(button, status);
  }

  async function enable(button, status) {
    const hostnames = store.workersSorted().filter((w) => w.status === "online").map((w) => w.hostname);
    button.disabled = true;
    status.textContent = "Sending…";
    const results = await Promise.all(hostnames.map(async (hostname) => ({
      hostname,
      answer: await postAction(`/api/workers/${encodeURIComponent(hostname)}/enable-events`, {}),
    })));
    button.disabled = false;
    const { level, summary, lines } = enableEventsOutcome(results);
    status.dataset.level = level;
    status.textContent = lines.length ? `${summary} ${lines.join("; ")}` : summary;
  }

  new MutationObserver(attach).observe(area, { childList: true });
  attach();
}
