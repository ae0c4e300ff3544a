"""The collector: owns the broker connection that receives Celery's event stream.

It reads the stream through the Redis fast path or Celery's own
``EventReceiver`` (``wakeup=True``) in one background task, checks every
event before the model sees it, reconnects with capped backoff and jitter,
and publishes the broker's status. A watchdog notices a broker that hangs
without raising, and expires workers whose heartbeats stopped. It never lets
one bad event stop the loop.

It writes events into the model (``cluster.Cluster``) and holds no lock of
its own: the model serialises every write and read.
"""
from __future__ import annotations

import logging
import random
import time
from collections import deque
from queue import Empty
from typing import Any, Callable

from celery import Celery
from celery.events.receiver import EventReceiver
from kombu import Connection
from kombu.exceptions import ConnectionError as KombuConnectionError
from kombu.exceptions import OperationalError as KombuOperationalError

from . import redis_stream
from .envelope import UndecodableMessage, decode_body
from .checks import MalformedEvent, clean_event
from .redact import mask_known, mask_url
from .settings import Settings
from .shapes import Alert
from .cluster import Cluster
from .model import heartbeat_expires

log = logging.getLogger(__name__)

#: First reconnect delay, in seconds; doubled per failure up to the configured ceiling.
RECONNECT_START_SECONDS = 0.5
#: Gaps the broker status carries to the pages (the store keeps them all).
GAPS_SHOWN = 20
#: Fraction of random jitter added to each reconnect delay.
RECONNECT_JITTER = 0.2
#: How often the watcher checks heartbeats and silence while something is overdue or the stream is down,
#: in seconds.
WATCH_INTERVAL_SECONDS = 0.25
#: Longest the watcher sleeps; otherwise it wakes when the next worker's heartbeat window ends, or the
#: stream's silence reaches the watchdog's limit.
WATCH_MAX_SECONDS = 1.0
#: How long before a live push the Redis reader wakes to read what arrived since the last push, in seconds
#: (pushes fall on multiples of the flush interval). It reads once per push, whatever the rate: an event
#: costs less the more of them a read takes. Replaying a stream of 3,200 / 2,400 events/s (``bench/replay.py``),
#: decoding and applying took 40 / 41 µs an event with a read every 20 ms, 34 / 37 µs every 125 ms, and
#: 30 µs (2,400 events/s) once per push. A push waits for the reader to apply what that read took
#: (``EventCollector.behind``), so a read of many events still makes the push it was read for.
PACE_LEAD_SECONDS = 0.005
#: Longest the watcher judges heartbeats by how far the event stream has been read (``EventCollector.read_through``)
#: instead of by the clock alone, in seconds. A heartbeat can only be missed once everything that reached the
#: dashboard before the worker's window ended has been read: after the dashboard itself stalled (a pause, a
#: starved CPU), the heartbeats of that time are still waiting to be read when the watcher wakes, and reading
#: them by the clock alone found every worker lost at once, then back. A reader that stays further behind than
#: this still finds a dead worker, this much later.
READ_LAG_MAX_SECONDS = 10.0
#: How often the watcher looks again while a window has ended by the clock but the reader has not yet read
#: through its end, in seconds (the reader tells at least every ``redis_stream.READ_WAKE_SECONDS``).
READ_WAIT_SECONDS = 0.05
#: How much later than it asked the watcher must wake for the dashboard to count as having stalled, in
#: seconds: ``READ_LAG_MAX_SECONDS`` counts the time the dashboard ran, so a stall longer than it blames no
#: worker either.
STALL_SECONDS = 1.0
#: Stalls remembered for that count (the most recent).
STALLS_KEPT = 64
#: Redis transport options so that a dead or hung server fails a connect instead of hanging.
_REDIS_DEFAULT_OPTIONS = {"socket_connect_timeout": 5}

#: Errors that a malformed message raises inside kombu's transport; never a lost connection.
_MESSAGE_ERRORS = (LookupError, TypeError, ValueError, AttributeError, RecursionError)

Sleep = Callable[[float], None]


