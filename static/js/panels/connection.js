// The header's connection indicator ([data-connection]) and the polite live region.

const TEXT = {
  connecting: "Connecting…",
  connected: "Live",
  disconnected: "Disconnected from dashboard, reconnecting…",
};

/** Mount the indicator; returns `setConnection(state, detail)` for live.js. */
export function mountConnection(indicator, announce) {
  let current = null;
  return function setConnection(state, detail) {
    if (!indicator) return;
    indicator.dataset.state = state;
    indicator.querySelector('[data-field="text"]').textContent = TEXT[state] ?? state;
    indicator.title = detail ? `${TEXT[state]} (${detail})` : TEXT[state];
    document.documentElement.dataset.liveState = state;
    if (state !== current && (current !== null || state !== "connecting")) announce(TEXT[state]);
    current = state;
  };
}

/** Return `announce(text)`, which speaks through the `role="status"` region. */
export function liveRegion(region) {
  return (text) => {
    if (!region) return;
    region.textContent = "";
    // A fresh text node after clearing makes screen readers announce repeats too.
    requestAnimationFrame(() => { region.textContent = text; });
  };
}
