// Broker banners: red while the broker is not connected, a warning when it cut the event stream.

import { clearBanner, showBanner } from "../helpers/banners.js";

const BROKER_KEY = "broker";
const STREAM_CUT_KEY = "stream-cut";

/** Mount broker banners in the banner area `root`; `announce(text)` speaks to the live region. */
export function mountBanner(root, store, announce = () => {}) {
  let lastConnected = null;
  let announcedCuts = 0;

  function render() {
    const broker = store.broker;
    if (broker) {
      if (broker.connected) {
        clearBanner(root, BROKER_KEY);
        if (lastConnected === false) announce("Broker connected");
      } else {
        const error = broker.error ? `: ${broker.error}` : "";
        showBanner(root, BROKER_KEY, "error", `Broker ${broker.url ?? ""} ${broker.status ?? "disconnected"}${error}`);
      }
      lastConnected = Boolean(broker.connected);
    }
    const cuts = store.streamCutsLost;
    if (cuts > announcedCuts) {
      announcedCuts = cuts;
      const times = cuts === 1 ? "once" : `${cuts} times`;
      showBanner(
        root, STREAM_CUT_KEY, "warning",
        `The broker cut the event subscription (${times} since this page loaded); events may have been lost, so some tasks and workers can show a stale state.`,
        { dismissible: true },
      );
    }
  }

  render();
  return store.subscribe(render);
}
