"""The Redis fast path: Celery's event fanout read straight off Redis pub/sub.

Celery's receiver goes through kombu's virtual transport, which costs a
message object, a callback chain and two JSON decodes per event before any
work is done. On Redis the event stream is plain pub/sub: kombu publishes
each event to ``<global prefix>/<db>.celeryev/<routing key>``. This reader
PSUBSCRIBEs to the same pattern kombu's receiver uses, on a connection from
kombu's own pool (so URL, password, TLS and socket options are the ones
kombu would use), parses replies in bulk with hiredis, decodes kombu's
envelope and the event body with orjson, and hands the collector whole
batches.

Every event comes out exactly as ``EventReceiver.event_from_message`` returns
it: the same Lamport clock adjustment and the same timestamp localisation
(a test compares the two on recorded traffic). Other transports, and Redis
set-ups this reader does not cover (Sentinel), keep Celery's receiver.
"""
from __future__ import annotations

import binascii
import logging
import socket
import ssl
import time
from collections import deque
from typing import Any, Callable

import hiredis
import orjson
from celery.events.receiver import CLIENT_CLOCK_SKEW
from celery.utils.time import utcoffset
from kombu import Connection

from .envelope import UndecodableMessage, decode_body

log = logging.getLogger(__name__)

#: How long one read waits for data before the loop checks whether it should stop and tells, with nothing
#: arriving, that it has read everything up to then (``on_read_through``), in seconds.
READ_WAKE_SECONDS = 0.25
#: Bytes asked of the socket per read; one read usually carries many events.
READ_CHUNK_BYTES = 1 << 18
#: Most events handed to the collector in one batch; before each batch the socket is drained.
#: The collector lets other tasks (requests, the pusher) run between batches, so this bounds
#: how long they can wait behind a burst: 3-7 ms of work on a 2-core machine under load (500
#: events made p95 slices of 15-23 ms, which an API request waits behind two or three times).
MAX_BATCH_EVENTS = 128
#: Bytes given to hiredis at a time (see ``Backlog``).
FEED_BYTES = 16 << 10
#: Most bytes taken off the socket ahead of processing. Redis cuts a subscriber whose unread
#: output passes its limit (32 MB by default), so during a burst the backlog waits here instead.
MAX_AHEAD_BYTES = 512 << 20
#: URL schemes this reader serves; the rest go through Celery's receiver.
SCHEMES = ("redis", "rediss")
#: Largest event body accepted when the caller gives none (``--max-event-bytes``'s default), in bytes.
DEFAULT_MAX_EVENT_BYTES = 1 << 20
#: Room for kombu's envelope around a body, in bytes.
ENVELOPE_SLACK_BYTES = 64 << 10

__all__ = ["UndecodableMessage", "decode_envelope", "RedisEventStream", "Localizer", "Backlog"]


def serves(broker_url: str, transport_options: dict[str, Any]) -> bool:
    """Return whether the fast path can read the event stream of this broker."""
    scheme = broker_url.split("://", 1)[0].lower()
    return scheme in SCHEMES and not transport_options.get("sentinel_fanout_compat")


def fanout_pattern(channel: Any, exchange: str) -> str:
    """Return the PSUBSCRIBE pattern kombu's receiver uses for ``exchange`` on a kombu Redis channel.

    The receiver binds its queue with routing key ``#``, which kombu turns into ``*``.
    Reading ``channel.pool`` first makes kombu put the database number into the prefix.
    """
    channel.pool  # noqa: B018 - formats keyprefix_fanout with the database number
    topic = channel.keyprefix_fanout + exchange + ("/*" if channel.fanout_patterns else "")
    return (channel.global_keyprefix or "") + topic


