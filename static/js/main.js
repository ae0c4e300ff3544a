// Page entry: read the bootstrap JSON, create the store, mount the panels present, then feed them the live
// connection (opened early by connect.js, or here).

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
import { mountEnableEventsHint } from "./panels/events_hint.js";
import { mountDeparted } from "./panels/departed.js";
import { mountLostBanner } from "./panels/lost_banner.js";
import { mountBacklogBanner } from "./panels/backlog_banner.js";
import { mountAlertBanner } from "./panels/alert_banner.js";
import { mountGapMarker } from "./panels/gap_marker.js";
import { mountNotifications } from "./panels/notifications.js";
import { mountJump } from "./panels/jump.js";
import { mountThroughputChart } from "./panels/throughput_chart.js";
import { mountQueueDepthChart } from "./panels/queue_depth_chart.js";
import { mountWorkerActiveChart } from "./panels/worker_active_chart.js";

/** Panels by their `data-panel` name; each is mounted on every element that has it. */
const PANELS = {
  counters: mountCounters,
  workers: mountWorkers,
  tasks: mountTasks,
  queues: mountQueues,
  departed: mountDeparted,
  throughput: mountThroughputChart,
  "queue-depth-chart": mountQueueDepthChart,
  "worker-active-chart": mountWorkerActiveChart,
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

function main(bootstrap, page) {
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

  try {
    for (const [name, mount] of Object.entries(PANELS)) {
      for (const root of document.querySelectorAll(`[data-panel="${name}"]`)) mount(root, store);
    }
    for (const form of document.querySelectorAll("form[data-jump]")) mountJump(form);
    page?.mount({ bootstrap, store, live, announce });
  } finally {
    live.start(); // what the connection brought while the panels loaded, then the rest as it comes
  }
}

/** Pages with panels of their own (`pages/<page>.js`): only those pages load them, and the server lists
 * each page's for preloading, so the overview fetches and compiles none of them. */
const PAGES = new Set(["task", "tasks", "task-types", "task-type", "worker", "queue", "alerts", "periodic"]);

const bootstrap = readBootstrap();
if (PAGES.has(bootstrap.page)) {
  import(`./pages/${bootstrap.page}.js`).then((page) => main(bootstrap, page), (error) => {
    console.error(`cannot load the ${bootstrap.page} page's panels`, error);
    main(bootstrap, null);
  });
} else {
  main(bootstrap, null);
}
