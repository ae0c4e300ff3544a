// One task's detail: all fields, payloads in <pre> with Copy buttons, named step durations, its
// retries, its family tree and its event timeline; live via the task's room.

import { onTick } from "../helpers/clock.js";
import { cloneTemplate, setField, setFieldAttr } from "../helpers/dom.js";
import { formatDelta } from "../helpers/duration.js";
import {
  EMPTY, formatInteger, formatIso, formatTimePrecise, formatValue, orUnknown, taskHref, taskTypeHref, workerHref,
  zonedSeconds,
} from "../helpers/format.js";
import { orphanedSpan, runtimeText, withDeltas } from "../helpers/task_timeline.js";
import { taskGapText } from "../helpers/gaps.js";
import { fillLinks } from "../helpers/links.js";
import { mountCopyButtons } from "./copy.js";
import { renderRetries } from "./task_retries.js";
import { renderSteps } from "./task_steps.js";
import { mountTaskTree } from "./task_tree.js";
import { latestRequest } from "../helpers/latest.js";

/** Refetch the timeline this long after a live change (at most once per this long while changes flow). */
export const REFETCH_DEBOUNCE_MS = 500;
/** Retry a failed fetch (network or 5xx) after this long. */
export const RETRY_FETCH_MS = 5000;

const NO_SENT_EVENT = "unknown (no task-sent event)";
const DEFAULT_EXCHANGE = "the default exchange (\"\")";
const TIME_FIELDS = ["sent", "received", "started", "succeeded", "failed", "retried", "revoked", "rejected", "timestamp"];
const PAYLOAD_FIELDS = ["args", "kwargs", "result", "exception", "traceback"];
// Left out of an event's one-line details: shown in their own columns, or in blocks (traceback).
const EVENT_BASE_FIELDS = new Set(["type", "timestamp", "hostname", "uuid", "local_received", "clock", "utcoffset", "pid", "traceback"]);

/**
 * Mount the task detail panel.
 * @param {{uuid: string, live: {subscribe(room: string): void}|null, announce?: (text: string) => void,
 *   onTask?: (task: object) => void}} options `onTask` is called with the task at every render
 */
