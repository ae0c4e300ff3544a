// Words for the server's `alert` messages (workers lost or back, queue backlogs) and the lost-worker banner. DOM-free.

import { formatAge } from "./duration.js";
import { queueHref, workerHref } from "./format.js";
import { backlogDetail, messagesText, thresholdText } from "./queue_info.js";

const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

/**
 * Title, body, live-region text, link (`href`) and notification `tag` of an `alert` message
 * (`{event: "worker-lost"|"worker-online", hostname, time, last_heartbeat, orphaned}` or
 * `{event: "queue-backlog"|"queue-backlog-cleared", queue, depth, threshold, seconds, since, time}`);
 * null for an event this page does not know.
 */
export function alertMessage(alert) {
  const message = String(alert?.event ?? "").startsWith("queue-") ? queueMessage(alert) : workerMessage(alert);
  // One tag per subject and event: several open tabs raise one notification, not one each.
  return message && { ...message, tag: `${alert.event}:${message.subject}` };
}

function queueMessage(alert) {
  const queue = String(alert?.queue ?? "unknown queue");
  const href = queueHref(queue);
  const waiting = Number.isFinite(alert.depth) ? `${messagesText(alert.depth)} waiting` : "Depth unknown";
  if (alert.event === "queue-backlog") {
    const body = `${waiting} (alert when ${thresholdText({ depth: alert.threshold, seconds: alert.seconds })})`;
    const announcement = `Queue backlog: ${queue} ${backlogDetail(alert.depth, alert.threshold)}.`;
    return { subject: queue, href, title: `Celery queue backlog: ${queue}`, body, announcement };
  }
  if (alert.event === "queue-backlog-cleared") {
    const body = `${waiting}, back within its alert threshold`;
    return { subject: queue, href, title: `Celery queue backlog cleared: ${queue}`, body, announcement: `Queue backlog cleared: ${queue}.` };
  }
  return null;
}

function workerMessage(alert) {
  const hostname = String(alert?.hostname ?? "unknown worker");
  const orphaned = Array.isArray(alert?.orphaned) ? alert.orphaned.length : 0;
  if (alert?.event === "worker-lost") {
    const body = orphaned
      ? `${plural(orphaned, "task")} in flight orphaned`
      : "No task was in flight on it";
    return { subject: hostname, href: workerHref(hostname), title: `Celery worker lost: ${hostname}`, body, announcement: `Worker lost: ${hostname}. ${body}.` };
  }
  if (alert?.event === "worker-online") {
    const body = "Heartbeats are arriving again";
    return { subject: hostname, href: workerHref(hostname), title: `Celery worker back online: ${hostname}`, body, announcement: `Worker back online: ${hostname}.` };
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
