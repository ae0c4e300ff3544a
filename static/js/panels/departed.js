// Departed workers (forgotten by the live view) on /workers: a hostname search over /api/workers?all=1.

import { cloneTemplate, setField, setFieldAttr } from "../helpers/dom.js";
import { formatIso, formatTime, workerHref } from "../helpers/format.js";
import { filterByHostname } from "../helpers/worker_info.js";
import { latestRequest } from "../helpers/latest.js";

/** Wait this long after the last keystroke before searching. */
export const SEARCH_DEBOUNCE_MS = 250;
/** Rows shown at most. */
export const MAX_DEPARTED_ROWS = 200;

export function mountDeparted(root, store) {
  const input = root.querySelector("[data-search]");
  const list = root.querySelector("[data-list]");
  const empty = root.querySelector("[data-empty]");
  let searchTimer = null;
  const beginRequest = latestRequest(); // only the latest request may render

  async function search() {
    const isLatest = beginRequest();
    let items;
    try {
      const response = await fetch("/api/workers?all=1", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      items = await response.json();
    } catch (error) {
      if (isLatest()) setField(root, "empty", `Could not load departed workers: ${error.message}`);
      if (isLatest()) { list.replaceChildren(); empty.hidden = false; }
      return;
    }
    if (!isLatest()) return;
    const departed = Array.isArray(items) ? items.filter((w) => w?.departed === true) : [];
    const found = filterByHostname(departed, input.value);
    list.replaceChildren(...found.slice(0, MAX_DEPARTED_ROWS).map(row));
    empty.hidden = found.length > 0;
    setField(root, "empty", departed.length ? "No departed worker matches." : "No departed workers.");
    setField(root, "departed-count", `${found.length} of ${departed.length}`);
  }

  function row(worker) {
    const item = cloneTemplate(root, "departed-row");
    item.dataset.status = worker.status ?? "unknown";
    setField(item, "hostname", worker.hostname);
    setFieldAttr(item, "hostname", "href", workerHref(worker.hostname));
    setField(item, "status", worker.status ?? "unknown");
    setField(item, "last-heartbeat", formatTime(worker.last_heartbeat));
    setFieldAttr(item, "last-heartbeat", "title", formatIso(worker.last_heartbeat));
    return item;
  }

  function searchSoon() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, SEARCH_DEBOUNCE_MS);
  }

  input.addEventListener("input", searchSoon);
  root.querySelector("form")?.addEventListener("submit", (event) => { event.preventDefault(); search(); });
  search();
  // A worker leaving the live view may have just departed.
  return store.subscribe((event) => {
    if (event.type === "changes" && event.changes.some((c) => c.kind === "worker" && c.op === "remove")) searchSoon();
  });
}
