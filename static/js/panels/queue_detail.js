// One queue's page: header and flags, facts, consumers, the depth chart (the last hour from memory, or a
// day or a week from the store's per-minute history; extended live from the store's queue upserts) and the task types waiting (refetched every few seconds).

import { addToBucket, fromColumns, trimSamples } from "../helpers/chart.js";
import { onTick } from "../helpers/clock.js";
import { cloneTemplate, setField, setFieldAttr } from "../helpers/dom.js";
import { formatAge } from "../helpers/duration.js";
import { formatInteger, formatIso, formatTime, workerHref } from "../helpers/format.js";
import {
  consumersTitle, depthInfo, depthTitle, messagesText, oldestText, thresholdText, waitingRows,
} from "../helpers/queue_info.js";
import { createQueueChart } from "./queue_chart.js";
import { renderQueueFlags } from "./queue_flags.js";
import { createDetailLoader } from "./detail_loader.js";

/** Refetch the queue (its waiting task types and history) this often. */
export const WAITING_REFRESH_MS = 5000;
/** Wait this long after a reconnect's snapshot before refetching (several may come at once). */
export const REFETCH_DEBOUNCE_MS = 500;
/** The API's chart buckets, in seconds: live samples are folded into the same buckets. */
export const HISTORY_BUCKET_SECONDS = 15;
/** The store's buckets for longer ranges (the highest depth of each minute), in seconds. */
export const STORED_BUCKET_SECONDS = 60;
/** Task type rows shown at most. */
export const MAX_WAITING_ROWS = 200;

/**
 * Mount the queue detail panel.
 * Backlog alerts are spoken by notifications.js on every page, not here.
 * @param {{name: string, onShown?: (depth: number|null) => void}} options `onShown`: told the depth the page
 *   shows whenever it changes (null while none), for the purge dialog to name the same number
 */
