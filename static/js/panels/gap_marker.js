// The overview's marker of a recent gap in the event stream: "Events may be missing between 14:02:10
// and 14:02:31 (broker connection lost)". From the broker status (snapshot and `broker` messages);
// checked again every minute, so a gap older than an hour goes by itself.

import { gapMarkerText } from "../helpers/gaps.js";

const RECHECK_MS = 60_000;

export function mountGapMarker(root, store) {
  const text = root.querySelector('[data-field="text"]');

  function render() {
    const message = gapMarkerText(store.broker?.gaps, store.serverNowMs() / 1000);
    if (text.textContent !== message) text.textContent = message;
    root.hidden = message === "";
  }

  render();
  const timer = setInterval(render, RECHECK_MS);
  const unsubscribe = store.subscribe((event) => { if (event?.type === "broker" || event?.type === "snapshot") render(); });
  return () => { clearInterval(timer); unsubscribe(); };
}
