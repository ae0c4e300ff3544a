// The tasks page's panel: the filter form, the results table with its sorting headers and its
// paging buttons, and the "N new tasks" pill. The filters and the page's cursor live in the URL
// (helpers/task_filters.js), the cursors of the pages before it in history.state; the page of
// results and what live `changes` do to it are helpers/task_page.js. This file fetches and draws.

import { cloneTemplate, reconcileKeyed, setField } from "../helpers/dom.js";
import { formatInteger } from "../helpers/format.js";
import {
  apiUrl, ariaSort, headerSort, isNewestFirst, nameSuggestions, pageQuery, parseCursor, parseFilters, sameFilters,
  sortArrow, totalText,
} from "../helpers/task_filters.js";
import { newTasksPill, PAGE_SIZE, positionFor, TaskPage } from "../helpers/task_page.js";
import { mountFilterForm } from "./task_filter_form.js";
import { fillTaskRow } from "./task_row.js";
import { latestRequest } from "../helpers/latest.js";

export { PAGE_SIZE };
/** A row that came in live stays highlighted this long. */
export const NEW_ROW_HIGHLIGHT_MS = 2000;
/** Options of the name / worker / queue suggestions at most. */
export const MAX_SUGGESTIONS = 200;
/** Typing pause after which the history's names starting with what was typed are asked for. */
const NAME_LOOKUP_DELAY_MS = 150;

export function mountTaskSearch(root, store) {
  const form = mountFilterForm(root.querySelector("[data-filters]"), { onApply: apply });
  const body = root.querySelector("[data-results] [data-list]");
  const table = root.querySelector("[data-results]");
  const empty = root.querySelector("[data-empty]");
  const errorBox = root.querySelector("[data-search-error]");
  const pill = root.querySelector("[data-new-tasks]");
  const previousButton = root.querySelector('[data-page="previous"]');
  const nextButton = root.querySelector('[data-page="next"]');
  const sortHeaders = [...root.querySelectorAll("th[data-sort-key]")];

  let filters = parseFilters(window.location.search);
  const page = new TaskPage();
  page.moveTo(positionFor(parseCursor(window.location.search), window.history.state));
  window.history.replaceState(page.position, "", window.location.href);
  const beginRequest = latestRequest(); // only the latest request may render
  let loading = false;
  const rows = new Map(); // uuid -> <tr>

  /** Fetch one page; returns the body, or null after showing why not. */
  async function fetchPage({ cursor = null, after = null } = {}) {
    const isLatest = beginRequest();
    loading = true;
    root.setAttribute("aria-busy", "true");
    let response;
    let body = null;
    try {
      response = await fetch(apiUrl(filters, { limit: PAGE_SIZE, cursor, after }), { headers: { Accept: "application/json" } });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (isLatest()) finish(`Could not reach the dashboard: ${error.message}`);
      return null;
    }
    if (!isLatest()) return null;
    if (!response.ok || body === null || !Array.isArray(body.items)) {
      finish(body?.error ?? `${response.status} ${response.statusText}`);
      return null;
    }
    finish(null);
    return body;
  }

  function finish(error) {
    loading = false;
    root.removeAttribute("aria-busy");
    setField(errorBox, "error", error ?? "");
    errorBox.hidden = error === null;
    if (error !== null) { page.failed(); render(); }
  }

  async function load() {
    const requestedAt = store.serverNowMs() / 1000;
    const body = await fetchPage({ cursor: page.cursor });
    if (body === null) return;
    page.loaded(body, isNewestFirst(filters), requestedAt);
    render();
  }

  function render() {
    reconcileKeyed(body, rows, page.items, (task) => task.uuid, () => cloneTemplate(root, "search-row"), fillTaskRow);
    empty.hidden = page.items.length > 0 || !errorBox.hidden;
    setField(root, "total", page.total === null ? "" : totalText(page.total, page.estimate, formatInteger));
    setField(root, "page", page.label);
    previousButton.disabled = !page.hasPrevious;
    nextButton.disabled = !page.hasNext;
    renderSort();
    renderPill();
  }

  function renderSort() {
    for (const th of sortHeaders) {
      const direction = ariaSort(filters.sort, th.dataset.sortKey);
      th.setAttribute("aria-sort", direction);
      setField(th, "sort-arrow", sortArrow(direction));
    }
  }

  function renderPill() {
    const count = page.pending.size;
    pill.hidden = count === 0;
    const shown = newTasksPill(count, isNewestFirst(filters));
    setField(pill, "count", shown.text);
    setField(pill, "pill-mark", shown.mark);
    pill.title = shown.title;
  }

  /** Whether rows may move now: the first page, newest first, scrolled no further than the table top. */
  function live() {
    if (loading || !page.firstPage || !isNewestFirst(filters) || !errorBox.hidden) return false;
    const tableTop = table.getBoundingClientRect().top + window.scrollY;
    return window.scrollY <= tableTop;
  }

  function insert(tasks) {
    const added = page.insert(tasks);
    if (!added.length) return;
    render();
    for (const task of added) highlight(rows.get(task.uuid));
  }

  function highlight(row) {
    if (!row) return;
    row.setAttribute("data-new", "");
    setTimeout(() => row.removeAttribute("data-new"), NEW_ROW_HIGHLIGHT_MS);
  }

  function onChanges(event) {
    const { updated, fresh } = page.applyChanges(event.changes, filters);
    for (const task of updated) fillTaskRow(rows.get(task.uuid), task);
    if (!fresh.length) return;
    if (live()) {
      insert(fresh);
    } else {
      page.wait(fresh);
      renderPill();
    }
  }

  function apply(nextFilters) {
    if (sameFilters(nextFilters, filters)) return;
    filters = nextFilters;
    announceFilters();
    page.restart();
    pushPage();
    renderSort();
    renderPill();
    load();
  }

  /** Tell the panels under `root` (the bulk bar) the filters now applied: a `task-filters` event. */
  function announceFilters() {
    root.dispatchEvent(new CustomEvent("task-filters", { detail: filters }));
  }

  /** A history entry for the page now shown: its URL names the filters and the page's cursor. */
  function pushPage() {
    window.history.pushState(page.position, "", `${window.location.pathname}${pageQuery(filters, page.cursor)}`);
  }

  /** Back to the first page of these filters (the pill, from a later page or another sort). */
  function restart() {
    const paged = !page.firstPage;
    page.restart();
    if (paged) pushPage();
    renderPill();
    load();
  }

  /** After paging, come back up to the filters when the table top is out of sight. */
  function scrollToTable() {
    if (table.getBoundingClientRect().top < 0) window.scrollTo({ top: 0 });
  }

  pill.addEventListener("click", () => {
    window.scrollTo({ top: 0 });
    if (page.firstPage && isNewestFirst(filters)) {
      insert(page.takePending());
      renderPill();
    } else {
      restart();
    }
  });

  previousButton.addEventListener("click", () => {
    if (!page.back()) return;
    pushPage();
    load().then(scrollToTable);
  });

  nextButton.addEventListener("click", async () => {
    const request = page.nextRequest;
    let cursor = request?.cursor ?? null;
    if (request?.after) {
      // Live rows pushed some off this page: the page after the row it shows last, and that page's cursor.
      const after = await fetchPage({ after: request.after });
      if (after === null) return;
      cursor = after.cursor ?? null;
    }
    if (!cursor) return;
    page.forward(cursor);
    pushPage();
    load().then(scrollToTable);
  });

  for (const th of sortHeaders) {
    th.querySelector("button")?.addEventListener("click", () => {
      const sort = headerSort(filters.sort, th.dataset.sortKey);
      form.writeSort(sort);
      apply({ ...filters, sort });
    });
  }

  // Scrolled back to the top of the first page: what waited goes in now.
  window.addEventListener("scroll", () => {
    if (page.pending.size && live()) {
      insert(page.takePending());
      renderPill();
    }
  }, { passive: true });

  // Back or Forward: show the page the URL names, at the position history.state kept for it.
  window.addEventListener("popstate", (event) => {
    const nextFilters = parseFilters(window.location.search);
    if (!sameFilters(nextFilters, filters)) page.restart();
    filters = nextFilters;
    announceFilters();
    form.write(filters);
    page.moveTo(positionFor(parseCursor(window.location.search), event.state));
    renderSort();
    renderPill();
    load();
  });

  const suggest = mountSuggestions(root, store);
  let snapshots = 0;
  const unsubscribe = store.subscribe((event) => {
    if (event.type === "changes") onChanges(event);
    // A later snapshot means a reconnect or resync: changes may have been missed.
    if (event.type === "snapshot" && ++snapshots > 1 && live()) load();
    if (event.type === "snapshot" || event.type === "changes") suggest();
  });

  form.write(filters);
  renderSort();
  load();
  return unsubscribe;
}