export function mountTaskDetail(root, store, { uuid, live, announce = () => {}, onTask = () => {} }) {
  let task = null;
  let refetchTimer = null;
  let lastState = null;
  const beginRequest = latestRequest(); // only the latest request may render
  let stepsGoing = false; // a step duration is still counting up: re-render it every tick
  const departedWorkers = new Map(); // hostname -> its shape from the API (null while asked or unknown)
  const showTree = mountTaskTree(root.querySelector("[data-tree]"), store);
  const steps = root.querySelector("[data-steps]");
  const retries = root.querySelector("[data-retries]");
  mountCopyButtons(root);

  setField(root, "requested-uuid", uuid);

  async function load() {
    clearTimeout(refetchTimer);
    refetchTimer = null;
    const isLatest = beginRequest();
    let response;
    let body = null;
    try {
      response = await fetch(`/api/tasks/${encodeURIComponent(uuid)}`, { headers: { Accept: "application/json" } });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (isLatest()) fail(`Could not reach the dashboard: ${error.message}`);
      return;
    }
    if (!isLatest()) return;
    if (response.status === 404) {
      task = null;
      return show("missing");
    }
    if (!response.ok || body === null) {
      return fail(`Could not load the task: ${body?.error ?? `${response.status} ${response.statusText}`}`);
    }
    task = body;
    render();
  }

  function fail(message) {
    setField(root, "error", message);
    show("error");
    refetchTimer = setTimeout(load, RETRY_FETCH_MS);
  }

  /** Refetch soon; a refetch already scheduled is kept, so steady changes (progress) cannot starve it. */
  function scheduleRefetch() {
    if (refetchTimer !== null) return;
    refetchTimer = setTimeout(load, REFETCH_DEBOUNCE_MS);
  }

  function show(view) {
    for (const el of root.querySelectorAll("[data-view]")) el.hidden = el.dataset.view !== view;
  }

  /**
   * The shape of the worker `hostname`: the live one, or for a worker no longer in the live list
   * (purged some time after it was lost) the API's, fetched once; null until then.
   */
  function workerOf(hostname) {
    if (!hostname) return null;
    const live = store.worker(hostname);
    if (live || departedWorkers.has(hostname)) return live ?? departedWorkers.get(hostname);
    departedWorkers.set(hostname, null);
    fetch(`/api/workers/${encodeURIComponent(hostname)}`, { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((body) => {
        if (!body || body.hostname !== hostname) return;
        departedWorkers.set(hostname, body);
        if (task?.worker === hostname) renderLost();
      })
      .catch(() => {}); // without the worker, the task's own last update stands in
    return null;
  }

  /** The orphaned task's span up to when its worker was last heard from, or null. */
  function orphanOf(events) {
    if (!orphanedSpan(task)) return null; // not orphaned, or no longer in flight: no worker needed
    return orphanedSpan(task, { worker: workerOf(task.worker), events });
  }

  /** Re-render what depends on the orphaned task's worker: the runtime and the steps. */
  function renderLost() {
    const events = task.events ?? [];
    const orphan = orphanOf(events);
    setField(root, "runtime", runtimeText(task, orphan));
    stepsGoing = renderSteps(steps, events, store.serverNowMs() / 1000, orphan);
  }

  function render() {
    show("task");
    const events = task.events ?? [];
    const orphan = orphanOf(events);
    renderFields(root, task, orphan);
    onTask(task);
    renderTimeline(root, events);
    stepsGoing = renderSteps(steps, events, store.serverNowMs() / 1000, orphan);
    renderRetries(retries, events);
    showTree(task);
    document.title = `${task.name ?? "Task"} ${task.state ?? ""} · Celery Dashboard`;
    if (lastState !== null && lastState !== task.state) announce(`Task is now ${task.state}`);
    lastState = task.state;
  }

  const unsubscribe = store.subscribe((event) => {
    if (event.type === "snapshot") return scheduleRefetch(); // reconnected or resynced: we may have missed changes
    if (event.type !== "changes") return;
    if (!event.changed.tasks.has(uuid)) {
      // An orphaned task's lost runtime runs to its worker's last heartbeat: follow the worker.
      if (task?.orphaned && task.worker && event.changed.workers.has(task.worker)) {
        if (!store.worker(task.worker)) departedWorkers.delete(task.worker); // purged since: ask the API again
        renderLost();
      }
      return;
    }
    const change = event.changes.filter((c) => c.kind === "task" && c.key === uuid).at(-1);
    if (change?.op === "upsert" && change.data && task) {
      task = { ...task, ...change.data, events: task.events }; // fields now, timeline on refetch
      render();
    }
    scheduleRefetch();
  });

  const stopTick = onTick(() => {
    if (task && stepsGoing) {
      const events = task.events ?? [];
      stepsGoing = renderSteps(steps, events, store.serverNowMs() / 1000, orphanOf(events));
    }
  });

  live?.subscribe(`task:${uuid}`);
  load();
  return () => { unsubscribe(); stopTick(); showTree.stop(); clearTimeout(refetchTimer); };
}

function renderFields(root, task, orphan) {
  root.dataset.state = task.state ?? "PENDING";
  setField(root, "name", task.name ?? "unknown");
  setFieldAttr(root, "task-type", "href", task.name ? taskTypeHref(task.name) : null);
  for (const link of root.querySelectorAll("[data-task-type-link]")) link.hidden = !task.name;
  for (const links of root.querySelectorAll("[data-links]")) fillLinks(links, task.links);
  const lostNote = task.lost ? `Unknown: ${task.lost}. It may have finished unseen while events were missed.` : "";
  setField(root, "lost-note", lostNote);
  for (const note of root.querySelectorAll("[data-lost-note]")) note.hidden = lostNote === "";
  const gapNote = taskGapText(task.gaps);
  setField(root, "gap-note", gapNote);
  for (const note of root.querySelectorAll("[data-gap-note]")) note.hidden = gapNote === "";
  setField(root, "uuid", task.uuid);
  setField(root, "state", task.state ?? "PENDING");
  setFieldAttr(root, "state", "data-state", task.state ?? "PENDING");
  setField(root, "worker", task.worker ?? EMPTY);
  setFieldAttr(root, "worker", "href", task.worker ? workerHref(task.worker) : null);
  setField(root, "queue", orUnknown(task.queue, NO_SENT_EVENT));
  setField(root, "exchange", task.exchange === "" ? DEFAULT_EXCHANGE : orUnknown(task.exchange, NO_SENT_EVENT));
  setField(root, "routing_key", orUnknown(task.routing_key, NO_SENT_EVENT));
  for (const field of TIME_FIELDS) {
    setField(root, field, formatTimePrecise(task[field]));
    setFieldAttr(root, field, "title", formatIso(task[field]));
  }
  for (const field of ["eta", "expires"]) {  // local time, as the others; the value as sent in its title
    const seconds = zonedSeconds(task[field]);
    setField(root, field, seconds === null ? (task[field] ? String(task[field]) : EMPTY) : formatTimePrecise(seconds));
    setFieldAttr(root, field, "title", seconds === null || typeof task[field] !== "string" ? null : task[field]);
  }
  setField(root, "runtime", runtimeText(task, orphan));
  setField(root, "retries", formatInteger(task.retries));
  setField(root, "orphaned", task.orphaned ? "yes: its worker was lost while it ran" : "no");
  root.toggleAttribute("data-orphaned", Boolean(task.orphaned));
  setField(root, "orphan-worker", task.worker ?? "unknown");
  setFieldAttr(root, "orphan-worker", "href", task.worker ? workerHref(task.worker) : null);
  setField(root, "progress", formatProgress(task.progress));
  for (const field of ["parent_id", "root_id"]) {
    setField(root, field, task[field] ?? EMPTY);
    setFieldAttr(root, field, "href", task[field] ? taskHref(task[field]) : null);
  }
  renderChildren(root, task.children ?? []);
  for (const field of PAYLOAD_FIELDS) {
    setField(root, field, formatValue(task[field]));
    for (const block of root.querySelectorAll(`[data-payload="${field}"]`)) {
      block.toggleAttribute("data-empty-payload", task[field] === null || task[field] === undefined || task[field] === "");
    }
  }
}

function renderChildren(root, children) {
  const list = root.querySelector('[data-list="children"]');
  if (!list) return;
  list.replaceChildren(
    ...children.map((child) => {
      const item = cloneTemplate(root, "child-link");
      setField(item, "child", child);
      setFieldAttr(item, "child", "href", taskHref(child));
      return item;
    }),
  );
  setField(root, "children-empty", children.length ? "" : EMPTY);
}

function renderTimeline(root, events) {
  const body = root.querySelector('[data-list="events"]');
  body.replaceChildren(
    ...withDeltas(events).map(({ event, delta }) => {
      const row = cloneTemplate(root, "event-row");
      row.dataset.eventType = event.type ?? "";
      setField(row, "type", event.reconciled ? `${event.type ?? EMPTY} (reconciled from the ${event.reconciled})` : event.type ?? EMPTY);
      row.toggleAttribute("data-reconciled", Boolean(event.reconciled));
      setField(row, "timestamp", formatTimePrecise(event.timestamp));
      setFieldAttr(row, "timestamp", "title", formatIso(event.timestamp));
      setField(row, "hostname", event.hostname ?? EMPTY);
      setField(row, "delta", delta === null ? EMPTY : formatDelta(delta));
      const details = eventDetails(event);
      setField(row, "details", details);
      setFieldAttr(row, "details", "title", details);
      return row;
    }),
  );
  setField(root, "event-count", `${events.length} event${events.length === 1 ? "" : "s"}`);
}

function eventDetails(event) {
  return Object.entries(event)
    .filter(([key, value]) => !EVENT_BASE_FIELDS.has(key) && value !== null && value !== undefined && value !== "")
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join("  ");
}

function formatProgress(progress) {
  if (!progress || !Number.isFinite(progress.current)) return EMPTY;
  if (!Number.isFinite(progress.total) || progress.total <= 0) return formatInteger(progress.current);
  const percent = Math.round((progress.current / progress.total) * 100);
  return `${formatInteger(progress.current)} / ${formatInteger(progress.total)} (${percent} %)`;
}
