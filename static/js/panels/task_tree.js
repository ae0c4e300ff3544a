// A task's family on its page ([data-tree]): root, children and their children as nested lists
// of links with state badges, the current task highlighted. Walked again when the task's
// children or state change; badges of family members follow live upserts.

import { cloneTemplate, setField, setFieldAttr } from "../helpers/dom.js";
import { shortUuid, taskHref } from "../helpers/format.js";
import { childrenKey, MAX_TREE_NODES, treeOf, treeRootId, walkTree } from "../helpers/task_tree.js";
import { latestRequest } from "../helpers/latest.js";

/** Fetch one task for the tree; null when unknown or unreachable. */
async function fetchTask(uuid) {
  const response = await fetch(`/api/tasks/${encodeURIComponent(uuid)}`, { headers: { Accept: "application/json" } });
  if (!response.ok) return null;
  return response.json().catch(() => null);
}

/**
 * Mount the tree section.
 * @returns {(task: object) => void} call with the task after every render; it walks again only when needed.
 */
export function mountTaskTree(section, store) {
  const list = section.querySelector('[data-list="tree"]');
  const items = new Map(); // uuid -> the node's own .tree-item element
  let key = null; // what the last walk was for
  const beginRequest = latestRequest(); // only the latest request may render

  async function walk(task) {
    const isLatest = beginRequest();
    section.setAttribute("aria-busy", "true");
    const result = await walkTree(treeRootId(task), fetchTask, { known: new Map([[task.uuid, task]]) });
    if (!isLatest()) return;
    section.removeAttribute("aria-busy");
    render(result, task);
  }

  function render(result, task) {
    items.clear();
    const tree = treeOf(result, task.uuid);
    const alone = result.nodes.size === 1 && tree.current && tree.children.length === 0;
    list.replaceChildren(...(alone ? [] : [node(tree)]));
    const notes = [];
    if (alone) notes.push("No parent and no children: this task is on its own.");
    if (result.truncated) notes.push(`Showing the first ${MAX_TREE_NODES} tasks of this family.`);
    if (!alone && !result.nodes.has(task.uuid)) notes.push("This task is beyond the tasks shown.");
    if (result.nodes.get(result.rootId) === null) notes.push("The root task is not known to the dashboard.");
    setField(section, "tree-status", notes.join(" "));
    setField(section, "tree-count", alone ? "" : `${result.nodes.size} task${result.nodes.size === 1 ? "" : "s"}`);
  }

  function node({ uuid, task, current, children }) {
    const li = cloneTemplate(section, "tree-node");
    const item = li.querySelector(".tree-item");
    items.set(uuid, item);
    fillItem(item, uuid, task);
    if (current) {
      li.setAttribute("data-current", "");
      item.querySelector("[data-task-link]").setAttribute("aria-current", "page");
    }
    const sub = li.querySelector(".tree-children");
    if (children.length) sub.replaceChildren(...children.map(node));
    else sub.remove();
    return li;
  }

  const unsubscribe = store.subscribe((event) => {
    if (event.type !== "changes") return;
    for (const change of event.changes) {
      const item = change.kind === "task" && change.op === "upsert" && change.data ? items.get(change.key) : null;
      if (item) fillItem(item, change.key, change.data);
    }
  });

  function show(task) {
    const next = `${treeRootId(task)}|${childrenKey(task)}|${task.state}`;
    if (next === key) return;
    key = next;
    walk(task);
  }
  show.stop = unsubscribe;
  return show;
}

function fillItem(item, uuid, task) {
  const state = task ? task.state ?? "PENDING" : "unknown";
  setField(item, "tree-name", task?.name ?? "unknown task");
  setFieldAttr(item, "tree-name", "href", taskHref(uuid));
  setField(item, "tree-state", state);
  setFieldAttr(item, "tree-state", "data-state", task ? state : null);
  setField(item, "tree-uuid", shortUuid(uuid));
  setFieldAttr(item, "tree-uuid", "title", uuid);
}
