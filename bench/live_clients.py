"""Live clients benchmark: many pages on ``/live`` while the dashboard takes a realistic event stream.

It starts its own ``redis-server`` on a free port (no persistence) and the
dashboard (``run.py``) against it, connects ``--clients`` Socket.IO clients to
the ``/live`` namespace over websocket (50 at a time), then publishes
``--rate`` events a second for ``--seconds`` through ``generator.py``. Each
client behaves like the page: it answers the server's pings, checks that every
``changes`` batch is numbered one more than the last, and on a gap emits
``resync`` and waits for the fresh ``snapshot``. It notes when each batch
arrived, so that every task seen in its final state gives a publish → client
latency (arrival minus the task's ``timestamp``, the time its final event was
sent). Every second it also times ``GET /api/health`` and ``GET
/api/tasks?limit=20`` from a separate process. ``--stall N`` adds N websocket
clients that join ``/live`` and then never read nor answer pings, as a frozen
browser tab would; the dashboard should drop them while the others go on.

The clients are one asyncio loop speaking Engine.IO 4 / Socket.IO 5 over a
small websocket implementation of its own, so that 500 clients cost little CPU;
a batch sent identically to every client is decoded once. Results go to
``bench/results/live-clients-<time>.json``.

    .venv/bin/python bench/live_clients.py --quick
    .venv/bin/python bench/live_clients.py                      # 500 clients, 5,000 events/s, 120 s
    .venv/bin/python bench/live_clients.py --quick --stall 1
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generator import SENDERS, Plan, Publisher, Report  # noqa: E402
from ingest import cpu_seconds, free_port, rss_kib  # noqa: E402

try:
    import orjson

    loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is in the project's requirements
    loads = json.loads

ROOT = Path(__file__).resolve().parent.parent
#: The Socket.IO namespace of the live page, and the path of a websocket connection to it.
NAMESPACE = "/live"
SOCKET_PATH = "/socket.io/?EIO=4&transport=websocket"
#: The defaults, and what ``--quick`` uses instead.
DEFAULTS = {"clients": 500, "rate": 5000, "seconds": 120.0}
QUICK = {"clients": 50, "rate": 2000, "seconds": 20.0}
#: Clients connecting at once; the next group starts when this one has its snapshots (or failed).
CONNECT_BATCH = 50
#: Seconds one client may take from opening its connection to receiving its snapshot.
CONNECT_TIMEOUT_SECONDS = 30.0
#: As the page: a resync still unanswered after this long is asked again at the next batch.
RESYNC_RETRY_SECONDS = 5.0
#: A client that got no ``changes`` batch in this many seconds before publishing ended "stopped receiving".
STOPPED_WINDOW_SECONDS = 10.0
#: Seconds between two rounds of the API probe, and how long one request may take.
PROBE_INTERVAL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 30.0
PROBES = (("health", "/api/health"), ("tasks", "/api/tasks?limit=20"))
#: Seconds between two samples of the processes (CPU, memory, sockets).
SAMPLE_SECONDS = 0.5
#: After publishing: how long the dashboard may take to count every event (and how long its count may stand
#: still), then how long to wait for the clients to get the last tasks (quiet: no new final task for so long).
CATCH_UP_TIMEOUT_SECONDS = 60.0
CATCH_UP_STALL_SECONDS = 10.0
SETTLE_QUIET_SECONDS = 3.0
SETTLE_TIMEOUT_SECONDS = 30.0
#: Task states that end a task's life: the state whose arrival is timed.
FINAL_STATES = frozenset(("SUCCESS", "FAILURE"))
#: Distinct batch bodies remembered for decoding each once.
BODY_CACHE = 64

# websocket opcodes (RFC 6455)
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

#: Socket.IO event packets on the namespace, inside an Engine.IO message ("4").
EVENT_PREFIX = b"42" + NAMESPACE.encode() + b","
CHANGES_RE = re.compile(rb'\["changes",\s*\{"seq":\s*(\d+)\s*,\s*')
SNAPSHOT_RE = re.compile(rb'\["snapshot",\s*\{"seq":\s*(\d+)')

# TCP states in /proc/net/tcp
TCP_ESTABLISHED = 0x01
TCP_STATES = {0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT1", 0x05: "FIN_WAIT2",
              0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT", 0x09: "LAST_ACK", 0x0A: "LISTEN",
              0x0B: "CLOSING"}


# -- websocket and Engine.IO framing ---------------------------------------------------------------

def encode_frame(payload: bytes, opcode: int = OP_TEXT, mask: bytes | None = None) -> bytes:
    """Return one final websocket frame from a client (masked, as RFC 6455 requires)."""
    mask = os.urandom(4) if mask is None else mask
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + mask + apply_mask(payload, mask)


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (masking and unmasking are the same)."""
    n = len(data)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class ConnectionClosed(Exception):
    """The server ended the connection (a close frame, an Engine.IO close, a Socket.IO disconnect)."""


class FrameReader:
    """Reads websocket messages from an asyncio stream: data messages reassembled, control frames as they come."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.parts: list[bytes] = []
        self.opcode = OP_TEXT
        self.bytes = 0

    async def next(self) -> tuple[int, bytes]:
        """Return the next message's opcode and payload (a ping, pong or close frame counts as one)."""
        read = self.reader.readexactly
        while True:
            head = await read(2)
            fin, opcode, length = head[0] & 0x80, head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await read(2), "big")
            elif length == 127:
                length = int.from_bytes(await read(8), "big")
            mask = await read(4) if head[1] & 0x80 else None
            payload = await read(length) if length else b""
            if mask is not None:
                payload = apply_mask(payload, mask)
            self.bytes += length
            if opcode >= OP_CLOSE:  # control frames may come between the fragments of a message
                return opcode, payload
            if opcode != OP_CONTINUATION:
                self.opcode, self.parts = opcode, []
            if fin and not self.parts:
                return self.opcode, payload
            self.parts.append(payload)
            if fin:
                payload, self.parts = b"".join(self.parts), []
                return self.opcode, payload


