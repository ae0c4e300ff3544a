// The Socket.IO connection to /live: feeds the store, re-joins rooms, reports connection state.

import { io } from "../vendor/socket.io/socket.io.esm.min.js";
import { url } from "./helpers/base.js";

/** Socket.IO namespace when the bootstrap block names none. */
export const DEFAULT_NAMESPACE = "/live";
/** Reconnect backoff bounds. */
const RECONNECT_DELAY_MS = 1000;
const RECONNECT_DELAY_MAX_MS = 10_000;

/**
 * Connect to the live namespace.
 * @param {{namespace?: string, store: object, onConnection?: (state: "connecting"|"connected"|"disconnected", detail?: string) => void, onAlert?: (alert: object) => void}} options
 *   `onAlert` gets each `alert` message (worker-lost, worker-online, queue-backlog, queue-backlog-cleared).
 * @returns {{subscribe(room: string): void, unsubscribe(room: string): void, socket: object}}
 */
export function connectLive({ namespace = DEFAULT_NAMESPACE, store, onConnection = () => {}, onAlert = () => {} }) {
  const rooms = new Set();
  const socket = io(namespace, {
    path: url("/socket.io"), // under --url-prefix too
    transports: ["websocket", "polling"],
    tryAllTransports: true,
    reconnectionDelay: RECONNECT_DELAY_MS,
    reconnectionDelayMax: RECONNECT_DELAY_MAX_MS,
  });

  store.onResync = () => socket.emit("resync");

  socket.on("connect", () => {
    onConnection("connected");
    for (const room of rooms) socket.emit("subscribe", { room }); // rooms do not survive a new connection
  });
  socket.on("disconnect", (reason) => {
    store.markDisconnected();
    onConnection("disconnected", reason);
  });
  socket.on("connect_error", (error) => onConnection("disconnected", error?.message));
  socket.on("snapshot", (snapshot) => store.applySnapshot(snapshot));
  socket.on("changes", (message) => store.applyChanges(message));
  socket.on("broker", (broker) => store.setBroker(broker));
  socket.on("alerts", (message) => store.setAlerts(message));
  socket.on("stats", (message) => store.applyStats(message));
  socket.on("alert", (alert) => onAlert(alert));

  return {
    socket,
    subscribe(room) {
      rooms.add(room);
      if (socket.connected) socket.emit("subscribe", { room });
    },
    unsubscribe(room) {
      rooms.delete(room);
      if (socket.connected) socket.emit("unsubscribe", { room });
    },
  };
}
