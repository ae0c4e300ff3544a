// The marker form (operators): POST /api/markers {"label"}, a deploy or an incident drawn on every chart.

import { setField } from "../helpers/dom.js";

/**
 * Show `form` and post its label as a marker; `onAdded()` runs after one is added (to redraw).
 * @param {{onAdded?: () => void}} options
 */
export function mountMarkerForm(form, { onAdded = () => {} } = {}) {
  const input = form.querySelector('[data-input="label"]');
  const button = form.querySelector('button[type="submit"]');
  form.hidden = false;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const label = input.value.trim();
    if (!label) return;
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    setField(form, "marker-status", "Adding…");
    let response;
    let body = null;
    try {
      // The page's fetch adds the CSRF header (helpers/csrf.js).
      response = await fetch("/api/markers", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({ label }),
      });
      body = await response.json().catch(() => null);
    } catch (error) {
      response = null;
      body = { error: `Could not reach the dashboard: ${error.message}` };
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
    if (!response?.ok) {
      setField(form, "marker-status", `Not added: ${body?.error ?? `${response.status} ${response.statusText}`}`);
      return;
    }
    input.value = "";
    setField(form, "marker-status", "Marker added");
    onAdded();
  });
}
