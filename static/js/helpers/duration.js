// Durations and ages as short human text ("850 ms", "1.25 s", "3 min 4 s", "5 s ago"). Every
// duration the pages show (task runtimes, step durations, ages, uptimes, queue waits) goes through
// formatDuration, so one number always prints the same wherever it appears.

import { EMPTY } from "./format.js";

export const MS_PER_SECOND = 1000;
const MICROS_PER_SECOND = 1e6;
const MICROS_PER_MS = 1e3;
const MICROS_PER_CENTISECOND = 1e4;
const MICROS_PER_DECISECOND = 1e5;
const SECONDS_PER_MINUTE = 60;
const SECONDS_PER_HOUR = 3600;
const SECONDS_PER_DAY = 86400;

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/**
 * Format a duration in seconds; "—" when unknown, never negative.
 *
 * Under a second in whole milliseconds, then with two decimals under 10 s, one under a minute,
 * then whole units ("3 min 4 s", "2 h", "1 d 1 h"). `whole: true` (ages, uptimes) counts whole
 * seconds elapsed instead: "42 s", "3 min 4 s".
 *
 * The value is first rounded to the microsecond, the precision of the timestamps it comes from,
 * and every later rounding works on that whole number: a difference of two epoch timestamps
 * (0.069499969… for 0.0695) and the same duration given directly both print "70 ms".
 */
export function formatDuration(seconds, { whole = false } = {}) {
  if (!isNumber(seconds)) return EMPTY;
  const micros = Math.round(Math.max(0, seconds) * MICROS_PER_SECOND);
  if (whole) return formatWhole(Math.floor(micros / MICROS_PER_SECOND));
  const ms = Math.round(micros / MICROS_PER_MS);
  if (ms < MS_PER_SECOND) return `${ms} ms`;
  const centis = Math.round(micros / MICROS_PER_CENTISECOND);
  if (centis < 1000) return `${(centis / 100).toFixed(2)} s`;
  const decis = Math.round(micros / MICROS_PER_DECISECOND);
  if (decis < SECONDS_PER_MINUTE * 10) return `${(decis / 10).toFixed(1)} s`;
  return formatWhole(Math.round(micros / MICROS_PER_SECOND));
}

/** Format an age in seconds as "N s ago" (whole seconds, never negative); "never" when unknown. */
export function formatAge(seconds) {
  return isNumber(seconds) ? `${formatDuration(seconds, { whole: true })} ago` : "never";
}

/** Format a signed delta in seconds between two events ("+1.25 s"). */
export function formatDelta(seconds) {
  if (!isNumber(seconds)) return "";
  return `${seconds < 0 ? "−" : "+"}${formatDuration(Math.abs(seconds))}`;
}

function formatWhole(s) {
  if (s < SECONDS_PER_MINUTE) return `${s} s`;
  if (s < SECONDS_PER_HOUR) return pair(Math.floor(s / SECONDS_PER_MINUTE), "min", s % SECONDS_PER_MINUTE, "s");
  if (s < SECONDS_PER_DAY) return pair(Math.floor(s / SECONDS_PER_HOUR), "h", Math.floor((s % SECONDS_PER_HOUR) / SECONDS_PER_MINUTE), "min");
  return pair(Math.floor(s / SECONDS_PER_DAY), "d", Math.floor((s % SECONDS_PER_DAY) / SECONDS_PER_HOUR), "h");
}

const pair = (major, majorUnit, minor, minorUnit) =>
  minor ? `${major} ${majorUnit} ${minor} ${minorUnit}` : `${major} ${majorUnit}`;
