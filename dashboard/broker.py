"""Queue depths read straight from the broker: one reader per transport, chosen by ``make_reader``.

This module owns where each transport keeps a queue's waiting messages: Redis
lists and their priority sub-lists, RabbitMQ passive declares (plus the
management API for unacknowledged counts), the filesystem transport's message
files. Every call blocks on network or disk I/O, so the caller runs ``sample``
off the event loop. Readers never raise on broker trouble: they return samples
that carry an ``error``, with passwords masked. No Flask, Socket.IO or eventlet here.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from bisect import bisect
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import amqp.exceptions
import kombu
import kombu.exceptions
import redis
import redis.sentinel
from kombu.utils.url import parse_ssl_cert_reqs, url_to_parts
from redis.backoff import NoBackoff
from redis.retry import Retry

from dashboard.redact import mask_known, mask_url

log = logging.getLogger(__name__)

#: Connect and read timeout of every broker socket and management API request, in seconds.
TIMEOUT_SECONDS = 2.0
#: kombu's Redis separator between a queue name and its priority step (``Channel.sep``).
DEFAULT_SEP = "\x06\x16"
#: kombu's Redis priority steps (``kombu.transport.redis.PRIORITY_STEPS``).
DEFAULT_PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)
#: Default ports when the URL names none.
REDIS_PORT, SENTINEL_PORT = 6379, 26379
#: What a RabbitMQ connection raises when the broker or the network fails (the rest are bugs).
AMQP_FAILURES = (amqp.exceptions.AMQPError, kombu.exceptions.OperationalError, OSError)


@dataclass(frozen=True)
class QueueSample:
    """What the broker says about one queue at one moment."""

    depth: int | None  # messages waiting (ready); None when unknown
    consumers: int | None  # consumers the broker knows of; None when the broker cannot say
    unacked: int | None = None  # delivered, not yet acknowledged (RabbitMQ management API only)
    error: str | None = None  # why depth is unknown


class QueueReader(Protocol):
    """Reads the depths of named queues; one caller at a time (the queue loop), every call blocking."""

    def sample(self, names: Sequence[str]) -> dict[str, QueueSample]:
        """Return a sample for every name, in one round trip where the broker allows; never raise."""
        ...

    def close(self) -> None:
        """Release the reader's connection; a later ``sample`` opens a new one."""
        ...


def make_reader(broker_url: str, transport_options: Mapping[str, Any] | None = None,
                broker_api_url: str | None = None,
                count_internal_error: Callable[[], None] = lambda: None) -> QueueReader:
    """Return the reader for the broker's transport; it connects lazily, on its first ``sample``.
    ``count_internal_error`` is told of each bug a reader logs and carries on from."""
    options = dict(transport_options or {})
    first = broker_url.split(";")[0].strip()
    scheme = first.split("://", 1)[0].lower() if "://" in first else first
    try:
        if scheme in ("redis", "rediss", "sentinel"):
            return RedisQueueReader(broker_url, options)
        if scheme in ("amqp", "amqps", "pyamqp"):
            return RabbitMQQueueReader(first, options, broker_api_url, count_internal_error)
        if scheme == "filesystem":
            return FilesystemQueueReader(options.get("data_folder_in", "data_in"))
    except ValueError as exc:
        return UnavailableQueueReader(mask_known(str(exc), broker_url))
    return UnavailableQueueReader(f"depth is not available for the {scheme!r} transport")


# -- Redis ------------------------------------------------------------------------

def redis_queue_keys(queue: str, sep: str = DEFAULT_SEP,
                     priority_steps: Sequence[int] = DEFAULT_PRIORITY_STEPS,
                     global_keyprefix: str = "") -> list[str]:
    """Return the Redis list keys that hold ``queue``'s messages, as kombu's ``_q_for_pri`` names them."""
    steps = list(priority_steps)
    keys: list[str] = []
    for step in steps:
        pri = steps[bisect(steps, step) - 1]  # kombu's Channel.priority()
        key = f"{global_keyprefix}{queue}{sep}{pri}" if pri else f"{global_keyprefix}{queue}"
        if key not in keys:
            keys.append(key)
    return keys


