// Queues table: name (link), depth (stale / not available / error), consumers, the oldest
// waiting task's age, flags and a live 15-minute sparkline. Ages and sparklines tick every second.
// A cluster with more queues than the table shows (MAX_QUEUE_ROWS) gets the flagged and deepest.

import { onTick } from "../helpers/clock.js";
import { cloneTemplate, reconcileKeyed, setField, setFieldAttr } from "../helpers/dom.js";
import { formatInteger, formatTime, queueHref } from "../helpers/format.js";
import { createQueueHistory } from "../helpers/queue_history.js";
import {
  consumersTitle, depthInfo, depthTitle, MAX_QUEUE_ROWS, oldestText, queueCountText, shownQueues, thresholdText,
} from "../helpers/queue_info.js";
import { renderQueueFlags } from "./queue_flags.js";
import { drawSparkline } from "./queue_sparkline.js";

export function mountQueues(root, store) {
  const list = root.querySelector("[data-list]");
  const empty = root.querySelector("[data-empty]");
  const rows = new Map(); // name -> element
  const queues = new Map(); // name -> the queue shown in its row
  const history = createQueueHistory();
  const maxRows = root.querySelector(".queue-table-compact") ? MAX_QUEUE_ROWS.compact : MAX_QUEUE_ROWS.full;

  function render(event) {
    if (event?.type === "snapshot") {
      history.seed(store.queuesSorted());
    } else if (event?.type === "changes") {
      if (event.changed.queues.size === 0) return;
      for (const change of event.changes) {
        if (change.kind !== "queue") continue;
        if (change.op === "upsert" && change.data) history.append(change.key, change.data);
        else if (change.op === "remove") history.forget(change.key);
      }
    } else if (event) {
      return; // broker status, disconnects: nothing in this table changes
    }
    const all = store.queuesSorted();
    const sorted = shownQueues(all, maxRows);
    reconcileKeyed(list, rows, sorted, (queue) => queue.name, (queue) => {
      const row = cloneTemplate(root, "queue-row");
      row.dataset.queue = queue.name;
      setField(row, "name", queue.name);
      setFieldAttr(row, "name", "href", queueHref(queue.name));
      return row;
    }, (row, queue) => {
      if (queues.get(queue.name) !== queue) fill(row, queue);
    });
    queues.clear();
    for (const queue of sorted) queues.set(queue.name, queue);
    if (empty) empty.hidden = all.length > 0;
    setField(root, "queue-count", queueCountText(sorted.length, all.length));
    tick();
  }

  function fill(row, queue) {
    const depth = depthInfo(queue);
    row.toggleAttribute("data-backlog", Number.isFinite(queue.depth) && queue.depth > 0);
    row.toggleAttribute("data-alerting", Boolean(queue.alerting || queue.no_consumer));
    row.toggleAttribute("data-stale", depth.stale);
    row.toggleAttribute("data-unavailable", !depth.available);
    setField(row, "depth", depth.text);
    setFieldAttr(row, "depth-cell", "title", depthTitle(queue));
    for (const mark of row.querySelectorAll('[data-field="stale"]')) mark.hidden = !depth.stale;
    setField(row, "error", depth.error ?? "");
    for (const line of row.querySelectorAll('[data-field="error"]')) line.hidden = !depth.error;
    setField(row, "consumers", formatInteger(queue.consumers));
    setFieldAttr(row, "consumers", "title", consumersTitle(queue));
    setField(row, "unacked", formatInteger(queue.unacked));
    setField(row, "threshold", thresholdText(queue.alert_threshold));
    setFieldAttr(row, "oldest", "title", queue.oldest_sent ? `Oldest waiting task sent at ${formatTime(queue.oldest_sent)}` : null);
    renderQueueFlags(row.querySelector("[data-flags]"), queue);
  }

  function tick() {
    const nowSeconds = store.serverNowMs() / 1000;
    for (const [name, row] of rows) {
      setField(row, "oldest", oldestText(queues.get(name), nowSeconds));
      const svg = row.querySelector("[data-sparkline]");
      if (svg) drawSparkline(svg, history.samples(name, nowSeconds), nowSeconds);
    }
  }

  history.seed(store.queuesSorted());
  render();
  const unsubscribe = store.subscribe(render);
  const stopTick = onTick(tick);
  return () => { unsubscribe(); stopTick(); };
}
