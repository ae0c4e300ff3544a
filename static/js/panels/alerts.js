// The /alerts page: what the alert rules have firing now (live from the store, with Silence… and
// Unsilence for operators), the rules in words, the running silences and the stored history, paged
// with Older. Refetched from /api/alerts on every `alerts` message, after a reconnect and every 30 s.

import {
  alertOrder, coveringSilence, firingFor, HISTORY_PAGE_SIZE, historyQuery, isSilenced, mergeHistory, notifyText,
  resolvedText, ruleText, safeLink, SILENCE_CHOICES, silenceOutcome, silenceScope, silencedText, subjectText,
  summaryText, untilText,
} from "../helpers/alert_rules.js";
import { cloneTemplate, reconcileKeyed, setField, setFieldAttr } from "../helpers/dom.js";
import { formatIso, formatTime } from "../helpers/format.js";
import { latestRequest } from "../helpers/latest.js";
import { postAction, showOutcome } from "./action_ui.js";
import { getJson } from "../helpers/http.js";

/** Refetch this often (the firing durations and the silences move on). */
export const REFRESH_MS = 30_000;
/** Retry a failed fetch (network or 5xx) after this long. */
export const RETRY_FETCH_MS = 5000;
const SILENCE_URL = "/api/alerts/silence";

/**
 * Mount the alerts page on `root`.
 * @param {{actions: boolean}} options `actions`: the user may silence (an operator, actions on)
 */