def handshake(host: str, port: int, path: str = SOCKET_PATH) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


#: What a client sends: the Engine.IO pong, joining the namespace, the page's resync, and leaving.
PONG = encode_frame(b"3", mask=b"\0\0\0\0")
JOIN = encode_frame(b"40" + NAMESPACE.encode() + b",", mask=b"\0\0\0\0")
RESYNC = encode_frame(EVENT_PREFIX + b'["resync"]', mask=b"\0\0\0\0")
CLOSE = encode_frame(b"\x03\xe8", OP_CLOSE, mask=b"\0\0\0\0")


# -- the page's sequence logic ---------------------------------------------------------------------

class SeqState:
    """The page's handling of ``seq`` (static/js/store.js): apply in order, resync on a gap.

    Nothing is valid before the first snapshot. A ``changes`` batch numbered one more
    than the last is applied; one at or below it (sent before a snapshot that covers it)
    is ignored; any other is a gap: the batch is dropped and a resync asked for, and
    batches are dropped until the next snapshot (a resync unanswered for
    ``RESYNC_RETRY_SECONDS`` is asked again).
    """

    APPLY, STALE, GAP, WAITING = "apply", "stale", "gap", "waiting"
    __slots__ = ("seq", "awaiting", "resync_at", "resyncs")

    def __init__(self) -> None:
        self.seq: int | None = None
        self.awaiting = True
        self.resync_at: float | None = None
        self.resyncs = 0

    def snapshot(self, seq: int) -> None:
        self.seq, self.awaiting, self.resync_at = seq, False, None

    def changes(self, seq: int, now: float) -> tuple[str, bool]:
        """Return what happens to a batch numbered ``seq``, and whether to emit ``resync`` now."""
        if self.awaiting:
            if self.resync_at is not None and now - self.resync_at >= RESYNC_RETRY_SECONDS:
                self._request(now)
                return self.WAITING, True
            return self.WAITING, False
        assert self.seq is not None
        if seq <= self.seq:
            return self.STALE, False
        if seq != self.seq + 1:
            self._request(now)
            return self.GAP, True
        self.seq = seq
        return self.APPLY, False

    def _request(self, now: float) -> None:
        self.awaiting, self.resync_at = True, now
        self.resyncs += 1


# -- batches, decoded once --------------------------------------------------------------------------

@dataclass
class Body:
    """One ``changes`` batch's content: the tasks first seen in a final state, with their event times."""

    changes: int
    tasks: int
    uuids: list[str]
    finals: array  # the tasks' ``timestamp`` (the time their final event was sent), in uuids' order


class BodyBook:
    """Decodes each distinct batch once: every client gets the same body in a flush, only ``seq`` differs.

    A task counts in the first batch that shows it in a final state (SUCCESS or FAILURE).
    """

    def __init__(self, cache_size: int = BODY_CACHE) -> None:
        self.cache: OrderedDict[bytes, int] = OrderedDict()
        self.cache_size = cache_size
        self.bodies: list[Body] = []
        self.final_seen: set[str] = set()
        self.malformed = 0
        self.last_final_at = 0.0  # monotonic time a batch last brought a new final task

    def lookup(self, rest: bytes) -> int:
        """Return the body id of a batch given as the bytes after its ``seq`` (``"changes": ...}]``)."""
        found = self.cache.get(rest)
        if found is not None:
            return found
        try:
            document = loads(b"{" + rest[:-1])  # rest ends with the event array's "]"
        except ValueError:
            self.malformed += 1
            document = {}
        body_id = self.add(document)
        self.cache[rest] = body_id
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return body_id

    def add(self, document: Any) -> int:
        """Record a decoded ``changes`` message; return its body id."""
        changes = document.get("changes") if isinstance(document, dict) else None
        changes = changes if isinstance(changes, list) else []
        uuids: list[str] = []
        finals = array("d")
        tasks = 0
        for change in changes:
            if not isinstance(change, dict) or change.get("kind") != "task":
                continue
            tasks += 1
            data = change.get("data")
            if not isinstance(data, dict) or data.get("state") not in FINAL_STATES:
                continue
            key, stamp = change.get("key"), data.get("timestamp")
            if isinstance(key, str) and isinstance(stamp, (int, float)) and key not in self.final_seen:
                self.final_seen.add(key)
                uuids.append(key)
                finals.append(stamp)
        if uuids:
            self.last_final_at = time.monotonic()
        self.bodies.append(Body(len(changes), tasks, uuids, finals))
        return len(self.bodies) - 1


# -- one live client --------------------------------------------------------------------------------