/** Fill the worker and queue <datalist>s from what the store knows, and the name one from the
 * history's names (GET /api/task-names, for what is typed) and the live ones, with their
 * dotted prefixes as `app.payments.*`. */
function mountSuggestions(root, store) {
  const lists = {
    name: root.querySelector('datalist[data-suggest="name"]'),
    worker: root.querySelector('datalist[data-suggest="worker"]'),
    queue: root.querySelector('datalist[data-suggest="queue"]'),
  };
  const known = { name: new Set(), worker: new Set(), queue: new Set() };
  const shown = { name: "", worker: "", queue: "" };
  const nameInput = root.querySelector('input[data-filter="name"]');
  let historyNames = [];
  const beginNames = latestRequest();
  let namesTimer = null;

  function fill(key, values) {
    const list = lists[key];
    const text = values.join("\n");
    if (!list || text === shown[key]) return;
    shown[key] = text;
    list.replaceChildren(...values.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      return option;
    }));
  }

  function renderNames() {
    const typed = (nameInput?.value ?? "").trim().replace(/\*$/, "");
    fill("name", nameSuggestions([...historyNames, ...known.name], typed, MAX_SUGGESTIONS));
  }

  async function fetchNames() {
    const isLatest = beginNames();
    const typed = (nameInput?.value ?? "").trim().replace(/\*$/, "");
    try {
      const response = await fetch(`/api/task-names?${new URLSearchParams({ prefix: typed, limit: String(MAX_SUGGESTIONS) })}`,
        { headers: { Accept: "application/json" } });
      const body = response.ok ? await response.json() : null;
      if (!isLatest() || !Array.isArray(body?.names)) return;
      historyNames = body.names.filter((name) => typeof name === "string");
      renderNames();
    } catch {
      // Completion is a nicety: the live names still fill the list.
    }
  }

  nameInput?.addEventListener("input", () => {
    clearTimeout(namesTimer);
    namesTimer = setTimeout(fetchNames, NAME_LOOKUP_DELAY_MS);
    renderNames();
  });
  fetchNames();

  return function update() {
    const values = {
      name: store.recentTasks().map((t) => t.name),
      worker: store.workersSorted().map((w) => w.hostname),
      queue: store.queuesSorted().map((q) => q.name),
    };
    for (const key of Object.keys(lists)) {
      for (const value of values[key]) {
        if (typeof value === "string" && value && known[key].size < MAX_SUGGESTIONS) known[key].add(value);
      }
    }
    renderNames();
    fill("worker", [...known.worker].sort());
    fill("queue", [...known.queue].sort());
  };
}