#: Sums the lengths of each queue's lists inside Redis (``ARGV[1]`` keys per queue), so that a sample of
#: 2,000 queues is one command per ``SCRIPT_QUEUES`` queues whose replies are one number per queue, instead
#: of an ``LLEN`` and its reply per list (four per queue with priorities): about 10 ms instead of 50-100.
#: A list's error (``WRONGTYPE``) stands in for its queue's number.
SUM_LENGTHS = """
local per = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS, per do
  local total = 0
  for j = i, i + per - 1 do
    local n = redis.pcall('LLEN', KEYS[j])
    if type(n) == 'table' then total = n break end
    total = total + n
  end
  out[#out + 1] = total
end
return out
"""
SUM_LENGTHS_SHA = hashlib.sha1(SUM_LENGTHS.encode()).hexdigest()
#: Queues summed by one script call (Redis runs each call alone: about 1 ms per 250 queues).
SCRIPT_QUEUES = 500
#: Immediate retries of a Redis command after a dropped connection (one closed while idle, say); none on a timeout.
CONNECTION_RETRIES = 1


def refuses_scripts(error: redis.ResponseError) -> bool:
    """Whether an error reply to the sampler's script says that this server or user takes no scripts (an ACL
    without them, a renamed or disabled command), for good; any other (BUSY, LOADING, NOSCRIPT after
    loading it) fails only that round, and the next tries the script again."""
    return isinstance(error, redis.exceptions.NoPermissionError) or "unknown command" in str(error).lower()


@dataclass
class _ReadPlan:
    """What a round of ``RedisQueueReader`` reads for ``names``, kept while the queues stay the same: each
    one's keys, the script calls that sum them (none when the queues differ in their number of keys: an
    ``LLEN`` a key then) and those calls packed for the wire. Building the keys of 2,000 queues and packing
    their 8,000 arguments took 6.6 ms of a round's 9.7 ms of CPU, in a thread that waits for the event
    loop's turn each time it needs Python (see ``sampler``)."""

    names: tuple[str, ...]
    keys: dict[str, list[str]]
    scripts: tuple[tuple[Any, ...], ...]
    packed: list[bytes] | None = None