class BrokerStatus:
    """What the page and /api/health say about the broker connection."""

    def __init__(self, url: str) -> None:
        self.url = mask_url(url)
        self.status = "connecting"
        self.error: str | None = None
        self.since = time.time()
        self.stream_cuts = 0
        self.version = 0  # bumped on every change, so the pusher knows when to send
        #: The latest intervals in which events may have been lost, oldest first (see EventCollector.open_gap).
        self.gaps: deque[dict[str, Any]] = deque(maxlen=GAPS_SHOWN)

    @property
    def connected(self) -> bool:
        return self.status == "connected"

    def set(self, status: str, error: str | None = None) -> None:
        if status == self.status and error == self.error:
            return
        self.status, self.error, self.since = status, error, time.time()
        self.version += 1

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "connected": self.connected, "status": self.status,
                "error": self.error, "since": self.since, "stream_cuts": self.stream_cuts, "gaps": list(self.gaps)}

    def add_gap(self, gap: dict[str, Any]) -> None:
        self.gaps.append(gap)
        self.version += 1


class SafeReceiver(EventReceiver):
    """Celery's receiver, with every message decoded and checked before Celery or the state touches it.

    Bodies are decoded by ``envelope.decode_body``, the same code as the Redis fast path, so both
    readers accept, repair and refuse the same messages. A message the transport itself cannot
    turn into a kombu message (an envelope without ``properties``, say) raises out of
    ``drain_events``; such errors are counted and skipped there (see ``on_consume_ready``), and
    only connection errors end the subscription.
    """

    def __init__(self, channel: Any, collector: "EventCollector", **kwargs: Any) -> None:
        super().__init__(channel, **kwargs)
        self.collector = collector

    def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
        return [Consumer(queues=[self.queue], on_message=self._on_message, no_ack=True,
                         accept=self.accept, on_decode_error=self._on_decode_error)]

    def _on_decode_error(self, message: Any, exc: Exception) -> None:
        self.collector.count_malformed(f"undecodable message ({type(exc).__name__})")

    def on_consume_ready(self, connection: Any, channel: Any, consumers: Any, **kwargs: Any) -> None:
        drain = connection.drain_events
        fatal = (OSError, *connection.connection_errors, *connection.channel_errors)
        collector = self.collector

        def skip(exc: Exception) -> None:
            if isinstance(exc, _MESSAGE_ERRORS):
                # A hostile message inside the transport (kombu's Redis transport also lists
                # KeyError among its connection errors): skip it, keep the stream.
                collector.count_malformed(f"undecodable message ({type(exc).__name__} in the transport)")
            elif isinstance(exc, fatal):
                raise exc  # the connection failed: the collector reconnects
            else:
                collector.count_unexpected("in the transport", exc)

        def read_buffered() -> None:
            # kombu's Redis channel stops reading at a message it cannot parse (or that raised) and
            # reads the messages already buffered behind it only when the socket next becomes
            # readable, which may be never: read them now.
            subclient = getattr(channel, "subclient", None) if hasattr(channel, "_receive_one") else None
            while subclient is not None and subclient.connection is not None \
                    and subclient.connection.can_read(timeout=0):
                try:
                    channel._receive_one(subclient)
                except Empty:
                    pass  # kombu skipped a message it cannot parse (its warning is counted, see UndecodableEnvelopes)
                except Exception as exc:
                    skip(exc)

        def drain_events(**options: Any) -> Any:
            try:
                result = drain(**options)
            except Exception as exc:
                read_buffered()
                skip(exc)  # raises a connection error or a timeout on to the receiver
                return None
            read_buffered()
            return result

        connection.drain_events = drain_events
        self.collector.on_subscribed()
        super().on_consume_ready(connection, channel, consumers, **kwargs)

    def on_iteration(self) -> None:
        if self.collector.stopping or self.collector.restart_requested:
            self.should_stop = True

    def _on_message(self, message: Any) -> None:
        collector = self.collector
        try:
            headers = message.headers if isinstance(message.headers, dict) else {}
            body = decode_body(message.body, message.content_type, message.content_encoding,
                               headers.get("compression"), collector.settings.max_event_bytes)
        except UndecodableMessage as exc:
            collector.count_malformed(f"undecodable message ({exc})")
            return
        except Exception as exc:  # each message in its own guard; what no check foresaw is also a bug
            collector.count_unexpected("while decoding", exc)
            return
        try:
            collector.apply_events(collector.take([body], self.event_from_message))
        except Exception as exc:  # a bug of ours: kombu would pass it on to ``skip`` as a bad message
            collector.count_unexpected("while applying a message", exc)


