// Tests of the live connection's hand-over: what an early connection (connect.js) brings before the page's
// panels are mounted is kept, then applied in order by `start()`, with a fake Socket.IO socket.
import { test } from "node:test";
import assert from "node:assert/strict";

import { connectLive, MAX_EARLY_MESSAGES, openLive } from "../../static/js/live.js";
import { createStore } from "../../static/js/store.js";

/** A socket with Socket.IO's listener API; `receive` delivers a server message, `reserved` Socket.IO's own events. */
function fakeSocket() {
  const listeners = new Map();
  const any = new Set();
  return {
    connected: false,
    closed: false,
    emitted: [],
    on(event, fn) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(fn);
      return this;
    },
    off(event, fn) { listeners.get(event)?.delete(fn); return this; },
    onAny(fn) { any.add(fn); return this; },
    offAny(fn) { any.delete(fn); return this; },
    emit(event, ...args) { this.emitted.push([event, ...args]); return this; },
    disconnect() { this.connected = false; this.closed = true; return this; },
    receive(event, ...args) {
      for (const fn of [...any]) fn(event, ...args);
      for (const fn of [...(listeners.get(event) ?? [])]) fn(...args);
    },
    reserved(event, ...args) {
      if (event === "connect") this.connected = true;
      if (event === "disconnect") this.connected = false;
      for (const fn of [...(listeners.get(event) ?? [])]) fn(...args);
    },
  };
}

/** A store that records what reaches it. */
function recordingStore() {
  const calls = [];
  const record = (name) => (...args) => calls.push([name, ...args]);
  return {
    calls,
    applySnapshot: record("snapshot"), applyChanges: record("changes"), setBroker: record("broker"),
    setAlerts: record("alerts"), applyStats: record("stats"), markDisconnected: record("disconnected"),
  };
}

const noSocket = () => { throw new Error("a second connection was opened"); };

test("what the early connection brought reaches the page only at start, in order, then the rest as it comes", () => {
  const socket = fakeSocket();
  openLive("/live", () => socket);
  socket.reserved("connect");
  socket.receive("snapshot", { seq: 1 });
  socket.receive("changes", { seq: 2 });
  socket.receive("broker", { status: "connected" });
  const store = recordingStore();
  const states = [];
  const live = connectLive({ namespace: "/live", store, onConnection: (state) => states.push(state), open: noSocket });
  assert.equal(live.socket, socket);
  live.subscribe("task:abc"); // a page's room, asked for while mounting
  assert.deepEqual(store.calls, []);
  assert.deepEqual(socket.emitted, []);

  live.start();
  assert.deepEqual(states, ["connected"]);
  assert.deepEqual(store.calls.map(([name]) => name), ["snapshot", "changes", "broker"]);
  assert.ok(Number.isFinite(store.calls[0][2]), "the snapshot's arrival time goes with it");
  assert.deepEqual(socket.emitted, [["subscribe", { room: "task:abc" }]]);

  socket.receive("changes", { seq: 3 }); // live now: once, not kept again
  assert.deepEqual(store.calls.at(-1), ["changes", { seq: 3 }]);
  assert.equal(store.calls.length, 4);
  live.start(); // a second start changes nothing
  assert.equal(store.calls.length, 4);
});

test("a snapshot kept a while sets the page's clock from the time it came", () => {
  const socket = fakeSocket();
  openLive("/live", () => socket);
  const serverTime = Date.now() / 1000 - 600; // a server clock 10 minutes behind
  socket.reserved("connect");
  socket.receive("snapshot", { seq: 1, server_time: serverTime, workers: [], tasks: [], queues: [] });
  const later = 3000; // the panels were mounted 3 s after the snapshot came
  const store = createStore({ now: () => Date.now() + later });
  connectLive({ namespace: "/live", store, open: noSocket }).start();
  const sinceSnapshot = store.serverNowMs() - serverTime * 1000;
  assert.ok(Math.abs(sinceSnapshot - later) < 500, `the server's clock ${sinceSnapshot} ms after its snapshot`);
});

test("a kept message that fails to apply does not stop the ones after it", (t) => {
  t.mock.method(console, "error", () => {});
  const socket = fakeSocket();
  openLive("/live", () => socket);
  socket.reserved("connect");
  socket.receive("snapshot", { seq: 1 });
  socket.receive("changes", { seq: 2 });
  const store = recordingStore();
  store.applySnapshot = () => { throw new Error("a panel failed"); };
  const states = [];
  const live = connectLive({ namespace: "/live", store, onConnection: (state) => states.push(state), open: noSocket });
  live.start();
  assert.deepEqual(states, ["connected"]);
  assert.deepEqual(store.calls, [["changes", { seq: 2 }]]);
  assert.equal(console.error.mock.callCount(), 1);
});

test("without an early connection, or with one to another namespace, the page opens its own", () => {
  const other = fakeSocket();
  openLive("/elsewhere", () => other);
  const own = fakeSocket();
  const store = recordingStore();
  const live = connectLive({ namespace: "/live", store, open: () => own });
  assert.equal(live.socket, own);
  assert.ok(other.closed, "the early connection to another namespace is closed");
  live.subscribe("worker:w1");
  live.start();
  assert.deepEqual(own.emitted, []); // not connected yet
  own.reserved("connect");
  own.receive("snapshot", { seq: 1 });
  assert.deepEqual(own.emitted, [["subscribe", { room: "worker:w1" }]]);
  assert.deepEqual(store.calls.map(([name]) => name), ["snapshot"]);
});

test("an early connection that nobody takes stops keeping and closes", () => {
  const socket = fakeSocket();
  openLive("/live", () => socket);
  socket.reserved("connect");
  for (let seq = 1; seq < MAX_EARLY_MESSAGES + 10; seq++) socket.receive("changes", { seq });
  assert.ok(socket.closed);
  const own = fakeSocket();
  const live = connectLive({ namespace: "/live", store: recordingStore(), open: () => own });
  assert.equal(live.socket, own);
});
