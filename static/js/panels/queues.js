// Queues list: name, depth ("—" when unknown) and consumers.

import { cloneTemplate, placeInOrder, setField, setFieldAttr } from "../helpers/dom.js";
import { formatInteger, queueHref } from "../helpers/format.js";

export function mountQueues(root, store) {
  const list = root.querySelector("[data-list]");
  const empty = root.querySelector("[data-empty]");
  const rows = new Map(); // name -> element

  function render(event) {
    if (event?.type === "changes" && event.changed.queues.size === 0) return;
    const queues = store.queuesSorted();
    const keep = new Set();
    const ordered = queues.map((queue) => {
      let row = rows.get(queue.name);
      if (!row) { row = cloneTemplate(root, "queue-row"); rows.set(queue.name, row); }
      keep.add(queue.name);
      setField(row, "name", queue.name);
      setFieldAttr(row, "name", "href", queueHref(queue.name));
      setField(row, "depth", formatInteger(queue.depth));
      setField(row, "consumers", formatInteger(queue.consumers));
      row.toggleAttribute("data-backlog", Number.isFinite(queue.depth) && queue.depth > 0);
      return row;
    });
    for (const [name, row] of rows) {
      if (!keep.has(name)) { row.remove(); rows.delete(name); }
    }
    placeInOrder(list, ordered);
    if (empty) empty.hidden = queues.length > 0;
  }

  render();
  return store.subscribe(render);
}