export function mountQueueDetail(root, store, { name, onShown = () => {} }) {
  const base = `/api/queues/${encodeURIComponent(name)}`;
  const range = root.querySelector("[data-range]");
  let hours = Number(range?.value) || 1;
  const bucketSeconds = () => (hours > 1 ? STORED_BUCKET_SECONDS : HISTORY_BUCKET_SECONDS);
  const draw = createQueueChart(root.querySelector("[data-chart]"));
  let detail = null;
  let samples = [];
  let missing = false;
  const { load, schedule, show, stop } = createDetailLoader(root, {
    what: "queue",
    url: () => `${base}?hours=${hours}`,
    loaded(body) {
      missing = false;
      detail = body;
      samples = fromColumns(body.history, ["depth"]);
      render();
      return WAITING_REFRESH_MS;
    },
    missing() {
      // It may become known later (a worker starts consuming it): the store's upsert reloads.
      detail = null;
      missing = true;
      onShown(null);
      return null;
    },
  });

  setField(root, "requested-name", name);

  function render() {
    show("queue");
    renderWaiting();
    renderLive();
  }

  /** Render what live upserts touch: the header, facts and consumers. */
  function renderLive() {
    const depth = depthInfo(detail);
    onShown(depth.available ? detail.depth : null);
    root.toggleAttribute("data-alerting", Boolean(detail.alerting || detail.no_consumer));
    root.toggleAttribute("data-stale", depth.stale);
    setField(root, "name", detail.name);
    setField(root, "depth-summary", depth.available ? messagesText(detail.depth) : depth.text);
    setField(root, "depth", depth.text);
    setFieldAttr(root, "depth", "title", depthTitle(detail));
    for (const mark of root.querySelectorAll('[data-field="stale"]')) mark.hidden = !depth.stale;
    setField(root, "queue-error", depth.error ? `${depth.stale ? "The last sample failed: " : ""}${depth.error}` : "");
    root.querySelector("[data-queue-error]").hidden = !depth.error;
    renderQueueFlags(root.querySelector("[data-flags]"), detail);
    setField(root, "unacked", formatInteger(detail.unacked));
    root.querySelector('[data-fact="unacked"]').hidden = !Number.isFinite(detail.unacked);
    setField(root, "threshold", thresholdText(detail.alert_threshold));
    setField(root, "consumers", formatInteger(detail.consumers));
    setFieldAttr(root, "consumers", "title", consumersTitle(detail));
    renderWorkers(Array.isArray(detail.workers) ? detail.workers : []);
    setFieldAttr(root, "oldest", "title", detail.oldest_sent ? `Sent at ${formatTime(detail.oldest_sent)}` : null);
    setFieldAttr(root, "sampled", "title", formatIso(detail.sampled_at));
    tick();
  }

  function renderWorkers(workers) {
    const list = root.querySelector('[data-list="workers"]');
    const key = workers.join("\n");
    if (list.dataset.workers !== key) {
      list.dataset.workers = key;
      list.replaceChildren(...workers.map((hostname) => {
        const item = cloneTemplate(root, "worker-link");
        setField(item, "hostname", hostname);
        setFieldAttr(item, "hostname", "href", workerHref(hostname));
        return item;
      }));
    }
    setField(root, "workers-empty", workers.length ? "" : "No worker the dashboard sees consumes it");
  }

  function renderWaiting() {
    const rows = waitingRows(detail.waiting_tasks);
    const list = root.querySelector('[data-list="waiting"]');
    list.replaceChildren(...rows.slice(0, MAX_WAITING_ROWS).map(({ name: task, count }) => {
      const row = cloneTemplate(root, "waiting-row");
      setField(row, "task", task);
      setField(row, "count", formatInteger(count));
      return row;
    }));
    const total = rows.reduce((sum, row) => sum + row.count, 0);
    setField(root, "waiting-count", rows.length ? `${formatInteger(total)} tasks of ${formatInteger(rows.length)} types` : "");
    setField(root, "waiting-empty", rows.length ? "" : "No task seen sent to this queue is still waiting.");
    setField(root, "waiting-more", rows.length > MAX_WAITING_ROWS ? `${rows.length - MAX_WAITING_ROWS} more types not shown` : "");
  }

  function tick() {
    if (!detail) return;
    const nowSeconds = store.serverNowMs() / 1000;
    setField(root, "oldest", oldestText(detail, nowSeconds));
    setField(root, "sampled", Number.isFinite(detail.sampled_at) ? formatAge(nowSeconds - detail.sampled_at) : "never");
    trimSamples(samples, nowSeconds, hours * 3600);
    draw(samples, { nowSeconds, threshold: detail.alert_threshold?.depth ?? null, bucketSeconds: bucketSeconds(),
      windowSeconds: hours * 3600 });
  }

  const unsubscribe = store.subscribe((event) => {
    if (event.type === "snapshot") {
      // Reconnected or resynced: the history may have a hole.
      if (detail || missing) schedule(REFETCH_DEBOUNCE_MS);
      return;
    }
    if (event.type !== "changes" || !event.changed.queues.has(name)) return;
    const upserts = event.changes.filter((c) => c.kind === "queue" && c.key === name && c.op === "upsert" && c.data);
    if (!upserts.length) return;
    if (!detail) {
      if (missing) load(); // it has just become known
      return;
    }
    for (const { data } of upserts) {
      if (typeof data.depth === "number" && !data.stale) addToBucket(samples, data.sampled_at, "depth", data.depth, bucketSeconds());
    }
    // Upserts carry neither history nor waiting_tasks: keep those from the last fetch.
    detail = { ...detail, ...upserts.at(-1).data };
    renderLive();
  });

  range?.addEventListener("change", () => {
    hours = Number(range.value) || 1;
    setField(root, "chart-title", range.selectedOptions[0]?.textContent ?? "");
    samples = [];
    load();
  });

  const stopTick = onTick(tick);
  load();
  return () => { unsubscribe(); stopTick(); stop(); };
}
