"""Schedules kept outside the app: django-celery-beat's tables (``--beat-db``) and celery-redbeat's
Redis keys (``--redbeat-url``), read-only, into ``periodic.Entry`` objects built on Celery's own
schedule classes. Neither package is needed: the tables and keys are read directly.
"""
from __future__ import annotations

import importlib
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab, schedule, solar

from .periodic import Entry, next_after, unreadable
from .redact import mask_known, mask_url

#: Seconds a schedule database or Redis may take to answer.
CONNECT_TIMEOUT_SECONDS = 5
#: django-celery-beat's tables, as its Django models name them.
BEAT_DB_QUERY = """
SELECT t.name, t.task, t.args, t.kwargs, t.enabled,
       i.every, i.period,
       c.minute, c.hour, c.day_of_week, c.day_of_month, c.month_of_year, c.timezone,
       s.event, s.latitude, s.longitude,
       k.clocked_time
FROM django_celery_beat_periodictask t
LEFT JOIN django_celery_beat_intervalschedule i ON i.id = t.interval_id
LEFT JOIN django_celery_beat_crontabschedule c ON c.id = t.crontab_id
LEFT JOIN django_celery_beat_solarschedule s ON s.id = t.solar_id
LEFT JOIN django_celery_beat_clockedschedule k ON k.id = t.clocked_id
ORDER BY t.name
"""
DJANGO_PERIODS = ("days", "hours", "minutes", "seconds", "microseconds")
SOURCE_DJANGO = "django-celery-beat"
SOURCE_REDBEAT = "redbeat"


class SourceError(Exception):
    """A schedule that cannot be read; the message says which and why, secrets masked."""


class ZonedCrontab(crontab):
    """A crontab evaluated in its own timezone (django-celery-beat's ``CrontabSchedule.timezone``)."""

    def __init__(self, zone: Any, **fields: Any) -> None:
        super().__init__(**fields)
        self.zone = zone

    @property
    def tz(self) -> Any:
        return self.zone


class Once:
    """django-celery-beat's clocked schedule: one run at a fixed time."""

    def __init__(self, at: datetime) -> None:
        self.at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)

    def __repr__(self) -> str:
        return f"once at {self.at.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}"


# -- django-celery-beat ----------------------------------------------------------------------
def read_beat_db(url: str, app: Any) -> list[Entry]:
    """Every entry of django-celery-beat's tables in the database at ``url`` (sqlite:///path,
    postgresql://..., mysql://...), read-only."""
    rows = _query(url)
    return [_django_entry(row, app) for row in rows]


def _query(url: str) -> list[tuple[Any, ...]]:
    try:
        scheme = urlsplit(url).scheme.lower().split("+", 1)[0]
    except ValueError as exc:  # "Invalid IPv6 URL": a setting to fix, said on the page
        raise SourceError(f"--beat-db {mask_url(url)}: not a valid URL ({exc})") from None
    try:
        if scheme == "sqlite":
            path = url.split("://", 1)[1][1:]  # sqlite:///relative.db, sqlite:////absolute.db
            if not path or not Path(path).exists():
                raise SourceError(f"--beat-db {url}: no such SQLite file")
            conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=CONNECT_TIMEOUT_SECONDS)
            try:
                return conn.execute(BEAT_DB_QUERY).fetchall()
            finally:
                conn.close()
        if scheme in ("postgres", "postgresql"):
            import psycopg
            conninfo = "postgresql://" + url.split("://", 1)[1]
            with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True,
                                 options="-c default_transaction_read_only=on") as pg:
                return [tuple(row) for row in pg.execute(BEAT_DB_QUERY).fetchall()]
        if scheme in ("mysql", "mariadb"):
            import pymysql
            parts = urlsplit(url)
            try:
                port = parts.port or 3306
            except ValueError as exc:  # a port that is no number, or out of range
                raise SourceError(f"--beat-db {mask_url(url)}: {mask_known(str(exc), url)}"[:500]) from None
            my = pymysql.connect(host=parts.hostname or "localhost", port=port,
                                 user=unquote(parts.username or ""), password=unquote(parts.password or ""),
                                 database=parts.path.lstrip("/"), connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                 read_timeout=CONNECT_TIMEOUT_SECONDS)
            try:
                with my.cursor() as cursor:
                    cursor.execute("SET SESSION TRANSACTION READ ONLY")
                    cursor.execute(BEAT_DB_QUERY)
                    return [tuple(row) for row in cursor.fetchall()]
            finally:
                my.close()
    except SourceError:
        raise
    except ImportError as exc:
        raise SourceError(f"--beat-db {mask_url(url)}: the database driver is not installed ({exc})") from None
    except _database_errors() as exc:  # unreachable, refused, no such table: said on the page, never a crash
        raise SourceError(f"--beat-db {mask_url(url)}: {type(exc).__name__}: {mask_known(str(exc), url)}"[:500]) from None
    raise SourceError(f"--beat-db {mask_url(url)}: expected a sqlite:///, postgresql:// or mysql:// URL")


