"""The dashboard's JSON output: strict and valid everywhere (REST, Socket.IO, the page bootstrap).

Strict means what any JSON parser accepts: no ``NaN`` or ``Infinity`` (orjson
writes non-finite floats as ``null``), only valid UTF-8 (lone surrogates
become U+FFFD), and integers a client can read (beyond 64 bits they are
written as text). Values JSON has no type for are written as their ``str``.
Pure code: no I/O.
"""
from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import JSONProvider

from .envelope import repair_text

_OPTIONS = orjson.OPT_NON_STR_KEYS
#: Deepest nesting written; deeper values are replaced by a marker (orjson stops at 255).
MAX_DEPTH = 128
#: Written in place of a value nested deeper than MAX_DEPTH.
TOO_DEEP = "…[nested too deeply]"
_INT64 = 1 << 63


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps(value: Any, **_options: Any) -> str:
    """Return ``value`` as strict JSON text; keyword options of ``json.dumps`` are accepted and ignored."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:  # a lone surrogate, an integer beyond 64 bits, deep nesting
        return orjson.dumps(_clean(value, 0), default=_default, option=_OPTIONS).decode()


def loads(text: str | bytes, **_options: Any) -> Any:
    """Parse JSON text (keyword options of ``json.loads`` are accepted and ignored)."""
    return orjson.loads(text)


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if depth >= MAX_DEPTH:
            return TOO_DEEP
        if isinstance(value, dict):
            return {(repair_text(k) if isinstance(k, str) else str(k)): _clean(v, depth + 1) for k, v in value.items()}
        return [_clean(v, depth + 1) for v in value]
    return _clean(_default(value), depth)


class StrictJSONProvider(JSONProvider):
    """Flask's JSON for ``jsonify`` and the templates' ``tojson``: ``dumps`` above."""

    mimetype = "application/json"

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return dumps(obj)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)
