// The named step durations of a task ([data-steps]): queue wait, received → started, runtime
// and total, for its latest attempt; a step still going counts up and is marked running, unless
// the task is orphaned: then it stops where its worker was last heard from and says so.

import { setField } from "../helpers/dom.js";
import { STEP_NAMES, stepDurations, stepText } from "../helpers/task_timeline.js";

/**
 * Render the steps of `events` as of `nowSeconds`; returns true while a step is still going.
 * `orphan` is orphanedSpan's result for an orphaned task (null otherwise): nothing goes on then.
 */
export function renderSteps(container, events, nowSeconds, orphan = null) {
  if (!container) return false;
  const steps = stepDurations(events, nowSeconds, { lostAt: orphan?.lostAt ?? null });
  let going = false;
  for (const step of STEP_NAMES) {
    going ||= steps.running[step];
    for (const el of container.querySelectorAll(`[data-step="${step}"]`)) {
      el.toggleAttribute("data-running", steps.running[step]);
      el.toggleAttribute("data-lost", steps.lost[step]);
    }
    const { value, note } = stepText(steps, step);
    setField(container, `step-${step}`, value);
    setField(container, `step-${step}-note`, note);
  }
  setField(container, "step-attempt", steps.attempt > 1 ? `Attempt ${steps.attempt} (after ${steps.attempt - 1} ${steps.attempt === 2 ? "retry" : "retries"})` : "");
  return going;
}
