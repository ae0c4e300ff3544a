// Where the dashboard is mounted (--url-prefix, e.g. "/celery"; "" at the root): every request and
// link of the pages' scripts starts with it. Read once from the page's <meta name="dashboard-base">.

/** The path prefix the dashboard is served under, without a trailing slash ("" at the root). */
export const BASE = typeof document === "undefined"
  ? ""
  : (document.querySelector('meta[name="dashboard-base"]')?.getAttribute("content") ?? "").replace(/\/+$/, "");

/** `path` (a path of the dashboard: "/api/tasks", "/tasks/<id>") under the dashboard's prefix. */
export function url(path) {
  return `${BASE}${path}`;
}