class LiveClient:
    """One page on ``/live``: answers pings, follows ``seq``, resyncs on a gap, notes when batches arrive."""

    def __init__(self, index: int, book: BodyBook, reference: bool = False) -> None:
        self.index = index
        self.book = book
        self.state = SeqState()
        self.ready = asyncio.Event()
        self.opened_at = 0.0
        self.connect_seconds: float | None = None  # until the first snapshot; None: never connected
        self.connect_error: str | None = None
        self.disconnected_at: float | None = None  # wall time the server ended it (not us)
        self.disconnect_reason: str | None = None
        self.closing = False
        self.writer: asyncio.StreamWriter | None = None
        self.frames: FrameReader | None = None
        self.snapshots = self.changes = self.applied = self.gaps = self.stale = self.waiting = 0
        self.pings = 0
        self.other_events: Counter[str] = Counter()
        self.times = array("d")  # arrival (wall time) of every changes batch
        self.bodies = array("i")  # its body id, or -1 when the batch was not applied (gap, stale, waiting)
        self.first_seen: dict[str, float] | None = {} if reference else None

    @property
    def connected(self) -> bool:
        return self.connect_seconds is not None and self.disconnected_at is None

    async def run(self, host: str, port: int) -> None:
        self.opened_at = time.monotonic()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                reader, writer = await asyncio.open_connection(host, port)
                self.writer = writer
                writer.write(handshake(host, port))
                status = await reader.readuntil(b"\r\n\r\n")
                if not status.startswith(b"HTTP/1.1 101"):
                    raise ConnectionClosed("upgrade refused: " + status.split(b"\r\n", 1)[0].decode(errors="replace"))
                self.frames = FrameReader(reader)
                opcode, opened = await self.frames.next()
                if not opened.startswith(b"0"):
                    raise ConnectionClosed(f"no Engine.IO open packet: {opened[:60]!r}")
                writer.write(JOIN)
                while self.connect_seconds is None:
                    await self._handle(*await self.frames.next())
            self.ready.set()
            while True:
                await self._handle(*await self.frames.next())
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._ended("timed out connecting")
        except ConnectionClosed as error:
            self._ended(str(error))
        except asyncio.IncompleteReadError:
            self._ended("connection closed by the server")
        except (OSError, asyncio.LimitOverrunError, ValueError) as error:
            self._ended(f"{type(error).__name__}: {error}")
        finally:
            self.ready.set()
            if self.writer is not None:
                self.writer.close()

    def _ended(self, reason: str) -> None:
        if self.closing:
            return
        if self.connect_seconds is None:
            self.connect_error = reason
        else:
            self.disconnected_at, self.disconnect_reason = time.time(), reason

    async def _handle(self, opcode: int, payload: bytes) -> None:
        now = time.time()
        writer = self.writer
        assert writer is not None
        if opcode == OP_TEXT:
            kind = payload[:1]
            if kind == b"4":
                if payload.startswith(EVENT_PREFIX):
                    self._event(payload, now)
                elif payload.startswith(b"44"):
                    raise ConnectionClosed("namespace refused: " + payload[2:200].decode(errors="replace"))
                elif payload.startswith(b"41"):
                    raise ConnectionClosed("Socket.IO disconnect from the server")
            elif kind == b"2":
                self.pings += 1
                writer.write(PONG)
            elif kind == b"1":
                raise ConnectionClosed("Engine.IO close from the server")
        elif opcode == OP_PING:
            writer.write(encode_frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            raise ConnectionClosed(f"websocket close from the server (code {code})")

    def _event(self, payload: bytes, now: float) -> None:
        start = len(EVENT_PREFIX)
        match = CHANGES_RE.match(payload, start)
        if match is not None:
            self._changes(int(match.group(1)), lambda: self.book.lookup(payload[match.end():]), now)
            return
        match = SNAPSHOT_RE.match(payload, start)
        if match is not None:
            self._snapshot(int(match.group(1)))
            return
        try:  # another event, or a layout the patterns do not know: decode it whole
            name, *args = loads(payload[start:])
        except ValueError:
            self.book.malformed += 1
            return
        data = args[0] if args else None
        if name == "changes" and isinstance(data, dict) and isinstance(data.get("seq"), int):
            self._changes(data["seq"], lambda: self.book.add(data), now)
        elif name == "snapshot" and isinstance(data, dict) and isinstance(data.get("seq"), int):
            self._snapshot(data["seq"])
        else:
            self.other_events[str(name)] += 1

    def _snapshot(self, seq: int) -> None:
        self.snapshots += 1
        self.state.snapshot(seq)
        if self.connect_seconds is None:
            self.connect_seconds = time.monotonic() - self.opened_at

    def _changes(self, seq: int, body: Callable[[], int], now: float) -> None:
        self.changes += 1
        outcome, resync = self.state.changes(seq, now)
        if resync and self.writer is not None:
            self.writer.write(RESYNC)
        body_id = -1
        if outcome == SeqState.APPLY:
            self.applied += 1
            body_id = body()
            if self.first_seen is not None:
                for uuid in self.book.bodies[body_id].uuids:
                    self.first_seen.setdefault(uuid, now)
        elif outcome == SeqState.GAP:
            self.gaps += 1
        elif outcome == SeqState.STALE:
            self.stale += 1
        else:
            self.waiting += 1
        self.times.append(now)
        self.bodies.append(body_id)

    def close(self) -> None:
        self.closing = True
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(CLOSE)
            self.writer.close()


class StalledClient:
    """A websocket client that joins ``/live`` and then never reads again nor answers a ping."""

    def __init__(self, host: str, port: int) -> None:
        import websocket  # websocket-client: a plain blocking socket, read only when asked

        self.ws = websocket.create_connection(f"ws://{host}:{port}{SOCKET_PATH}", timeout=10)
        opened = self.ws.recv()
        if not str(opened).startswith("0"):
            raise RuntimeError(f"no Engine.IO open packet: {opened!r}")
        self.ws.send("40" + NAMESPACE + ",")
        self.local_port: int = self.ws.sock.getsockname()[1]
        self.opened_at = time.time()
        self.dropped_at: float | None = None
        self.server_state = "ESTABLISHED"
        self.server_send_queue_peak = 0
        self.client_receive_queue_peak = 0

    def close(self) -> None:
        try:
            self.ws.sock.close()  # no close handshake: that would need reading
        except OSError:
            pass


# -- /proc ------------------------------------------------------------------------------------------

def tcp_table(text: str, port: int) -> dict[tuple[int, int], tuple[int, int, int]]:
    """Parse /proc/net/tcp: ``(local port, remote port) -> (state, send queue, receive queue)``, for ``port``."""
    table: dict[tuple[int, int], tuple[int, int, int]] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        local, remote = int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16)
        if port not in (local, remote):
            continue
        send, receive = fields[4].split(":")
        table[(local, remote)] = (int(fields[3], 16), int(send, 16), int(receive, 16))
    return table


def read_tcp(port: int) -> dict[tuple[int, int], tuple[int, int, int]]:
    table: dict[tuple[int, int], tuple[int, int, int]] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            table.update(tcp_table(Path(name).read_text(), port))
        except OSError:
            pass
    return table