export function mountAlerts(root, store, { actions }) {
  const refreshError = root.querySelector("[data-refresh-error]");
  const firingList = root.querySelector('[data-list="firing"]');
  const firingEmpty = root.querySelector('[data-field="firing-empty"]');
  const silencesSection = root.querySelector("[data-silences]");
  const olderBar = root.querySelector("[data-older-bar]");
  const olderButton = olderBar.querySelector("[data-older]");
  const olderError = root.querySelector("[data-older-error]");
  const firingItems = new Map(); // alert id -> <li>
  let active = null; // the active alerts shown; null until known
  let silences = [];
  let history = [];
  let more = false; // an older page of the history may exist
  let pagedOlder = false;
  let loaded = false;
  let snapshots = 0;
  let timer = null;
  const beginRequest = latestRequest(); // only the latest request may render
  const nowSeconds = () => store.serverNowMs() / 1000;

  async function load() {
    clearTimeout(timer);
    timer = null;
    const isLatest = beginRequest();
    let body;
    try {
      body = await getJson(`/api/alerts${historyQuery()}`);
    } catch (error) {
      if (isLatest()) failed(error.message);
      return;
    }
    if (!isLatest()) return;
    refreshError.hidden = true;
    loaded = true;
    // The store's list is the live one; the answer's serves until the socket has sent one.
    active = store.awaitingSnapshot ? listOf(body.active) : store.alerts;
    silences = listOf(body.silences);
    const fresh = listOf(body.history);
    if (pagedOlder) {
      history = mergeHistory(history, fresh); // keep the older pages loaded
    } else {
      history = fresh;
      more = fresh.length >= HISTORY_PAGE_SIZE;
    }
    renderFiring();
    renderRules(listOf(body.rules), body.notify);
    renderSilences();
    renderHistory();
    schedule(REFRESH_MS);
  }

  function failed(message) {
    setField(refreshError, "text", `${loaded ? "Refresh failed" : "Could not load the alerts"}: ${message}`);
    refreshError.hidden = false;
    if (active === null) firingEmpty.hidden = true;
    schedule(RETRY_FETCH_MS);
  }

  /** Fetch again after `delayMs`, skipping rounds while the tab is hidden. */
  function schedule(delayMs) {
    clearTimeout(timer);
    timer = setTimeout(() => (document.hidden ? schedule(delayMs) : load()), delayMs);
  }

  function renderFiring() {
    const now = nowSeconds();
    const alerts = [...(active ?? [])].sort(alertOrder);
    reconcileKeyed(firingList, firingItems, alerts, (alert) => alert.id, createFiring, (item, alert) => fillFiring(item, alert, now));
    firingEmpty.textContent = active === null ? "Loading alerts…" : "Nothing firing.";
    firingEmpty.hidden = alerts.length > 0 || (active === null && !refreshError.hidden);
    const silenced = alerts.filter((alert) => isSilenced(alert, now)).length;
    setField(root, "firing-count", alerts.length ? `${alerts.length} firing${silenced ? `, ${silenced} silenced` : ""}` : "");
  }

  function createFiring(alert) {
    const item = cloneTemplate(root, "firing-alert");
    if (!actions) return item; // the controls stay hidden
    const controls = item.querySelector("[data-silence-controls]");
    const select = controls.querySelector("[data-silence-choice]");
    const silenceButton = controls.querySelector('[data-action="silence"]');
    const unsilenceButton = controls.querySelector('[data-action="unsilence"]');
    controls.hidden = false;
    select.setAttribute("aria-label", `Silence ${alert.rule} about ${subjectText(alert.subject)}`);
    for (const group of select.querySelectorAll("optgroup[data-choices]")) {
      const scope = group.dataset.choices;
      group.append(...SILENCE_CHOICES.map(({ minutes, label }) => {
        const option = document.createElement("option");
        option.value = scope === "rule" ? `rule:${minutes}` : String(minutes);
        option.textContent = scope === "rule" ? `Rule for ${label}` : `For ${label}`;
        return option;
      }));
    }
    select.addEventListener("change", () => { silenceButton.disabled = select.value === ""; });
    silenceButton.addEventListener("click", async () => {
      const [scope, minutes] = select.value.startsWith("rule:") ? ["rule", select.value.slice(5)] : ["alert", select.value];
      if (!minutes) return;
      const subject = scope === "rule" ? null : alert.subject;
      await send(controls, { rule: alert.rule, subject, minutes: Number(minutes) }, [select, silenceButton, unsilenceButton]);
      select.value = "";
      silenceButton.disabled = true;
    });
    unsilenceButton.addEventListener("click", () => {
      const silence = coveringSilence(alert, silences, nowSeconds());
      if (silence) send(controls, { rule: silence.rule, subject: silence.subject, minutes: 0 }, [select, unsilenceButton]);
    });
    return item;
  }

  function fillFiring(item, alert, now) {
    item.dataset.alertId = String(alert.id);
    item.dataset.severity = String(alert.severity ?? "");
    setSeverity(item, alert.severity);
    setField(item, "rule", String(alert.rule ?? ""));
    setField(item, "summary", summaryText(alert));
    setField(item, "subject", subjectText(alert.subject));
    setFieldAttr(item, "subject", "href", safeLink(alert.link));
    setField(item, "started", formatTime(alert.started));
    setFieldAttr(item, "started", "datetime", formatIso(alert.started));
    setField(item, "duration", firingFor(alert, now));
    const silenced = silencedText(alert, silences, now);
    setField(item, "silenced", silenced);
    if (silenced) item.dataset.silenced = "";
    else delete item.dataset.silenced;
    if (actions) {
      const silence = silenced ? coveringSilence(alert, silences, now) : null;
      const unsilence = item.querySelector('[data-action="unsilence"]');
      unsilence.hidden = silence === null;
      unsilence.textContent = silence?.subject === null ? "Unsilence rule" : "Unsilence";
    }
  }

  function renderRules(rules, notify) {
    root.querySelector('[data-list="rules"]').replaceChildren(...rules.map((rule) => {
      const item = cloneTemplate(root, "rule-item");
      setSeverity(item, rule.severity);
      setField(item, "name", String(rule.name ?? ""));
      setField(item, "limits", ruleText(rule));
      return item;
    }));
    root.querySelector("[data-no-rules]").hidden = rules.length > 0;
    setField(root, "notify", notifyText(notify));
  }

  function renderSilences() {
    const now = nowSeconds();
    root.querySelector('[data-list="silences"]').replaceChildren(...silences.map((silence) => {
      const row = cloneTemplate(root, "silence-row");
      setField(row, "rule", String(silence.rule ?? ""));
      setField(row, "subject", silenceScope(silence));
      setField(row, "until", untilText(silence.until, now));
      setFieldAttr(row, "until", "datetime", formatIso(silence.until));
      setField(row, "who", String(silence.who ?? ""));
      if (actions) {
        const button = row.querySelector('[data-action="unsilence"]');
        button.hidden = false;
        button.setAttribute("aria-label", `Unsilence ${silence.rule} about ${silenceScope(silence)}`);
        button.addEventListener("click", () => send(silencesSection, { rule: silence.rule, subject: silence.subject ?? null, minutes: 0 }, [button]));
      }
      return row;
    }));
    root.querySelector('[data-empty="silences"]').hidden = silences.length > 0;
  }

  function renderHistory() {
    root.querySelector('[data-list="history"]').replaceChildren(...history.map((alert) => {
      const row = cloneTemplate(root, "history-row");
      row.dataset.alertId = String(alert.id);
      if (Number.isFinite(alert.resolved)) row.dataset.resolved = "";
      setField(row, "started", formatTime(alert.started));
      setFieldAttr(row, "started", "datetime", formatIso(alert.started));
      setSeverity(row, alert.severity);
      setField(row, "rule", String(alert.rule ?? ""));
      setField(row, "summary", summaryText(alert));
      setField(row, "subject", subjectText(alert.subject));
      setFieldAttr(row, "subject", "href", safeLink(alert.link));
      setField(row, "outcome", resolvedText(alert));
      return row;
    }));
    root.querySelector('[data-empty="history"]').hidden = history.length > 0;
    olderBar.hidden = !more;
  }

  /** POST a silence (`minutes: 0` lifts one); show the answer in `scope`'s outcome area. */
  async function send(scope, body, controls) {
    const area = scope.querySelector("[data-action-outcome]");
    for (const control of controls) control.disabled = true;
    showOutcome(area, { level: "pending", summary: body.minutes ? "Silencing…" : "Lifting the silence…", lines: [] });
    const answer = await postAction(SILENCE_URL, body);
    for (const control of controls) control.disabled = false;
    showOutcome(area, silenceOutcome(answer, nowSeconds()));
    load(); // the `alerts` message says as much; this covers a page whose socket is down
  }

  async function loadOlder() {
    const last = history.at(-1);
    if (!last) return;
    olderButton.disabled = true;
    olderError.hidden = true;
    let body;
    try {
      body = await getJson(`/api/alerts${historyQuery(last.id)}`);
    } catch (error) {
      setField(olderError, "text", `Could not load older alerts: ${error.message}`);
      olderError.hidden = false;
      return;
    } finally {
      olderButton.disabled = false;
    }
    const page = listOf(body.history);
    pagedOlder = true;
    history = mergeHistory(history, page);
    more = page.length >= HISTORY_PAGE_SIZE;
    renderHistory();
  }

  olderButton.addEventListener("click", loadOlder);
  const unsubscribe = store.subscribe((event) => {
    if (event.type !== "alerts" && event.type !== "snapshot") return;
    active = store.alerts;
    renderFiring();
    // Each change of the alerts, and a reconnect (the first snapshot only follows the page's own fetch), refetches.
    if (event.type === "alerts" || ++snapshots > 1) load();
  });

  load();
  return () => { unsubscribe(); clearTimeout(timer); };
}

const listOf = (value) => (Array.isArray(value) ? value : []);

/** Fill the severity badge (`[data-field="severity"]`) under `el`: its text, and its colour by `data-severity`. */
function setSeverity(el, severity) {
  const text = String(severity ?? "");
  setField(el, "severity", text);
  setFieldAttr(el, "severity", "data-severity", text);
}
