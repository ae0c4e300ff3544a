// Each retry of a task ([data-retries]): when and where the attempt failed, its exception,
// and its traceback in a <details>. Its fields are named retry-* so that the task's own
// fields (exception, traceback, timestamp), filled over the whole panel, never reach them.

import { cloneTemplate, setField, setFieldAttr } from "../helpers/dom.js";
import { EMPTY, formatIso, formatTimePrecise, formatValue } from "../helpers/format.js";
import { retryAttempts } from "../helpers/task_timeline.js";

export function renderRetries(section, events) {
  if (!section) return;
  const retries = retryAttempts(events);
  section.hidden = retries.length === 0;
  const list = section.querySelector('[data-list="retries"]');
  const key = retries.map((r) => `${r.timestamp}`).join(",");
  if (list.dataset.key === key) return; // unchanged: keep open <details> open
  list.dataset.key = key;
  list.replaceChildren(...retries.map((retry) => {
    const item = cloneTemplate(section, "retry-row");
    setField(item, "retry-number", `Attempt ${retry.number}`);
    setField(item, "retry-timestamp", formatTimePrecise(retry.timestamp));
    setFieldAttr(item, "retry-timestamp", "title", formatIso(retry.timestamp));
    setField(item, "retry-hostname", retry.hostname ?? EMPTY);
    setField(item, "retry-exception", formatValue(retry.exception));
    setField(item, "retry-traceback", formatValue(retry.traceback));
    item.querySelector("[data-traceback]").hidden = !retry.traceback;
    return item;
  }));
  setField(section, "retry-count", `${retries.length} retr${retries.length === 1 ? "y" : "ies"}`);
}