def decode_envelope(data: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Any:
    """Return the event body (a dict, or a list of dicts) inside one kombu message.

    Decodes as kombu does for a consumer that accepts only JSON (see ``envelope.decode_body``):
    a message of any other content type is refused, base64 and compression are undone (the
    latter capped at ``max_bytes``), and JSON extension types go through kombu's own decoder.
    Raise UndecodableMessage naming the problem.
    """
    if len(data) > max_bytes * 2 + ENVELOPE_SLACK_BYTES:  # base64 is 4/3 of the body, plus the envelope
        raise UndecodableMessage(f"message of {len(data)} bytes is over --max-event-bytes ({max_bytes})")
    try:
        envelope = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UndecodableMessage(f"message is not JSON ({exc})") from None
    if not isinstance(envelope, dict) or "body" not in envelope:
        raise UndecodableMessage("message is not a kombu envelope")
    body = envelope["body"]
    properties = envelope.get("properties")
    headers = envelope.get("headers")
    if isinstance(properties, dict) and properties.get("body_encoding") == "base64":
        if not isinstance(body, str):
            raise UndecodableMessage("base64 body is not a string")
        try:
            body = binascii.a2b_base64(body)  # what base64.b64decode does, without its argument checks
        except (binascii.Error, ValueError) as exc:
            raise UndecodableMessage(f"event body cannot be decoded ({type(exc).__name__})") from None
    compression = headers.get("compression") if isinstance(headers, dict) else None
    return decode_body(body, envelope.get("content-type"), envelope.get("content-encoding"), compression,
                       max_bytes)


class Localizer:
    """Celery's ``EventReceiver.event_from_message``, with the local UTC offset read once per batch.

    Within ``begin`` and ``end`` the Lamport clock is advanced in a local copy, as ``LamportClock.adjust``
    and ``forward`` would advance it, and written back once: the app's clock takes a lock per call,
    which under eventlet costs more than the rest of an event's localising.
    """

    def __init__(self, clock: Any) -> None:
        self.clock = clock  # the app's LamportClock, as the receiver uses
        self._value: int | None = None  # the clock within a batch

    def begin(self) -> None:
        self._value = self.clock.value

    def end(self) -> None:
        clock, value, self._value = self.clock, self._value, None
        if value is not None:
            with clock.mutex:
                clock.value = max(clock.value, value)

    def __call__(self, body: dict[str, Any], now: float, here: float) -> tuple[str, dict[str, Any]]:
        """Adjust ``body`` in place as Celery's receiver does; ``here`` is ``utcoffset()``."""
        if self._value is None:  # one event on its own
            self.begin()
            try:
                return self(body, now, here)
            finally:
                self.end()
        event_type = body["type"]
        value = self._value
        if event_type == "task-sent":
            # clients never sync their clocks, so Celery gives task-sent a clock of its own
            sent = body["clock"] = (value or 1) + CLIENT_CLOCK_SKEW
            value = max(value, sent) + 1
        elif "clock" in body:
            value = max(value, body["clock"]) + 1
        else:
            value = body["clock"] = value + 1
        self._value = value
        if "utcoffset" in body and "timestamp" in body:
            body["timestamp"] = body["timestamp"] - (body["utcoffset"] - here) * 3600
        body["local_received"] = now
        return event_type, body


def local_offset() -> float:
    """Return this machine's UTC offset in hours, as Celery's ``adjust_timestamp`` reads it."""
    return utcoffset()


Batch = Callable[[list[Any]], None]


class RedisEventStream:
    """One subscription to the event fanout; ``run`` reads until told to stop or the connection fails."""

    def __init__(self, connection: Connection, exchange: str, on_batch: Batch,
                 on_subscribed: Callable[[], None], should_stop: Callable[[], bool],
                 on_undecodable: Callable[[str], None],
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
                 on_unexpected: Callable[[str, Exception], None] | None = None,
                 pace: Callable[[bool], None] | None = None,
                 on_read_through: Callable[[float], None] | None = None) -> None:
        self.connection = connection
        #: Told the wall time up to which everything that reached the socket has been handed to ``on_batch``,
        #: each time a drain (a read that does not wait) finds the socket empty and all it held is applied: after
        #: each ``pace`` and at least every ``READ_WAKE_SECONDS`` while nothing arrives (see
        #: ``EventCollector.read_through``).
        self.on_read_through = on_read_through or (lambda at: None)
        #: Called after each batch, with whether more is already read and waiting: it lets others run,
        #: or waits a while when the stream is slow (see ``EventCollector.pace``).
        self.pace = pace or (lambda more: None)
        self.max_event_bytes = max_event_bytes
        self.on_unexpected = on_unexpected or (lambda where, exc: on_undecodable(f"{type(exc).__name__} {where}"))
        self.exchange = exchange
        self.on_batch = on_batch
        self.on_subscribed = on_subscribed
        self.should_stop = should_stop
        self.on_undecodable = on_undecodable

    def run(self) -> None:
        """Subscribe, then hand decoded bodies to ``on_batch`` until ``should_stop`` says so.

        Raises the connection's error when Redis goes away or cuts the subscriber.
        """
        channel = self.connection.default_channel
        pattern = fanout_pattern(channel, self.exchange)
        redis_connection = channel.pool.get_connection()  # type: ignore[attr-defined]  # kombu's Redis channel
        try:
            redis_connection.send_command("PSUBSCRIBE", pattern)
            sock = redis_connection._sock
            sock.settimeout(READ_WAKE_SECONDS)
            reader = hiredis.Reader()
            self._wait_subscribed(sock, reader)
            log.debug("reading events with PSUBSCRIBE %s", pattern)
            self.on_subscribed()
            self._read(sock, reader)
        finally:
            redis_connection.disconnect()

    def _recv(self, sock: socket.socket) -> bytes | None:
        try:
            data = sock.recv(READ_CHUNK_BYTES)
        except TimeoutError:
            return None
        if not data:
            raise ConnectionError("Redis closed the event subscription")
        return data

    def _wait_subscribed(self, sock: socket.socket, reader: hiredis.Reader) -> None:
        while not self.should_stop():
            data = self._recv(sock)
            if data is None:
                continue
            reader.feed(data)
            reply = reader.gets()
            if reply is False:
                continue
            if isinstance(reply, list) and reply and reply[0] == b"psubscribe":
                return
            raise ConnectionError(f"unexpected reply to PSUBSCRIBE: {str(reply)[:200]}")

    def _drain(self, sock: socket.socket, backlog: Backlog) -> bool:
        """Take whatever the socket holds into ``backlog`` without waiting, up to ``MAX_AHEAD_BYTES``;
        return whether it took all (the socket held no more)."""
        sock.settimeout(0.0)
        try:
            while backlog.size < MAX_AHEAD_BYTES:
                data = sock.recv(READ_CHUNK_BYTES)
                if not data:
                    raise ConnectionError("Redis closed the event subscription")
                backlog.add(data)
        except (BlockingIOError, ssl.SSLWantReadError):
            return True
        finally:
            sock.settimeout(READ_WAKE_SECONDS)
        return False

    def _read(self, sock: socket.socket, reader: hiredis.Reader) -> None:
        backlog = Backlog()
        # hiredis may hold whole replies still: the last parse stopped at MAX_BATCH_EVENTS, or messages came in
        # the same read as the reply to PSUBSCRIBE
        full = bool(reader.has_data())
        paced = False  # the last pass ended in pace(): what came meanwhile is looked for without waiting first
        while not self.should_stop():
            if not backlog.size and not full and not paced:
                data = self._recv(sock)
                if data is not None:
                    backlog.add(data)
            paced = False
            drained_from = time.time()
            # Read first: Redis must not hold the backlog. A wait that timed out is no proof that nothing came:
            # after the process stalled, the wait's timer fires before the socket is looked at.
            emptied = self._drain(sock, backlog)
            if not backlog.size and not full:  # nothing came: all that came before is applied
                self.on_read_through(drained_from)
                continue
            batch = self._parse(reader, backlog)
            if batch:
                self.on_batch(batch)
            full = len(batch) >= MAX_BATCH_EVENTS
            more = backlog.size > 0 or full
            if emptied and not more:  # all that reached the socket before the drain is applied
                self.on_read_through(drained_from)
            self.pace(more)
            paced = True

    def _parse(self, reader: hiredis.Reader, backlog: Backlog) -> list[Any]:
        """Decode up to MAX_BATCH_EVENTS messages from what was read."""
        batch: list[Any] = []
        while len(batch) < MAX_BATCH_EVENTS:
            reply = reader.gets()
            if reply is False:
                if backlog.feed(reader):
                    continue
                break
            if isinstance(reply, hiredis.ReplyError):
                raise ConnectionError(f"Redis error on the event subscription: {reply}")
            if not isinstance(reply, list) or len(reply) != 4 or reply[0] != b"pmessage":
                continue  # subscription bookkeeping, not an event
            try:  # each message in its own guard: no content can end the subscription
                batch.append(decode_envelope(reply[3], self.max_event_bytes))
            except UndecodableMessage as exc:
                self.on_undecodable(str(exc))
            except Exception as exc:  # a shape no check foresaw, a bug: counted and logged, reading goes on
                self.on_unexpected("while decoding", exc)
        return batch


class Backlog:
    """Bytes read off the socket ahead of parsing, fed to hiredis a small slice at a time.

    hiredis moves the rest of its buffer down each time a reply is taken, so a large
    buffer costs time per reply: it is only ever given FEED_BYTES more than it holds.
    """

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.offset = 0  # bytes of the first chunk already fed
        self.size = 0  # bytes not yet fed

    def add(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)

    def feed(self, reader: hiredis.Reader) -> bool:
        """Give ``reader`` the next slice; return False when nothing is left."""
        if not self.chunks:
            return False
        chunk = self.chunks[0]
        length = min(FEED_BYTES, len(chunk) - self.offset)
        reader.feed(chunk, self.offset, length)
        self.offset += length
        self.size -= length
        if self.offset >= len(chunk):
            self.chunks.popleft()
            self.offset = 0
        return True
