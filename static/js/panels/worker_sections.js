// A worker page's inspect lists: active tasks, reserved, scheduled, revoked, registered, queues, orphaned, conf.

import { cloneTemplate, setField, setFieldAttr } from "../helpers/dom.js";
import { EMPTY, formatInteger, formatIso, formatTime, formatTimePrecise, shortUuid, taskHref } from "../helpers/format.js";
import { compactValue, etaSeconds } from "../helpers/worker_info.js";

/** Rows shown at most per section (a worker can hold thousands of revoked ids). */
export const MAX_SECTION_ROWS = 500;

const NOT_INSPECTED = "Not inspected yet.";

/** Each section: the detail key, the row template, and how a row is filled. */
const SECTIONS = {
  active_tasks: { template: "request-row", fill: fillRequest },
  reserved: { template: "request-row", fill: fillRequest },
  scheduled: { template: "scheduled-row", fill: fillScheduled },
  revoked: { template: "task-link-item", fill: fillTaskLink },
  orphaned: { template: "task-link-item", fill: fillTaskLink },
  registered: { template: "name-item", fill: (row, name) => setField(row, "name", String(name)) },
  active_queues: { template: "consumed-queue-row", fill: fillQueue },
  conf: { template: "conf-row", fill: fillConf, entries: true },
};

/** Render every `[data-section]` under `root` from the worker `detail`. */
export function renderWorkerSections(root, detail) {
  for (const section of root.querySelectorAll("[data-section]")) {
    const key = section.dataset.section;
    const spec = SECTIONS[key];
    if (!spec) continue;
    const raw = detail[key];
    let items = null;
    if (spec.entries) items = raw && typeof raw === "object" ? Object.entries(raw).sort(([a], [b]) => a.localeCompare(b)) : null;
    else items = Array.isArray(raw) ? raw : null;
    const list = section.querySelector("[data-list]");
    const shown = (items ?? []).slice(0, MAX_SECTION_ROWS);
    list.replaceChildren(...shown.map((item) => {
      const row = cloneTemplate(root, spec.template);
      spec.fill(row, item);
      return row;
    }));
    setField(section, "count", items === null ? "" : formatInteger(items.length));
    const more = items === null ? 0 : items.length - shown.length;
    setField(section, "more", more > 0 ? `… and ${formatInteger(more)} more` : "");
    setField(section, "empty", items === null ? NOT_INSPECTED : items.length === 0 ? "None." : "");
  }
}

function setTaskId(row, id) {
  setField(row, "id", typeof id === "string" ? shortUuid(id) : EMPTY);
  setFieldAttr(row, "id", "href", typeof id === "string" ? taskHref(id) : null);
  setFieldAttr(row, "id", "title", typeof id === "string" ? id : null);
}

function fillRequest(row, request) {
  setTaskId(row, request?.id);
  setField(row, "name", request?.name ?? request?.type ?? "unknown");
  setField(row, "args", compactValue(request?.args));
  setFieldAttr(row, "args", "title", compactValue(request?.args, Infinity));
  setField(row, "kwargs", compactValue(request?.kwargs));
  setFieldAttr(row, "kwargs", "title", compactValue(request?.kwargs, Infinity));
  setField(row, "started", formatTime(request?.time_start));
  setFieldAttr(row, "started", "title", formatIso(request?.time_start));
  setField(row, "routing-key", request?.delivery_info?.routing_key ?? EMPTY);
  setField(row, "worker-pid", request?.worker_pid === null || request?.worker_pid === undefined ? EMPTY : String(request.worker_pid));
  setField(row, "acknowledged", request?.acknowledged ? "yes" : "no");
}

function fillScheduled(row, entry) {
  const request = entry?.request ?? {};
  setTaskId(row, request.id);
  setField(row, "name", request.name ?? request.type ?? "unknown");
  const eta = etaSeconds(entry?.eta);
  setField(row, "eta", eta === null ? compactValue(entry?.eta) : formatTimePrecise(eta));
  setFieldAttr(row, "eta", "title", eta === null ? null : formatIso(eta));
  setField(row, "priority", entry?.priority === null || entry?.priority === undefined ? EMPTY : String(entry.priority));
  setField(row, "args", compactValue(request.args));
  setFieldAttr(row, "args", "title", compactValue(request.args, Infinity));
}

function fillTaskLink(row, id) {
  setField(row, "id", String(id));
  setFieldAttr(row, "id", "href", taskHref(String(id)));
}

function fillQueue(row, queue) {
  setField(row, "name", queue?.name ?? EMPTY);
  setField(row, "exchange", queue?.exchange?.name || (queue?.exchange ? "(default)" : EMPTY));
  setField(row, "exchange-type", queue?.exchange?.type ?? EMPTY);
  setField(row, "routing-key", queue?.routing_key ?? EMPTY);
}

function fillConf(row, [key, value]) {
  setField(row, "key", key);
  setField(row, "value", compactValue(value, Infinity));
}
