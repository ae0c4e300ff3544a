"""The dashboard's log output: one line per record, whatever outside text a message quotes.

Hostnames, queue names, task names and error messages come from the cluster;
a newline or an escape sequence in one of them could forge log lines or
rewrite a terminal. Every control character in a message is written as its
Python escape (``\\n``, ``\\x1b``); tracebacks, which are the dashboard's own,
keep their lines.
"""
from __future__ import annotations

import _thread
import logging
import re

#: Characters escaped in messages: C0 and C1 controls (tab aside), DEL, and Unicode's line separators.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
#: The format of every line.
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def escape_controls(text: str) -> str:
    """Return ``text`` with control characters written as escapes, so it stays on one line."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


class OneLineFormatter(logging.Formatter):
    """A formatter whose messages cannot span lines or carry terminal escapes."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's naming)
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


class NativeLockHandler(logging.StreamHandler):
    """A stream handler whose lock blocks the calling OS thread. Records come from the event loop's thread and
    from native threads (the history's writes, the queue sampler's reads); eventlet's monkey-patching turns
    ``threading``'s locks green, and a green lock contended between two native threads never wakes its waiter:
    every later record would wait behind it. ``_thread.RLock``, the C lock, is left alone by that patching
    (nothing in ``emit`` yields to another green thread while holding it)."""

    def createLock(self) -> None:  # noqa: N802 (logging's naming)
        self.lock = _thread.RLock()


def configure(level: str) -> None:
    """Send the root logger's records to stderr, one line each, at ``level``."""
    handler = NativeLockHandler()
    handler.setFormatter(OneLineFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
