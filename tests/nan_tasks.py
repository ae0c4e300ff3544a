"""A Celery app for the tests: a task that reports its progress as NaN, which a real task can do.

``self.send_event`` serialises with Python's json module, which writes NaN as
the bare word ``NaN``: valid for Python, not for JSON parsers elsewhere.
"""
from __future__ import annotations

import os

from celery import Celery, Task

app = Celery("nan_tasks", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(worker_send_task_events=True, task_send_sent_event=True, accept_content=["json"],
                broker_connection_retry_on_startup=True)


@app.task(bind=True)
def nan_progress(self: Task) -> str:
    """Report progress NaN of 10, then finish."""
    self.send_event("task-progress", current=float("nan"), total=10)
    return "done"
