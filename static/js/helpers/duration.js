// Durations and ages as short human text ("850 ms", "1.25 s", "3 min 4 s", "5 s ago").

export const MS_PER_SECOND = 1000;
const SECONDS_PER_MINUTE = 60;
const SECONDS_PER_HOUR = 3600;
const SECONDS_PER_DAY = 86400;

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/** Format a duration in seconds (e.g. a task runtime); "—" when unknown. */
export function formatDuration(seconds) {
  if (!isNumber(seconds)) return "—";
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * MS_PER_SECOND)} ms`;
  if (s < 10) return `${s.toFixed(2)} s`;
  if (s < SECONDS_PER_MINUTE) return `${s.toFixed(1)} s`;
  return formatWhole(s);
}

/** Format an age in seconds as "N s ago" (whole units, never negative). */
export function formatAge(seconds) {
  if (!isNumber(seconds)) return "never";
  const s = Math.max(0, Math.floor(seconds));
  if (s < SECONDS_PER_MINUTE) return `${s} s ago`;
  return `${formatWhole(s)} ago`;
}

/** Format a signed delta in seconds between two events ("+1.25 s"). */
export function formatDelta(seconds) {
  if (!isNumber(seconds)) return "";
  return `${seconds < 0 ? "−" : "+"}${formatDuration(Math.abs(seconds))}`;
}

function formatWhole(seconds) {
  const s = Math.floor(seconds);
  if (s < SECONDS_PER_HOUR) return pair(Math.floor(s / SECONDS_PER_MINUTE), "min", s % SECONDS_PER_MINUTE, "s");
  if (s < SECONDS_PER_DAY) return pair(Math.floor(s / SECONDS_PER_HOUR), "h", Math.floor((s % SECONDS_PER_HOUR) / SECONDS_PER_MINUTE), "min");
  return pair(Math.floor(s / SECONDS_PER_DAY), "d", Math.floor((s % SECONDS_PER_DAY) / SECONDS_PER_HOUR), "h");
}

const pair = (major, majorUnit, minor, minorUnit) =>
  minor ? `${major} ${majorUnit} ${minor} ${minorUnit}` : `${major} ${majorUnit}`;