class RedisQueueReader:
    """Every queue's depth (the sum of its lists) in one pipelined round trip over a single connection.

    The lengths are summed by a Lua script (``SUM_LENGTHS``); a server that refuses scripts (scripting
    disabled, an ACL without ``EVALSHA``) gets an ``LLEN`` per list instead, from then on.
    """

    def __init__(self, broker_url: str, options: Mapping[str, Any]) -> None:
        self._url = broker_url
        self._sep = str(options.get("sep", DEFAULT_SEP))
        self._steps = list(options.get("priority_steps", DEFAULT_PRIORITY_STEPS))
        self._prefix = str(options.get("global_keyprefix") or "")
        self._client = _redis_client(broker_url, options)
        self.scripting = True
        self._plan: _ReadPlan | None = None  # the last round's, reused while the queues stay the same

    def keys(self, queue: str) -> list[str]:
        """Return the keys read for ``queue``."""
        return redis_queue_keys(queue, self._sep, self._steps, self._prefix)

    def sample(self, names: Sequence[str]) -> dict[str, QueueSample]:
        plan = self._plan
        if plan is None or plan.names != tuple(names):
            plan = self._plan = self._plan_for(tuple(names))
        keys = plan.keys
        try:
            depths = None
            if self.scripting and plan.scripts:
                try:
                    depths = self._summed(plan)
                except redis.ResponseError as exc:  # loading the script failed
                    if not refuses_scripts(exc):
                        raise
                    self._refuse(exc)
            if depths is None:
                depths = self._listed(keys)
        except (redis.RedisError, OSError) as exc:
            self._client.connection_pool.disconnect()  # the next call starts on a fresh connection
            return _all_failed(names, _describe(exc, self._url, where=True))
        samples: dict[str, QueueSample] = {}
        for name, depth in zip(keys, depths):
            if isinstance(depth, Exception):  # e.g. WRONGTYPE: a key is not a list
                samples[name] = QueueSample(None, None, error=_describe(depth, self._url))
            else:
                samples[name] = QueueSample(depth, None)  # a missing key counts 0
        return samples

    def _plan_for(self, names: tuple[str, ...]) -> _ReadPlan:
        """The keys of ``names`` and the script calls that sum them, kept for the next rounds."""
        keys = {name: self.keys(name) for name in names}
        per = len(next(iter(keys.values()))) if keys else 0
        if not keys or any(len(k) != per for k in keys.values()):
            return _ReadPlan(names, keys, ())
        flat = [key for name_keys in keys.values() for key in name_keys]
        step = SCRIPT_QUEUES * per
        chunks = (flat[start:start + step] for start in range(0, len(flat), step))
        return _ReadPlan(names, keys, tuple(("EVALSHA", SUM_LENGTHS_SHA, len(chunk), *chunk, per) for chunk in chunks))

    def _summed(self, plan: _ReadPlan, loaded: bool = False) -> list[Any] | None:
        """Return each queue's depth (or its error) from the script; None when the server refuses scripts."""
        depths: list[Any] = []
        for reply in self._send(plan):
            if isinstance(reply, redis.exceptions.NoScriptError) and not loaded:  # a new or restarted server
                self._client.script_load(SUM_LENGTHS)
                return self._summed(plan, loaded=True)
            if isinstance(reply, redis.ResponseError):
                if not refuses_scripts(reply):
                    raise reply  # a passing error (BUSY, LOADING, a script cache flushed again): this round's
                self._refuse(reply)
                return None
            depths += reply
        return depths

    def _send(self, plan: _ReadPlan) -> list[Any]:
        """Send the plan's script calls in one write and return their replies in order, an error reply as its
        exception, as a pipeline does, but packed once for all rounds. A connection found closed (a broker
        restart, a server that closed it while idle) is tried again, ``CONNECTION_RETRIES`` times, as the client's
        own retry is."""
        pool = self._client.connection_pool
        for attempt in range(CONNECTION_RETRIES + 1):
            connection = pool.get_connection()
            try:
                if plan.packed is None:
                    plan.packed = connection.pack_commands(plan.scripts)
                connection.send_packed_command(plan.packed)
                replies: list[Any] = []
                for _ in plan.scripts:
                    try:
                        replies.append(connection.read_response())
                    except redis.ResponseError as exc:  # read whole: the next reply is where it should be
                        replies.append(exc)
                return replies
            except redis.ConnectionError:
                connection.disconnect()
                if attempt == CONNECTION_RETRIES:
                    raise
            except BaseException:
                connection.disconnect()  # a reply may be half read: the next round starts on a fresh connection
                raise
            finally:
                pool.release(connection)
        raise AssertionError("unreachable")

    def _refuse(self, exc: Exception) -> None:
        self.scripting = False
        log.info("the queue sampler reads %s with an LLEN per list: the server refused its script (%s)",
                 mask_url(self._url), _describe(exc, self._url))

    def _listed(self, keys: dict[str, list[str]]) -> list[Any]:
        """Return each queue's depth (or its error) from an ``LLEN`` per list, pipelined."""
        pipe = self._client.pipeline(transaction=False)
        for name_keys in keys.values():
            for key in name_keys:
                pipe.llen(key)
        results = iter(pipe.execute(raise_on_error=False))
        depths: list[Any] = []
        for name_keys in keys.values():
            lengths = [next(results) for _ in name_keys]
            depths.append(next((r for r in lengths if isinstance(r, Exception)), None) or sum(lengths))
        return depths

    def close(self) -> None:
        self._client.close()
        self._client.connection_pool.disconnect()


