// The tasks page: filters in the URL, one page of GET /api/tasks with keyset paging (a stack of
// cursors for Previous), and live rows: on the first page sorted newest first, matching tasks
// from `changes` go in at the top at once; elsewhere, or scrolled down, a "N new tasks" pill waits.

import { cloneTemplate, reconcileKeyed, setField } from "../helpers/dom.js";
import { formatInteger } from "../helpers/format.js";
import {
  apiUrl, filtersQuery, isNewestFirst, parseFilters, receivedSortTime, sameFilters, taskMatches, totalText,
} from "../helpers/task_filters.js";
import { mountFilterForm } from "./task_filter_form.js";
import { fillTaskRow } from "./task_row.js";
import { latestRequest } from "../helpers/latest.js";

/** Tasks per page (and the most rows shown, live rows included). */
export const PAGE_SIZE = 50;
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
  let cursors = [null]; // the cursor of every page down to this one; Previous pops
  let next = null; // the server's cursor after this page
  let nextStale = false; // live rows pushed rows off this page: `next` would skip them
  let items = []; // the tasks shown, in order
  let total = null;
  let estimate = false;
  const beginRequest = latestRequest(); // only the latest request may render
  let loading = false;
  const rows = new Map(); // uuid -> <tr>
  const pending = new Map(); // uuid -> task: matching tasks not shown yet (the pill)
  const seen = new Set(); // uuids shown on any page since the first page was loaded
  let floor = -Infinity; // received time from which a matching task counts as new

  /** Fetch one page; returns the body, or null after showing why not. */
  async function fetchPage(cursor) {
    const isLatest = beginRequest();
    loading = true;
    root.setAttribute("aria-busy", "true");
    let response;
    let page = null;
    try {
      response = await fetch(apiUrl(filters, { limit: PAGE_SIZE, cursor }), { headers: { Accept: "application/json" } });
      page = await response.json().catch(() => null);
    } catch (error) {
      if (isLatest()) finish(`Could not reach the dashboard: ${error.message}`);
      return null;
    }
    if (!isLatest()) return null;
    if (!response.ok || page === null || !Array.isArray(page.items)) {
      finish(page?.error ?? `${response.status} ${response.statusText}`);
      return null;
    }
    finish(null);
    return page;
  }

  function finish(error) {
    loading = false;
    root.removeAttribute("aria-busy");
    setField(errorBox, "error", error ?? "");
    errorBox.hidden = error === null;
    if (error !== null) { items = []; total = null; next = null; render(); }
  }

  async function load() {
    const firstPage = cursors.length === 1;
    const requestedAt = store.serverNowMs() / 1000;
    const page = await fetchPage(cursors.at(-1));
    if (page === null) return;
    items = page.items;
    total = Number.isFinite(page.total) ? page.total : null;
    estimate = Boolean(page.total_is_estimate);
    next = page.next ?? null;
    nextStale = false;
    if (firstPage) {
      seen.clear();
      pending.clear();
      floor = isNewestFirst(filters) && next !== null ? Math.min(...items.map(receivedSortTime)) : isNewestFirst(filters) ? -Infinity : requestedAt;
    }
    for (const task of items) { seen.add(task.uuid); pending.delete(task.uuid); }
    render();
  }

  function render() {
    reconcileKeyed(body, rows, items, (task) => task.uuid, () => cloneTemplate(root, "search-row"), fillTaskRow);
    empty.hidden = items.length > 0 || !errorBox.hidden;
    setField(root, "total", total === null ? "" : totalText(total, estimate, formatInteger));
    setField(root, "page", `Page ${cursors.length}`);
    previousButton.disabled = cursors.length <= 1;
    nextButton.disabled = next === null && !nextStale;
    renderPill();
  }

  function renderPill() {
    pill.hidden = pending.size === 0;
    setField(pill, "count", `${formatInteger(pending.size)} new task${pending.size === 1 ? "" : "s"}`);
  }

  /** Whether rows may move now: the first page, newest first, scrolled no further than the table top. */
  function live() {
    if (loading || cursors.length !== 1 || !isNewestFirst(filters) || !errorBox.hidden) return false;
    const tableTop = table.getBoundingClientRect().top + window.scrollY;
    return window.scrollY <= tableTop;
  }

  /** Put matching tasks in their place on the first page (newest first), capped at the page size. */
  function insert(tasks) {
    const added = tasks.filter((task) => !rows.has(task.uuid) && fitsFirstPage(task));
    if (!added.length) return;
    const before = items.length;
    items = [...added, ...items].sort((a, b) => receivedSortTime(b) - receivedSortTime(a));
    if (items.length > PAGE_SIZE) {
      items = items.slice(0, PAGE_SIZE);
      nextStale = true;
    }
    if (total !== null) total += added.length;
    for (const task of added) { seen.add(task.uuid); pending.delete(task.uuid); }
    render();
    for (const task of added) highlight(rows.get(task.uuid));
    if (before === 0) empty.hidden = items.length > 0;
  }

  /** A task belongs on the first page unless the page is full of newer ones. */
  function fitsFirstPage(task) {
    const full = items.length >= PAGE_SIZE || next !== null;
    return !full || receivedSortTime(task) >= receivedSortTime(items.at(-1));
  }

  function highlight(row) {
    if (!row) return;
    row.setAttribute("data-new", "");
    setTimeout(() => row.removeAttribute("data-new"), NEW_ROW_HIGHLIGHT_MS);
  }

  function onChanges(event) {
    const upserts = event.changes.filter((c) => c.kind === "task" && c.op === "upsert" && c.data);
    if (!upserts.length) return;
    const latest = new Map(upserts.map((c) => [c.key, c.data]));
    const fresh = [];
    for (const [uuid, task] of latest) {
      const row = rows.get(uuid);
      if (row) {
        // Shown: update in place (never moved, even when it stops matching).
        items = items.map((item) => (item.uuid === uuid ? task : item));
        fillTaskRow(row, task);
      } else if (pending.has(uuid)) {
        pending.set(uuid, task);
      } else if (!seen.has(uuid) && taskMatches(task, filters) && receivedSortTime(task) >= floor) {
        fresh.push(task);
      }
    }
    if (!fresh.length) return;
    if (live()) {
      insert(fresh);
    } else {
      for (const task of fresh) pending.set(task.uuid, task);
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
    cursors = [null];
    pending.clear();
    renderPill();
    load();
  }

  /** After paging, come back up to the filters when the table top is out of sight. */
  function scrollToTable() {
    if (table.getBoundingClientRect().top < 0) window.scrollTo({ top: 0 });
  }

  pill.addEventListener("click", () => {
    if (cursors.length === 1 && isNewestFirst(filters)) {
      window.scrollTo({ top: 0 });
      const waiting = [...pending.values()];
      pending.clear();
      insert(waiting);
      renderPill();
    } else {
      window.scrollTo({ top: 0 });
      restart();
    }
  });

  previousButton.addEventListener("click", () => {
    if (cursors.length <= 1) return;
    cursors.pop();
    load().then(scrollToTable);
  });

  nextButton.addEventListener("click", async () => {
    let cursor = next;
    if (nextStale) {
      // Live rows pushed some off this page: ask for this page again to continue after what it holds now.
      const page = await fetchPage(cursors.at(-1));
      if (page === null) return;
      cursor = page.next ?? null;
    }
    if (!cursor) return;
    cursors.push(cursor);
    load().then(scrollToTable);
  });

  // Scrolled back to the top of the first page: what waited goes in now.
  window.addEventListener("scroll", () => {
    if (pending.size && live()) {
      const waiting = [...pending.values()];
      pending.clear();
      insert(waiting);
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
