// "Go to task id" boxes ([data-jump] forms with a `uuid` input): open /tasks/<uuid>.
// Without JavaScript the form's GET /tasks?uuid= redirects there too.

import { taskHref } from "../helpers/format.js";

export function mountJump(form) {
  if (!form) return;
  form.addEventListener("submit", (event) => {
    const value = new FormData(form).get("uuid")?.toString().trim();
    event.preventDefault();
    if (value) window.location.assign(taskHref(value));
  });
}
