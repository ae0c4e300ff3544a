// Broker banners: red while the broker is not connected, a warning when it cut the event stream.

import { clearBanner, showBanner } from "../helpers/banners.js";

const BROKER_KEY = "broker";
const STREAM_CUT_KEY = "stream-cut";
const LIMITS_KEY = "limits";

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
    const ignored = store.counters?.ignored;
    const parts = [];
    if (ignored?.workers > 0) parts.push(`${ignored.workers} worker${ignored.workers === 1 ? "" : "s"} beyond --max-workers`);
    if (ignored?.queues > 0) parts.push(`${ignored.queues} queue${ignored.queues === 1 ? "" : "s"} beyond --max-queues`);
    if (parts.length) {
      showBanner(root, LIMITS_KEY, "warning", `Not shown: ${parts.join(" and ")} (raise the limit to see them).`);
    } else {
      clearBanner(root, LIMITS_KEY);
    }
  }

  render();
  return store.subscribe(render);
}
