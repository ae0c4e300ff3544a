"""The pusher: turns recorded state changes into coalesced Socket.IO messages on ``/live``.

Protocol (see the README): on connect a ``snapshot``; then numbered ``changes``
batches, ``seq`` + 1 each per connection; ``broker`` on status changes; a
client that sees a gap emits ``resync`` and gets a fresh snapshot. It never
emits per event: it flushes what changed every ``flush_interval_seconds``.

Each process sends its own pages what its own model says, never through a message queue
(``ignore_queue``): only ``alert`` and ``alerts`` go through one (``--message-queue``), from the leader.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from flask import request
from flask_socketio import Namespace, SocketIO

from . import jsonio
from .access import Access
from .cluster import SNAPSHOT_QUEUE_HISTORIES
from .events import EventCollector, until_tick
from .settings import Settings
from .shapes import Alert, Counters

log = logging.getLogger(__name__)

#: The Socket.IO namespace of the live page.
NAMESPACE = "/live"
#: Window over which throughput and event rate are averaged, in seconds.
RATE_WINDOW_SECONDS = 5.0
#: Longest time without a ``changes`` message while counters move, in seconds.
COUNTER_REFRESH_SECONDS = 1.0
#: Most rooms one connection may subscribe to.
MAX_ROOMS_PER_CLIENT = 50
#: Longest a push waits for the Redis reader to apply what it read just before it, in seconds (a reader that
#: stays behind, in a burst, delays each push by this much at most), and how often it looks meanwhile.
READER_WAIT_SECONDS = 0.1
READER_POLL_SECONDS = 0.002
#: A Socket.IO v5 EVENT packet on NAMESPACE, up to its first argument (``2/live,[``).
_EVENT_PREFIX = f"2{NAMESPACE},["
#: Room name prefixes a client may subscribe to.
ROOM_KINDS = ("task:", "worker:")
#: Messages a client may have waiting unsent (about 5 s of pushes) before its batches are held back;
#: it then gets a fresh snapshot once it has read them, instead of the batches it missed.
MAX_QUEUED_MESSAGES = 20
#: Most seconds one ``stats`` message carries after a stall (a page refetches the rest).
STATS_CATCH_UP_SECONDS = 60


class Client:
    """One browser connection: its sequence number, the rooms it looks at, and whether it keeps up."""

    __slots__ = ("seq", "rooms", "send_lock", "lagging_since", "stale")

    def __init__(self) -> None:
        self.seq = 0
        self.rooms: set[str] = set()
        # Orders this client's snapshot and batches. It guards a queue put only (engine.io's send),
        # and nothing on the disconnect path takes it, so a send that closes the socket cannot deadlock.
        self.send_lock = threading.Lock()
        self.lagging_since: float | None = None  # since when its unsent messages exceed MAX_QUEUED_MESSAGES
        self.stale = False  # batches were skipped: it gets a fresh snapshot once it keeps up again


class LiveHub:
    """Holds the connected clients and flushes coalesced changes to them.

    ``lock`` guards ``clients`` and is never held while anything is sent: engine.io runs the
    disconnect handler inside a send when a client missed its pong, and that handler takes
    ``lock`` too. Each client's own ``send_lock`` keeps its messages in order.
    """

    def __init__(self, socketio: SocketIO, collector: EventCollector, settings: Settings,
                 access: Access | None = None) -> None:
        self.access = access  # who may connect (None: anyone who reached the server)
        self.socketio = socketio
        self.collector = collector
        self.cluster = collector.cluster
        self.cluster.follow_changes()
        self.settings = settings
        self.clients: dict[str, Client] = {}
        self.lock = threading.Lock()  # guards clients; never held across a send
        self.stopping = False
        self.dropped_clients = 0  # connections closed because they did not keep up
        self._samples: deque[tuple[float, int, int]] = deque()
        self._broker_version = -1
        self._last_counters: Counters | None = None
        self._last_counters_at = 0.0
        self._stats_until = int(time.time()) - 1  # the last second sent in a ``stats`` message
        self.active_alerts: list[dict[str, Any]] = []  # the alert rules' active alerts, for snapshots

    # -- connections ---------------------------------------------------------
    def connect(self, sid: str) -> None:
        """Register a connection (or re-register one that saw a gap) and send it a snapshot.

        The snapshot (about 1 MB with a thousand workers and two thousand queues) is encoded once, here,
        and handed to the transport as a finished packet: ``emit`` would first walk all of it looking
        for binary values, which took three quarters of the time of a snapshot.
        """
        with self.lock:
            client = self.clients.setdefault(sid, Client())
        with client.send_lock:  # no changes batch may overtake the snapshot
            client.stale, client.lagging_since = False, None
            eio_sid = self.socketio.server.manager.eio_sid_from_sid(sid, NAMESPACE)
            if eio_sid is not None:  # not already gone
                self._send_event(eio_sid, "snapshot", jsonio.dumps(self._snapshot(client)))

    def disconnect(self, sid: str) -> None:
        with self.lock:
            self.clients.pop(sid, None)

    def subscribe(self, sid: str, room: Any) -> str | None:
        """Add a room to a client; return an error message when the room is not valid."""
        if not isinstance(room, str) or not room.startswith(ROOM_KINDS) or len(room) > 300:
            return "room must be 'task:<uuid>' or 'worker:<hostname>'"
        with self.lock:
            client = self.clients.get(sid)
            if client is None:
                return "not connected"
            if len(client.rooms) >= MAX_ROOMS_PER_CLIENT and room not in client.rooms:
                return f"at most {MAX_ROOMS_PER_CLIENT} rooms per connection"
            client.rooms.add(room)
        return None

    def unsubscribe(self, sid: str, room: Any) -> None:
        with self.lock:
            client = self.clients.get(sid)
            if client is not None and isinstance(room, str):
                client.rooms.discard(room)

    def _snapshot(self, client: Client) -> dict[str, Any]:
        workers, tasks = self.cluster.snapshot(self.settings.snapshot_tasks)
        now = time.time()
        return {"seq": client.seq, "server_time": now, "workers": workers, "tasks": tasks,
                "queues": self.cluster.queues(now, SNAPSHOT_QUEUE_HISTORIES), "counters": self.counters(),
                "broker": self.collector.broker.to_json(), "alerts": self.active_alerts}

    def emit_alerts(self, active: list[dict[str, Any]]) -> None:
        """Send every page the alert rules' active alerts (after one fired, resolved or was silenced);
        with a message queue, the pages of every process."""
        self.active_alerts = active
        self.socketio.emit("alerts", {"active": active}, namespace=NAMESPACE)

    # -- flushing ------------------------------------------------------------
    def run(self) -> None:
        """Flush changes at every multiple of the flush interval (see ``events.until_tick``) until ``stop``,
        once the Redis reader has applied what it read for this push (at most ``READER_WAIT_SECONDS`` later)."""
        while not self.stopping:
            self.socketio.sleep(until_tick(self.settings.flush_interval_seconds, time.monotonic()))
            for _ in range(round(READER_WAIT_SECONDS / READER_POLL_SECONDS)):
                if not self.collector.behind:
                    break
                self.socketio.sleep(READER_POLL_SECONDS)
            try:
                self.flush()
            except Exception:  # one failed flush must not end live updates
                self.collector.count_internal_error()
                log.exception("live flush failed")

    def stop(self) -> None:
        self.stopping = True

    def flush(self) -> None:
        """Send each client one ``changes`` batch with everything that changed since the last flush."""
        collector = self.collector
        with self.lock:  # copy who is connected; the sends below happen without it
            clients = list(self.clients.items())
        rooms = {room for _, c in clients for room in list(c.rooms)}
        common, common_json, extra, extra_rooms = self.cluster.changes(
            {room[5:] for room in rooms if room.startswith("task:")},
            {room[7:] for room in rooms if room.startswith("worker:")},
            self.settings.snapshot_tasks, time.time())
        counters = self.counters()
        now = time.monotonic()
        refresh = counters != self._last_counters and now - self._last_counters_at >= COUNTER_REFRESH_SECONDS
        if collector.broker.version != self._broker_version:
            self._broker_version = collector.broker.version
            self.socketio.emit("broker", collector.broker.to_json(), namespace=NAMESPACE, ignore_queue=True)
        self._send_stats(int(time.time()) - 1)
        # Encoded once for every client (the changes by the cluster, as it measured them): only seq and
        # room extras differ (see _send_changes).
        counters_json = jsonio.dumps(counters)
        for sid, client in clients:
            mine = [extra[u] for u, (task_room, worker_room) in extra_rooms.items()
                    if task_room in client.rooms or worker_room in client.rooms]
            if common or mine or refresh:
                changes_json = common_json if not mine else (
                    common_json[:-1] + ("," if common else "") + jsonio.dumps(mine)[1:])
                self._send_changes(sid, client, changes_json, counters_json, now)
        if common or refresh:
            self._last_counters, self._last_counters_at = counters, now

    def _send_stats(self, until: int) -> None:
        """Once a second, send every client the per-second task counts of the seconds completed since the
        last ``stats`` message (the live charts' new points; ``GET /api/stats`` has the earlier ones)."""
        if until <= self._stats_until:
            return
        seconds = min(until - self._stats_until, STATS_CATCH_UP_SECONDS)
        self._stats_until = until
        self.socketio.emit("stats", self.cluster.live_stats(until, seconds), namespace=NAMESPACE, ignore_queue=True)

    def _send_changes(self, sid: str, client: Client, changes_json: str, counters_json: str, now: float) -> None:
        """Send one client its batch, or hold back when it does not keep up (see MAX_QUEUED_MESSAGES).

        The Socket.IO event packet is written here from JSON encoded once per flush, rather than
        by ``emit``, which would encode the same changes again for every client.
        """
        server = self.socketio.server
        eio_sid = server.manager.eio_sid_from_sid(sid, NAMESPACE)
        queued = self._queued(eio_sid) if eio_sid is not None else None
        if queued is None:
            return  # its socket is gone; the disconnect handler forgets it
        if queued > MAX_QUEUED_MESSAGES:
            client.stale = True  # what it misses now comes with a fresh snapshot later
            if client.lagging_since is None:
                client.lagging_since = now
            elif now - client.lagging_since > self.settings.slow_client_timeout_seconds:
                self._drop(sid, client)
            return
        if client.stale:
            self.connect(sid)
            return
        client.lagging_since = None
        with client.send_lock:
            client.seq += 1
            self._send_event(eio_sid, "changes", f'{{"seq":{client.seq},"changes":{changes_json},'
                                                 f'"counters":{counters_json}}}')

    def _send_event(self, eio_sid: str, event: str, body_json: str) -> None:
        """Send the engine.io connection ``eio_sid`` the event ``event`` whose one argument is ``body_json``
        (JSON text), through python-socketio's own send path, which only asks a packet for its encoding
        (Flask-SocketIO's test client listens there too)."""
        self.socketio.server._send_packet(eio_sid, EncodedPacket(f'{_EVENT_PREFIX}"{event}",{body_json}]'))

    def _queued(self, eio_sid: str) -> int | None:
        """Return how many messages wait unsent on this engine.io socket, or None when it is closed."""
        socket = self.socketio.server.eio.sockets.get(eio_sid)
        if socket is None:
            return 0  # no engine.io socket of its own to look at (a test client)
        if socket.closed or socket.closing:
            return None
        return int(socket.queue.qsize())

    def _drop(self, sid: str, client: Client) -> None:
        """Close a connection that has not kept up; the page reconnects and gets a fresh snapshot."""
        self.dropped_clients += 1
        log.info("dropping live client %s: it has not read its messages for %.0f s", sid,
                 self.settings.slow_client_timeout_seconds)
        self.disconnect(sid)
        server = self.socketio.server
        eio_sid = server.manager.eio_sid_from_sid(sid, NAMESPACE)
        socket = server.eio.sockets.get(eio_sid) if eio_sid else None
        if socket is not None:
            # The transport, not the namespace, so that the page reconnects by itself. Not
            # engine.io's disconnect(), which waits for the client to read its queue: it never will.
            socket.close(wait=False, abort=True, reason=server.eio.reason.SERVER_DISCONNECT)

    def alert(self, alert: Alert) -> None:
        """Send an alert (worker lost or back, queue backlog or cleared) to every page at once."""
        self.socketio.emit("alert", alert, namespace=NAMESPACE)

    def counters(self) -> Counters:
        """Return task counts per state, throughput and event rates."""
        collector = self.collector
        counters = self.cluster.counters()
        now = time.monotonic()
        samples = self._samples
        samples.append((now, counters["finished"], collector.received))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW_SECONDS:
            samples.popleft()
        first = samples[0]
        elapsed = now - first[0]
        counters["throughput"] = round((counters["finished"] - first[1]) / elapsed, 1) if elapsed > 0 else 0.0
        counters["events_per_second"] = round((collector.received - first[2]) / elapsed, 1) if elapsed > 0 else 0.0
        counters["events"] = {"received": collector.received, "malformed": collector.malformed}
        return counters


class EncodedPacket:
    """A Socket.IO packet already encoded: all python-socketio's ``_send_packet`` asks of a packet."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def encode(self) -> str:
        return self.text


class LiveNamespace(Namespace):
    """The ``/live`` Socket.IO namespace: snapshot on connect, resync and room subscriptions."""

    def __init__(self, hub: LiveHub) -> None:
        super().__init__(NAMESPACE)
        self.hub = hub

    def on_connect(self, auth: Any = None) -> bool:
        """Refuse a connection without credentials when an auth file is configured (the same as a page's)."""
        access = self.hub.access
        if access is not None and access.enabled:
            token = auth.get("token") if isinstance(auth, dict) and isinstance(auth.get("token"), str) else None
            headers = {"Authorization": f"Bearer {token}"} if token else dict(request.headers)
            if access.identify(headers, request.cookies, request.remote_addr or "?") is None:
                return False
        self.hub.connect(request.sid)  # type: ignore[attr-defined]
        return True

    def on_disconnect(self, reason: Any = None) -> None:
        self.hub.disconnect(request.sid)  # type: ignore[attr-defined]

    def on_resync(self, data: Any = None) -> None:
        self.hub.connect(request.sid)  # type: ignore[attr-defined]

    def on_subscribe(self, data: Any = None) -> dict[str, Any]:
        room = data.get("room") if isinstance(data, dict) else None
        error = self.hub.subscribe(request.sid, room)  # type: ignore[attr-defined]
        return {"ok": error is None, "error": error}

    def on_unsubscribe(self, data: Any = None) -> dict[str, Any]:
        room = data.get("room") if isinstance(data, dict) else None
        self.hub.unsubscribe(request.sid, room)  # type: ignore[attr-defined]
        return {"ok": True, "error": None}
