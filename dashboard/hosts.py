"""Which Host names and Origins the dashboard answers, against DNS rebinding and other sites' pages.

A page of any web site can point a name it controls at 127.0.0.1 (DNS
rebinding); the browser then sends that name as ``Host`` and treats the
dashboard as that site's own origin. So a request whose ``Host`` is not one
of the dashboard's own names is refused before anything reads it (``421``),
the live socket and ``POST`` requests must come from a page of the
dashboard's own origin, and that origin's host must be one of those names.

Accepted hosts: IP address literals (a page cannot be served from an address
it does not own, so they cannot be rebound), ``localhost`` and ``*.localhost``,
the bound ``--address``, this machine's own name, and ``--allowed-hosts``
(``name``, ``*.domain`` for its subdomains, ``*`` for any).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import socket
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def split_host(host: str) -> str:
    """Return the host name of a ``Host`` header or URL netloc, without port, brackets or final dot."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:5555
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Decides which ``Host`` headers and ``Origin`` headers are the dashboard's own."""

    def __init__(self, address: str, allowed_hosts: Iterable[str], machine_names: Iterable[str] = ()) -> None:
        self.any_host = "*" in allowed_hosts
        names = {split_host(address), *(split_host(n) for n in machine_names if n)}
        self.names = {n for n in names if n} | {p for p in allowed_hosts if not p.startswith("*")}
        self.domains = tuple(p[1:] for p in allowed_hosts if p.startswith("*."))  # ".example.com"

    @classmethod
    def for_this_machine(cls, address: str, allowed_hosts: Iterable[str]) -> "HostPolicy":
        """Build the policy with this machine's own host name among the accepted ones."""
        return cls(address, tuple(allowed_hosts), (socket.gethostname(),))

    def allows_host(self, host_header: str | None) -> bool:
        """Return whether a request with this ``Host`` header may be served (no header: scripts, yes)."""
        if not host_header or self.any_host:
            return True
        host = split_host(host_header)
        return (_is_ip(host) or host == "localhost" or host.endswith(".localhost") or host in self.names
                or host.endswith(self.domains))

    def allows_origin(self, origin: str | None, host_header: str | None) -> bool:
        """Return whether a page of ``origin`` may use the live socket and POST: the dashboard's own origin only."""
        if origin is None:
            return True  # not a browser page: a script, which no other site can make send this
        try:
            netloc = urlsplit(origin).netloc
        except ValueError:
            return False
        return bool(netloc) and netloc.lower() == (host_header or "").lower() and self.allows_host(netloc)


class HostGuard:
    """WSGI middleware in front of everything (pages, API, Socket.IO): refuses foreign hosts and origins."""

    def __init__(self, app: WSGIApp, policy: HostPolicy, socket_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.policy = policy
        self.socket_origins = frozenset(socket_origins)  # other sites' pages allowed on the live socket only

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST")
        if not self.policy.allows_host(host):
            return _refuse(start_response, "421 Misdirected Request",
                           f"this dashboard does not answer to the host name {split_host(host or '')!r}; "
                           "start it with --allowed-hosts NAME to serve it under that name")
        origin = environ.get("HTTP_ORIGIN")
        if environ.get("REQUEST_METHOD") == "POST" and not (
                (origin or "").lower() in self.socket_origins and environ.get("PATH_INFO", "").startswith("/socket.io/")):
            if not self.policy.allows_origin(origin, host):
                return _refuse(start_response, "403 Forbidden", f"cross-origin request from {origin} refused")
            site = environ.get("HTTP_SEC_FETCH_SITE")  # what the browser says, beside Origin (a script sends none)
            if site not in (None, "same-origin", "none"):
                return _refuse(start_response, "403 Forbidden", f"request from a {site} page refused")
        return self.app(environ, start_response)


def _refuse(start_response: StartResponse, status: str, message: str) -> list[bytes]:
    body = json.dumps({"error": message}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Connection", "close")])
    return [body]
