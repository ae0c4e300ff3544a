import eventlet
eventlet.monkey_patch()  # must run before anything else is imported: sockets, threads and time go green

# run.py: start the Celery dashboard under eventlet, the default async mode.
# This is the only module that imports eventlet; `python -m dashboard` runs the
# same server with the threading async mode.
import sys  # noqa: E402

from eventlet import tpool  # noqa: E402

from dashboard.server import main  # noqa: E402

#: Native threads for blocking calls; each keeps its own SQLite connection and page cache.
TPOOL_THREADS = 4

if __name__ == "__main__":
    # SQLite calls block: under eventlet they run in tpool's native threads, never on the hub.
    tpool.set_num_threads(TPOOL_THREADS)
    sys.exit(main(async_mode="eventlet", run_blocking=tpool.execute))
