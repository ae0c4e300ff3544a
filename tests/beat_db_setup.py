"""Make a django-celery-beat database for the tests, with the package's own migrations and models.

    python tests/beat_db_setup.py sqlite:///path/to/beat.sqlite3
    python tests/beat_db_setup.py postgresql://postgres@127.0.0.1:5432/test_beat
    python tests/beat_db_setup.py mysql://root@127.0.0.1:3306/test_beat

Runs in its own process: Django is configured once per process.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

import django
from django.conf import settings


def database(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url.split("://", 1)[1][1:]}
    engine = {"postgresql": "django.db.backends.postgresql", "mysql": "django.db.backends.mysql"}[parts.scheme]
    if parts.scheme == "mysql":
        import pymysql
        pymysql.install_as_MySQLdb()
    return {"ENGINE": engine, "NAME": parts.path.lstrip("/"), "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""), "HOST": parts.hostname or "", "PORT": parts.port or ""}


def main(url: str) -> None:
    settings.configure(INSTALLED_APPS=["django_celery_beat"], DATABASES={"default": database(url)},
                       USE_TZ=True, TIME_ZONE="UTC", DEFAULT_AUTO_FIELD="django.db.models.AutoField")
    django.setup()
    from django.core.management import call_command
    call_command("migrate", "django_celery_beat", verbosity=0)
    from django_celery_beat.models import (ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask,
                                           SolarSchedule)
    every = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="add every 2 s", task="dashboard.demo.tasks.add", interval=every,
                                args=json.dumps([2, 3]))
    weekly = CrontabSchedule.objects.create(minute="30", hour="7", day_of_week="1", day_of_month="*",
                                            month_of_year="*", timezone="Europe/Berlin")
    PeriodicTask.objects.create(name="weekly report", task="reports.weekly", crontab=weekly,
                                kwargs=json.dumps({"full": True}))
    PeriodicTask.objects.create(name="paused", task="reports.paused", interval=every, enabled=False)
    launch = ClockedSchedule.objects.create(clocked_time=datetime(2030, 1, 1, 9, 0, tzinfo=timezone.utc))
    PeriodicTask.objects.create(name="launch", task="ops.launch", clocked=launch, one_off=True)
    dusk = SolarSchedule.objects.create(event="sunset", latitude=48.85, longitude=2.35)
    PeriodicTask.objects.create(name="lights", task="home.lights", solar=dusk)
    PeriodicTask.objects.create(name="broken args", task="x.y", interval=every, args="not json")


if __name__ == "__main__":
    main(sys.argv[1])
