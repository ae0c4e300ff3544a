// The Socket.IO connection to /live: feeds the store, re-joins rooms, reports connection state.

import { io } from "../vendor/socket.io/socket.io.esm.min.js";
import { url } from "./helpers/base.js";

/** Socket.IO namespace when the bootstrap block names none. */
export const DEFAULT_NAMESPACE = "/live";
/** Reconnect backoff bounds. */
const RECONNECT_DELAY_MS = 1000;
const RECONNECT_DELAY_MAX_MS = 10_000;

/** Messages an early connection keeps for `connectLive` at most; past them it stops keeping and, not taken yet, closes. */
export const MAX_EARLY_MESSAGES = 1000;
/** Events a connection may bring besides the server's messages (Socket.IO's own). */
const OWN_EVENTS = ["connect", "disconnect", "connect_error"];

let early = null; // the connection `openLive` opened, with what it brought, until `connectLive` takes it

function openSocket(namespace) {
  return io(namespace, {
    path: url("/socket.io"), // under --url-prefix too
    transports: ["websocket", "polling"],
    tryAllTransports: true,
    reconnectionDelay: RECONNECT_DELAY_MS,
    reconnectionDelayMax: RECONNECT_DELAY_MAX_MS,
  });
}

/**
 * Open the connection to `namespace` before the page's panels are ready (connect.js), keeping every
 * message and connection event, in order, with the time it came, for `connectLive` to hand over once
 * they are mounted.
 * @param {string} [namespace]
 * @param {(namespace: string) => object} [open] makes the socket (tests give a fake one)
 */
export function openLive(namespace = DEFAULT_NAMESPACE, open = openSocket) {
  if (early) return;
  const socket = open(namespace);
  const kept = [];
  const own = OWN_EVENTS.map((event) => [event, (...args) => keep(event, ...args)]);
  const entry = {
    socket, namespace, kept,
    stop() {
      socket.offAny(keep);
      for (const [event, listener] of own) socket.off(event, listener);
    },
  };
  function keep(event, ...args) {
    kept.push([event, args, Date.now()]);
    if (kept.length < MAX_EARLY_MESSAGES) return;
    entry.stop(); // a page whose panels never came
    if (early === entry) {
      socket.disconnect();
      early = null;
    }
  }
  socket.onAny(keep);
  for (const [event, listener] of own) socket.on(event, listener);
  early = entry;
}

/**
 * Connect to the live namespace: take the connection `openLive` opened for it, or open one.
 * Nothing reaches the store or the callbacks until `start()`, which the page calls once its panels are
 * mounted: first what the connection brought meanwhile (the snapshot, often), in order, then the rest as it comes.
 * @param {{namespace?: string, store: object, onConnection?: (state: "connecting"|"connected"|"disconnected", detail?: string) => void, onAlert?: (alert: object) => void, open?: (namespace: string) => object}} options
 *   `onAlert` gets each `alert` message (worker-lost, worker-online, queue-backlog, queue-backlog-cleared);
 *   `open` makes the socket when there is no early one (tests give a fake one).
 * @returns {{subscribe(room: string): void, unsubscribe(room: string): void, start(): void, socket: object}}
 */
export function connectLive({
  namespace = DEFAULT_NAMESPACE, store, onConnection = () => {}, onAlert = () => {}, open = openSocket,
}) {
  const rooms = new Set();
  const taken = early;
  early = null;
  if (taken && taken.namespace !== namespace) { // not the one this page wants
    taken.stop();
    taken.socket.disconnect();
  }
  const handover = taken?.namespace === namespace ? taken : null;
  const socket = handover?.socket ?? open(namespace);

  store.onResync = () => socket.emit("resync");

  const handlers = new Map(Object.entries({
    connect() {
      onConnection("connected");
      for (const room of rooms) socket.emit("subscribe", { room }); // rooms do not survive a new connection
    },
    disconnect(reason) {
      store.markDisconnected();
      onConnection("disconnected", reason);
    },
    connect_error(error) { onConnection("disconnected", error?.message); },
    snapshot(snapshot, receivedAt) { store.applySnapshot(snapshot, receivedAt); },
    changes(message) { store.applyChanges(message); },
    broker(broker) { store.setBroker(broker); },
    alerts(message) { store.setAlerts(message); },
    stats(message) { store.applyStats(message); },
    alert(alert) { onAlert(alert); },
  }));
  let started = false;

  return {
    socket,
    subscribe(room) {
      rooms.add(room);
      if (started && socket.connected) socket.emit("subscribe", { room });
    },
    unsubscribe(room) {
      rooms.delete(room);
      if (started && socket.connected) socket.emit("unsubscribe", { room });
    },
    start() {
      if (started) return;
      started = true;
      handover?.stop();
      for (const [event, handler] of handlers) socket.on(event, handler);
      for (const [event, args, at] of handover?.kept ?? []) {
        const handler = handlers.get(event);
        if (!handler) continue;
        try {
          // A snapshot kept a while: the store sets its clock from the time it came, not from now.
          handler(...(event === "snapshot" ? [args[0], at] : args));
        } catch (error) {
          console.error(`live: a kept "${event}" message failed to apply`, error); // the next ones still apply
        }
      }
    },
  };
}
