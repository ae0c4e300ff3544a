"""The C heap's free pages go back to the kernel: large blocks when freed, the rest when much of it is free."""
from __future__ import annotations

import ctypes
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dashboard import memory
from dashboard.memory import MemoryReleaser, release_free_memory


def _anon_kib() -> int:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["RssAnon"].split()[0])


@pytest.mark.skipif(memory._MALLOC_TRIM is None, reason="glibc's malloc_trim")
def test_releasing_gives_the_holes_between_chunks_in_use_back() -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    chunks = [libc.malloc(4000) for _ in range(40_000)]  # ~160 MB in chunks below the mmap threshold
    for chunk in chunks:
        ctypes.memset(chunk, 1, 4000)
    kept = chunks[9::10]  # one chunk in ten stays in use: the freed ones are holes the arena keeps
    for index, chunk in enumerate(chunks):
        if index % 10 != 9:
            libc.free(chunk)
    try:
        before = _anon_kib()
        assert release_free_memory() is True
        assert before - _anon_kib() > 60_000, "free pages between the chunks in use stayed resident"
    finally:
        for chunk in kept:
            libc.free(chunk)


def test_the_releaser_runs_once_an_interval_in_a_native_thread_until_stopped() -> None:
    calls: list[tuple[Any, ...]] = []
    sleeps: list[float] = []

    def run_blocking(function, *args):  # type: ignore[no-untyped-def]
        calls.append((function.__name__, *args))
        return True

    releaser = MemoryReleaser(sleep=lambda seconds: sleeps.append(seconds) or (
        releaser.stop() if len(sleeps) == 4 else None), run_blocking=run_blocking, interval=60.0)
    releaser.run()
    assert calls == [("release_free_memory", memory.RELEASE_FREE_SHARE)] * 3 and sleeps == [60.0] * 4
    assert releaser.releases == 3


def test_the_releaser_counts_only_the_times_it_handed_pages_back() -> None:
    answers = iter([True, False, True])
    releaser = MemoryReleaser(sleep=lambda seconds: None, run_blocking=lambda function, *args: next(answers, None))
    releaser.run()
    assert releaser.releases == 2


@pytest.mark.skipif(memory._MALLINFO2 is None, reason="glibc's mallinfo2")
def test_free_pages_go_back_only_when_enough_of_the_arenas_is_free(monkeypatch: pytest.MonkeyPatch) -> None:
    known = memory.free_memory()
    assert known is not None and 0 <= known[0] <= known[1]
    trims: list[int] = []
    monkeypatch.setattr(memory, "_MALLOC_TRIM", trims.append)
    mib = 1024 * 1024
    monkeypatch.setattr(memory, "free_memory", lambda: (15 * mib, 50 * mib))  # a steady stream's working room
    assert release_free_memory(0.5) is False and trims == []
    monkeypatch.setattr(memory, "free_memory", lambda: (30 * mib, 50 * mib))  # after a burst
    assert release_free_memory(0.5) is True and trims == [0]
    monkeypatch.setattr(memory, "free_memory", lambda: (70 * mib, 500 * mib))  # a large heap: by the bytes
    assert release_free_memory(0.5) is True and trims == [0, 0]
    monkeypatch.setattr(memory, "free_memory", lambda: None)  # not known here: as before, always
    assert release_free_memory(0.5) is True and trims == [0, 0, 0]
    assert release_free_memory() is True and trims == [0, 0, 0, 0]  # no share asked: always


def test_the_releaser_stops_for_good_where_the_c_library_cannot_release(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_MALLOC_TRIM", None)
    sleeps: list[float] = []
    releaser = MemoryReleaser(sleep=sleeps.append, run_blocking=lambda function, *args: function(*args), interval=1.0)
    releaser.run()
    assert sleeps == [1.0] and releaser.releases == 0


def test_a_bug_releasing_is_counted_logged_and_ends_the_releaser(monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    def broken(min_free_share: float) -> bool:
        raise RuntimeError("a bug")

    monkeypatch.setattr(memory, "release_free_memory", broken)
    internal: list[int] = []
    sleeps: list[float] = []
    releaser = MemoryReleaser(sleep=sleeps.append, run_blocking=lambda function, *args: function(*args),
                              interval=1.0, count_internal_error=lambda: internal.append(1))
    with caplog.at_level(logging.ERROR, logger="dashboard.memory"):
        releaser.run()
    assert sleeps == [1.0] and internal == [1] and releaser.releases == 0
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


MMAP_PROBE = """
import ctypes, gc, importlib.util, sys
# dashboard/memory.py alone, not the package: the package's imports (compiling its modules when no
# bytecode is cached) free large blocks into the arena before the threshold is fixed, and a free
# chunk there of 1 MiB serves a block below without a mapping.
spec = importlib.util.spec_from_file_location("memory_alone", "dashboard/memory.py")
memory = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory)
fix_mmap_threshold = memory.fix_mmap_threshold

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold() is True
libc.free(libc.malloc(8 << 20))  # a large block freed: glibc's moving threshold rises to its size
gc.collect()  # no garbage from the imports is freed between the two readings (a mapped block would be)
gc.disable()
mapped = libc.mallinfo2().hblkhd
blocks = [libc.malloc(1 << 20) for _ in range(16)]
print((libc.mallinfo2().hblkhd - mapped) >> 20)
for block in blocks:
    libc.free(block)
"""


@pytest.mark.skipif(memory._MALLOPT is None, reason="glibc's mallopt")
def test_large_blocks_stay_mapped_on_their_own_once_the_threshold_is_fixed() -> None:
    """glibc raises its mmap threshold to the size of each mapped block freed: later blocks of a MiB came
    from the arenas, whose holes made them grow for good. Fixed, every block from 128 KiB is mapped."""
    def mapped_mib(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", MMAP_PROBE, mode], capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parents[2])
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    assert mapped_mib("moving") == 0  # glibc's own behaviour: from the arenas
    assert mapped_mib("fixed") >= 16  # each MiB block on pages of its own, unmapped when freed
