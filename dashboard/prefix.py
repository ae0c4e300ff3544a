"""``--url-prefix /celery``: the whole dashboard (pages, API, static files, Socket.IO) under one path.

``PrefixMiddleware`` moves the prefix from ``PATH_INFO`` to ``SCRIPT_NAME``, so Flask's routes, its
``url_for`` and Engine.IO's ``/socket.io`` see the paths they know, and ``request.script_root`` (the
pages' ``base``) is the prefix. ``/celery`` and ``/celery/`` both serve the overview. A request
outside the prefix gets a redirect (``/``) or a 404 that says where the dashboard is. A proxy that
strips the prefix itself and says so in ``X-Forwarded-Prefix`` (read under ``--behind-proxy``) is
served as well.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PrefixError(ValueError):
    """A ``--url-prefix`` that is not a plain path."""


def normalize_prefix(raw: str) -> str:
    """``/celery`` from ``/celery``, ``/celery/`` or ``celery``; "" from "/" or ""."""
    prefix = raw.strip().strip("/")
    if not prefix:
        return ""
    if any(c in prefix for c in "?#%\\ ") or "//" in prefix or any(ord(c) < 33 for c in prefix) \
            or any(part in (".", "..") for part in prefix.split("/")):
        raise PrefixError(f"--url-prefix: expected a plain path such as /celery, got {raw!r}")
    return "/" + prefix


class PrefixMiddleware:
    """Serve ``app`` under ``prefix``; see the module docstring."""

    def __init__(self, app: WSGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or ""
        prefix = self.prefix
        if path == prefix or path.startswith(prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
            environ["PATH_INFO"] = path[len(prefix):] or "/"
            return self.app(environ, start_response)
        if environ.get("SCRIPT_NAME", "").rstrip("/") == prefix:  # a proxy stripped it (X-Forwarded-Prefix)
            return self.app(environ, start_response)
        if path in ("", "/"):
            start_response("302 Found", [("Location", prefix + "/"), ("Content-Length", "0")])
            return [b""]
        body = f"Not found: the dashboard is served under {prefix}/\n".encode()
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", str(len(body)))])
        return [body]
