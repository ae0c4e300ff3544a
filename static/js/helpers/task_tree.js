// A task's family (root, children, grandchildren…) walked breadth-first and shaped as a tree.
// DOM-free: the fetch is injected.

/** Tasks fetched at most for one tree. */
export const MAX_TREE_NODES = 50;
/** Task fetches in flight at once while walking. */
export const TREE_FETCH_CONCURRENCY = 6;

/**
 * Walk a task family breadth-first from `rootId`.
 * @param {string} rootId
 * @param {(uuid: string) => Promise<object|null>} fetchTask  resolves null for an unknown task
 * @param {{maxNodes?: number, known?: Map<string, object>}} options  `known` tasks are not fetched
 * @returns {Promise<{rootId: string, nodes: Map<string, object|null>, edges: Map<string, string[]>, truncated: boolean}>}
 *   `nodes` maps each visited uuid to its task (null when unknown); `edges` maps a uuid to
 *   the children first reached through it, so every uuid appears once (retries that list
 *   the task as its own child, and cycles, are cut).
 */
export async function walkTree(rootId, fetchTask, { maxNodes = MAX_TREE_NODES, known = new Map() } = {}) {
  const nodes = new Map();
  const edges = new Map();
  const seen = new Set([rootId]);
  let level = [rootId];
  while (level.length && nodes.size < maxNodes) {
    const batch = level.slice(0, maxNodes - nodes.size);
    const rest = level.slice(batch.length);
    const tasks = await fetchAll(batch, fetchTask, known);
    const next = [];
    batch.forEach((uuid, i) => {
      const task = tasks[i];
      nodes.set(uuid, task);
      const children = [];
      for (const child of Array.isArray(task?.children) ? task.children : []) {
        if (typeof child !== "string" || seen.has(child)) continue;
        seen.add(child);
        children.push(child);
        next.push(child);
      }
      edges.set(uuid, children);
    });
    level = [...rest, ...next];
  }
  return { rootId, nodes, edges, truncated: level.length > 0 };
}

async function fetchAll(uuids, fetchTask, known) {
  const results = new Array(uuids.length).fill(null);
  let index = 0;
  async function worker() {
    while (index < uuids.length) {
      const i = index++;
      const uuid = uuids[i];
      if (known.has(uuid)) { results[i] = known.get(uuid); continue; }
      try {
        results[i] = await fetchTask(uuid);
      } catch {
        results[i] = null;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(TREE_FETCH_CONCURRENCY, uuids.length) }, worker));
  return results;
}

/**
 * The walk as nested nodes `{uuid, task, current, children: [...]}` from the root; children
 * never visited (the walk was cut) are left out. `current` marks the uuid `currentId`.
 */
export function treeOf(walk, currentId) {
  const build = (uuid) => ({
    uuid,
    task: walk.nodes.get(uuid) ?? null,
    current: uuid === currentId,
    children: (walk.edges.get(uuid) ?? []).filter((child) => walk.nodes.has(child)).map(build),
  });
  return build(walk.rootId);
}

/** Where to start a task's tree: its root, else itself. */
export function treeRootId(task) {
  return typeof task?.root_id === "string" && task.root_id ? task.root_id : task?.uuid ?? null;
}

/** A key of a task's children list, to notice when it changes. */
export function childrenKey(task) {
  return Array.isArray(task?.children) ? task.children.join(",") : "";
}
