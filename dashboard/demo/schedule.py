"""The demo's periodic tasks: the demo app with a beat schedule, run by the demo's ``celery beat`` and
read by the demo dashboard (``--app dashboard.demo.schedule``) for its /periodic page."""
from __future__ import annotations

from celery.schedules import crontab

from dashboard.demo.tasks import app

app.conf.beat_schedule = {
    "refresh exchange rates": {"task": "dashboard.demo.tasks.add", "schedule": 15.0, "args": (1.5, 2.5)},
    "send the digest": {"task": "dashboard.demo.tasks.send_email", "schedule": 30.0,
                        "args": ("team@example.com", "Your digest")},
    "weekly sales report": {"task": "dashboard.demo.tasks.slow_report", "args": (2,),
                            "schedule": crontab(hour=7, minute=30, day_of_week="mon")},
}
