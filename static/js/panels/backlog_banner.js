// One red banner on every page naming the queues over their backlog threshold (links to their pages).

import { clearBanner } from "../helpers/banners.js";
import { cloneTemplate, setField, setFieldAttr } from "../helpers/dom.js";
import { queueHref } from "../helpers/format.js";
import { backlogQueues } from "../helpers/queue_info.js";

const BACKLOG_KEY = "queue-backlog";

/** Mount the queue backlog banner in the banner area `area`. */
export function mountBacklogBanner(area, store) {
  const items = new Map(); // queue name -> element

  function render(event) {
    if (event?.type === "changes" && event.changed.queues.size === 0) return;
    if (event && event.type !== "changes" && event.type !== "snapshot") return;
    const backlog = backlogQueues(store.queuesSorted());
    if (backlog.length === 0) {
      clearBanner(area, BACKLOG_KEY);
      items.clear();
      return;
    }
    let banner = area.querySelector(`[data-banner-key="${BACKLOG_KEY}"]`);
    if (!banner) {
      banner = cloneTemplate(document, "backlog-banner");
      banner.dataset.bannerKey = BACKLOG_KEY;
      area.append(banner);
      items.clear();
    }
    const list = banner.querySelector("[data-list]");
    const ordered = backlog.map(({ name, detail }) => {
      let item = items.get(name);
      if (!item) {
        item = cloneTemplate(document, "backlog-queue");
        setField(item, "name", name);
        setFieldAttr(item, "name", "href", queueHref(name));
        items.set(name, item);
      }
      // The depth changes every second: shown, but hidden from screen readers (the banner is role="alert").
      setField(item, "detail", detail);
      return item;
    });
    for (const [name, item] of items) {
      if (!ordered.includes(item)) { item.remove(); items.delete(name); }
    }
    if (ordered.some((item, i) => list.children[i] !== item)) list.replaceChildren(...ordered);
  }

  render();
  return store.subscribe(render);
}
