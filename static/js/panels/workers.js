// Worker cards: status, pool, load and a heartbeat age ticking every second.

import { afterNextFrame, cloneTemplate, reconcileKeyed, setField, setFieldAttr } from "../helpers/dom.js";
import { formatAge } from "../helpers/duration.js";
import { EMPTY, formatInteger, formatLoadavg, formatTime, workerHref } from "../helpers/format.js";
import { onTick } from "../helpers/clock.js";
import { activeText, outcomesText, withoutEventsText } from "../helpers/worker_info.js";

/** Cards shown at most; the rest are counted in the panel's header. */
export const MAX_WORKER_CARDS = 500;
/** Cards made at once when the panel has none yet (a page opening on a large cluster); the rest a frame later. */
export const FIRST_WORKER_CARDS = 60;

export function mountWorkers(root, store) {
  const list = root.querySelector("[data-list]");
  const empty = root.querySelector("[data-empty]");
  const cards = new Map(); // hostname -> card element
  let rest = null; // cancels the render of the cards that a first render left for after the frame

  function render(event) {
    if (event?.type === "changes" && event.changed.workers.size === 0) return;
    const workers = store.workersSorted();
    let shown = workers.slice(0, MAX_WORKER_CARDS);
    if (cards.size === 0 && shown.length > FIRST_WORKER_CARDS) {
      // The cards in view are painted first, with the count and the other panels; the others a frame later.
      shown = shown.slice(0, FIRST_WORKER_CARDS);
      rest ??= afterNextFrame(() => { rest = null; render(); });
    }
    reconcileKeyed(list, cards, shown, (worker) => worker.hostname, () => cloneTemplate(root, "worker-card"), fill);
    if (empty) empty.hidden = workers.length > 0;
    setField(root, "worker-count", summary(workers));
    tick();
  }

  function fill(card, worker) {
    card.dataset.hostname = worker.hostname;
    card.dataset.status = worker.status ?? "unknown";
    setField(card, "hostname", worker.hostname);
    setFieldAttr(card, "hostname", "href", workerHref(worker.hostname));
    setFieldAttr(card, "hostname", "title", worker.hostname);
    setField(card, "status", worker.status ?? "unknown");
    setField(card, "pool", worker.pool ?? "unknown");
    setField(card, "concurrency", formatInteger(worker.concurrency));
    setField(card, "active", activeText(worker, formatInteger));
    setField(card, "processed", formatInteger(worker.processed));
    setField(card, "outcomes", outcomesText(worker, formatInteger));
    const noEvents = withoutEventsText(worker);
    setField(card, "no-events", noEvents);
    for (const badge of card.querySelectorAll('[data-field="no-events"]')) badge.hidden = noEvents === "";
    setField(card, "loadavg", formatLoadavg(worker.loadavg));
    const software = [worker.sw_ident, worker.sw_ver, worker.sw_sys].filter(Boolean).join(" ");
    setField(card, "software", software || EMPTY);
    setFieldAttr(card, "heartbeat", "title", worker.last_heartbeat ? `Last heartbeat at ${formatTime(worker.last_heartbeat)}` : null);
    card.dataset.lastHeartbeat = Number.isFinite(worker.last_heartbeat) ? String(worker.last_heartbeat) : "";
  }

  function tick() {
    const nowSeconds = store.serverNowMs() / 1000;
    for (const card of cards.values()) {
      const last = card.dataset.lastHeartbeat ? Number(card.dataset.lastHeartbeat) : null;
      setField(card, "heartbeat", last === null ? "no heartbeat yet" : `last heartbeat ${formatAge(nowSeconds - last)}`);
    }
  }

  render();
  const unsubscribe = store.subscribe(render);
  const stopTick = onTick(tick);
  return () => { unsubscribe(); stopTick(); rest?.(); };
}

function summary(workers) {
  const count = (status) => workers.filter((w) => w.status === status).length;
  const lost = count("lost");
  const parts = [`${count("online")} online`, `${count("offline")} offline`];
  if (lost) parts.push(`${lost} lost`);
  return parts.join(" · ");
}
