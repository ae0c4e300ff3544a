"""Giving the C heap's free memory back to the operating system: large blocks at once, the rest when much is free.

glibc's malloc keeps what the process frees in its arenas for later use. The dashboard
frees and allocates steadily at a high event rate (tasks' dicts as the model lets old
tasks go, SQLite's pages, the pushes' buffers), and the free space ends up in holes
between chunks in use, which the arenas never give back on their own. ``malloc_trim(0)``
hands every whole free page in every arena back to the kernel (``MADV_DONTNEED``); it takes
1-3 ms. Elsewhere than glibc it is not there, and nothing is done.

It is worth it only when much of the arenas is free (``RELEASE_FREE_SHARE`` or
``RELEASE_FREE_BYTES``, from glibc's ``mallinfo2``; without it, every time): after a burst,
or once fewer tasks are held. In a steady stream the free space is the churn's working room:
at 5,000 events/s a third of the arenas (13-21 of 47-53 MiB) was free, and after each release
the resident memory rose by 5-8 MiB within 5 s as those pages were used again, so a release
every minute (or every 10 s) only made the resident memory saw up and down by that much, and
cost the page faults.

Large blocks (from ``MMAP_THRESHOLD_BYTES``) get pages of their own, unmapped when freed
(``fix_mmap_threshold``). glibc does that from 128 KiB at first, but raises the threshold to
the size of each such block freed, up to 32 MiB; large blocks (a dict's table over 100,000 held
tasks is several MiB, allocated anew each time the dict is resized) then came from the arenas,
and the holes they left made the arenas grow for good: at 5,000 events/s
malloc's arenas grew from 68 to 97 MiB between minute 5 and minute 10 (43 of them in use at the
end, against 32), with a fixed threshold they stayed at 61-66 MiB.
"""
from __future__ import annotations

import ctypes
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

#: Seconds between two looks at the arenas' free space (each a release when enough is free).
RELEASE_INTERVAL_SECONDS = 60.0
#: Share of malloc's arenas that is free from which a release hands the free pages back (see above) ...
RELEASE_FREE_SHARE = 0.5
#: ... or free bytes from which it does whatever their share (a large heap's working room is a smaller share).
RELEASE_FREE_BYTES = 64 * 1024 * 1024


def _libc_function(name: str, *argtypes: Any, restype: Any = ctypes.c_int) -> Callable[..., Any] | None:
    """Return the C library's function ``name`` with ``argtypes`` and ``restype`` (an int by default), or
    None without it."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: glibc's, when Python runs on it
    except OSError:
        return None
    function = getattr(libc, name, None)
    if function is None:
        return None
    function.argtypes = list(argtypes)
    function.restype = restype
    return function


_MALLOC_TRIM = _libc_function("malloc_trim", ctypes.c_size_t)


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33 and later): the arenas' figures in bytes."""
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


_MALLINFO2 = _libc_function("mallinfo2", restype=_MallInfo2) if _MALLOC_TRIM is not None else None

#: Blocks from this size up are mapped on their own and unmapped when freed (glibc's initial threshold, kept).
MMAP_THRESHOLD_BYTES = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
# Only glibc's: malloc_trim is glibc's alone, and other C libraries number mallopt's parameters otherwise.
_MALLOPT = _libc_function("mallopt", ctypes.c_int, ctypes.c_int) if _MALLOC_TRIM is not None else None


def fix_mmap_threshold(size: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Have every block of at least ``size`` bytes mapped on its own and given back when freed, for good
    (setting it turns glibc's moving threshold off); return whether this C library took it."""
    return _MALLOPT is not None and _MALLOPT(_M_MMAP_THRESHOLD, size) == 1


def free_memory() -> tuple[int, int] | None:
    """Return malloc's free bytes and its arenas' size, or None where not known."""
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    return info.fordblks, info.arena


def release_free_memory(min_free_share: float = 0.0) -> bool | None:
    """Give the C heap's whole free pages back to the kernel when at least ``min_free_share`` of malloc's
    arenas, or ``RELEASE_FREE_BYTES``, is free (always where that is not known); return whether it did,
    or None where this C library cannot release at all."""
    if _MALLOC_TRIM is None:
        return None
    if min_free_share > 0:
        known = free_memory()
        if known is not None:
            free, arena = known
            if free < RELEASE_FREE_BYTES and free < min_free_share * arena:
                return False
    _MALLOC_TRIM(0)
    return True


class MemoryReleaser:
    """Calls ``release_free_memory(min_free_share)`` every ``RELEASE_INTERVAL_SECONDS`` (through
    ``run_blocking``: it holds the arenas' locks while it walks them) until ``stop``."""

    def __init__(self, sleep: Callable[[float], Any], run_blocking: Callable[..., Any],
                 interval: float = RELEASE_INTERVAL_SECONDS, min_free_share: float = RELEASE_FREE_SHARE,
                 count_internal_error: Callable[[], None] = lambda: None) -> None:
        self.sleep = sleep
        self.run_blocking = run_blocking
        self.interval = interval
        self.min_free_share = min_free_share
        self.count_internal_error = count_internal_error  # for ``/api/health``'s ``errors.internal``
        self.stopping = False
        self.releases = 0  # how many times free pages were handed back

    def run(self) -> None:
        while not self.stopping:
            self.sleep(self.interval)
            if self.stopping:
                return
            try:
                released = self.run_blocking(release_free_memory, self.min_free_share)
                if released is None:
                    return  # not glibc: nothing to do, ever
            except Exception:  # never worth stopping anything for
                self.count_internal_error()
                log.exception("releasing free memory failed")
                return
            self.releases += bool(released)

    def stop(self) -> None:
        self.stopping = True
