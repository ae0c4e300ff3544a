"""Which of several dashboard processes sharing one history writes it: a lock in Redis with a TTL.

With ``--leader-lock redis://...`` every process runs ``Leadership.run``. A follower tries
``SET key token NX PX ttl`` every ``ATTEMPT_SECONDS``; the holder renews it every third of the
TTL (a Lua script: only while the key still holds its own token) and notes the time of each
renewal beside it (``<key>:renewed``), which tells its successor since when writes may be missing.
A clean stop deletes the lock (again only its own), so another process takes over at once; a
process that dies holding it (``kill -9``, a lost box) is replaced once the TTL has run out.

A leader that cannot renew (Redis is gone, the key was taken) stops leading before its TTL can have
run out anywhere else: when two thirds of it passed since its last renewal, or at once when the key
holds another token. ``on_change(leading, previous_renewal)`` is called on each change, on the
event loop: ``previous_renewal`` is the old holder's last renewal (epoch seconds) when this process
took over, else None.

The key is named after the history (``--db``, its password left out), so dashboards of different
clusters can share one Redis. This module imports no Flask or socketio.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
import zlib
from typing import Any, Callable

import redis

from .redact import mask_text, mask_url

log = logging.getLogger(__name__)

#: How often a follower tries to take the lock, in seconds.
ATTEMPT_SECONDS = 0.5
#: Seconds a call to Redis may take before it counts as failed.
REDIS_TIMEOUT_SECONDS = 2.0
#: How long the time of the last renewal is kept after the lock itself expired, in seconds.
RENEWED_KEPT_SECONDS = 7 * 86400

#: KEYS[1] the lock, KEYS[2] its renewal time; ARGV token, TTL in ms, now. Renew only our own lock.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
    return 1
end
return 0
"""
#: Delete the lock only while it is ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_key(db: str) -> str:
    """The lock's key for the history ``db``: processes sharing a history share a lock."""
    return f"celery-dashboard:leader:{zlib.crc32(mask_url(db).encode()):08x}"


class Leadership:
    """One process's part in the election; see the module docstring."""

    def __init__(self, url: str, key: str, ttl_seconds: float, sleep: Callable[[float], Any],
                 on_change: Callable[[bool, float | None], None] | None = None,
                 count_internal_error: Callable[[], None] = lambda: None) -> None:
        self.url = url
        self.key = key
        self.ttl_seconds = ttl_seconds
        self.sleep = sleep
        self.on_change = on_change
        self.count_internal_error = count_internal_error  # for ``/api/health``'s ``errors.internal``
        #: This process, as the lock's value and in ``/api/health``: host, pid and a random part.
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leader = False
        self.since: float | None = None  # when this process last became the leader
        self.renewed_at = 0.0  # monotonic time of the last successful take or renewal
        self.holder: str | None = None  # the token in the lock when last looked at
        self.error: str | None = None  # the last failure to reach Redis
        self.changes = 0  # how many times this process became the leader or stopped being it
        self.stopping = False
        self._client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                            socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)

    @property
    def renewed_key(self) -> str:
        return self.key + ":renewed"

    def run(self) -> None:
        """Take or renew the lock until ``stop``; then give it up."""
        while not self.stopping:
            try:
                self.step()
            except Exception:  # a bug (Redis' failures are handled in step): the election must go on
                self.count_internal_error()
                log.exception("leader lock %s: the step failed", self.key)
            self.sleep(self.ttl_seconds / 3 if self.leader else ATTEMPT_SECONDS)

    def step(self) -> bool:
        """One attempt: renew the lock when leading, else try to take it. Return whether this process leads."""
        ttl_ms = int(self.ttl_seconds * 1000)
        try:
            if self.leader:
                if self._renew(keys=[self.key, self.renewed_key],
                               args=[self.token, ttl_ms, repr(time.time()), RENEWED_KEPT_SECONDS * 1000]):
                    self.renewed_at = time.monotonic()
                    self.error = None
                    return True
                self.holder = _text(self._client.get(self.key))
                log.warning("leader lock %s is held by %s now: this process stops writing the history", self.key,
                            self.holder)
                self._change(False, None)
                return False
            previous = _text(self._client.get(self.renewed_key))
            if self._client.set(self.key, self.token, nx=True, px=ttl_ms):
                self._client.set(self.renewed_key, repr(time.time()), px=RENEWED_KEPT_SECONDS * 1000)
                self.renewed_at = time.monotonic()
                self.error = None
                self.holder = self.token
                self._change(True, float(previous) if previous else None)
                return True
            self.holder = _text(self._client.get(self.key))
            self.error = None
            return False
        except redis.RedisError as exc:
            self.error = f"{type(exc).__name__}: {mask_text(str(exc))}"
            if self.leader and time.monotonic() - self.renewed_at > self.ttl_seconds * 2 / 3:
                log.warning("leader lock %s not renewed for %.1f s (%s): this process stops writing the history "
                            "before another can take over", self.key, time.monotonic() - self.renewed_at, self.error)
                self._change(False, None)
            return self.leader

    def stop(self) -> None:
        """Stop taking part: the loop ends, and the lock (if held) is kept until ``release``."""
        self.stopping = True

    def release(self) -> None:
        """After ``stop`` and the last write: give the lock up, so another process takes over at once."""
        self.stopping = True
        if self.leader:
            try:
                self._release(keys=[self.key], args=[self.token])
            except redis.RedisError as exc:
                log.warning("leader lock %s not released (%s); it expires in %.0f s", self.key, exc, self.ttl_seconds)
            self.leader = False
        self._client.close()

    def _change(self, leading: bool, previous_renewal: float | None) -> None:
        self.leader = leading
        self.changes += 1
        if leading:
            self.since = time.time()
            log.info("this process (%s) leads now: it writes the history (lock %s)", self.token, self.key)
        if self.on_change is not None:
            self.on_change(leading, previous_renewal)

    def to_json(self) -> dict[str, Any]:
        """The ``leadership`` part of ``GET /api/health``."""
        return {"lock": mask_url(self.url), "key": self.key, "ttl_seconds": self.ttl_seconds, "me": self.token,
                "holder": self.holder, "since": self.since if self.leader else None, "changes": self.changes,
                "error": self.error}


def _text(value: bytes | str | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
