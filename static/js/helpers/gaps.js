// Gaps in the event stream (a reconnect, a subscriber cut, the dashboard's own downtime): the
// overview's marker and the task page's note, in words.

import { formatTime } from "./format.js";

/** How long after its end a gap stays marked on the overview, in seconds. */
export const RECENT_GAP_SECONDS = 3600;

/** The gaps that ended within `RECENT_GAP_SECONDS` of `nowSeconds`, newest first. */
export function recentGaps(gaps, nowSeconds) {
  return (Array.isArray(gaps) ? gaps : [])
    .filter((gap) => Number.isFinite(gap?.end) && nowSeconds - gap.end <= RECENT_GAP_SECONDS)
    .sort((a, b) => b.end - a.end);
}

/** "events may be missing between 14:02:10 and 14:02:31 (broker connection lost)" */
export function gapText(gap) {
  return `events may be missing between ${formatTime(gap.start)} and ${formatTime(gap.end)} (${gap.cause})`;
}

/** The overview's marker for the recent gaps, or "" when there is none. */
export function gapMarkerText(gaps, nowSeconds) {
  const recent = recentGaps(gaps, nowSeconds);
  if (!recent.length) return "";
  const more = recent.length > 1 ? `; ${recent.length - 1} more in the last hour` : "";
  const text = gapText(recent[0]);
  return `${text[0].toUpperCase()}${text.slice(1)}${more}.`;
}

/** The task page's note when the task's life crosses gaps, or "" when it crosses none. */
export function taskGapText(gaps) {
  if (!Array.isArray(gaps) || !gaps.length) return "";
  const first = `This task's life crosses a gap in the event stream: ${gapText(gaps[0])}`;
  const more = gaps.length > 1 ? `, and ${gaps.length - 1} more` : "";
  return `${first}${more}. Its state and timeline may miss what happened then.`;
}

/** The outcome of the task page's "Look up result" (postAction's answer to POST /api/tasks/<uuid>/result). */
export function lookupText(answer) {
  if (answer.networkError) return `Could not reach the dashboard: ${answer.networkError}`;
  const body = answer.body ?? {};
  if (answer.status !== 200) return body.error ?? `${answer.status} ${answer.statusText}`;
  if (body.state === "PENDING") {
    return "The result backend does not know this task (PENDING): it may not have finished, or it does not store its result (ignore_result).";
  }
  const result = body.state === "SUCCESS" && body.result !== undefined ? `: ${body.result}` : "";
  const applied = body.applied ? " The task was moved on to that state, marked as reconciled." : "";
  return `The result backend says ${body.state}${result}.${applied}`;
}
