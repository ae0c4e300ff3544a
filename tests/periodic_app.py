"""The demo's Celery app with a beat schedule, for the periodic-task tests: one entry that succeeds and
one that fails, every 2 seconds (``celery -A tests.periodic_app beat``; the dashboard's ``--app``)."""
from __future__ import annotations

from dashboard.demo.tasks import app

app.conf.beat_schedule = {
    "add-every-2s": {"task": "dashboard.demo.tasks.add", "schedule": 2.0, "args": (2, 3)},
    "charge-every-2s": {"task": "dashboard.demo.tasks.fail_payment", "schedule": 2.0, "args": ("ORD-<b>1</b>",)},
}
