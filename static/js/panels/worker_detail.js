// One worker's page: facts, inspect lists, the last-hour chart; live via the store and the worker's room.

import { fillLinks } from "../helpers/links.js";
import { appendSample, fromColumns, trimSamples } from "../helpers/chart.js";
import { onTick } from "../helpers/clock.js";
import { setField } from "../helpers/dom.js";
import { renderWorkerAges, renderWorkerFacts } from "./worker_facts.js";
import { renderWorkerSections } from "./worker_sections.js";
import { createWorkerChart } from "./worker_chart.js";
import { latestRequest } from "../helpers/latest.js";

/** Wait this long after a reconnect's snapshot before refetching (several may come at once). */
export const REFETCH_DEBOUNCE_MS = 500;
/** Retry a failed fetch (network or 5xx) after this long. */
export const RETRY_FETCH_MS = 5000;
/** Read the worker again this long after its next inspect round is due (the round takes a moment). */
export const INSPECT_SETTLE_MS = 3000;
/** The longest delay a browser's setTimeout keeps (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * When to read the worker again for its next inspect round's lists: `inspect_interval` seconds after the last
 * round (`inspected_at`), plus a moment; an interval from now when that is past or the worker was never inspected.
 * @returns {number} milliseconds from `nowMs`
 */
export function nextInspectReadMs(detail, nowMs) {
  const intervalMs = Number.isFinite(detail?.inspect_interval) && detail.inspect_interval > 0
    ? detail.inspect_interval * 1000 : 30_000;
  const settle = Math.min(INSPECT_SETTLE_MS, intervalMs / 2);  // a short interval's rounds are read one by one
  const due = Number.isFinite(detail?.inspected_at) ? detail.inspected_at * 1000 + intervalMs + settle : NaN;
  const wait = Number.isFinite(due) && due > nowMs + settle ? due - nowMs : intervalMs + settle;
  return Math.min(wait, MAX_TIMER_MS);  // a browser takes a longer delay as none at all
}

/**
 * Mount the worker detail panel.
 * @param {{hostname: string, live: {subscribe(room: string): void}|null, announce?: (text: string) => void}} options
 */
export function mountWorkerDetail(root, store, { hostname, live, announce = () => {} }) {
  const url = `/api/workers/${encodeURIComponent(hostname)}`;
  const refreshButton = root.querySelector("[data-refresh]");
  const refreshError = root.querySelector("[data-refresh-error]");
  const draw = createWorkerChart(root.querySelector("[data-chart]"));
  let detail = null;
  let samples = [];
  let refetchTimer = null;
  const beginRequest = latestRequest(); // only the latest request may render
  let lastStatus = null;

  setField(root, "requested-hostname", hostname);

  /** Fetch the worker (GET) or inspect it again (POST); render what comes back. */
  async function load(method = "GET") {
    clearTimeout(refetchTimer);
    refetchTimer = null;
    const isLatest = beginRequest();
    const refreshing = method === "POST";
    let response;
    let body = null;
    try {
      response = await fetch(refreshing ? `${url}/inspect` : url, {
        method,
        headers: { Accept: "application/json", ...(refreshing ? { "Content-Type": "application/json" } : {}) },
        body: refreshing ? "{}" : undefined,
      });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (isLatest()) failed(refreshing, `Could not reach the dashboard: ${error.message}`);
      return;
    }
    if (!isLatest()) return;
    if (response.status === 404) {
      detail = null;
      return show("missing");
    }
    if (!response.ok || body === null) {
      return failed(refreshing, body?.error ?? `${response.status} ${response.statusText}`);
    }
    refreshError.hidden = true;
    detail = body;
    for (const links of root.querySelectorAll("[data-links]")) fillLinks(links, body.links);
    samples = fromColumns(body.history);
    render();
    if (refreshing) announce("Worker inspected");
    // The dashboard inspects every worker again each --inspect-interval: its lists follow without a Refresh.
    if (!detail.departed) refetchTimer = setTimeout(load, nextInspectReadMs(detail, store.serverNowMs()));
  }

  function failed(refreshing, message) {
    if (detail) {
      // Keep what is shown; say why the refresh (or the read of the next inspect round) did not work, and go on.
      setField(refreshError, "text", `${refreshing ? "Refresh" : "Reading the worker again"} failed: ${message}`);
      refreshError.hidden = false;
      if (!detail.departed) refetchTimer = setTimeout(load, refreshing ? nextInspectReadMs(detail, store.serverNowMs())
        : RETRY_FETCH_MS);
      return;
    }
    setField(root, "error", `Could not load the worker: ${message}`);
    show("error");
    refetchTimer = setTimeout(load, RETRY_FETCH_MS);
  }

  async function refresh() {
    refreshButton.disabled = true;
    root.setAttribute("aria-busy", "true");
    setField(refreshButton, "text", "Inspecting…");
    try {
      await load("POST");
    } finally {
      refreshButton.disabled = false;
      root.removeAttribute("aria-busy");
      setField(refreshButton, "text", "Refresh");
    }
  }

  function show(view) {
    for (const el of root.querySelectorAll("[data-view]")) el.hidden = el.dataset.view !== view;
  }

  function render() {
    show("worker");
    renderWorkerSections(root, detail);
    renderLive();
  }

  /** Render what live changes touch: the header and facts (the inspect lists change on fetch: see `load`). */
  function renderLive() {
    renderWorkerFacts(root, detail);
    document.title = `${detail.hostname} ${detail.status ?? ""} · Celery Dashboard`;
    if (lastStatus !== null && lastStatus !== detail.status) announce(`Worker ${detail.hostname} is now ${detail.status}`);
    lastStatus = detail.status;
    tick();
  }

  function tick() {
    if (!detail) return;
    const nowSeconds = store.serverNowMs() / 1000;
    trimSamples(samples, nowSeconds);
    renderWorkerAges(root, detail, nowSeconds);
    draw(samples, { nowSeconds, concurrency: detail.stats?.pool?.["max-concurrency"] ?? detail.concurrency });
  }

  function scheduleRefetch() {
    clearTimeout(refetchTimer);
    refetchTimer = setTimeout(load, REFETCH_DEBOUNCE_MS);
  }

  const unsubscribe = store.subscribe((event) => {
    if (event.type === "snapshot") return scheduleRefetch(); // reconnected or resynced: the history may have a hole
    if (event.type !== "changes" || !event.changed.workers.has(hostname) || !detail) return;
    const change = event.changes.filter((c) => c.kind === "worker" && c.key === hostname).at(-1);
    if (change?.op === "upsert" && change.data) {
      const data = change.data;
      const wasDeparted = detail.departed === true;
      detail = { ...detail, ...data, departed: false };
      appendSample(samples, { t: data.last_heartbeat, active: data.active ?? null, load: data.loadavg?.[0] ?? null });
      // Not inspected when the page loaded: the first inspect's lists come with a fetch, once it has answered.
      if (!detail.inspected_at && data.pool) scheduleRefetch();
      if (wasDeparted) scheduleRefetch();  // back: its reads start again
    } else if (change?.op === "remove") {
      detail = { ...detail, departed: true };
    }
    renderLive();
  });

  refreshButton.addEventListener("click", refresh);
  const stopTick = onTick(tick);
  live?.subscribe(`worker:${hostname}`);
  load();
  return () => { unsubscribe(); stopTick(); clearTimeout(refetchTimer); };
}
