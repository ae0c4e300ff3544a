// The named step durations of a task ([data-steps]): queue wait, received → started, runtime
// and total, for its latest attempt; a step still going counts up and is marked running.

import { setField } from "../helpers/dom.js";
import { EMPTY } from "../helpers/format.js";
import { formatDuration } from "../helpers/duration.js";
import { stepDurations } from "../helpers/task_timeline.js";

const STEPS = ["queueWait", "toStart", "runtime", "total"];
const RUNNING_TEXT = { queueWait: "waiting", toStart: "not started yet", runtime: "running", total: "so far" };

/** Render the steps of `events` as of `nowSeconds`; returns true while a step is still going. */
export function renderSteps(container, events, nowSeconds) {
  if (!container) return false;
  const steps = stepDurations(events, nowSeconds);
  let going = false;
  for (const step of STEPS) {
    const running = steps.running[step];
    going ||= running;
    for (const el of container.querySelectorAll(`[data-step="${step}"]`)) el.toggleAttribute("data-running", running);
    setField(container, `step-${step}`, steps[step] === null ? EMPTY : formatDuration(steps[step]));
    setField(container, `step-${step}-note`, running ? RUNNING_TEXT[step] : "");
  }
  setField(container, "step-attempt", steps.attempt > 1 ? `Attempt ${steps.attempt} (after ${steps.attempt - 1} ${steps.attempt === 2 ? "retry" : "retries"})` : "");
  return going;
}
