// Words for worker alerts (the server's `alert` message) and the lost-worker banner. DOM-free.

import { formatAge } from "./duration.js";

const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

/**
 * Title, body and live-region text of an `alert` message
 * (`{event: "worker-lost"|"worker-online", hostname, time, last_heartbeat, orphaned}`);
 * null for an event this page does not know.
 */
export function alertMessage(alert) {
  const hostname = String(alert?.hostname ?? "unknown worker");
  const orphaned = Array.isArray(alert?.orphaned) ? alert.orphaned.length : 0;
  if (alert?.event === "worker-lost") {
    const body = orphaned
      ? `${plural(orphaned, "task")} in flight orphaned`
      : "No task was in flight on it";
    return { title: `Celery worker lost: ${hostname}`, body, announcement: `Worker lost: ${hostname}. ${body}.` };
  }
  if (alert?.event === "worker-online") {
    const body = "Heartbeats are arriving again";
    return { title: `Celery worker back online: ${hostname}`, body, announcement: `Worker back online: ${hostname}.` };
  }
  return null;
}

/** The lost workers among `workers`, by hostname, each with the age of its last heartbeat at `nowSeconds` ("12 s"; null when none came). */
export function lostWorkers(workers, nowSeconds) {
  return workers
    .filter((w) => w.status === "lost")
    .sort((a, b) => String(a.hostname).localeCompare(String(b.hostname)))
    .map((w) => ({
      hostname: w.hostname,
      lastHeartbeat: Number.isFinite(w.last_heartbeat) ? w.last_heartbeat : null,
      age: Number.isFinite(w.last_heartbeat) ? formatAge(nowSeconds - w.last_heartbeat).replace(/ ago$/, "") : null,
    }));
}
