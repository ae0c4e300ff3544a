"""``python -m dashboard``: the dashboard with the threading async mode (no eventlet)."""
import sys

from .server import main

sys.exit(main(async_mode="threading"))
