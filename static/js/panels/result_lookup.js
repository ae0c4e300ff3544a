// The task page's "Look up result" button (shown when --app has a result backend): reads the task's
// record from the backend; a task still shown unfinished that the backend knows as finished moves on,
// marked as reconciled, and the page's live update shows it.

import { setField } from "../helpers/dom.js";
import { lookupText } from "../helpers/gaps.js";
import { postAction } from "./action_ui.js";

export function mountResultLookup(root, { uuid }) {
  const button = root.querySelector('[data-action="look-up-result"]');
  root.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    setField(root, "result-lookup", "Asking the result backend…");
    const answer = await postAction(`/api/tasks/${encodeURIComponent(uuid)}/result`, {});
    button.disabled = false;
    setField(root, "result-lookup", lookupText(answer));
  });
}
