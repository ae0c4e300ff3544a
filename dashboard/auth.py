"""Users, API tokens and their roles, from ``--auth-file`` (TOML), and checking credentials.

The file::

    secret = "..."                      # signs session cookies and CSRF tokens; written once

    [users.alice]
    role = "admin"                      # viewer, operator or admin
    password = "scrypt$16384$8$1$<salt>$<hash>"

    [tokens.deploy-bot]
    role = "operator"
    token = "sha256$<hash>"

Passwords are stored as ``hashlib.scrypt`` hashes. A token is 32 random bytes, so its
SHA-256 cannot be reversed by guessing and needs no stretching; that keeps a token check
cheap on every API request. Neither is ever stored or logged in clear. The file is read
again whenever it changes, so users and tokens added or removed take effect at once.

Pure apart from reading and writing that one file.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

#: Roles, weakest first: each may do what the ones before it may.
ROLES = ("viewer", "operator", "admin")
#: scrypt's cost parameters (about 50 ms and 16 MiB per check on a 2020s core).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 16384, 8, 1
#: Names of users and tokens: what a shell and a log line carry safely.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
#: The prefix of every token this dashboard makes (so a leaked one is recognisable in a scanner).
TOKEN_PREFIX = "cdt_"


class AuthFileError(ValueError):
    """The auth file cannot be read or has an entry the dashboard cannot use; the message says which."""


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a user (logged in, or with HTTP Basic) or a token."""

    name: str
    role: str
    kind: str  # "user" or "token"

    def may(self, role: str) -> bool:
        """Whether this principal's role is ``role`` or stronger."""
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class AuthFile:
    """The users and tokens of one file, read again when it changes."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self.secret = b""
        self.users: dict[str, dict[str, str]] = {}
        self.tokens: dict[str, dict[str, str]] = {}
        self._by_token_hash: dict[str, str] = {}
        self.on_change: Callable[[dict[str, list[str]]], None] | None = None  # told of a change noticed later
        self.reload(force=True)

    # -- reading ----------------------------------------------------------------------------------
    def reload(self, force: bool = False) -> bool:
        """Read the file again when it changed (or ``force``); return whether it was read."""
        try:
            stat = self.path.stat()
        except OSError as exc:
            if force:
                raise AuthFileError(f"--auth-file {self.path}: cannot read it ({exc.strerror})") from None
            return False  # removed or replaced at this instant: keep what was read
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if not force and stamp == self._stamp:
                return False
            try:
                data = tomllib.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                if force:
                    raise AuthFileError(f"--auth-file {self.path}: {exc}") from None
                return False  # half written: the next change is read
            users, tokens, secret = _parse(data, self.path)
            before = {f"user:{n}:{e['role']}" for n, e in self.users.items()} | \
                {f"token:{n}:{e['role']}" for n, e in self.tokens.items()}
            self.users, self.tokens, self.secret = users, tokens, secret
            self._by_token_hash = {entry["token"]: name for name, entry in tokens.items()}
            self._stamp = stamp
        after = {f"user:{n}:{e['role']}" for n, e in users.items()} | {f"token:{n}:{e['role']}" for n, e in tokens.items()}
        if not force and self.on_change is not None:
            self.on_change({"added": sorted(after - before), "removed": sorted(before - after)})
        return True

    def user(self, name: str, password: str) -> Principal | None:
        """The user ``name`` when ``password`` is theirs, else None."""
        self.reload()
        entry = self.users.get(name)
        if entry is None:
            check_password(password, hash_password("x"))  # the same work for an unknown name: no timing hint
            return None
        return Principal(name, entry["role"], "user") if check_password(password, entry["password"]) else None

    def known_user(self, name: str) -> Principal | None:
        """The user ``name`` as the file says now (a removed user's session ends at once)."""
        self.reload()
        entry = self.users.get(name)
        return Principal(name, entry["role"], "user") if entry else None

    def token(self, token: str) -> Principal | None:
        """The token's principal, or None."""
        self.reload()
        name = self._by_token_hash.get(hash_token(token))
        return Principal(name, self.tokens[name]["role"], "token") if name else None

    # -- writing (the ``auth`` commands) ------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str) -> None:
        _check_name(name)
        _check_role(role)
        if len(password) < 8:
            raise AuthFileError("the password must have at least 8 characters")
        self.users[name] = {"role": role, "password": hash_password(password)}
        self.write()

    def add_token(self, name: str, role: str) -> str:
        _check_name(name)
        _check_role(role)
        token = new_token()
        self.tokens[name] = {"role": role, "token": hash_token(token)}
        self.write()
        return token

    def remove(self, name: str) -> bool:
        found = self.users.pop(name, None) is not None
        found = self.tokens.pop(name, None) is not None or found
        if found:
            self.write()
        return found

    def write(self) -> None:
        """Write the file (0600, atomically) with its secret, users and tokens."""
        lines = [f'secret = "{_b64(self.secret)}"', ""]
        for table, entries in (("users", self.users), ("tokens", self.tokens)):
            for name, entry in sorted(entries.items()):
                lines.append(f'[{table}."{name}"]')
                lines += [f'{key} = "{value}"' for key, value in entry.items()]
                lines.append("")
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write("\n".join(lines))
        os.replace(temporary, self.path)
        self.reload(force=True)

    @classmethod
    def create_or_open(cls, path: str) -> "AuthFile":
        """Open the file, or make a new one with a fresh secret (for the ``auth`` commands)."""
        if not Path(path).exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                out.write(f'secret = "{_b64(os.urandom(32))}"\n')
        return cls(path)


def _parse(data: dict[str, Any], path: Path) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], bytes]:
    def fail(message: str) -> AuthFileError:
        return AuthFileError(f"--auth-file {path}: {message}")
    try:
        secret = base64.b64decode(str(data.get("secret", "")), validate=True)
    except ValueError:
        raise fail("secret is not base64") from None
    if len(secret) < 16:
        raise fail("secret is missing or shorter than 16 bytes (the auth commands write one)")
    found: list[dict[str, dict[str, str]]] = []
    for table, key in (("users", "password"), ("tokens", "token")):
        entries = data.get(table, {})
        if not isinstance(entries, dict):
            raise fail(f"[{table}] must be a table")
        parsed = {}
        for name, entry in entries.items():
            if not isinstance(entry, dict) or not NAME.match(str(name)):
                raise fail(f"{table}.{name}: not a valid entry")
            role, secret_hash = entry.get("role"), entry.get(key)
            if role not in ROLES:
                raise fail(f"{table}.{name}: role must be one of {', '.join(ROLES)}, got {role!r}")
            if not isinstance(secret_hash, str) or not secret_hash.startswith(("scrypt$", "sha256$")):
                raise fail(f"{table}.{name}: {key} must be a hash written by the auth commands")
            parsed[str(name)] = {"role": role, key: secret_hash}
        found.append(parsed)
    return found[0], found[1], secret


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise AuthFileError(f"name: 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit; "
                            f"got {name!r}")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AuthFileError(f"--role: expected one of {', '.join(ROLES)}, got {role!r}")
