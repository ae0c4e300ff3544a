// Page entry: read the bootstrap JSON, create the store, connect live, mount the panels present.

import { BASE } from "./helpers/base.js";
import { createStore } from "./store.js";
import { installCsrf } from "./helpers/csrf.js";
import { connectLive } from "./live.js";
import { liveRegion, mountConnection } from "./panels/connection.js";
import { mountBanner } from "./panels/banner.js";
import { mountHints } from "./panels/hints.js";
import { mountCounters } from "./panels/counters.js";
import { mountWorkers } from "./panels/workers.js";
import { mountTasks } from "./panels/tasks.js";
import { mountQueues } from "./panels/queues.js";
import { mountTaskDetail } from "./panels/task_detail.js";
import { mountTaskActions } from "./panels/task_actions.js";
import { mountWorkerDetail } from "./panels/worker_detail.js";
import { mountWorkerActions } from "./panels/worker_actions.js";
import { mountQueueActions } from "./panels/queue_actions.js";
import { mountEnableEventsHint } from "./panels/events_hint.js";
import { mountDeparted } from "./panels/departed.js";
import { mountLostBanner } from "./panels/lost_banner.js";
import { mountBacklogBanner } from "./panels/backlog_banner.js";
import { mountAlertBanner } from "./panels/alert_banner.js";
import { mountAlerts } from "./panels/alerts.js";
import { mountPeriodic } from "./panels/periodic.js";
import { mountGapMarker } from "./panels/gap_marker.js";
import { mountResultLookup } from "./panels/result_lookup.js";
import { mountQueueDetail } from "./panels/queue_detail.js";
import { mountNotifications } from "./panels/notifications.js";
import { mountTaskSearch } from "./panels/task_search.js";
import { mountJump } from "./panels/jump.js";
import { mountBulkActions } from "./panels/bulk_actions.js";
import { mountThroughputChart } from "./panels/throughput_chart.js";
import { mountQueueDepthChart } from "./panels/queue_depth_chart.js";
import { mountWorkerActiveChart } from "./panels/worker_active_chart.js";
import { mountTaskTypes } from "./panels/task_types.js";
import { mountTaskTypeDetail } from "./panels/task_type_detail.js";
import { parseFilters } from "./helpers/task_filters.js";

/** Panels by their `data-panel` name; each is mounted on every element that has it. */
const PANELS = {
  counters: mountCounters,
  workers: mountWorkers,
  tasks: mountTasks,
  queues: mountQueues,
  departed: mountDeparted,
  "task-search": mountTaskSearch,
  throughput: mountThroughputChart,
  "queue-depth-chart": mountQueueDepthChart,
  "worker-active-chart": mountWorkerActiveChart,
  "task-types": mountTaskTypes,
  "gap-marker": mountGapMarker,
};

function readBootstrap() {
  const block = document.getElementById("bootstrap");
  try {
    return block ? JSON.parse(block.textContent) : {};
  } catch (error) {
    console.error("invalid bootstrap JSON", error);
    return {};
  }
}

function main() {
  const bootstrap = readBootstrap();
  installCsrf(window, bootstrap.csrf, BASE); // every POST carries the session's token; paths go under the prefix
  const announce = liveRegion(document.querySelector("[data-live-region]"));
  const setConnection = mountConnection(document.querySelector("[data-connection]"), announce);
  const store = createStore({ broker: bootstrap.broker ?? null });

  const bannerArea = document.querySelector("[data-banner]");
  if (bannerArea) {
    mountBanner(bannerArea, store, announce);
    mountLostBanner(bannerArea, store);
    mountBacklogBanner(bannerArea, store);
    mountAlertBanner(bannerArea, store);
    if (document.querySelector('[data-panel="workers"]')) {
      mountHints(bannerArea, store);
      if (bootstrap.actions === true) mountEnableEventsHint(bannerArea, store);
    }
  }

  setConnection("connecting");
  const onAlert = mountNotifications(document.querySelector("[data-enable-notifications]"), announce);
  const live = connectLive({ namespace: bootstrap.namespace, store, onConnection: setConnection, onAlert });

  for (const [name, mount] of Object.entries(PANELS)) {
    for (const root of document.querySelectorAll(`[data-panel="${name}"]`)) mount(root, store);
  }
  for (const form of document.querySelectorAll("form[data-jump]")) mountJump(form);
  for (const root of document.querySelectorAll('[data-panel="task-search"]')) {
    mountBulkActions(root, { enabled: bootstrap.actions === true, filters: parseFilters(window.location.search) });
  }
  const detail = document.querySelector('[data-panel="task-detail"]');
  if (detail && bootstrap.uuid) {
    const actions = detail.querySelector("[data-task-actions]");
    const onTask = actions ? mountTaskActions(actions, {
      uuid: bootstrap.uuid, enabled: bootstrap.actions === true, links: detail.querySelector("[data-retry-links]"),
    }) : undefined;
    mountTaskDetail(detail, store, { uuid: bootstrap.uuid, live, announce, onTask });
    const lookup = detail.querySelector("[data-result-lookup]");
    if (lookup && bootstrap.result_backend === true) mountResultLookup(lookup, { uuid: bootstrap.uuid });
  }
  const workerDetail = document.querySelector('[data-panel="worker-detail"]');
  if (workerDetail && bootstrap.page === "worker" && bootstrap.hostname) {
    mountWorkerDetail(workerDetail, store, { hostname: bootstrap.hostname, live, announce });
    mountWorkerActions(workerDetail, {
      hostname: bootstrap.hostname, enabled: bootstrap.actions === true, admin: bootstrap.admin === true,
    });
  }
  const taskTypeDetail = document.querySelector('[data-panel="task-type-detail"]');
  if (taskTypeDetail && bootstrap.page === "task-type" && typeof bootstrap.task_type === "string") {
    mountTaskTypeDetail(taskTypeDetail, { name: bootstrap.task_type, actions: bootstrap.actions === true });
  }
  const alerts = document.querySelector('[data-panel="alerts"]');
  if (alerts && bootstrap.page === "alerts") mountAlerts(alerts, store, { actions: bootstrap.actions === true });
  const periodic = document.querySelector('[data-panel="periodic"]');
  if (periodic && bootstrap.page === "periodic") mountPeriodic(periodic, store);
  const queueDetail = document.querySelector('[data-panel="queue-detail"]');
  if (queueDetail && bootstrap.page === "queue" && typeof bootstrap.queue === "string") {
    mountQueueDetail(queueDetail, store, { name: bootstrap.queue });
    mountQueueActions(queueDetail, store, {
      name: bootstrap.queue, enabled: bootstrap.actions === true, admin: bootstrap.admin === true,
    });
  }
}

main();
