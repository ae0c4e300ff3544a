"""The demo's Celery app scheduled by celery-redbeat, for the periodic-task tests: its beat_schedule is
written to Redis by ``celery -A tests.redbeat_app beat -S redbeat.RedBeatScheduler`` (REDBEAT_URL)."""
from __future__ import annotations

import os

from dashboard.demo.tasks import app

app.conf.redbeat_redis_url = os.environ.get("REDBEAT_URL", "redis://127.0.0.1:6379/3")
app.conf.redbeat_lock_timeout = 10
app.conf.beat_max_loop_interval = 1  # look for due entries every second
app.conf.beat_schedule = {
    "static add every 2s": {"task": "dashboard.demo.tasks.add", "schedule": 2.0, "args": (20, 22)},
}
