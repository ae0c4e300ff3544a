// The task-type pages' words: a type's row and facts, the top lists' rows with their links, and the
// markers' lines. DOM-free.

import { formatDuration } from "./duration.js";
import { formatInteger, formatPercent, queueHref, taskTypeHref, workerHref } from "./format.js";
import { KINDS } from "./series.js";

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/** Finished runs of a type's summary: succeeded and failed. */
export function runs(item) {
  return (isNumber(item?.succeeded) ? item.succeeded : 0) + (isNumber(item?.failed) ? item.failed : 0);
}

/** Every count of a summary in one line, for a tooltip: "sent 5 · received 5 · … · rejected 0". */
export function countsTitle(item) {
  return KINDS.map((kind) => `${kind} ${formatInteger(item?.[kind] ?? 0)}`).join(" · ");
}

/** The cells of a type's row on /task-types (and its facts on its own page), as text, with its link. */
export function typeRow(item, range = null) {
  return {
    name: String(item.name),
    href: taskTypeHref(item.name, range),
    runs: formatInteger(runs(item)),
    failed: formatInteger(item.failed),
    retried: formatInteger(item.retried),
    received: formatInteger(item.received),
    "failure-rate": formatPercent(item.failure_rate),
    "runtime-p50": formatDuration(item.runtime?.p50),
    "runtime-p95": formatDuration(item.runtime?.p95),
    "runtime-p99": formatDuration(item.runtime?.p99),
    "runtime-mean": formatDuration(item.runtime?.mean),
    "wait-p50": formatDuration(item.wait?.p50),
    "wait-p95": formatDuration(item.wait?.p95),
    title: countsTitle(item),
  };
}

/** How each top list of `/api/stats/top` reads: the link of its name, its value and its detail column. */
const TOP_LISTS = {
  slowest_types: (item, range) => ({
    href: taskTypeHref(item.name, range), value: formatDuration(item.runtime?.p95), detail: formatDuration(item.runtime?.p50),
    title: `runtime p50 ${formatDuration(item.runtime?.p50)}, p95 ${formatDuration(item.runtime?.p95)}, p99 ${formatDuration(item.runtime?.p99)}`,
  }),
  failing_types: (item, range) => ({
    href: taskTypeHref(item.name, range), value: formatPercent(item.failure_rate), detail: formatInteger(item.failed),
    title: `${formatInteger(item.failed)} of ${formatInteger(runs(item))} finished runs failed`,
  }),
  busiest_workers: (item) => ({
    href: workerHref(item.name), value: formatInteger(item.processed), detail: formatInteger(item.failed),
    title: `${formatInteger(item.processed)} tasks finished, ${formatInteger(item.failed)} of them failed`,
  }),
  longest_waits: (item) => ({
    href: queueHref(item.name), value: formatDuration(item.p95), detail: formatDuration(item.p50),
    title: `${formatInteger(item.count)} waits measured`,
  }),
  longest_waiting_types: (item, range) => ({
    href: taskTypeHref(item.name, range), value: formatDuration(item.wait?.p95), detail: formatDuration(item.wait?.p50),
    title: `wait p50 ${formatDuration(item.wait?.p50)}, p95 ${formatDuration(item.wait?.p95)}`,
  }),
};

/** The names of the top lists, in the order the page shows them. */
export const TOP_LIST_NAMES = Object.keys(TOP_LISTS);

/** The rows of every top list of a `/api/stats/top` body: `{list: [{name, href, value, detail, title}]}`. */
export function topRows(body, range = null) {
  return Object.fromEntries(TOP_LIST_NAMES.map((list) => [
    list,
    (Array.isArray(body?.[list]) ? body[list] : [])
      .filter((item) => typeof item?.name === "string")
      .map((item) => ({ name: item.name, ...TOP_LISTS[list](item, range) })),
  ]));
}

/** A type's headline: "42 runs, 4.8% failed, p95 1.25 s". */
export function typeSummary(item) {
  const parts = [`${formatInteger(runs(item))} ${runs(item) === 1 ? "run" : "runs"}`];
  if (isNumber(item.failure_rate)) parts.push(`${formatPercent(item.failure_rate)} failed`);
  if (isNumber(item.runtime?.p95)) parts.push(`p95 ${formatDuration(item.runtime.p95)}`);
  return parts.join(", ");
}
