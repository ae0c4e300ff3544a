// Counters strip: tasks per state, throughput and event rate.

import { formatInteger, formatRate } from "../helpers/format.js";
import { setField } from "../helpers/dom.js";

/** Celery task states, in the order the strip shows them. */
export const TASK_STATES = ["PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED"];

export function mountCounters(root, store) {
  function render() {
    const counters = store.counters;
    const states = counters?.states ?? {};
    for (const cell of root.querySelectorAll("[data-counter]")) {
      const name = cell.dataset.counter;
      let text;
      if (name === "throughput") text = formatRate(counters?.throughput);
      else if (name === "events_per_second") text = formatRate(counters?.events_per_second);
      else if (name === "total") text = formatInteger(counters?.total);
      else text = formatInteger(counters ? states[name] ?? 0 : null);
      setField(cell, "value", text);
    }
    const events = counters?.events;
    setField(root, "events-received", formatInteger(events?.received));
    setField(root, "events-malformed", formatInteger(events?.malformed));
    setField(root, "task-events", formatInteger(counters?.task_events));
  }

  render();
  return store.subscribe(render);
}
