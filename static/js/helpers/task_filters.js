// The tasks page's filters: URL query string <-> filter state <-> GET /api/tasks parameters,
// and the live check of a task against them. DOM-free.

/** Every task state, in the API's order. */
export const TASK_STATES = ["PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED"];
/** Which time `since` / `until` bound; the first is the API's default. */
export const TIME_FIELDS = ["received", "started", "finished"];
export const DEFAULT_TIME_FIELD = TIME_FIELDS[0];
/**
 * Sort choices as the API reads them: a bare key is ascending, `-` descending, and no
 * `sort` at all is received descending (newest first).
 */
export const SORTS = [
  { value: "-received", label: "Newest received" },
  { value: "received", label: "Oldest received" },
  { value: "-runtime", label: "Longest runtime" },
  { value: "runtime", label: "Shortest runtime" },
  { value: "name", label: "Name, A to Z" },
  { value: "-name", label: "Name, Z to A" },
];
export const DEFAULT_SORT = "-received";
/**
 * The sort keys a column header sorts by, each with the direction of its first click:
 * times and runtimes longest or newest first, names from A.
 */
export const SORT_COLUMNS = { received: "descending", runtime: "descending", name: "ascending" };
/** Text filters that match a task field exactly. */
export const EXACT_FIELDS = ["name", "worker", "queue"];

const MS_PER_SECOND = 1000;
const pad = (n) => String(n).padStart(2, "0");
const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/** The filters of an unfiltered view. */
export function emptyFilters() {
  return { state: [], name: "", worker: "", queue: "", q: "", since: null, until: null, time: DEFAULT_TIME_FIELD, sort: DEFAULT_SORT };
}

/** Read filters from a query string (`location.search`) or URLSearchParams; unknown keys are ignored. */
export function parseFilters(search) {
  const params = search instanceof URLSearchParams ? search : new URLSearchParams(search ?? "");
  const filters = emptyFilters();
  const states = (params.get("state") ?? "").split(",").map((s) => s.trim().toUpperCase()).filter(Boolean);
  filters.state = [...new Set(states)].sort(byStateOrder);
  for (const key of [...EXACT_FIELDS, "q"]) filters[key] = (params.get(key) ?? "").trim();
  filters.since = parseSeconds(params.get("since"));
  filters.until = parseSeconds(params.get("until"));
  filters.time = params.get("time") || DEFAULT_TIME_FIELD;
  const sort = params.get("sort");
  filters.sort = !sort || sort === "-received" ? DEFAULT_SORT : sort;
  return filters;
}

/** The query parameters for `filters`, defaults left out, in a stable order (the page URL). */
export function filtersToParams(filters) {
  const params = new URLSearchParams();
  if (filters.state?.length) params.set("state", [...filters.state].sort(byStateOrder).join(","));
  for (const key of [...EXACT_FIELDS, "q"]) if (filters[key]) params.set(key, filters[key]);
  if (isNumber(filters.since)) params.set("since", String(filters.since));
  if (isNumber(filters.until)) params.set("until", String(filters.until));
  if (filters.time && filters.time !== DEFAULT_TIME_FIELD) params.set("time", filters.time);
  if (filters.sort && filters.sort !== DEFAULT_SORT) params.set("sort", filters.sort);
  return params;
}

/** The page's query string for `filters`: "" when unfiltered, else "?…". */
export function filtersQuery(filters) {
  const text = filtersToParams(filters).toString();
  return text ? `?${text}` : "";
}

/** The GET /api/tasks URL for `filters`, one page of `limit` from `cursor` (null for the first page). */
export function apiUrl(filters, { limit, cursor = null, after = null }) {
  const params = filtersToParams(filters);
  params.set("limit", String(limit));
  if (cursor) params.set("cursor", cursor);
  else if (after) params.set("after", after); // the page after this task (the API answers its `cursor` too)
  return `/api/tasks?${params}`;
}

