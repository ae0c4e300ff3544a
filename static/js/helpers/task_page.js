// The tasks page's results, DOM-free: one page of GET /api/tasks with keyset paging (a stack of
// cursors for Previous, kept in the browser history's state so that Back and Forward walk the
// pages), and what live `changes` do to it. On the first page sorted newest first, matching tasks
// go in at the top; otherwise they wait in `pending` (the "N new tasks" pill).

import { formatInteger } from "./format.js";
import { receivedSortTime, taskMatches } from "./task_filters.js";

/** Tasks per page (and the most rows shown, live rows included). */
export const PAGE_SIZE = 50;

/**
 * Where a page is: `cursors`, the cursor of every page from the first (null) down to it, and
 * `gap`, true when the pages between the first and `cursors[1]` are not known (a page opened
 * from its URL alone). This is what `history.state` holds for each page.
 */
export function isPosition(value) {
  if (!value || typeof value !== "object" || !Array.isArray(value.cursors)) return false;
  const [first, ...rest] = value.cursors;
  if (first !== null || !rest.every((cursor) => typeof cursor === "string" && cursor !== "")) return false;
  return typeof value.gap === "boolean" && (!value.gap || rest.length > 0);
}

/**
 * The position of the page a URL's `cursor` names: `state` (history.state) when it is a
 * position ending at that cursor (Back, Forward, a reload); else the first page, or, for a
 * cursor with no known pages before it, that page right after a gap (Previous goes to the first page).
 */
export function positionFor(cursor, state) {
  const wanted = cursor || null;
  if (isPosition(state) && state.cursors.at(-1) === wanted) return { cursors: [...state.cursors], gap: state.gap };
  return wanted === null ? { cursors: [null], gap: false } : { cursors: [null, wanted], gap: true };
}

/**
 * What the "N new tasks" pill says of `count` waiting tasks: sorted newest first they go in at the top
 * (an up arrow); in another order the pill loads the first page again, where they take their place
 * among the others, which it says instead of pointing up.
 */
export function newTasksPill(count, newestFirst) {
  const text = `${formatInteger(count)} new task${count === 1 ? "" : "s"}`;
  return newestFirst
    ? { text, mark: "↑", title: "Show them at the top" }
    : { text, mark: "↻", title: "Load the first page again: they take their place in this order" };
}

export class TaskPage {
  constructor() {
    this.cursors = [null]; // the cursor of every page down to this one; Previous pops
    this.gap = false; // pages between the first and cursors[1] are not known: the number is not either
    this.next = null; // the server's cursor after this page
    this.nextStale = false; // live rows pushed rows off this page: `next` would skip them
    this.items = []; // the tasks shown, in order
    this.total = null;
    this.estimate = false;
    this.pending = new Map(); // uuid -> task: matching tasks not shown yet
    this.seen = new Set(); // uuids shown on any page since the first page was loaded
    this.floor = -Infinity; // received time from which a matching task counts as new
  }

  /** The page number, 1 for the first page; null when pages before this one are not known. */
  get number() { return this.gap ? null : this.cursors.length; }
  get firstPage() { return this.cursors.length === 1; }
  get cursor() { return this.cursors.at(-1); }
  get hasPrevious() { return this.cursors.length > 1; }
  get hasNext() { return this.next !== null || this.nextStale; }
  /**
   * How to ask for the next page: the server's `next` cursor, or, once live rows pushed rows off
   * this page, the page after the row it shows last (`after`), so nothing shown comes again and
   * nothing pushed off is skipped.
   */
  get nextRequest() {
    if (this.nextStale && this.items.length) return { after: this.items.at(-1).uuid };
    return this.next !== null ? { cursor: this.next } : null;
  }

  /** Go back to the first page (new filters, the pill, a resync): what waited is dropped. */
  restart() {
    this.cursors = [null];
    this.gap = false;
    this.pending.clear();
  }

  /** Step down to the page after `cursor`. */
  forward(cursor) { this.cursors.push(cursor); }

