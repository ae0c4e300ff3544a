"""Redaction: what is shown, logged or stored of outside text loses its secrets, in one place.

Pure code: no I/O. Used for every URL the dashboard shows or logs (the broker,
``--broker-api``, webhooks), error messages that may quote a URL or a password,
and the inspect replies of workers, which carry their configuration.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

#: Query parameter names whose values are secrets.
_SECRET_QUERY = re.compile(r"token|key|secret|sig|pass|auth|credential|code", re.IGNORECASE)
#: A path segment that looks like a token: long, and made of letters, digits and - _ : .
_TOKEN_SEGMENT = re.compile(r"(?=[^/]*\d)(?=[^/]*[A-Za-z])[A-Za-z0-9_\-:.]{24,}")
#: A URL inside free text (an error message, a config value).
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
#: Shown instead of a secret inside a URL or text.
MASK = "****"
#: ``scheme://user:password@`` anywhere in text, even where the URL around it does not parse.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
#: Hosts whose webhook URLs carry their key in the path.
_WEBHOOK_HOSTS = ("hooks.slack.com", "discord.com", "discordapp.com", "webhook.office.com", "hooks.zapier.com")


def mask_url(url: str) -> str:
    """Return a URL (or each URL of a ``;`` list) safe to show and log: its secrets replaced by ``****``.

    Masked: a password; the whole user part of an http(s) URL (a Sentry DSN's key is its user
    name); query values whose names look secret (``token``, ``key``, ``sig``...); and path
    segments that look like tokens (24 or more letters and digits, as in Slack, Discord or
    Teams webhook URLs).
    """
    return ";".join(_mask_one(part) for part in url.split(";"))


def _mask_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port out of range, a broken IPv6 literal: mask by pattern instead
        parts, port = None, None
    if parts is None:
        return re.sub(r"(://[^/@\s]*?)(:[^@/\s]*)?@", lambda m: f"{m.group(1)}:{MASK}@" if m.group(2) else
                      f"://{MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if port is not None:
            host = f"{host}:{port}"
        if parts.scheme.lower() in ("http", "https"):
            netloc = f"{MASK}@{host}"
        elif parts.password is not None:
            netloc = f"{parts.username or ''}:{MASK}@{host}"
    if (parts.hostname or "").endswith(_WEBHOOK_HOSTS):
        segments = parts.path.split("/")
        head = "/".join(segments[:3] if segments[1:2] == ["api"] else segments[:2])  # /services, /api/webhooks
        path = head + ("/" + MASK if len(parts.path) > len(head) else "")
    else:
        path = _TOKEN_SEGMENT.sub(MASK, parts.path)
    query = "&".join(_mask_param(p) for p in parts.query.split("&")) if parts.query else ""
    if (netloc, path, query) == (parts.netloc, parts.path, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, path=path, query=query))


def _mask_param(param: str) -> str:
    name, sep, value = param.partition("=")
    return f"{name}={MASK}" if sep and value and _SECRET_QUERY.search(name) else param


def mask_text(text: str) -> str:
    """Return free text (an error message, a config value) with every URL in it masked by ``mask_url``."""
    return URL_IN_TEXT.sub(lambda m: mask_url(m.group()), text) if "://" in text else text


def mask_known(text: str, *urls: str) -> str:
    """Return ``text`` with the passwords of ``urls`` (raw and percent-decoded) and any URL in it masked.

    For error messages, which may quote a password outside a URL (``AUTH failed for 'secret'``).
    """
    for url in urls:
        for part in url.split(";"):
            try:
                password = urlsplit(part.strip()).password
            except ValueError:
                continue
            if password:
                for form in {password, unquote(password)}:
                    text = text.replace(form, MASK)
    return mask_text(_URL_PASSWORD.sub(rf"\1{MASK}@", text))


#: Words that make a key's value a secret (``broker_password``, ``sentryDsn``, ``SLACK_WEBHOOK_URL``).
SECRET_WORDS = frozenset(("password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "tokens",
                          "apikey", "credential", "credentials", "signature", "dsn", "webhook", "webhooks"))
#: Pairs of adjacent words that do too (``api_key``, ``privateKey``, ``aws_access_key_id``).
SECRET_PAIRS = frozenset((("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"),
                          ("auth", "key"), ("client", "secret"), ("session", "key")))
#: The words of a key: runs of letters split at case changes, and digits.
_KEY_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
#: Shown instead of the value of a secret key.
SECRET_VALUE_MASK = "********"


def is_secret_key(key: str) -> bool:
    """Return whether a key names a secret, by whole words: ``password`` yes, ``passive`` or ``keys_count`` no."""
    words = [w.lower() for w in _KEY_WORDS.findall(key)]
    return any(w in SECRET_WORDS for w in words) or any(pair in SECRET_PAIRS for pair in zip(words, words[1:]))


def mask_secrets(value: Any) -> Any:
    """Return ``value`` (an inspect reply) with secret keys' values masked and every URL in text masked."""
    if isinstance(value, dict):
        return {k: (SECRET_VALUE_MASK if isinstance(k, str) and v not in (None, "") and is_secret_key(k)
                    else mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return mask_text(value)
    return value