class Sampler:
    """Samples, in a thread: the dashboard's CPU and memory, this process's CPU, the stalled sockets' state."""

    def __init__(self, pid: int, web_port: int, clients: list[LiveClient], stalled: list[StalledClient]) -> None:
        self.pid = pid
        self.web_port = web_port
        self.clients = clients
        self.stalled = stalled
        self.peak_rss_kib = 0
        self.peak_anon_kib = 0
        self.timeline: list[dict[str, Any]] = []
        self.origin = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")

    def start(self, origin: float) -> None:
        self.origin = origin
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def sample_sockets(self) -> dict[str, Any]:
        """Update each stalled client's state from the kernel's socket table; return totals on the web port."""
        table = read_tcp(self.web_port)
        now = time.time()
        for client in self.stalled:
            server = table.get((self.web_port, client.local_port))
            own = table.get((client.local_port, self.web_port))
            if server is not None:
                client.server_send_queue_peak = max(client.server_send_queue_peak, server[1])
            if own is not None:
                client.client_receive_queue_peak = max(client.client_receive_queue_peak, own[2])
            state = TCP_STATES.get(server[0], hex(server[0])) if server is not None else "gone"
            client.server_state = state
            if state != "ESTABLISHED" and client.dropped_at is None:
                client.dropped_at = now
        serving = [row for (local, _), row in table.items() if local == self.web_port and row[0] == TCP_ESTABLISHED]
        return {"server_connections": len(serving), "server_send_queue_kib": sum(r[1] for r in serving) // 1024}

    def _run(self) -> None:
        last_cpu, last_own, last_at = None, time.process_time(), time.monotonic()
        tick = 0
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                rss, anon = rss_kib(self.pid), rss_kib(self.pid, "RssAnon")
                cpu = cpu_seconds(self.pid)
            except OSError:
                return
            self.peak_rss_kib, self.peak_anon_kib = max(self.peak_rss_kib, rss), max(self.peak_anon_kib, anon)
            sockets = self.sample_sockets()
            tick += 1
            if tick % round(1 / SAMPLE_SECONDS):
                continue
            now, own = time.monotonic(), time.process_time()
            elapsed = max(now - last_at, 1e-6)
            self.timeline.append({
                "t": round(time.time() - self.origin, 1), "dashboard_rss_mb": round(rss / 1024, 1),
                "dashboard_cpu_pct": None if last_cpu is None else round((cpu - last_cpu) * 100 / elapsed),
                "client_process_cpu_pct": round((own - last_own) * 100 / elapsed),
                "clients_connected": sum(1 for c in self.clients if c.connected),
                "batches_received": sum(c.changes for c in self.clients), **sockets,
                "stalled_open": sum(1 for s in self.stalled if s.dropped_at is None)})
            last_cpu, last_own, last_at = cpu, own, now


# -- the API probe, in its own process so that the clients' loop does not slow its timings -----------

def probe_loop(base: str, stop: Any, out: Any) -> None:
    """Every ``PROBE_INTERVAL_SECONDS``, time each of ``PROBES`` until ``stop`` is set; put the timings on ``out``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's to handle: it stops this process
    rows: dict[str, list[tuple[float, float | None]]] = {name: [] for name, _ in PROBES}  # (wall time, seconds)
    errors: Counter[str] = Counter()
    next_at = time.monotonic()
    while not stop.is_set():
        for name, path in PROBES:
            started, at = time.perf_counter(), time.time()
            try:
                response = requests.get(base + path, timeout=PROBE_TIMEOUT_SECONDS)
                response.raise_for_status()
                response.json()
                rows[name].append((at, time.perf_counter() - started))
            except requests.Timeout:
                rows[name].append((at, None))
                errors[f"{name}: timeout"] += 1
            except (requests.RequestException, ValueError) as error:
                errors[f"{name}: {type(error).__name__}"] += 1
        next_at = max(next_at + PROBE_INTERVAL_SECONDS, time.monotonic())
        stop.wait(max(next_at - time.monotonic(), 0.0))
    out.put({"rows": rows, "errors": dict(errors)})


# -- figures ----------------------------------------------------------------------------------------

def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """Return the ``q`` quantile of sorted values by nearest rank (with few samples, p95 is the slowest)."""
    return ordered[max(math.ceil(len(ordered) * q) - 1, 0)]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def spread(values: Iterable[float]) -> dict[str, Any]:
    """Return min / median / max of ``values`` (None when empty)."""
    ordered = sorted(values)
    if not ordered:
        return {"min": None, "median": None, "max": None}
    return {"min": ordered[0], "median": statistics.median(ordered), "max": ordered[-1]}


def merged_quantile(lists: Sequence[Sequence[float]], q: float, precision: float = 1e-5) -> float | None:
    """Return the ``q`` quantile (nearest rank, within ``precision``) of the union of sorted sequences."""
    total = sum(len(values) for values in lists)
    if not total:
        return None
    rank = max(math.ceil(total * q), 1)
    low = min(values[0] for values in lists if len(values)) - precision
    high = max(values[-1] for values in lists if len(values))
    while high - low > precision:  # invariant: fewer than rank values <= low, at least rank <= high
        middle = (low + high) / 2
        if sum(bisect.bisect_right(values, middle) for values in lists) >= rank:
            high = middle
        else:
            low = middle
    return high


def client_latencies(client: LiveClient, bodies: list[Body]) -> array:
    """Return, sorted, the latency of every task the client saw finish: arrival minus the task's final event time."""
    values: list[float] = []
    for at, body_id in zip(client.times, client.bodies):
        if body_id >= 0:
            values.extend(at - stamp for stamp in bodies[body_id].finals)
    values.sort()
    return array("f", values)


def latency_figures(clients: list[LiveClient], book: BodyBook) -> dict[str, Any]:
    per_client = [client_latencies(c, book.bodies) for c in clients if c.connect_seconds is not None]
    seen = [values for values in per_client if len(values)]
    if not seen:
        return {"all": {"p50_ms": None, "p95_ms": None, "max_ms": None, "count": 0},
                "per_client_p95_ms": {"min": None, "median": None, "max": None}}
    p95s = [nearest_rank(values, 0.95) for values in seen]
    return {
        "all": {"p50_ms": ms(merged_quantile(seen, 0.5)), "p95_ms": ms(merged_quantile(seen, 0.95)),
                "max_ms": ms(max(values[-1] for values in seen)), "count": sum(len(v) for v in seen)},
        "per_client_p95_ms": {key: ms(value) for key, value in spread(p95s).items()},
        "per_client_p50_ms": {key: ms(value) for key, value in
                              spread(statistics.median(values) for values in seen).items()},
        "clients_with_tasks": len(seen),
    }


def reference_check(client: LiveClient | None, finals: dict[str, float], bodies: list[Body]) -> dict[str, Any]:
    """Compare, for one client, latency from the task's timestamp with latency from the generator's flush time."""
    if client is None or not client.first_seen:
        return {}
    stamp = {uuid: at for body in bodies for uuid, at in zip(body.uuids, body.finals)}
    from_timestamp = sorted(seen - stamp[u] for u, seen in client.first_seen.items() if u in stamp)
    from_flush = sorted(seen - finals[u] for u, seen in client.first_seen.items() if u in finals)
    figures = {}
    for name, values in (("from_task_timestamp", from_timestamp), ("from_generator_flush", from_flush)):
        figures[name] = {"p50_ms": ms(statistics.median(values)) if values else None,
                         "p95_ms": ms(nearest_rank(values, 0.95)) if values else None, "count": len(values)}
    return {"client": client.index, **figures}


def probe_figures(rows: list[tuple[float, float | None]]) -> dict[str, Any]:
    answered = sorted(seconds for _, seconds in rows if seconds is not None)
    timed_out = sum(1 for _, seconds in rows if seconds is None)
    if not answered:
        return {"median_ms": None, "p95_ms": None, "max_ms": None, "count": 0, "timed_out": timed_out}
    return {"median_ms": ms(statistics.median(answered)), "p95_ms": ms(nearest_rank(answered, 0.95)),
            "max_ms": ms(answered[-1]), "count": len(answered), "timed_out": timed_out}


# -- processes --------------------------------------------------------------------------------------

@dataclass
class Managed:
    """A subprocess in its own process group, with its log."""

    name: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 12) -> list[str]:
        try:
            return self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return []

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the process group, then SIGKILL it when it does not end in ``timeout`` seconds."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever is left of the group (the leader gone or not)
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.poll() is None:
            self.process.wait(timeout=10)


