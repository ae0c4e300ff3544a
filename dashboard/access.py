"""Who a request comes from and what they may do: sessions, tokens, CSRF and the login rate limit.

Without ``--auth-file`` every request is the local operator (the dashboard then serves on
a loopback address only, or says it has no login). With it:

- a browser logs in at ``/login`` and gets a signed session cookie (``HttpOnly``,
  ``SameSite=Lax``, ``Secure`` over HTTPS, expiring after ``--session-hours``), which names
  the user only: the role is read from the file on every request, so removing a user or
  changing a role takes effect at once;
- a script sends ``Authorization: Bearer TOKEN``, or HTTP Basic with a user's password;
- every state-changing request that a session cookie authenticates must carry the session's
  CSRF token in ``X-CSRF-Token`` (the pages' modules send it); a token or Basic request
  carries no ambient credential, so it needs none;
- failed logins are limited per address and per user.

Pure apart from the clock and the auth file.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping

from itsdangerous import BadSignature, URLSafeTimedSerializer

from .auth import AuthFile, Principal

#: The session cookie's name.
COOKIE = "dashboard_session"
#: Failed logins allowed per user, and per address, in ``FAILURE_WINDOW_SECONDS``.
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 20
FAILURE_WINDOW_SECONDS = 300.0
#: The principal of every request when no auth file is configured.
LOCAL = Principal("local", "admin", "none")


@dataclass(frozen=True)
class Identity:
    """A request's principal and, for a session, its CSRF token (None otherwise)."""

    principal: Principal
    csrf: str | None


class LoginLimiter:
    """Counts failed logins per user and per address over a sliding window."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def blocked_for(self, user: str, address: str) -> float:
        """Seconds until another attempt for ``user`` from ``address`` is allowed (0: now)."""
        now = self.clock()
        with self._lock:
            waits = [self._wait(f"user:{user}", MAX_FAILURES_PER_USER, now),
                     self._wait(f"address:{address}", MAX_FAILURES_PER_ADDRESS, now)]
        return max(waits)

    def failed(self, user: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"user:{user}", f"address:{address}"):
                self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > 10_000:  # forget the oldest keys rather than grow without bound
                for key in list(self._failures)[:1_000]:
                    del self._failures[key]

    def _wait(self, key: str, limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and now - times[0] > FAILURE_WINDOW_SECONDS:
            times.popleft()
        if len(times) < limit:
            return 0.0
        return FAILURE_WINDOW_SECONDS - (now - times[0])


class Access:
    """Authenticates requests against an auth file (or lets every request in when there is none)."""

    def __init__(self, auth: AuthFile | None, session_hours: float) -> None:
        self.auth = auth
        self.session_seconds = session_hours * 3600
        self.limiter = LoginLimiter()

    @property
    def enabled(self) -> bool:
        return self.auth is not None

    def _serializer(self) -> URLSafeTimedSerializer:
        assert self.auth is not None
        return URLSafeTimedSerializer(self.auth.secret, salt="dashboard-session")

    # -- sessions ---------------------------------------------------------------------------------
    def new_session(self, principal: Principal) -> str:
        """The cookie value of a new session for ``principal`` (a user)."""
        return self._serializer().dumps({"u": principal.name, "n": secrets.token_urlsafe(16)})

    def csrf_for(self, nonce: str) -> str:
        assert self.auth is not None
        return hmac.new(self.auth.secret, f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()

    def identify(self, headers: Mapping[str, str] | Any, cookies: Mapping[str, str], address: str) -> Identity | None:
        """Who the request comes from, or None when it carries no valid credentials."""
        if self.auth is None:
            return Identity(LOCAL, None)
        header = headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            principal = self.auth.token(value.strip())
            return Identity(principal, None) if principal else None
        if scheme.lower() == "basic" and value.strip():
            try:
                name, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            outcome = self.login(name, password, address)
            return Identity(outcome, None) if isinstance(outcome, Principal) else None
        cookie = cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            data = self._serializer().loads(cookie, max_age=int(self.session_seconds))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("n"), str):
            return None
        user = self.auth.known_user(data["u"])
        return Identity(user, self.csrf_for(data["n"])) if user else None

    def login(self, name: str, password: str, address: str) -> Principal | float | None:
        """The user when the password is theirs; the seconds to wait when they (or this address)
        failed too often; None for wrong credentials (counted)."""
        assert self.auth is not None
        wait = self.limiter.blocked_for(name, address)
        if wait > 0:
            return wait
        principal = self.auth.user(name, password)
        if principal is None:
            self.limiter.failed(name, address)
        return principal
