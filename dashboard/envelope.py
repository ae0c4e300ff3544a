"""Decoding of one event message's body, the same for both readers of the event stream.

Pure code: no I/O and no clocks. Everything in a message comes from outside
the dashboard, so this is where a body becomes Python values or is refused
with a reason: only JSON is accepted (nothing is unpickled), decompression is
capped at ``max_bytes`` of output (a small bomb cannot grow into gigabytes),
nesting is capped, and what JSON allows but the rest of the dashboard cannot
keep (``NaN``, ``Infinity``, lone surrogates in strings) is repaired here, so
that the store and every JSON output get only valid values.

orjson decodes the common case; bodies it refuses for one of those reasons,
and bodies with kombu's JSON extension types (``__type__``), go through
kombu's own decoder, then through ``repair``.
"""
from __future__ import annotations

import bz2
import lzma
import math
import zlib
from typing import Any

import orjson
from kombu.utils.json import loads as kombu_loads

#: The only content type accepted: events are JSON (a pickle is never deserialized).
CONTENT_TYPE = "application/json"
#: Content encodings that mean the body bytes are UTF-8 already.
_UTF8 = frozenset(("utf-8", "utf8", "binary", "ascii-8bit"))
#: Deepest nesting of lists and objects accepted in an event body.
MAX_DEPTH = 64
#: Marker of kombu's JSON extension types (datetime, UUID, Decimal, bytes), which need kombu's decoder.
_KOMBU_TYPE_MARKER = b'"__type__"'


class UndecodableMessage(ValueError):
    """A message whose body cannot be used as an event; the message says why."""


def _zlib(data: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj()
    out = decompressor.decompress(data, limit + 1)
    return out + (b"?" if decompressor.unconsumed_tail else b"")


def _bz2(data: bytes, limit: int) -> bytes:
    return bz2.BZ2Decompressor().decompress(data, max_length=limit + 1)


def _lzma(data: bytes, limit: int) -> bytes:
    return lzma.LZMADecompressor().decompress(data, max_length=limit + 1)


#: kombu's compression content types and aliases -> a decompressor that stops past ``limit`` bytes.
_DECOMPRESSORS = {
    "application/x-gzip": _zlib, "gzip": _zlib, "zlib": _zlib,
    "application/x-bz2": _bz2, "bzip2": _bz2, "bzip": _bz2,
    "application/x-lzma": _lzma, "lzma": _lzma, "xz": _lzma,
}


def decompress(data: bytes, compression: Any, max_bytes: int) -> bytes:
    """Undo kombu's ``compression`` header, refusing output larger than ``max_bytes``."""
    if not isinstance(compression, str):
        raise UndecodableMessage("compression header is not a string")
    decompressor = _DECOMPRESSORS.get(compression.lower())
    if decompressor is None:
        raise UndecodableMessage(f"compression {compression[:40]!r} is not supported")
    try:
        out = decompressor(data, max_bytes)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise UndecodableMessage(f"compressed body cannot be decompressed ({type(exc).__name__})") from None
    if len(out) > max_bytes:
        raise UndecodableMessage(f"decompressed body is over --max-event-bytes ({max_bytes})")
    return out


def decode_body(body: Any, content_type: Any, content_encoding: Any, compression: Any,
                max_bytes: int) -> Any:
    """Return the event (a dict, or a list of dicts) in a message body, or raise UndecodableMessage.

    ``body`` is the message body as the transport delivered it (base64 already undone).
    """
    if content_type != CONTENT_TYPE:
        raise UndecodableMessage(f"content type {str(content_type)[:40]!r} is not accepted")
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    elif not isinstance(body, (bytes, bytearray, memoryview)):
        raise UndecodableMessage(f"body is a {type(body).__name__}, not text")
    body = bytes(body)
    if compression:
        body = decompress(body, compression, max_bytes)
    if len(body) > max_bytes:
        raise UndecodableMessage(f"body of {len(body)} bytes is over --max-event-bytes ({max_bytes})")
    if content_encoding is not None and not isinstance(content_encoding, str):
        raise UndecodableMessage("content-encoding is not a string")
    if content_encoding and content_encoding.lower() not in _UTF8:
        try:
            body = body.decode(content_encoding).encode("utf-8", "surrogatepass")
        except (LookupError, UnicodeError) as exc:
            raise UndecodableMessage(f"body is not {content_encoding[:40]!r} text ({type(exc).__name__})") from None
    return loads(body)


def loads(body: bytes) -> Any:
    """Decode JSON event text: orjson when it can, else kombu's decoder followed by ``repair``."""
    if _KOMBU_TYPE_MARKER not in body:
        try:
            return orjson.loads(body)  # valid UTF-8, finite numbers, at most 1,024 levels deep
        except orjson.JSONDecodeError as exc:
            if "depth" in str(exc):
                raise UndecodableMessage(f"body is nested more than {MAX_DEPTH} levels deep") from None
            # NaN, Infinity or an escaped lone surrogate, which only the standard decoder takes
    try:
        value = kombu_loads(body.decode("utf-8", "surrogatepass"))
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeError, RecursionError) as exc:
        raise UndecodableMessage(f"event body cannot be decoded (not JSON: {type(exc).__name__})") from None
    return repair(value)


def repair(value: Any) -> Any:
    """Return ``value`` with non-finite floats as None and lone surrogates replaced by U+FFFD.

    Anything JSON cannot carry (a datetime or UUID from kombu's extension types) is kept for
    the event checks to turn into text. Raise UndecodableMessage when nested too deeply.
    """
    return _repair(value, 0)


def _repair(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple, dict)):
        if depth >= MAX_DEPTH:
            raise UndecodableMessage(f"body is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            return {repair_text(k) if isinstance(k, str) else k: _repair(v, depth + 1) for k, v in value.items()}
        return [_repair(v, depth + 1) for v in value]
    return value


def repair_text(text: str) -> str:
    """Return ``text`` with lone surrogates (which UTF-8 cannot encode) replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
