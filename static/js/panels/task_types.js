// The task types page: every type seen over the range with its counts and percentiles (/api/task-types),
// and the top lists beneath (/api/stats/top); the range is in the URL (`?range=6h`), both refetched every minute.

import { cloneTemplate, setField, setFieldAttr } from "../helpers/dom.js";
import { formatInteger } from "../helpers/format.js";
import { latestRequest } from "../helpers/latest.js";
import { RANGES, parseRange, rangeSearch, rangeWords } from "../helpers/series.js";
import { TOP_LIST_NAMES, topRows, typeRow } from "../helpers/task_types.js";
import { getJson } from "../helpers/http.js";

/** The page's range when the URL names none (the API's own default). */
export const DEFAULT_RANGE = "1h";
/** Refetch this often. */
export const REFRESH_MS = 60_000;
/** Retry a failed fetch (network or 5xx) after this long. */
export const RETRY_FETCH_MS = 5000;
/** Cells of a type's row, by their `data-field`. */
const ROW_FIELDS = ["runs", "failed", "failure-rate", "runtime-p50", "runtime-p95", "runtime-p99", "wait-p50", "wait-p95"];

/** Mount the task types page on `root`. */
export function mountTaskTypes(root) {
  const select = root.querySelector("[data-range]");
  const refreshError = root.querySelector("[data-refresh-error]");
  let range = parseRange(window.location.search, DEFAULT_RANGE);
  let timer = null;
  let loaded = false;
  const beginRequest = latestRequest(); // only the latest request may render

  async function load() {
    clearTimeout(timer);
    timer = null;
    const isLatest = beginRequest();
    const query = `?range=${encodeURIComponent(range)}`;
    let types;
    let top;
    try {
      [types, top] = await Promise.all([getJson(`/api/task-types${query}`), getJson(`/api/stats/top${query}`)]);
    } catch (error) {
      if (isLatest()) failed(error.message);
      return;
    }
    if (!isLatest()) return;
    refreshError.hidden = true;
    loaded = true;
    renderTypes(Array.isArray(types.items) ? types.items : []);
    renderTop(topRows(top, linkRange()));
    schedule(REFRESH_MS);
  }

  function failed(message) {
    setField(refreshError, "text", `${loaded ? "Refresh failed" : "Could not load the task types"}: ${message}`);
    refreshError.hidden = false;
    if (!loaded) setField(root, "types-empty", "");
    schedule(RETRY_FETCH_MS);
  }

  /** Fetch again after `delayMs`, skipping rounds while the tab is hidden. */
  function schedule(delayMs) {
    clearTimeout(timer);
    timer = setTimeout(() => (document.hidden ? schedule(delayMs) : load()), delayMs);
  }

  /** The range a link to a type's page carries: none for the default, as in this page's own URL. */
  const linkRange = () => (range === DEFAULT_RANGE ? null : range);

  function renderTypes(items) {
    const list = root.querySelector('[data-list="types"]');
    list.replaceChildren(...items.map((item) => {
      const cells = typeRow(item, linkRange());
      const row = cloneTemplate(root, "type-row");
      row.dataset.taskType = cells.name;
      setField(row, "name", cells.name);
      setFieldAttr(row, "name", "href", cells.href);
      for (const field of ROW_FIELDS) setField(row, field, cells[field]);
      setFieldAttr(row, "runs", "title", cells.title);
      return row;
    }));
    setField(root, "type-count", items.length ? `${formatInteger(items.length)} seen in the last ${rangeWords(range)}` : "");
    setField(root, "types-empty", items.length ? "" : `No task seen in the last ${rangeWords(range)}.`);
  }

  function renderTop(rows) {
    for (const name of TOP_LIST_NAMES) {
      const list = root.querySelector(`[data-list="${name}"]`);
      if (!list) continue;
      list.replaceChildren(...rows[name].map((entry) => {
        const row = cloneTemplate(root, "top-row");
        setField(row, "name", entry.name);
        setFieldAttr(row, "name", "href", entry.href);
        setField(row, "value", entry.value);
        setField(row, "detail", entry.detail);
        setFieldAttr(row, "value", "title", entry.title);
        return row;
      }));
      const empty = root.querySelector(`[data-empty="${name}"]`);
      if (empty) empty.hidden = rows[name].length > 0;
    }
  }

  select.value = range;
  select.addEventListener("change", () => {
    range = RANGES.includes(select.value) ? select.value : DEFAULT_RANGE;
    const { pathname, search, hash } = window.location;
    window.history.replaceState(window.history.state, "", `${pathname}${rangeSearch(search, range, DEFAULT_RANGE)}${hash}`);
    load();
  });

  load();
  return () => clearTimeout(timer);
}
