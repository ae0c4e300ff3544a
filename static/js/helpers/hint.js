// When to show the "no task events" hint: workers online but no task events for a while.

/** Workers must be online with zero task events for this long before the hint shows. */
export const NO_TASK_EVENTS_HINT_DELAY_MS = 10_000;

export const NO_TASK_EVENTS_HINT =
  "Workers are online but no task events have arrived: start workers with -E " +
  "(or worker_send_task_events = True); task-sent events also need " +
  "task_send_sent_event = True on producers.";

/** Create a tracker; `update(onlineWorkers, taskEvents, nowMs)` returns whether to show the hint. */
export function createNoTaskEventsHint(delayMs = NO_TASK_EVENTS_HINT_DELAY_MS) {
  let since = null;
  return {
    update(onlineWorkers, taskEvents, nowMs) {
      if (onlineWorkers > 0 && taskEvents === 0) {
        if (since === null) since = nowMs;
        return nowMs - since >= delayMs;
      }
      since = null;
      return false;
    },
  };
}
