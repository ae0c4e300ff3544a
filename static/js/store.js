// The client-side model of the live dashboard: workers, the recent-task window,
// queues, counters, broker status and the alert rules' active alerts, fed by
// `snapshot`, numbered `changes` and the `broker` and `alerts` messages.
// DOM-free and clock-injected so it runs under `node --test`; it never touches
// sockets itself: it asks for a resync through the `onResync` callback.

/** Tasks kept in the recent window (the server sends at most this many). */
export const MAX_TASKS = 100;
/** Ask again for a snapshot if the one requested has not come after this long. */
export const RESYNC_RETRY_MS = 5000;

const WORKER_STATUS_ORDER = { lost: 0, online: 1, offline: 2 };

/** When a task first showed up (epoch seconds): what "newest first" orders by; 0 when unknown. */
export function taskTime(task) {
  return task.sent ?? task.received ?? task.started ?? task.timestamp ?? 0;
}

/** Sort tasks (given oldest-arrival first) newest first; a stable sort keeps arrival order on ties. */
function newestFirst(list) {
  return list.reverse().sort((a, b) => taskTime(b) - taskTime(a));
}

/**
 * Create a store.
 * @param {{maxTasks?: number, onResync?: () => void, now?: () => number, broker?: object|null}} options
 *   `now` returns milliseconds (defaults to Date.now).
 */
