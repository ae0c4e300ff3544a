// Fetching one detail page's JSON and keeping it fresh (a queue's page, a task type's page): only the
// latest request renders; a 404 shows the "missing" view; a failure keeps what is shown and says why
// (or shows the "error" view when nothing is yet), then retries; refetches skip rounds while the tab is hidden.

import { setField } from "../helpers/dom.js";
import { latestRequest } from "../helpers/latest.js";

/** Retry a failed fetch (network or 5xx) after this long. */
export const RETRY_FETCH_MS = 5000;

/**
 * Create the loader of a panel whose `[data-view]` children are its views.
 * @param {Element} root
 * @param {{what: string, url: () => string, loaded: (body: object) => (number|null), missing: () => (number|null)}} options
 *   `loaded` renders a body and `missing` a 404; each returns when to fetch again (ms), or null for never.
 */
export function createDetailLoader(root, { what, url, loaded, missing }) {
  const refreshError = root.querySelector("[data-refresh-error]");
  const beginRequest = latestRequest(); // only the latest request may render
  let timer = null;
  let shown = false; // a body is on the page: a failure keeps it

  function show(view) {
    for (const el of root.querySelectorAll("[data-view]")) el.hidden = el.dataset.view !== view;
  }

  /** Fetch again after `delayMs`, skipping rounds while the tab is hidden. */
  function schedule(delayMs) {
    clearTimeout(timer);
    if (delayMs === null) return;
    timer = setTimeout(() => (document.hidden ? schedule(delayMs) : load()), delayMs);
  }

  function failed(message) {
    if (shown) {
      setField(refreshError, "text", `Refresh failed: ${message}`);
      refreshError.hidden = false;
    } else {
      setField(root, "error", `Could not load the ${what}: ${message}`);
      show("error");
    }
    schedule(RETRY_FETCH_MS);
  }

  async function load() {
    clearTimeout(timer);
    timer = null;
    const isLatest = beginRequest();
    let response;
    let body = null;
    try {
      response = await fetch(url(), { headers: { Accept: "application/json" } });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (isLatest()) failed(`Could not reach the dashboard: ${error.message}`);
      return;
    }
    if (!isLatest()) return;
    if (response.status === 404) {
      shown = false;
      show("missing");
      schedule(missing());
      return;
    }
    if (!response.ok || body === null) {
      failed(body?.error ?? `${response.status} ${response.statusText}`);
      return;
    }
    refreshError.hidden = true;
    shown = true;
    schedule(loaded(body));
  }

  return { load, schedule, show, stop: () => clearTimeout(timer) };
}
