// A worker page's header and facts: status, pool, broker, uptime, rusage, skew, heartbeat ages.

import { setField, setFieldAttr } from "../helpers/dom.js";
import { formatAge } from "../helpers/duration.js";
import { EMPTY, formatInteger, formatIso, formatLoadavg, formatTime } from "../helpers/format.js";
import {
  activeText, brokerText, formatUptime, heartbeatIntervalText, outcomesText, poolName, rusageText, skewText,
} from "../helpers/worker_info.js";

/** Fill the header and facts of `root` from the worker `detail`. */
export function renderWorkerFacts(root, detail) {
  const stats = detail.stats ?? null;
  const pool = stats?.pool ?? {};
  root.dataset.status = detail.status ?? "unknown";
  root.toggleAttribute("data-departed", Boolean(detail.departed));
  setField(root, "hostname", detail.hostname);
  setField(root, "status", detail.status ?? "unknown");
  setFieldAttr(root, "status", "data-status", detail.status ?? "unknown");
  setField(root, "pool", poolName(pool.implementation, detail.pool));
  setFieldAttr(root, "pool", "title", pool.implementation ?? null);
  setField(root, "concurrency", formatInteger(pool["max-concurrency"] ?? detail.concurrency));
  setField(root, "processes", Array.isArray(pool.processes) && pool.processes.length ? pool.processes.join(", ") : EMPTY);
  setField(root, "max-tasks-per-child", formatInteger(pool["max-tasks-per-child"]));
  setField(root, "prefetch", formatInteger(stats?.prefetch_count));
  setField(root, "broker", brokerText(stats?.broker));
  const pid = detail.pid ?? stats?.pid;
  setField(root, "pid", pid === null || pid === undefined ? EMPTY : String(pid));
  setField(root, "active", activeText(detail, formatInteger));
  setField(root, "processed", formatInteger(detail.processed));
  setField(root, "outcomes", outcomesText(detail, formatInteger));
  setField(root, "loadavg", formatLoadavg(detail.loadavg));
  setField(root, "rusage", rusageText(stats?.rusage, detail.sw_sys));
  setField(root, "clock-skew", skewText(detail.clock_skew));
  setField(root, "freq", heartbeatIntervalText(detail.freq));
  const software = [detail.sw_ident, detail.sw_ver, detail.sw_sys].filter(Boolean).join(" ");
  setField(root, "software", software || EMPTY);
  setFieldAttr(root, "last-heartbeat", "title", formatIso(detail.last_heartbeat));
  setField(root, "inspect-error", detail.inspect_error ?? "");
  root.querySelector("[data-inspect-error]").hidden = !detail.inspect_error;
}

/** Update the ticking texts: heartbeat age, uptime, "inspected N s ago". */
export function renderWorkerAges(root, detail, nowSeconds) {
  const last = detail.last_heartbeat;
  setField(root, "last-heartbeat", Number.isFinite(last) ? `${formatAge(nowSeconds - last)} (${formatTime(last)})` : "no heartbeat yet");
  const inspectedAt = detail.inspected_at;
  const uptime = detail.stats?.uptime;
  // Uptime was measured at the inspect; it keeps counting only while the worker is online.
  const since = detail.status === "online" && Number.isFinite(inspectedAt) ? Math.max(0, nowSeconds - inspectedAt) : 0;
  setField(root, "uptime", Number.isFinite(uptime) ? formatUptime(uptime + since) : EMPTY);
  setField(root, "inspected", Number.isFinite(inspectedAt) ? `inspected ${formatAge(nowSeconds - inspectedAt)}` : "not inspected yet");
  setFieldAttr(root, "inspected", "title", formatIso(inspectedAt));
}
