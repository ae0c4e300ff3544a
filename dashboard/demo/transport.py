"""kombu's filesystem transport made safe for concurrent processes: atomic writes, reads that skip unfinished files.

Stock kombu (5.7) creates a message file, then locks and writes it, while readers neither look at
the lock nor wait: a reader polling at the wrong moment moves away an empty or half-written file and
``loads`` raises ``JSONDecodeError`` out of ``drain_events``, which kills a Celery worker's consumer
or an event receiver within seconds when events flow. Here every message is written under a
temporary name and renamed into place (so stock readers, e.g. the dashboard's, never see it
unfinished), and reading skips files that are empty or still locked by a stock writer.

``install()`` points kombu's ``filesystem://`` alias at this transport in the calling process.
The wire format and folder layout are unchanged, so stock and patched processes interoperate.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
import uuid
from queue import Empty
from time import monotonic
from typing import Any

import kombu.transport
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

#: kombu alias (URL scheme) this transport takes over.
ALIAS = "filesystem"
#: Import path of the transport class, as kombu's aliases spell it.
TRANSPORT_PATH = f"{__name__}:Transport"
#: Suffix of files being written; never matches a reader's ``<queue>.msg`` filter.
PARTIAL_SUFFIX = ".partial"


def _is_finished(path: str) -> bool:
    """Return whether a message file has content and no writer holds its lock."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return False  # created by a stock writer that has not locked or written yet
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a stock writer is still writing
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return True
    except FileNotFoundError:
        return False  # consumed by another process meanwhile


class Channel(filesystem.Channel):
    """Filesystem channel with atomic writes and careful reads."""

    def _put(self, queue: Any, message: Any, **kwargs: Any) -> None:  # type: ignore[override]  # kombu passes kwargs
        """Write the message under a temporary name, then rename it into the queue."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + PARTIAL_SUFFIX
        try:
            with open(partial, "wb", buffering=0) as f:
                f.write(str_to_bytes(dumps(message)))
            os.rename(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        """Take the oldest finished message of ``queue``, or raise ``Empty``."""
        wanted = f"{queue}.msg"
        folder = self.processed_folder if self.store_processed else tempfile.gettempdir()
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            source = os.path.join(self.data_folder_in, name)
            if not _is_finished(source):
                continue
            taken = os.path.join(folder, name)
            try:
                os.rename(source, taken)  # atomic: exactly one competing consumer wins
            except OSError as exc:
                if exc.errno == errno.EXDEV:  # TMPDIR on another file system: kombu's copy-and-delete
                    return super()._get(queue)
                continue  # taken by another consumer meanwhile
            try:
                with open(taken, "rb") as f:
                    payload = f.read()
                if not self.store_processed:
                    os.remove(taken)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {taken!r} from queue.") from exc
            return loads(bytes_to_str(payload))
        raise Empty()


class Transport(filesystem.Transport):
    """Filesystem transport using :class:`Channel`."""

    Channel = Channel


def install() -> None:
    """Make ``filesystem://`` connections made from now on in this process use this transport."""
    kombu.transport.TRANSPORT_ALIASES[ALIAS] = TRANSPORT_PATH
    # kombu caches resolved aliases; drop a stock class resolved before install().
    kombu.transport._transport_cache.pop(ALIAS, None)
