// One red banner on every page naming the lost workers (links to their pages), with ticking ages.

import { clearBanner } from "../helpers/banners.js";
import { cloneTemplate, setField, setFieldAttr } from "../helpers/dom.js";
import { lostWorkers } from "../helpers/alerts.js";
import { onTick } from "../helpers/clock.js";
import { formatTime, workerHref } from "../helpers/format.js";

const LOST_KEY = "lost-workers";

/** Mount the lost-worker banner in the banner area `area`. */
export function mountLostBanner(area, store) {
  const items = new Map(); // hostname -> element

  function render() {
    const lost = lostWorkers(store.workersSorted(), store.serverNowMs() / 1000);
    if (lost.length === 0) {
      clearBanner(area, LOST_KEY);
      items.clear();
      return;
    }
    let banner = area.querySelector(`[data-banner-key="${LOST_KEY}"]`);
    if (!banner) {
      banner = cloneTemplate(document, "lost-banner");
      banner.dataset.bannerKey = LOST_KEY;
      area.prepend(banner);
      items.clear();
    }
    setField(banner, "label", lost.length === 1 ? "Worker lost:" : "Workers lost:");
    const list = banner.querySelector("[data-list]");
    const ordered = lost.map((worker) => {
      let item = items.get(worker.hostname);
      if (!item) {
        item = cloneTemplate(document, "lost-worker");
        setField(item, "hostname", worker.hostname);
        setFieldAttr(item, "hostname", "href", workerHref(worker.hostname));
        items.set(worker.hostname, item);
      }
      setField(item, "age", worker.age === null ? "yet" : `for ${worker.age}`);
      setField(item, "since", worker.lastHeartbeat === null ? "" : ` since ${formatTime(worker.lastHeartbeat)}`);
      return item;
    });
    for (const [hostname, item] of items) {
      if (!ordered.includes(item)) { item.remove(); items.delete(hostname); }
    }
    if (ordered.some((item, i) => list.children[i] !== item)) list.replaceChildren(...ordered);
  }

  render();
  const unsubscribe = store.subscribe(render);
  const stopTick = onTick(render);
  return () => { unsubscribe(); stopTick(); };
}