def _database_errors() -> tuple[type[BaseException], ...]:
    """What the drivers raise for a database that cannot be read (a bug raises something else)."""
    errors: list[type[BaseException]] = [sqlite3.Error, OSError]
    for module, name in (("psycopg", "Error"), ("pymysql.err", "MySQLError")):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except ImportError:
            continue
    return tuple(errors)


def _django_entry(row: tuple[Any, ...], app: Any) -> Entry:
    (name, task, args, kwargs, enabled, every, period, minute, hour, day_of_week, day_of_month, month_of_year,
     zone, event, latitude, longitude, clocked) = row
    entry = Entry(str(name), str(task or ""), source=SOURCE_DJANGO, enabled=bool(enabled))
    try:
        entry.args = tuple(_json(args, list, "args"))
        entry.kwargs = dict(_json(kwargs, dict, "kwargs"))
        if every is not None:
            if period not in DJANGO_PERIODS:
                raise ValueError(f"unknown interval period {period!r}")
            entry.schedule = schedule(timedelta(**{period: int(every)}), app=app)
        elif minute is not None:
            entry.schedule = ZonedCrontab(_zone(zone), minute=minute, hour=hour, day_of_week=day_of_week,
                                          day_of_month=day_of_month, month_of_year=month_of_year, app=app)
        elif event is not None:
            entry.schedule = solar(str(event), float(latitude), float(longitude), app=app)
        elif clocked is not None:
            entry.once = Once(_datetime(clocked))
        else:
            raise ValueError("no schedule")
        if entry.schedule is not None:
            next_after(entry.schedule, datetime.now(timezone.utc).timestamp())
    except Exception as exc:  # one unreadable row: its error on the page, the others go on
        unreadable(entry, exc)
    return entry


def _json(text: Any, kind: type, what: str) -> Any:
    value = json.loads(text) if isinstance(text, str) and text.strip() else kind()
    if not isinstance(value, kind):
        raise ValueError(f"{what} is not a JSON {'array' if kind is list else 'object'}")
    return value


def _zone(name: Any) -> Any:
    try:
        return ZoneInfo(str(name or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


# -- celery-redbeat --------------------------------------------------------------------------
def read_redbeat(url: str, prefix: str, app: Any) -> list[Entry]:
    """Every entry of celery-redbeat's schedule in the Redis at ``url`` (keys under ``prefix``)."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=CONNECT_TIMEOUT_SECONDS,
                                      socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except ValueError as exc:  # a scheme other than redis://, a port or database that is no number
        raise SourceError(f"--redbeat-url {mask_url(url)}: {mask_known(str(exc), url)}"[:500]) from None
    try:
        keys: list[Any] = list(client.zrange(prefix + ":schedule", 0, -1))
        pipe = client.pipeline()
        for key in keys:
            pipe.hget(key, "definition")
        definitions = pipe.execute() if keys else []
    except redis.RedisError as exc:
        raise SourceError(f"--redbeat-url {mask_url(url)}: {type(exc).__name__}: {mask_known(str(exc), url)}"[:500]) from None
    finally:
        client.close()
    entries = []
    for key, raw in zip(keys, definitions):
        name = key.decode("utf-8", "replace")[len(prefix):] if isinstance(key, bytes) else str(key)
        entries.append(_redbeat_entry(name, raw, app))
    return entries


def _redbeat_entry(name: str, raw: Any, app: Any) -> Entry:
    entry = Entry(name, "", source=SOURCE_REDBEAT)
    try:
        if raw is None:
            raise ValueError("its definition is gone (deleted while listed)")
        definition = json.loads(raw)
        if not isinstance(definition, dict):
            raise ValueError("its definition is not a JSON object")
        entry.name = str(definition.get("name") or name)
        entry.task = str(definition.get("task") or "")
        entry.args = tuple(definition.get("args") or ())
        entry.kwargs = dict(definition.get("kwargs") or {})
        entry.enabled = bool(definition.get("enabled", True))
        entry.schedule = _redbeat_schedule(definition.get("schedule"), raw, app)
        next_after(entry.schedule, datetime.now(timezone.utc).timestamp())
    except Exception as exc:  # one unreadable definition: its error on the page, the others go on
        unreadable(entry, exc)
    return entry


def _redbeat_schedule(value: Any, raw: Any, app: Any) -> Any:
    kind = value.get("__type__") if isinstance(value, dict) else None
    if kind == "interval":
        return schedule(timedelta(seconds=float(value["every"])), bool(value.get("relative")), app=app)
    if kind == "crontab":
        fields = {k: value[k] for k in ("minute", "hour", "day_of_week", "day_of_month", "month_of_year") if k in value}
        return crontab(app=app, **fields)
    decoder = _redbeat_decoder()
    if decoder is None:
        raise ValueError(f"a {kind or 'custom'} schedule needs celery-redbeat installed beside the dashboard")
    decoded = json.loads(raw, cls=decoder).get("schedule")
    decoded.app = app
    return decoded


def _redbeat_decoder() -> type[json.JSONDecoder] | None:
    try:
        from redbeat.decoder import RedBeatJSONDecoder
    except ImportError:
        return None
    decoder: type[json.JSONDecoder] = RedBeatJSONDecoder
    return decoder