def _redis_client(broker_url: str, options: Mapping[str, Any]) -> redis.Redis:
    """Build a client of one connection from a kombu-style Redis or Sentinel URL."""
    urls = [u.strip() for u in broker_url.split(";") if u.strip()]
    parts = url_to_parts(urls[0])
    kwargs: dict[str, Any] = {
        "db": _db_number(parts.path),
        "username": parts.username,
        "password": parts.password,
        "socket_timeout": TIMEOUT_SECONDS,
        "socket_connect_timeout": TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), CONNECTION_RETRIES, supported_errors=(redis.ConnectionError,)),
    }
    if parts.scheme == "sentinel":
        master_name = options.get("master_name")
        if not master_name:
            raise ValueError("sentinel:// needs the transport option 'master_name'")
        sentinels = [(p.hostname or "127.0.0.1", p.port or SENTINEL_PORT) for p in map(url_to_parts, urls)]
        sentinel_kwargs = {"socket_timeout": TIMEOUT_SECONDS, "socket_connect_timeout": TIMEOUT_SECONDS,
                           **(options.get("sentinel_kwargs") or {})}
        sentinel = redis.sentinel.Sentinel(sentinels, min_other_sentinels=options.get("min_other_sentinels", 0),
                                           sentinel_kwargs=sentinel_kwargs)
        return sentinel.master_for(master_name, max_connections=1, **kwargs)
    if parts.scheme == "rediss":
        kwargs["connection_class"] = redis.SSLConnection
        for key, value in parts.query.items():
            if key == "ssl_cert_reqs":
                kwargs[key] = parse_ssl_cert_reqs(value)
            elif key == "ssl_check_hostname":
                kwargs[key] = value.lower() != "false"
            elif key in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
                kwargs[key] = value
    pool = redis.BlockingConnectionPool(max_connections=1, timeout=TIMEOUT_SECONDS,
                                        host=parts.hostname or "127.0.0.1", port=parts.port or REDIS_PORT,
                                        **kwargs)
    return redis.Redis(connection_pool=pool)


def _db_number(path: str | None) -> int:
    """Read the database number from a URL path as kombu does ('' and '/' mean 0)."""
    path = (path or "").strip("/")
    if not path:
        return 0
    try:
        return int(path)
    except ValueError:
        raise ValueError(f"the Redis database in the broker URL must be a number, got {path!r}") from None


# -- RabbitMQ -----------------------------------------------------------------------

class RabbitMQQueueReader:
    """Passively declare each queue on one kept-open connection; ask the management API for unacked."""

    def __init__(self, broker_url: str, options: Mapping[str, Any], api_url: str | None,
                 count_internal_error: Callable[[], None] = lambda: None) -> None:
        url_to_parts(broker_url).port  # raises ValueError on a port that is not a number up to 65535
        self._url = broker_url
        self._count_internal_error = count_internal_error  # for ``/api/health``'s ``errors.internal``
        self._options = {"read_timeout": TIMEOUT_SECONDS, "write_timeout": TIMEOUT_SECONDS, **options}
        self._connection: kombu.Connection | None = None
        self._channel: Any = None
        self._api = _ManagementAPI(api_url, broker_url) if api_url else None

    def sample(self, names: Sequence[str]) -> dict[str, QueueSample]:
        samples: dict[str, QueueSample] = {}
        for index, name in enumerate(names):
            try:
                channel = self._open_channel()
            except AMQP_FAILURES as exc:
                self._drop_connection()  # e.g. refused, bad login, unknown vhost: the next call tries again
                samples.update(_all_failed(names[index:], _describe(exc, self._url, where=True)))
                break
            try:
                ok = channel.queue_declare(queue=name, passive=True)
            except amqp.exceptions.NotFound:  # the server closed the channel; the queue holds nothing
                self._channel = None
                samples[name] = QueueSample(0, 0)
                continue
            except amqp.exceptions.ChannelError as exc:  # e.g. an exclusive queue of another connection
                self._channel = None
                samples[name] = QueueSample(None, None, error=_describe(exc, self._url))
                continue
            except AMQP_FAILURES as exc:
                self._drop_connection()  # the next call reconnects
                samples.update(_all_failed(names[index:], _describe(exc, self._url, where=True)))
                break
            samples[name] = QueueSample(ok.message_count, ok.consumer_count)
        if self._api is not None:
            try:
                for name, found in samples.items():
                    if found.error is None:
                        samples[name] = QueueSample(found.depth, found.consumers, self._api.unacked(name))
            except _Unreachable:  # one timeout per sample, not one per queue; unacked stays None
                pass
        return samples

    def close(self) -> None:
        self._drop_connection()

    def _open_channel(self) -> Any:
        if self._connection is None:
            connection = kombu.Connection(self._url, connect_timeout=TIMEOUT_SECONDS,
                                          transport_options=self._options)
            try:
                connection.ensure_connection(max_retries=0)  # one attempt, no sleeping between retries
            except BaseException:
                connection.release()
                raise
            self._connection, self._channel = connection, None
        if self._channel is None:
            self._channel = self._connection.channel()  # connects first when not connected
        return self._channel

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except AMQP_FAILURES as exc:  # a broken connection may fail to close; it is gone either way
                log.debug("closing the RabbitMQ connection failed: %s", _describe(exc, self._url))
            except Exception:  # a bug: logged, and the connection is dropped all the same
                self._count_internal_error()
                log.exception("closing the RabbitMQ connection failed")