class UndecodableEnvelopes(logging.Filter):
    """Counts kombu's warning that an event message is not JSON as a malformed event, and drops it.

    kombu's Redis transport skips such a message itself, with a warning that quotes the
    message (a task payload, which is never logged here).
    """

    def __init__(self, collector: "EventCollector") -> None:
        super().__init__()
        self.collector = collector

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Cannot process event"):
            self.collector.count_malformed("undecodable message (not JSON)")
            return False
        return True


class EventCollector:
    """Receives events into the model, keeps the broker status, and watches for silence."""

    def __init__(self, settings: Settings, sleep: Sleep = time.sleep, app: Celery | None = None,
                 cluster: Cluster | None = None, on_alert: Callable[[Alert], None] | None = None) -> None:
        self.settings = settings
        self.alert = on_alert or (lambda alert: None)  # worker lost or back online
        self.sleep = sleep
        self.app = app or make_celery_app(settings)
        self.cluster = cluster or Cluster.build(settings)
        self.broker = BrokerStatus(settings.broker_url)
        self.received = 0  # every event taken off the broker, heartbeats included
        self.malformed = 0  # events counted and skipped
        self.last_malformed: str | None = None
        self.last_event_at = time.monotonic()
        self.stopping = False
        self.finished = False  # the receive loop has ended: no event will be applied any more
        self.restart_requested = False
        self._subscribed_this_attempt = False  # the current connection attempt reached the event stream
        self.internal_errors = 0  # unexpected exceptions logged with a traceback (bugs, not bad input)
        self._ignored_workers_logged = 0
        self.reader_lag = 0.0  # seconds between the last event applied being sent and being received
        self._unexpected_logged: set[tuple[str, str]] = set()  # (where, exception type) already logged
        self._connection_error_types: tuple[type[BaseException], ...] | None = None
        self.listening_since = 0.0  # wall time of the last subscription to the event stream
        self._gap: tuple[float, str] | None = None  # an open gap: since when events may be lost, and why
        self.unsaved_gaps: list[dict[str, Any]] = []  # closed gaps for the history writer
        self.first_subscribed_at: float | None = None  # since when this process has seen the event stream
        self.on_gap: Callable[[dict[str, Any]], None] | None = None  # told of each closed gap (reconciliation)
        #: When a dashboard last ran on this history (set by the history at start): the first
        #: subscription closes the gap of the downtime since.
        self.down_since: float | None = None
        self._watch_limit: float | None = None  # silence that triggers the watchdog, set while workers live
        self._pinged_for: float | None = None  # last_event_at of the silence already checked by a ping
        self.fast_path = settings.event_reader == "auto" and redis_stream.serves(
            settings.broker_url, settings.broker_transport_options)
        self._localize = redis_stream.Localizer(self.app.clock)
        #: The Redis reader holds events it read and has not applied yet: a push waits for them (``LiveHub.run``).
        self.behind = False
        #: Wall time up to which every event that reached the dashboard has been applied, as the Redis reader last
        #: found it (``RedisEventStream.on_read_through``); None where the reader cannot tell (Celery's receiver).
        self.read_through: float | None = None
        #: (wall time it ended, seconds) of each stall the watcher noticed: it woke much later than it asked.
        self.stalls: deque[tuple[float, float]] = deque(maxlen=STALLS_KEPT)

    # -- the receive loop ----------------------------------------------------
    def run(self) -> None:
        """Receive events until ``stop``; reconnect with capped backoff and jitter on failure."""
        delay = RECONNECT_START_SECONDS
        log.info("waiting for the broker at %s to subscribe to Celery events", self.broker.url)
        kombu_log = logging.getLogger("kombu.transport.redis")
        undecodable = UndecodableEnvelopes(self)
        kombu_log.addFilter(undecodable)
        try:
            self._receive_loop(delay)
        finally:
            kombu_log.removeFilter(undecodable)
        self.finished = True
        log.info("event collector stopped")

    def _receive_loop(self, delay: float) -> None:
        connection_errors = self.connection_errors()
        while not self.stopping:
            self.restart_requested = False
            self._subscribed_this_attempt = False
            try:
                with self.app.connection_for_read() as connection:
                    connection.ensure_connection(max_retries=0)  # fail at once; this loop does the backoff
                    if self.fast_path:
                        self._capture_redis(connection)
                    else:
                        receiver = SafeReceiver(connection, self, app=self.app, accept=["json"])
                        receiver.capture(limit=None, timeout=None, wakeup=True)
                if self.restart_requested and not self.stopping:
                    continue  # the watchdog asked for a fresh receiver; status already says why
            except Exception as exc:
                if self.stopping:
                    break
                if isinstance(exc, connection_errors):  # the broker went away: report, back off, retry
                    self._on_connection_error(exc)
                else:  # a bug, not an outage: say so with its traceback, and subscribe again after the backoff
                    if self.broker.connected:
                        self.open_gap("event receiver restarted")
                    self.count_internal_error()
                    log.exception("the event receiver failed; subscribing again")
            else:
                if self.stopping:
                    break
                delay = RECONNECT_START_SECONDS
                continue
            if self._subscribed_this_attempt:
                delay = RECONNECT_START_SECONDS  # it worked until now: this outage starts from the shortest wait
            self.sleep(delay * (1 + random.uniform(-RECONNECT_JITTER, RECONNECT_JITTER)))
            delay = min(delay * 2, self.settings.reconnect_max_seconds)

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        """Return the exceptions that mean the broker connection failed (the rest are bugs)."""
        if self._connection_error_types is None:
            transport = self.app.connection_for_read()  # not connected: only its error classes are read
            try:
                listed = (*transport.connection_errors, *transport.channel_errors)
            finally:
                transport.release()
            # kombu's Redis transport lists KeyError among its connection errors: a bug reads as one otherwise.
            self._connection_error_types = (OSError, KombuOperationalError, KombuConnectionError,
                                            *(e for e in listed if not issubclass(e, _MESSAGE_ERRORS)))
        return self._connection_error_types

    def _on_connection_error(self, exc: Exception) -> None:
        error = mask_known(f"{type(exc).__name__}: {exc}", self.settings.broker_url)[:500]
        was_connected = self.broker.connected
        if was_connected and self.ping_broker():
            self.broker.stream_cuts += 1
            self.open_gap("subscriber cut: the broker closed the event subscription")
            error = ("the broker closed the event subscription while it still answers "
                     f"(Redis cuts subscribers that fall behind); events were lost: {error}")
            log.warning("event stream cut by %s: %s", self.broker.url, error)
        elif was_connected:
            self.open_gap("broker connection lost")
            log.warning("lost the broker at %s: %s; reconnecting", self.broker.url, error)
        elif self.broker.error != error:
            log.warning("cannot reach the broker at %s (%s); retrying", self.broker.url, error)
        self.broker.set("reconnecting" if was_connected or self.broker.status != "connecting"
                        else "connecting", error)

    def open_gap(self, cause: str) -> None:
        """Events may be lost from the last one received until the next subscription (``on_subscribed``)."""
        if self._gap is None:
            self._gap = (time.time() - (time.monotonic() - self.last_event_at), cause)

    def _close_gap(self, start: float, cause: str) -> None:
        end = time.time()
        start = min(start, end)
        gap = {"start": start, "end": end, "cause": cause}
        self.broker.add_gap(gap)
        self.unsaved_gaps.append(gap)
        if self.on_gap is not None:
            self.on_gap(gap)
        log.warning("events may be missing between %s and %s (%s)", _clock(start), _clock(end), cause)

    def take_gaps(self) -> list[dict[str, Any]]:
        gaps, self.unsaved_gaps = self.unsaved_gaps, []
        return gaps

    def on_subscribed(self) -> None:
        """Mark the stream live once the receiver's queue is bound."""
        if self.first_subscribed_at is None:
            self.first_subscribed_at = time.time()
        if not self.broker.connected:
            log.info("subscribed to Celery events on %s", self.broker.url)
        if self.down_since is not None:  # the first subscription since the start
            self._close_gap(self.down_since, "dashboard stopped")
            self.down_since = None
        if self._gap is not None:
            self._close_gap(*self._gap)
            self._gap = None
        self.broker.set("connected")
        self._subscribed_this_attempt = True
        self.last_event_at = time.monotonic()
        self.listening_since = time.time()

    def _capture_redis(self, connection: Connection) -> None:
        """Read the event stream through the Redis fast path until stopped or the connection fails."""
        def subscribed() -> None:
            self.on_subscribed()
            self.app.control.broadcast("heartbeat", connection=connection)  # as Celery's receiver wakes workers

        stream = redis_stream.RedisEventStream(
            connection, self.app.conf.event_exchange, self.on_batch, subscribed,
            should_stop=lambda: self.stopping or self.restart_requested,
            on_undecodable=lambda reason: self.count_malformed(f"undecodable message ({reason})"),
            max_event_bytes=self.settings.max_event_bytes, on_unexpected=self.count_unexpected,
            pace=self.pace, on_read_through=self._read_through)
        try:
            stream.run()
        finally:
            self.behind = False  # what it read and did not apply is gone with it: no push waits for it

    def on_batch(self, bodies: list[Any]) -> None:
        """Localise and apply a batch of decoded message bodies from the Redis fast path."""
        self.behind = True  # until ``pace`` says whether more was read
        now, here = time.time(), redis_stream.local_offset()
        localize = self._localize
        localize.begin()
        try:
            events = self.take(bodies, lambda body: localize(body, now, here))
        finally:
            localize.end()
        self.apply_events(events)

    def _read_through(self, at: float) -> None:
        self.read_through = at

    def stream_time(self, now: float) -> float:
        """The wall time up to which heartbeats can be judged at ``now``: how far the stream has been read,
        when the reader tells, unless it has been behind for more than ``READ_LAG_MAX_SECONDS`` of the time the
        dashboard ran (the stalls the watcher noticed left out); then ``READ_LAG_MAX_SECONDS`` behind ``now``."""
        through = self.read_through
        if through is None:
            return now
        stalled = sum(seconds for ended, seconds in self.stalls if ended > through)
        if now - through - stalled > READ_LAG_MAX_SECONDS:
            return max(through, now - READ_LAG_MAX_SECONDS)
        return min(now, through)

    def pace(self, more: bool) -> None:
        """Between two reads of the Redis fast path: let requests and the pusher run, then wait until just
        before the next live push (``PACE_LEAD_SECONDS``); while what was read is still being worked through
        (``more``: ``behind``, which the push waits for), read on at once.

        Each wake-up of the reader costs far more than an event: an idle cluster's heartbeats, read as they
        come, cost more CPU than everything else the dashboard does, and a busy stream's events cost less
        the more of them a read takes. Pages see each event in the same push as if it had been read at once.
        """
        self.behind = more
        if more:
            self.sleep(0)
            return
        self.sleep(until_tick(self.settings.flush_interval_seconds, time.monotonic(), PACE_LEAD_SECONDS))

    def take(self, bodies: list[Any], localize: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]
             ) -> list[dict[str, Any]]:
        """Count, check and localise message bodies (each an event or a list of events); skip bad ones."""
        events = []
        max_field, max_traceback = self.settings.max_field_chars, self.settings.max_traceback_chars
        for body in bodies:
            for raw in body if isinstance(body, list) else (body,):
                self.received += 1
                try:
                    events.append(localize(clean_event(raw, max_field, max_traceback))[1])
                except MalformedEvent as exc:
                    self.count_malformed(str(exc))
                except Exception as exc:  # each event in its own guard: a shape no check foresaw, a bug
                    self.count_unexpected("while checking an event", exc)
        return events

    def apply_events(self, events: list[dict[str, Any]]) -> None:
        """Apply checked events to the model, as one batch (the model takes its lock once for it)."""
        self.last_event_at = time.monotonic()
        if self.broker.status == "unresponsive":
            self.broker.set("connected")  # the hang ended before the receiver was restarted
        if not events:
            return
        last = events[-1]  # how far behind the sender the stream is read, as far as the clocks agree
        self.reader_lag = max(0.0, (last.get("local_received") or 0.0) - (last.get("timestamp") or 0.0))
        # A bug in the model must not stop the stream, nor log a traceback for each of thousands of events.
        for _event, exc in self.cluster.apply_events(events):
            self.count_unexpected("while applying an event", exc)

    def count_malformed(self, reason: str) -> None:
        """Count an event that was skipped, remembering why."""
        self.malformed += 1
        self.last_malformed = reason
        log.debug("skipped malformed event: %s", reason)

    def count_unexpected(self, where: str, exc: BaseException) -> None:
        """Count a message lost to an error no check foresaw: malformed for the stream, internal for the bug.

        Its traceback is logged the first time for each place and kind of error; the counts in
        ``/api/health`` say how often, so a hostile producer cannot flood the log.
        """
        self.count_malformed(f"{type(exc).__name__} {where}")
        if self.count_bug(where, exc):
            log.error("unexpected %s %s; the message was skipped (logged once per kind)", type(exc).__name__,
                      where, exc_info=exc)

    def count_bug(self, where: str, exc: BaseException) -> bool:
        """Count a bug for ``errors.internal``; return whether it is the first of its kind at ``where``, whose
        traceback the caller logs: one that fails every message or every round would flood the log."""
        self.internal_errors += 1
        key = (where, type(exc).__name__)
        if key in self._unexpected_logged:
            return False
        self._unexpected_logged.add(key)
        return True

    def count_internal_error(self) -> None:
        """Count an unexpected exception (a bug, not bad input) for ``/api/health``'s ``errors.internal``."""
        self.internal_errors += 1

    def stop(self) -> None:
        """Ask the receive loop and the watchers to end."""
        self.stopping = True

    # -- watchers --------------------------------------------------------------
    def watch(self) -> None:
        """Expire silent workers and catch a broker that hangs without failing."""
        wait = WATCH_INTERVAL_SECONDS
        while not self.stopping:
            asked_wall, asked = time.time() + wait, time.monotonic() + wait
            self.sleep(wait)
            now, monotonic = time.time(), time.monotonic()
            late = max(now - asked_wall, monotonic - asked)  # the wall clock also runs while the host sleeps
            if late > STALL_SECONDS:
                self.stalls.append((now, late))
                log.info("the dashboard was held up for %.1f s; heartbeats it has not read yet are not taken "
                         "for silence", late)
            wait = WATCH_INTERVAL_SECONDS
            try:
                wait = self.watch_step(now, monotonic)
            except Exception:  # the watcher must outlive any surprise
                self.count_internal_error()
                log.exception("watcher step failed")

    def watch_step(self, now: float, monotonic: float) -> float:
        """Run one round of the watcher at wall time ``now`` and monotonic time ``monotonic``; return how long
        it can sleep before the next: until a worker's window ends, the watchdog's limit is reached, or
        WATCH_MAX_SECONDS, and WATCH_INTERVAL_SECONDS while something is overdue or the stream is down."""
        silence = monotonic - self.last_event_at
        slack = self.settings.heartbeat_slack_seconds
        beats = self.cluster.heartbeats()
        since = self.listening_since
        expiries = [(heartbeat_expires(max(beat, since), freq, slack), beat) for _, beat, freq in beats]
        read = self.stream_time(now)  # a window that ended later may have its heartbeat still unread
        due = [beat for expiry, beat in expiries if read > expiry]
        wait = min([WATCH_MAX_SECONDS] + [expiry - now for expiry, _ in expiries if expiry >= now])
        if due:
            wait = min(wait, WATCH_INTERVAL_SECONDS)
        elif read < now and any(now > expiry for expiry, _ in expiries):
            wait = min(wait, READ_WAIT_SECONDS)  # ended by the clock: judged once the reader has read through it
        limit = max([self.settings.watchdog_min_seconds] + [3 * freq for _, _, freq in beats])
        online = bool(beats)
        if online and silence < limit:
            self._watch_limit = limit  # workers were alive while events still flowed
        elif not online and silence < self.settings.watchdog_min_seconds:
            self._watch_limit = None
        if not self.broker.connected and self.broker.status != "unresponsive":
            return WATCH_INTERVAL_SECONDS  # the stream is down: silence says nothing about the workers
        if due:
            # Nothing at all arrived since these workers' last heartbeats: the broker may be the one
            # that is silent. Ask it once per silence before calling the workers lost.
            quiet_since = now - silence
            if any(beat >= quiet_since - 0.5 for beat in due) and self._pinged_for != self.last_event_at:
                self._pinged_for = self.last_event_at
                log.info("no event for %.1f s while workers are due to beat; pinging %s", silence, self.broker.url)
                if not self.ping_broker():
                    self._mark_unresponsive(silence)
                self.open_gap("broker unresponsive")
            if self.broker.connected:
                for hostname, last_heartbeat in self.cluster.expire(now, self.listening_since, read):
                    log.warning("worker %s lost: no heartbeat for %.1f s", hostname, now - last_heartbeat)
        alerts = self.cluster.purge(now, self.settings.purge_offline_after_seconds)
        ignored = self.cluster.limits()["workers_ignored"]
        if ignored and ignored >= 2 * self._ignored_workers_logged:  # the first, then each time the count doubles
            self._ignored_workers_logged = ignored
            log.warning("%d workers beyond --max-workers %d are ignored", ignored, self.settings.max_workers)
        for alert in alerts:
            self.alert(alert)
        if self._watch_limit is not None and silence >= self._watch_limit and not self.restart_requested:
            if self.broker.status != "unresponsive":
                log.info("no event for %.1f s; pinging %s", silence, self.broker.url)
            if self.broker.status == "unresponsive" or not self.ping_broker():
                self._mark_unresponsive(silence)
                self.open_gap("broker unresponsive")
                log.warning("no event for %.0f s and %s does not answer; restarting the receiver",
                            silence, self.broker.url)
                self.restart_requested = True
            else:
                self.last_event_at = monotonic  # the broker answers: the workers went quiet
        if self._watch_limit is not None:
            wait = min(wait, max(self._watch_limit - silence, WATCH_INTERVAL_SECONDS))
        if self.broker.status == "unresponsive" or self.restart_requested:
            wait = WATCH_INTERVAL_SECONDS
        return max(wait, 0.01)

    def _mark_unresponsive(self, silence: float) -> None:
        if self.broker.status != "unresponsive":
            log.warning("no event for %.1f s and %s does not answer a ping", silence, self.broker.url)
        self.broker.set("unresponsive", f"no event for {silence:.0f} s and the broker does not answer a ping")

    def ping_broker(self) -> bool:
        """Return whether the broker answers on a fresh connection within the ping timeout."""
        timeout = self.settings.broker_ping_timeout_seconds
        options = dict(self.app.conf.broker_transport_options or {})
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout, max_retries=0)
        try:
            with Connection(self.settings.broker_url, connect_timeout=timeout,
                            transport_options=options) as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
                connection.channel().close()  # redis answers a PING here; amqp opened a channel
            return True
        except self.connection_errors() as exc:  # the broker does not answer
            log.debug("broker ping failed: %s", mask_known(str(exc), self.settings.broker_url))
            return False
        except Exception:  # a bug: say so; for the watchdog, a ping that could not be made is no answer
            self.count_internal_error()
            log.exception("pinging the broker failed")
            return False

    # -- reading -------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Return the body of ``GET /api/health``."""
        return {
            "status": "ok" if self.broker.connected else "degraded",
            "broker": self.broker.to_json(),
            "events": {"received": self.received, "malformed": self.malformed,
                       "unknown": self.cluster.unknown_events(),
                       "last_malformed": self.last_malformed,
                       "reader": "redis" if self.fast_path else "kombu"},
            "errors": {"internal": self.internal_errors},
        }


def make_celery_app(settings: Settings) -> Celery:
    """Build the Celery app the dashboard uses to talk to the broker (it runs no tasks)."""
    app = Celery("celery-dashboard", set_as_current=False)
    options = dict(settings.broker_transport_options)
    if settings.broker_url.startswith(("redis", "rediss", "sentinel")):
        options = {**_REDIS_DEFAULT_OPTIONS, **options}
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=options,
        broker_connection_retry_on_startup=False,
        event_serializer="json",
        accept_content=["json"],
    )
    return app


def until_tick(interval: float, now: float, lead: float = 0.0) -> float:
    """Return the seconds from ``now`` (monotonic) to ``lead`` seconds before the next multiple of ``interval``.

    The pusher flushes on these multiples, so a reader that wakes there has its events in the next push.
    """
    wait = -(now + lead) % interval
    return wait if wait > 0.001 else wait + interval


def _clock(at: float) -> str:
    """A wall time for the log, in UTC to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