def start(name: str, command: list[str], workdir: Path, cwd: Path, env: dict[str, str] | None = None) -> Managed:
    log = workdir / f"{name}.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return Managed(name, process, log)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, alive: Managed | None = None) -> Any:
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while time.monotonic() < deadline:
        if alive is not None and not alive.alive():
            raise RuntimeError(f"{alive.name} exited (status {alive.process.returncode}): "
                               + " | ".join(alive.tail(5)))
        try:
            value = predicate()
            if value:
                return value
        except Exception as caught:  # not up yet
            error = caught
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" ({error})" if error else ""))


def commit_of(root: Path) -> str:
    git = ["git", "-C", str(root)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           check=False).stdout.strip()
    if not commit:
        return "not a git checkout"
    return commit + (" with uncommitted changes" if dirty else "")


def raise_file_limit(wanted: int = 65536) -> None:
    """Raise this process's open-file limit (the dashboard inherits it): each client is a socket on both sides."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# -- the run ----------------------------------------------------------------------------------------

@dataclass
class Options:
    clients: int
    rate: int
    seconds: float
    stall: int
    generator: str
    publishers: int
    dashboard_root: Path
    out: Path
    keep_logs: bool
    connect_batch: int = CONNECT_BATCH
    label: str = ""


@dataclass
class Session:
    """Everything one run measured, turned into the results document at the end."""

    options: Options
    base: str = ""
    web_port: int = 0
    redis_port: int = 0
    tasks: list[asyncio.Task] = field(default_factory=list)
    clients: list[LiveClient] = field(default_factory=list)
    stalled: list[StalledClient] = field(default_factory=list)
    stall_errors: list[str] = field(default_factory=list)
    book: BodyBook = field(default_factory=BodyBook)
    report: Report | None = None
    publish_started: float = 0.0  # wall time
    publish_ended: float = 0.0
    connected_at_start: int = 0
    connected_at_end: int = 0
    connect_wall_seconds: float = 0.0
    received_before: int = 0
    received_after: int = 0
    caught_up: bool = False
    catch_up_seconds: float = 0.0
    settle_seconds: float = 0.0
    cpu_before: float = 0.0
    cpu_after: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    own_cpu: float = 0.0
    own_wall: float = 0.0
    probe: dict[str, Any] = field(default_factory=dict)
    sampler: Sampler | None = None


def health(base: str) -> dict[str, Any]:
    return requests.get(f"{base}/api/health", timeout=30).json()


async def connect_clients(session: Session) -> None:
    """Connect the clients ``connect_batch`` at a time, each group once the previous one is in (or failed)."""
    options, port = session.options, session.web_port
    session.clients = [LiveClient(i, session.book, reference=i == 0) for i in range(options.clients)]
    started = time.monotonic()
    for first in range(0, options.clients, options.connect_batch):
        group = session.clients[first:first + options.connect_batch]
        session.tasks += [asyncio.create_task(c.run("127.0.0.1", port)) for c in group]
        await asyncio.gather(*(c.ready.wait() for c in group))
    session.connect_wall_seconds = time.monotonic() - started
    session.connected_at_start = sum(1 for c in session.clients if c.connected)


def open_stalled(session: Session) -> None:
    for _ in range(session.options.stall):
        try:
            session.stalled.append(StalledClient("127.0.0.1", session.web_port))
        except Exception as error:  # noqa: BLE001 - said in the results
            session.stall_errors.append(f"{type(error).__name__}: {error}")


def caught_up(session: Session, target: int) -> tuple[int, bool]:
    """Wait until the dashboard has counted ``target`` events, or its count stood still too long."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_SECONDS
    count, moved = -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            now_count = int(health(session.base)["events"]["received"])
        except (requests.RequestException, ValueError, KeyError):
            now_count = count
        if now_count != count:
            count, moved = now_count, time.monotonic()
        if count >= target:
            return count, True
        if time.monotonic() - moved > CATCH_UP_STALL_SECONDS:
            break
        time.sleep(0.25)
    return max(count, 0), False