class _Unreachable(Exception):
    """The management API did not answer at all (refused, timed out)."""


class _ManagementAPI:
    """GET ``/api/queues/<vhost>/<name>`` of the RabbitMQ management plugin."""

    def __init__(self, api_url: str, broker_url: str) -> None:
        try:
            api = urlsplit(api_url)
            port = api.port
        except ValueError as exc:
            raise ValueError(f"broker API URL {mask_url(api_url)!r}: {exc}") from None
        if api.scheme not in ("http", "https"):
            raise ValueError(f"broker API URL {mask_url(api_url)!r}: expected http:// or https://")
        broker = url_to_parts(broker_url)
        user = unquote(api.username) if api.username else (broker.username or "guest")
        password = unquote(api.password) if api.password is not None else (broker.password or "guest")
        host = api.hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host  # IPv6
        netloc = f"{host}:{port}" if port else host
        path = api.path.rstrip("/")
        path = path if path.endswith("/api") else path + "/api"
        self._base = urlunsplit((api.scheme, netloc, path, "", ""))
        vhost = broker.path if broker.path is not None else "/"  # kombu: 'amqp://h//' and 'amqp://h/' are '/'
        self._vhost = quote(vhost or "/", safe="")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        # The API sits next to the broker: no proxies from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def unacked(self, name: str) -> int | None:
        """Return the queue's ``messages_unacknowledged``, or None when the API cannot tell."""
        url = f"{self._base}/queues/{self._vhost}/{quote(name, safe='')}"
        request = urllib.request.Request(url, headers=self._headers)
        try:
            with self._opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # it answered: e.g. 404 for a queue that does not exist
            exc.close()
            return None
        except (urllib.error.URLError, OSError) as exc:
            raise _Unreachable() from exc
        except ValueError:  # not JSON
            return None
        value = body.get("messages_unacknowledged") if isinstance(body, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


# -- filesystem and the rest ------------------------------------------------------

class FilesystemQueueReader:
    """Count the message files of each queue in kombu's ``data_folder_in``."""

    def __init__(self, folder: str) -> None:
        self._folder = folder

    def sample(self, names: Sequence[str]) -> dict[str, QueueSample]:
        try:
            files = os.listdir(self._folder)
        except OSError as exc:
            return _all_failed(names, f"cannot list the filesystem broker folder: {exc}")
        # kombu names a message '<ms>_<uuid>.<queue>.msg' and matches filename.partition('.')[2].
        # A file still being written is already there under its final name: it counts.
        counts = Counter(f.partition(".")[2] for f in files)
        return {name: QueueSample(counts[f"{name}.msg"], None) for name in names}

    def close(self) -> None:
        pass


class UnavailableQueueReader:
    """Report the same error for every queue: a transport whose depths cannot be read."""

    def __init__(self, error: str) -> None:
        self.error = error

    def sample(self, names: Sequence[str]) -> dict[str, QueueSample]:
        return _all_failed(names, self.error)

    def close(self) -> None:
        pass


def _all_failed(names: Sequence[str], error: str) -> dict[str, QueueSample]:
    return {name: QueueSample(None, None, error=error) for name in names}


def _describe(exc: BaseException, url: str, where: bool = False) -> str:
    """Describe an exception for the page (``where``: prefixed by the masked broker URL), without passwords."""
    text = mask_known(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, url)
    return f"{mask_url(url)}: {text}" if where else text