export function createStore({ maxTasks = MAX_TASKS, onResync = null, now = Date.now, broker = null } = {}) {
  const workers = new Map();
  const tasks = new Map(); // uuid -> task; insertion order is oldest first (ties in taskTime)
  const queues = new Map();
  const listeners = new Set();
  const statsListeners = new Set();
  let counters = null;
  let brokerState = broker;
  let alerts = []; // the alert rules' active alerts, as the server last sent them
  let seq = null;
  let awaitingSnapshot = true; // nothing valid until the first snapshot
  let resyncRequestedAt = null;
  let streamCutsBaseline = broker && Number.isFinite(broker.stream_cuts) ? broker.stream_cuts : null;
  let streamCutsLost = 0;
  let clockOffsetMs = 0;
  let resyncCount = 0;
  // Sorted lists, kept until their map changes: every panel asks for them in each render.
  let workersSortedCache = null;
  let queuesSortedCache = null;

  const store = {
    onResync,

    /** Replace all state with a snapshot message, which came at `receivedAt` (ms, the `now` clock; default now). */
    applySnapshot(snapshot, receivedAt = now()) {
      workers.clear();
      tasks.clear();
      queues.clear();
      workersSortedCache = queuesSortedCache = null;
      for (const worker of snapshot.workers ?? []) workers.set(worker.hostname, worker);
      // The snapshot lists most recent first; the map keeps oldest first.
      const recent = (snapshot.tasks ?? []).slice(0, maxTasks);
      for (let i = recent.length - 1; i >= 0; i--) tasks.set(recent[i].uuid, recent[i]);
      for (const queue of snapshot.queues ?? []) queues.set(queue.name, queue);
      counters = snapshot.counters ?? null;
      if (Number.isFinite(snapshot.server_time)) {
        clockOffsetMs = snapshot.server_time * 1000 - (Number.isFinite(receivedAt) ? receivedAt : now());
      }
      seq = snapshot.seq;
      awaitingSnapshot = false;
      resyncRequestedAt = null;
      if (snapshot.broker) updateBroker(snapshot.broker);
      alerts = Array.isArray(snapshot.alerts) ? snapshot.alerts : [];
      emit({ type: "snapshot" });
    },

    /**
     * Apply one `changes` batch. Returns true when applied. A gap in `seq`
     * drops the batch and asks for a resync; a batch at or below the last
     * seq (sent before a snapshot that already covers it) is ignored.
     */
    applyChanges(message) {
      if (awaitingSnapshot) {
        if (resyncRequestedAt !== null && now() - resyncRequestedAt >= RESYNC_RETRY_MS) requestResync();
        return false;
      }
      if (message.seq <= seq) return false;
      if (message.seq !== seq + 1) {
        requestResync();
        return false;
      }
      seq = message.seq;
      const changed = { tasks: new Set(), workers: new Set(), queues: new Set() };
      for (const change of message.changes ?? []) applyChange(change, changed);
      if (message.counters) counters = message.counters;
      if (message.broker) updateBroker(message.broker);
      emit({ type: "changes", changed, changes: message.changes ?? [] });
      return true;
    },

    /** Apply a `broker` status message. */
    setBroker(next) {
      updateBroker(next);
      emit({ type: "broker" });
    },

    /** Apply an `alerts` message (`{active: [alert...]}`): the alert rules' active alerts now. */
    setAlerts(message) {
      alerts = Array.isArray(message?.active) ? message.active : [];
      emit({ type: "alerts" });
    },

    /** Mark the state stale after the socket dropped; the next connect brings a snapshot. */
    markDisconnected() {
      awaitingSnapshot = true;
      resyncRequestedAt = null;
      emit({ type: "disconnected" });
    },

    /**
     * Pass a `stats` message (the per-second task counts of the seconds completed since the last
     * one) to the `subscribeStats` listeners; the store keeps none of it, and the other listeners,
     * which redraw on their events, never see it.
     */
    applyStats(message) {
      for (const listener of statsListeners) listener(message);
    },

    /** Call `listener(message)` for every `stats` message; returns an unsubscribe function. */
    subscribeStats(listener) {
      statsListeners.add(listener);
      return () => statsListeners.delete(listener);
    },

    /** Call `listener(event)` after every update; returns an unsubscribe function. */
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    /** Workers sorted for display: lost first, then online, then offline; by hostname within. */
    workersSorted() {
      workersSortedCache ??= [...workers.values()].sort(
        (a, b) =>
          (WORKER_STATUS_ORDER[a.status] ?? 3) - (WORKER_STATUS_ORDER[b.status] ?? 3) ||
          String(a.hostname).localeCompare(String(b.hostname)),
      );
      return [...workersSortedCache];
    },
    worker: (hostname) => workers.get(hostname) ?? null,
    /** The recent-task window, newest first (by taskTime, then by arrival). */
    recentTasks: () => newestFirst([...tasks.values()]),
    task: (uuid) => tasks.get(uuid) ?? null,
    queuesSorted() {
      queuesSortedCache ??= [...queues.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
      return [...queuesSortedCache];
    },
    get counters() { return counters; },
    get broker() { return brokerState; },
    /** The alert rules' active alerts (silenced ones too), in the server's order. */
    get alerts() { return alerts; },
    get seq() { return seq; },
    get awaitingSnapshot() { return awaitingSnapshot; },
    get resyncCount() { return resyncCount; },
    /** Broker stream cuts seen since the page loaded (0 when none). */
    get streamCutsLost() { return streamCutsLost; },
    /** Current time in epoch milliseconds, corrected to the server clock when it says its time. */
    serverNowMs: () => now() + clockOffsetMs,
  };

  function applyChange({ kind, op, key, data }, changed) {
    const table = kind === "task" ? tasks : kind === "worker" ? workers : kind === "queue" ? queues : null;
    if (table === null) return; // unknown kinds are ignored, like unknown event types
    if (kind === "worker") workersSortedCache = null;
    else if (kind === "queue") queuesSortedCache = null;
    if (op === "remove" || data == null) {
      table.delete(key);
    } else if (op === "upsert") {
      table.set(key, data); // Map.set keeps an existing key's position: rows update in place
      if (kind === "task") trimTasks();
    } else {
      return;
    }
    changed[`${kind}s`].add(key);
  }

  function trimTasks() {
    while (tasks.size > maxTasks) tasks.delete(newestFirst([...tasks.values()]).at(-1).uuid);
  }

  function updateBroker(next) {
    const cuts = next?.stream_cuts;
    if (Number.isFinite(cuts)) {
      if (streamCutsBaseline !== null && cuts > streamCutsBaseline) streamCutsLost += cuts - streamCutsBaseline;
      streamCutsBaseline = cuts;
    }
    brokerState = next;
  }

  function requestResync() {
    awaitingSnapshot = true;
    resyncRequestedAt = now();
    resyncCount += 1;
    if (typeof store.onResync === "function") store.onResync();
  }

  function emit(event) {
    for (const listener of listeners) listener(event);
  }

  return store;
}