async def measure(session: Session, dashboard: Managed) -> None:
    """Connect the clients (and stalled ones), publish, wait for the dashboard and the clients; note everything."""
    options = session.options
    await connect_clients(session)
    print(f"  {session.connected_at_start}/{options.clients} clients connected in "
          f"{session.connect_wall_seconds:.1f} s", flush=True)
    if options.stall:
        await asyncio.to_thread(open_stalled, session)
        print(f"  {len(session.stalled)} stalled client(s) joined /live and will never read", flush=True)
    session.received_before = int((await asyncio.to_thread(health, session.base))["events"]["received"])
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    prober = context.Process(target=probe_loop, args=(session.base, stop, out), daemon=True, name="api-probe")
    publisher = Publisher(Plan(f"redis://127.0.0.1:{session.redis_port}/0",
                               rate=options.rate, seconds=options.seconds, generator=options.generator),
                          options.publishers)
    sampler = session.sampler = Sampler(dashboard.process.pid, session.web_port, session.clients, session.stalled)
    probing = False
    try:
        session.rss_before_kib = rss_kib(dashboard.process.pid)
        session.cpu_before = cpu_seconds(dashboard.process.pid)
        own_cpu, own_wall = time.process_time(), time.monotonic()
        prober.start()
        probing = True
        await asyncio.to_thread(publisher.start)
        session.publish_started = time.time()
        sampler.start(session.publish_started)
        print(f"  publishing {options.rate:,} events/s for {options.seconds:g} s ...", flush=True)
        next_note = time.monotonic() + 15
        while not publisher.finished():
            await asyncio.sleep(0.2)
            if time.monotonic() >= next_note:
                next_note += 15
                row = sampler.timeline[-1] if sampler.timeline else {}
                print(f"    t={time.time() - session.publish_started:5.0f} s: "
                      f"{sum(1 for c in session.clients if c.connected)} connected, "
                      f"{sum(c.changes for c in session.clients):,} batches received, dashboard "
                      f"{row.get('dashboard_cpu_pct')} % CPU, {row.get('dashboard_rss_mb')} MB; this process "
                      f"{row.get('client_process_cpu_pct')} % CPU", flush=True)
        session.report = report = await asyncio.to_thread(publisher.wait, 120)
        session.publish_ended = report.ended
        target = session.received_before + report.events
        session.received_after, session.caught_up = await asyncio.to_thread(caught_up, session, target)
        session.catch_up_seconds = max(time.time() - report.ended, 0.0)
        settle_start = time.monotonic()
        while time.monotonic() - settle_start < SETTLE_TIMEOUT_SECONDS and \
                time.monotonic() - session.book.last_final_at < SETTLE_QUIET_SECONDS:
            await asyncio.sleep(0.2)
        session.settle_seconds = time.monotonic() - settle_start
        session.cpu_after = cpu_seconds(dashboard.process.pid)
        session.rss_after_kib = rss_kib(dashboard.process.pid)
        session.own_cpu, session.own_wall = time.process_time() - own_cpu, time.monotonic() - own_wall
        session.connected_at_end = sum(1 for c in session.clients if c.connected)
        await asyncio.to_thread(sampler.sample_sockets)
    finally:
        sampler.stop()
        stop.set()
        if probing:
            try:
                session.probe = await asyncio.to_thread(out.get, True, PROBE_TIMEOUT_SECONDS + 5)
            except Exception:  # noqa: BLE001 - a probe stuck or gone: no figures
                session.probe = {}
        if probing:
            prober.join(timeout=5)
            if prober.is_alive():
                prober.terminate()
                prober.join(timeout=5)
        publisher.terminate()
        for client in session.clients:
            client.close()
        tasks = session.tasks
        if tasks:
            await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def results(session: Session, dashboard: Managed) -> dict[str, Any]:
    options, report, clients = session.options, session.report, session.clients
    assert report is not None
    connected = [c for c in clients if c.connect_seconds is not None]
    window = (session.publish_ended - STOPPED_WINDOW_SECONDS, session.publish_ended)
    stopped = [c for c in connected  # arrival times are in order
               if bisect.bisect_right(c.times, window[1]) == bisect.bisect_left(c.times, window[0])]
    reasons = Counter(c.disconnect_reason for c in connected if c.disconnected_at is not None)
    connect_errors = Counter(c.connect_error for c in clients if c.connect_seconds is None)
    latency = latency_figures(clients, session.book)
    cpu = session.cpu_after - session.cpu_before
    received = session.received_after - session.received_before
    wall = max(session.own_wall, 1e-6)
    sampler = session.sampler
    probe_rows = (session.probe or {}).get("rows", {})
    stalled = [{"dropped": s.dropped_at is not None,
                "dropped_after_seconds": None if s.dropped_at is None else round(s.dropped_at - s.opened_at, 1),
                "server_socket": s.server_state,
                "server_send_queue_peak_kib": s.server_send_queue_peak // 1024,
                "client_receive_queue_peak_kib": s.client_receive_queue_peak // 1024} for s in session.stalled]
    document: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(session.publish_started)),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {"clients": options.clients, "rate": options.rate, "seconds": options.seconds,
                     "stall": options.stall, "generator": options.generator, "publishers": options.publishers,
                     "connect_batch": options.connect_batch, "dashboard_root": str(options.dashboard_root),
                     "dashboard": commit_of(options.dashboard_root), "label": options.label},
        "clients": {
            "asked": options.clients, "connected_at_start": session.connected_at_start,
            "connect_failures": dict(connect_errors),
            "connect_seconds": {key: round(value, 3) if value is not None else None for key, value in
                                spread(c.connect_seconds for c in connected).items()},
            "connect_all_seconds": round(session.connect_wall_seconds, 1),
            "still_connected_at_end": session.connected_at_end,
            "disconnects": sum(reasons.values()), "disconnect_reasons": dict(reasons),
            "disconnected_after_seconds": sorted(round(c.disconnected_at - session.publish_started, 1)
                                                 for c in connected if c.disconnected_at is not None)[:50],
        },
        "changes_per_client": spread(c.changes for c in connected),
        "applied_per_client": spread(c.applied for c in connected),
        "stopped_receiving": {"clients": len(stopped), "window": "no changes batch in the last "
                              f"{STOPPED_WINDOW_SECONDS:g} s of publishing",
                              "last_batch_seconds_before_end": spread(
                                  round(session.publish_ended - c.times[-1], 1) if len(c.times) else None
                                  for c in stopped if len(c.times))},
        "seq": {"gaps": sum(c.gaps for c in connected), "clients_with_gaps": sum(1 for c in connected if c.gaps),
                "resyncs": sum(c.state.resyncs for c in connected),
                "snapshots_after_connect": sum(max(c.snapshots - 1, 0) for c in connected),
                "stale_batches": sum(c.stale for c in connected),
                "dropped_awaiting_snapshot": sum(c.waiting for c in connected)},
        "latency": {**latency, "tasks_finished": report.tasks, "tasks_seen_live": len(session.book.final_seen),
                    "measured_as": "batch arrival minus the task's timestamp (its final event's send time), for "
                                   "each task the first time a batch shows it SUCCESS or FAILURE, every client"},
        "reference_client": reference_check(clients[0] if clients else None, report.finals, session.book.bodies),
        "api_probe": {name: probe_figures(rows) for name, rows in probe_rows.items()} |
                     {"errors": (session.probe or {}).get("errors", {}),
                      "slowest": {name: sorted(((round(at - session.publish_started, 1), ms(s)) for at, s in rows
                                                if s is not None), key=lambda r: -r[1])[:5]
                                  for name, rows in probe_rows.items()}},
        "dashboard": {
            "events_published": report.events, "events_received": received,
            "events_received_total": session.received_after, "lost": max(report.events - received, 0),
            "caught_up": session.caught_up, "catch_up_seconds": round(session.catch_up_seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "cpu_cores": round(cpu / max(session.own_wall, 1e-6), 2),
            "cpu_ms_per_1000_events": round(cpu * 1e6 / max(received, 1), 1),
            "peak_rss_mb": round((sampler.peak_rss_kib if sampler else 0) / 1024, 1),
            "peak_rss_anon_mb": round((sampler.peak_anon_kib if sampler else 0) / 1024, 1),
            "rss_before_mb": round(session.rss_before_kib / 1024, 1),
            "rss_after_mb": round(session.rss_after_kib / 1024, 1),
            "log_tail": dashboard.tail(),
        },
        "generator": report.summary(),
        "stalled": {"asked": options.stall, "opened": len(session.stalled), "errors": session.stall_errors,
                    "dropped": sum(1 for s in stalled if s["dropped"]), "each": stalled},
        "client_process": {"cpu_share_of_one_core": round(session.own_cpu / max(wall, 1e-6), 2),
                           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                           "distinct_batches_decoded": len(session.book.bodies),
                           "malformed": session.book.malformed},
        "timing": {"settle_seconds": round(session.settle_seconds, 1),
                   "publish_seconds": round(report.ended - report.started, 1)},
        "timeline": sampler.timeline if sampler else [],
    }
    return document


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """Return the one-screen summary of a results document."""
    s, c, lat, dash = doc["settings"], doc["clients"], doc["latency"], doc["dashboard"]
    per, probe, seq, stalled = doc["changes_per_client"], doc["api_probe"], doc["seq"], doc["stalled"]

    def triple(d: dict[str, Any], keys: tuple[str, ...], unit: str = "") -> str:
        return " / ".join("-" if d.get(k) is None else f"{d[k]:g}" for k in keys) + unit

    lines = [
        f"live clients: {s['clients']} clients, {s['rate']:,} events/s for {s['seconds']:g} s "
        f"({s['generator']} generator), stalled {s['stall']}; dashboard {s['dashboard']}"
        + (f" ({s['label']})" if s.get("label") else ""),
        f"  clients connected at start / at end   {c['connected_at_start']} / {c['still_connected_at_end']} "
        f"(of {c['asked']}; connecting all took {c['connect_all_seconds']} s)",
        f"  disconnects                           {c['disconnects']}"
        + (f"  {c['disconnect_reasons']}" if c["disconnects"] else ""),
        f"  changes batches per client min/med/max {triple(per, ('min', 'median', 'max'))}",
        f"  clients that stopped receiving        {doc['stopped_receiving']['clients']} "
        f"(no batch in the last {STOPPED_WINDOW_SECONDS:g} s of publishing)",
        f"  seq gaps / resyncs                    {seq['gaps']} / {seq['resyncs']} "
        f"({seq['clients_with_gaps']} clients with gaps)",
        f"  publish -> client p50 / p95 / max     {triple(lat['all'], ('p50_ms', 'p95_ms', 'max_ms'), ' ms')} "
        f"over {lat['all']['count']:,} task arrivals",
        f"  per-client p95 median / worst         "
        f"{triple(lat['per_client_p95_ms'], ('median', 'max'), ' ms')}",
    ]
    for name in ("health", "tasks"):
        if name in probe:
            p = probe[name]
            figures = triple(p, ("median_ms", "p95_ms", "max_ms"), " ms")
            lines.append(f"  GET {dict(PROBES)[name]:<22} med/p95/max  {figures} "
                         f"({p['count']} answers, {p['timed_out']} timed out)")
    lines += [
        f"  dashboard CPU                         {dash['cpu_seconds']} s = {dash['cpu_cores']} cores, "
        f"{dash['cpu_ms_per_1000_events']} ms per 1,000 events",
        f"  dashboard RSS before / after / peak   {dash['rss_before_mb']} / {dash['rss_after_mb']} / "
        f"{dash['peak_rss_mb']} MB",
        f"  events published / received          {dash['events_published']:,} / {dash['events_received']:,}"
        f" (caught up: {dash['caught_up']})",
        f"  this process (the clients)            {doc['client_process']['cpu_share_of_one_core']:.0%} of a core, "
        f"peak RSS {doc['client_process']['peak_rss_mb']} MB",
    ]
    if stalled["asked"]:
        each = ", ".join("dropped after %s s" % e["dropped_after_seconds"] if e["dropped"]
                         else f"still open ({e['server_socket']}, server send queue peak "
                              f"{e['server_send_queue_peak_kib']} KiB)" for e in stalled["each"])
        lines.append(f"  stalled clients dropped               {stalled['dropped']} / {stalled['opened']}: {each}")
    return lines


def resolve(args: argparse.Namespace) -> Options:
    """Turn the command line into options: ``--quick`` changes the defaults, explicit flags win."""
    base = QUICK if args.quick else DEFAULTS
    return Options(clients=args.clients if args.clients is not None else base["clients"],
                   rate=args.rate if args.rate is not None else base["rate"],
                   seconds=args.seconds if args.seconds is not None else base["seconds"],
                   stall=args.stall, generator=args.generator, publishers=args.publishers,
                   dashboard_root=Path(args.dashboard_root).resolve(), out=Path(args.out),
                   keep_logs=args.keep_logs, connect_batch=args.connect_batch, label=args.label)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, help=f"live clients (default {DEFAULTS['clients']})")
    parser.add_argument("--rate", type=int, help=f"events per second (default {DEFAULTS['rate']})")
    parser.add_argument("--seconds", type=float, help=f"publishing time (default {DEFAULTS['seconds']:g})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK['clients']} clients, {QUICK['rate']:,} events/s, {QUICK['seconds']:g} s "
                             "(any of them given explicitly wins)")
    parser.add_argument("--stall", type=int, default=0, metavar="N",
                        help="also open N websocket clients that join /live but never read nor answer pings")
    parser.add_argument("--dashboard-root", default=str(ROOT), help="the checkout whose run.py is measured")
    parser.add_argument("--generator", choices=sorted(SENDERS), default="raw",
                        help="raw: the wire format straight to Redis, cheapest (default); batched: Celery's "
                             "EventDispatcher in kombu's Producer.batch(); dispatcher: EventDispatcher alone")
    parser.add_argument("--publishers", type=int, default=1, help="generator processes sharing the rate")
    parser.add_argument("--connect-batch", type=int, default=CONNECT_BATCH, help="clients connecting at once")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--keep-logs", action="store_true", help="keep the redis and dashboard logs")
    parser.add_argument("--label", default="", help="a note stored with the results (which build, say)")
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    options = resolve(parse_args(argv))
    signal.signal(signal.SIGTERM, _interrupt)  # stops like Ctrl-C: everything started is stopped
    raise_file_limit()
    workdir = Path(tempfile.mkdtemp(prefix="live-clients-"))
    session = Session(options)
    managed: list[Managed] = []
    document: dict[str, Any] | None = None
    failed = False
    return_code = 1
    try:
        redis_port = session.redis_port = free_port()
        redis_server = start("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no"], workdir, workdir)
        managed.append(redis_server)
        ping = redis.Redis(port=redis_port, socket_timeout=5)
        wait_until(ping.ping, 20, "redis-server", redis_server)
        session.web_port = free_port()
        session.base = f"http://127.0.0.1:{session.web_port}"
        broker = f"redis://127.0.0.1:{redis_port}/0"
        quiet = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
        dashboard = start("dashboard", [sys.executable, str(options.dashboard_root / "run.py"), "--broker", broker,
                                        "--port", str(session.web_port), "--db", str(workdir / "bench.db"),
                                        "--log-level", "WARNING"], workdir, options.dashboard_root, quiet)
        managed.append(dashboard)
        wait_until(lambda: health(session.base)["broker"]["connected"], 60, "the dashboard to serve", dashboard)
        wait_until(lambda: int(ping.pubsub_numpat()) > 0, 60, "the dashboard to subscribe to events", dashboard)
        ping.close()
        print(f"live clients: dashboard on {session.base}, redis on {redis_port}, logs in {workdir}", flush=True)
        asyncio.run(measure(session, dashboard))
        if not dashboard.alive():
            print(f"the dashboard exited during the run: {' | '.join(dashboard.tail(5))}", flush=True)
        document = results(session, dashboard)
    except KeyboardInterrupt:
        print("interrupted: stopping what was started", flush=True)
        failed = True
        return_code = 130
    except Exception as error:  # noqa: BLE001 - said, and the processes are stopped
        failed = True
        return_code = 1
        print(f"live clients FAILED: {type(error).__name__}: {error}", flush=True)
        for process in managed:
            for line in process.tail(5):
                print(f"  {process.name}: {line}", flush=True)
    finally:
        for client in session.stalled:
            client.close()
        for process in reversed(managed):
            process.stop()
        for name in ("bench.db", "bench.db-wal", "bench.db-shm", "dump.rdb"):
            (workdir / name).unlink(missing_ok=True)
        if options.keep_logs or failed:
            print(f"logs kept in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if document is None:
        return return_code
    options.out.mkdir(parents=True, exist_ok=True)
    path = options.out / f"live-clients-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(summary_lines(document)), flush=True)
    print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
