"""The user's own Celery app (``--app module`` or ``module:attribute``): read for its queues and its beat schedule."""
from __future__ import annotations

import importlib
from typing import Any

from celery.exceptions import CeleryError

#: What importing ``--app`` and reading its configuration raise when the app itself is wrong (Celery's
#: ``ImproperlyConfigured`` among them); anything else is a bug of the dashboard's.
APP_ERRORS = (ImportError, ValueError, CeleryError)


def load_user_app(app_path: str) -> Any:
    """Import ``--app`` and return its Celery app; raise ImportError or ValueError naming what is wrong."""
    module_name, _, attr = app_path.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attr or "app", None) or getattr(module, "celery", None)
    if app is None or not hasattr(app, "conf"):
        raise ValueError(f"--app {app_path}: no Celery app found (name it module:attribute)")
    return app