  /** Step back up one page; false on the first. */
  back() {
    if (this.cursors.length <= 1) return false;
    this.cursors.pop();
    if (this.cursors.length === 1) this.gap = false;
    return true;
  }

  /** This page's position, a copy to keep in `history.state`. */
  get position() { return { cursors: [...this.cursors], gap: this.gap }; }

  /** Go to a position (see `positionFor`); what waits behind the pill stays. */
  moveTo(position) {
    this.cursors = [...position.cursors];
    this.gap = this.cursors.length > 1 && Boolean(position.gap);
  }

  /** "Page 3", or "A later page" when the pages before it are not known. */
  get label() { return this.number === null ? "A later page" : `Page ${this.number}`; }

  /**
   * Take a page the API answered for the current cursor. `requestedAt` is the server's time
   * (seconds) when it was asked for: on the first page, what is older than the page's last row
   * (newest first) or was received before the request (other sorts) is not news.
   */
  loaded(page, newestFirst, requestedAt) {
    this.items = page.items;
    this.total = Number.isFinite(page.total) ? page.total : null;
    this.estimate = Boolean(page.total_is_estimate);
    this.next = page.next ?? null;
    this.nextStale = false;
    if (this.firstPage) {
      this.seen.clear();
      this.pending.clear();
      if (!newestFirst) this.floor = requestedAt;
      else this.floor = this.next !== null ? Math.min(...this.items.map(receivedSortTime)) : -Infinity;
    }
    for (const task of this.items) { this.seen.add(task.uuid); this.pending.delete(task.uuid); }
  }

  /** A failed request: nothing is shown. */
  failed() {
    this.items = [];
    this.total = null;
    this.next = null;
  }

  /**
   * Apply the task upserts of one `changes` message: shown tasks are replaced in place (never
   * moved, even when they stop matching); waiting ones are refreshed. Return the shown tasks
   * that changed and the matching tasks that are new to this page, for the caller to insert
   * (`insert`) or keep waiting (`wait`).
   */
  applyChanges(changes, filters) {
    const latest = new Map();
    for (const c of changes) if (c.kind === "task" && c.op === "upsert" && c.data) latest.set(c.key, c.data);
    const updated = [];
    const fresh = [];
    if (!latest.size) return { updated, fresh };
    const shown = new Set(this.items.map((task) => task.uuid));
    for (const [uuid, task] of latest) {
      if (shown.has(uuid)) {
        updated.push(task);
      } else if (this.pending.has(uuid)) {
        this.pending.set(uuid, task);
      } else if (!this.seen.has(uuid) && taskMatches(task, filters) && receivedSortTime(task) >= this.floor) {
        fresh.push(task);
      }
    }
    if (updated.length) {
      const byId = new Map(updated.map((task) => [task.uuid, task]));
      this.items = this.items.map((item) => byId.get(item.uuid) ?? item);
    }
    return { updated, fresh };
  }

  /** Keep tasks waiting behind the pill. */
  wait(tasks) {
    for (const task of tasks) this.pending.set(task.uuid, task);
  }

  /** Take every waiting task out, to insert. */
  takePending() {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    return waiting;
  }

  /** Put tasks in their place on the first page (newest first), capped at the page size; return those added. */
  insert(tasks) {
    const shown = new Set(this.items.map((task) => task.uuid));
    const added = tasks.filter((task) => !shown.has(task.uuid) && this.fitsFirstPage(task));
    if (!added.length) return added;
    this.items = [...added, ...this.items].sort((a, b) => receivedSortTime(b) - receivedSortTime(a));
    if (this.items.length > PAGE_SIZE) {
      this.items = this.items.slice(0, PAGE_SIZE);
      this.nextStale = true;
    }
    if (this.total !== null) this.total += added.length;
    for (const task of added) { this.seen.add(task.uuid); this.pending.delete(task.uuid); }
    return added;
  }

  /** A task belongs on the first page unless the page is full of newer ones. */
  fitsFirstPage(task) {
    const full = this.items.length >= PAGE_SIZE || this.next !== null;
    return !full || receivedSortTime(task) >= receivedSortTime(this.items.at(-1));
  }
}