/** The page's query string for `filters` and the page's `cursor`: the filters' query, then `cursor` when paged. */
export function pageQuery(filters, cursor = null) {
  const params = filtersToParams(filters);
  if (cursor) params.set("cursor", cursor);
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** The page cursor a query string names; null for the first page. */
export function parseCursor(search) {
  const params = search instanceof URLSearchParams ? search : new URLSearchParams(search ?? "");
  return (params.get("cursor") ?? "").trim() || null;
}

export function sameFilters(a, b) {
  return filtersToParams(a).toString() === filtersToParams(b).toString();
}

/** True when the view is sorted newest received first: the order new tasks arrive in. */
export function isNewestFirst(filters) {
  return (filters.sort || DEFAULT_SORT) === DEFAULT_SORT;
}

/** A sort value as its key and direction: "-runtime" is `{key: "runtime", descending: true}`. */
export function splitSort(sort) {
  const value = sort || DEFAULT_SORT;
  return { key: value.replace(/^-/, ""), descending: value.startsWith("-") };
}

/** The sort a click on the header of column `key` asks for: the other direction when it is the sort already. */
export function headerSort(sort, key) {
  const current = splitSort(sort);
  const descending = current.key === key ? !current.descending : SORT_COLUMNS[key] === "descending";
  return descending ? `-${key}` : key;
}

/** The `aria-sort` of the header of column `key` under `sort`: "ascending", "descending" or "none". */
export function ariaSort(sort, key) {
  const current = splitSort(sort);
  if (current.key !== key) return "none";
  return current.descending ? "descending" : "ascending";
}

/** The arrow a header shows for its `aria-sort`: down for descending, up for ascending, none otherwise. */
export function sortArrow(direction) {
  if (direction === "descending") return "▼";
  if (direction === "ascending") return "▲";
  return "";
}

/** What the API sorts and bounds "received" by: received, else sent, else the last event's time. */
export function receivedSortTime(task) {
  return task.received ?? task.sent ?? task.timestamp ?? 0;
}

/** The time `since` / `until` bound for `field`; null when the task has none. */
export function filterTime(task, field) {
  if (field === "started") return task.started ?? null;
  if (field === "finished") return task.succeeded ?? task.failed ?? task.revoked ?? task.rejected ?? null;
  return receivedSortTime(task);
}

/**
 * Whether a task (as pushed live) matches the filters: state, name, worker, queue and time
 * exactly as the API does; `q` approximately (each word a case-insensitive substring of the
 * name, args, kwargs, result or exception, or a prefix of the uuid).
 */
export function taskMatches(task, filters) {
  if (!task) return false;
  if (filters.state?.length && !filters.state.includes(task.state ?? "PENDING")) return false;
  for (const key of EXACT_FIELDS) if (filters[key] && !fieldMatches(key, task[key], filters[key])) return false;
  if (isNumber(filters.since) || isNumber(filters.until)) {
    const time = filterTime(task, filters.time || DEFAULT_TIME_FIELD);
    if (!isNumber(time)) return false;
    if (isNumber(filters.since) && time < filters.since) return false;
    if (isNumber(filters.until) && time > filters.until) return false;
  }
  return textMatches(task, filters.q);
}

/**
 * The name filter's suggestions for what was `typed`: the names starting with it and their dotted
 * prefixes as `app.payments.*` (a prefix before its names), sorted, at most `max`.
 */
export function nameSuggestions(names, typed, max) {
  const out = new Set();
  for (const name of names) {
    if (typeof name !== "string" || !name || !name.startsWith(typed)) continue;
    for (let dot = name.indexOf("."); dot > 0 && dot < name.length - 1; dot = name.indexOf(".", dot + 1)) {
      const prefix = `${name.slice(0, dot + 1)}*`;
      if (prefix.startsWith(typed)) out.add(prefix);
    }
    out.add(name);
  }
  const key = (value) => (value.endsWith("*") ? value.slice(0, -1) : value);
  return [...out].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)).slice(0, max);
}

/** Exact match, except a task name ending in `*`, which is a prefix (`app.payments.*`), as the API reads it. */
export function fieldMatches(key, value, wanted) {
  if (key === "name" && wanted.endsWith("*")) return typeof value === "string" && value.startsWith(wanted.slice(0, -1));
  return value === wanted;
}

const TEXT_FIELDS = ["name", "args", "kwargs", "result", "exception", "retry_errors"];

function textMatches(task, q) {
  const words = (q ?? "").toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const haystack = TEXT_FIELDS.map((key) => valueText(task[key]).toLowerCase());
  const uuid = String(task.uuid ?? "").toLowerCase();
  return words.every((word) => uuid.startsWith(word) || haystack.some((text) => text.includes(word)));
}

function valueText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Epoch seconds from an `<input type="datetime-local">` value (local time); null when empty or invalid. */
export function fromLocalInput(value) {
  if (!value) return null;
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value);
  if (!match) return null;
  const [, y, mo, d, h, mi, s = "0", ms = "0"] = match;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(ms.padEnd(3, "0")));
  const epochMs = date.getTime();
  return Number.isFinite(epochMs) ? epochMs / MS_PER_SECOND : null;
}

/** An `<input type="datetime-local">` value (local time, seconds only when not zero) for epoch seconds. */
export function toLocalInput(epochSeconds) {
  if (!isNumber(epochSeconds)) return "";
  const date = new Date(epochSeconds * MS_PER_SECOND);
  const base = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return date.getSeconds() ? `${base}:${pad(date.getSeconds())}` : base;
}

/** "1 task", "about 1,200 tasks" (grouped by the locale). */
export function totalText(total, isEstimate, format = String) {
  if (!isNumber(total)) return "";
  return `${isEstimate ? "about " : ""}${format(total)} task${total === 1 && !isEstimate ? "" : "s"}`;
}

function parseSeconds(raw) {
  if (raw === null || raw === undefined || raw.trim() === "") return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : null;
}

function byStateOrder(a, b) {
  const ia = TASK_STATES.indexOf(a);
  const ib = TASK_STATES.indexOf(b);
  return (ia < 0 ? TASK_STATES.length : ia) - (ib < 0 ? TASK_STATES.length : ib) || a.localeCompare(b);
}
