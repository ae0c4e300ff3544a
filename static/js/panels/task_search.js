// The tasks page's panel: the filter form, the results table and its paging buttons, and the
// "N new tasks" pill. The filters live in the URL (helpers/task_filters.js); the page of results
// and what live `changes` do to it are helpers/task_page.js. This file fetches and draws.

import { cloneTemplate, reconcileKeyed, setField } from "../helpers/dom.js";
import { formatInteger } from "../helpers/format.js";
import { apiUrl, filtersQuery, isNewestFirst, parseFilters, sameFilters, totalText } from "../helpers/task_filters.js";
import { PAGE_SIZE, TaskPage } from "../helpers/task_page.js";
import { mountFilterForm } from "./task_filter_form.js";
import { fillTaskRow } from "./task_row.js";
import { latestRequest } from "../helpers/latest.js";

export { PAGE_SIZE };
/** A row that came in live stays highlighted this long. */
export const NEW_ROW_HIGHLIGHT_MS = 2000;
/** Options of the name / worker / queue suggestions at most. */
export const MAX_SUGGESTIONS = 200;

export function mountTaskSearch(root, store) {
  const form = mountFilterForm(root.querySelector("[data-filters]"), { onApply: apply });
  const body = root.querySelector("[data-list]");
  const table = root.querySelector("[data-results]");
  const empty = root.querySelector("[data-empty]");
  const errorBox = root.querySelector("[data-search-error]");
  const pill = root.querySelector("[data-new-tasks]");
  const previousButton = root.querySelector('[data-page="previous"]');
  const nextButton = root.querySelector('[data-page="next"]');

  let filters = parseFilters(window.location.search);
  const page = new TaskPage();
  const beginRequest = latestRequest(); // only the latest request may render
  let loading = false;
  const rows = new Map(); // uuid -> <tr>

  /** Fetch one page; returns the body, or null after showing why not. */
  async function fetchPage(cursor) {
    const isLatest = beginRequest();
    loading = true;
    root.setAttribute("aria-busy", "true");
    let response;
    let body = null;
    try {
      response = await fetch(apiUrl(filters, { limit: PAGE_SIZE, cursor }), { headers: { Accept: "application/json" } });
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
    const body = await fetchPage(page.cursor);
    if (body === null) return;
    page.loaded(body, isNewestFirst(filters), requestedAt);
    render();
  }

  function render() {
    reconcileKeyed(body, rows, page.items, (task) => task.uuid, () => cloneTemplate(root, "search-row"), fillTaskRow);
    empty.hidden = page.items.length > 0 || !errorBox.hidden;
    setField(root, "total", page.total === null ? "" : totalText(page.total, page.estimate, formatInteger));
    setField(root, "page", `Page ${page.number}`);
    previousButton.disabled = !page.hasPrevious;
    nextButton.disabled = !page.hasNext;
    renderPill();
  }

  function renderPill() {
    const count = page.pending.size;
    pill.hidden = count === 0;
    setField(pill, "count", `${formatInteger(count)} new task${count === 1 ? "" : "s"}`);
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
    window.history.pushState(null, "", `${window.location.pathname}${filtersQuery(filters)}`);
    restart();
  }

  function restart() {
    page.restart();
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
    if (page.back()) load().then(scrollToTable);
  });

  nextButton.addEventListener("click", async () => {
    let cursor = page.next;
    if (page.nextStale) {
      // Live rows pushed some off this page: ask for this page again to continue after what it holds now.
      const again = await fetchPage(page.cursor);
      if (again === null) return;
      cursor = again.next ?? null;
    }
    if (!cursor) return;
    page.forward(cursor);
    load().then(scrollToTable);
  });

  // Scrolled back to the top of the first page: what waited goes in now.
  window.addEventListener("scroll", () => {
    if (page.pending.size && live()) {
      insert(page.takePending());
      renderPill();
    }
  }, { passive: true });

  window.addEventListener("popstate", () => {
    filters = parseFilters(window.location.search);
    form.write(filters);
    restart();
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
  load();
  return unsubscribe;
}

/** Fill the name / worker / queue <datalist>s from what the store knows. */
function mountSuggestions(root, store) {
  const lists = {
    name: root.querySelector('datalist[data-suggest="name"]'),
    worker: root.querySelector('datalist[data-suggest="worker"]'),
    queue: root.querySelector('datalist[data-suggest="queue"]'),
  };
  const known = { name: new Set(), worker: new Set(), queue: new Set() };
  return function update() {
    const values = {
      name: store.recentTasks().map((t) => t.name),
      worker: store.workersSorted().map((w) => w.hostname),
      queue: store.queuesSorted().map((q) => q.name),
    };
    for (const [key, list] of Object.entries(lists)) {
      if (!list) continue;
      let grew = false;
      for (const value of values[key]) {
        if (typeof value === "string" && value && !known[key].has(value) && known[key].size < MAX_SUGGESTIONS) {
          known[key].add(value);
          grew = true;
        }
      }
      if (!grew) continue;
      list.replaceChildren(...[...known[key]].sort().map((value) => {
        const option = document.createElement("option");
        option.value = value;
        return option;
      }));
    }
  };
}
