// Info note when workers are online but no task events arrive (workers started without -E).

import { clearBanner, showBanner } from "../helpers/banners.js";
import { onTick } from "../helpers/clock.js";
import { createNoTaskEventsHint, NO_TASK_EVENTS_HINT } from "../helpers/hint.js";

const HINT_KEY = "no-task-events";

export function mountHints(root, store) {
  const hint = createNoTaskEventsHint();

  function render() {
    const counters = store.counters;
    const online = store.workersSorted().filter((w) => w.status === "online").length;
    const show = counters !== null && !store.awaitingSnapshot && hint.update(online, counters.task_events, Date.now());
    if (show) showBanner(root, HINT_KEY, "info", NO_TASK_EVENTS_HINT, { role: "note" });
    else clearBanner(root, HINT_KEY);
  }

  const unsubscribe = store.subscribe(render);
  const stopTick = onTick(render);
  return () => { unsubscribe(); stopTick(); };
}
