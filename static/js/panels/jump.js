// "Go to task id" boxes ([data-jump] forms with a `uuid` input): GET /tasks?uuid=, which leads to the task (also
// from the first characters of its id, as the lists show them) or to the search for them (see the README).

import { url } from "../helpers/base.js";

export function mountJump(form) {
  if (!form) return;
  form.addEventListener("submit", (event) => {
    const value = new FormData(form).get("uuid")?.toString().trim();
    event.preventDefault();
    if (value) window.location.assign(url(`/tasks?uuid=${encodeURIComponent(value)}`));
  });
}
