"""The C heap's free pages go back to the kernel once a minute."""
from __future__ import annotations

import ctypes
from pathlib import Path

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
    calls: list[str] = []
    sleeps: list[float] = []

    def run_blocking(function):  # type: ignore[no-untyped-def]
        calls.append(function.__name__)
        return True

    releaser = MemoryReleaser(sleep=lambda seconds: sleeps.append(seconds) or (
        releaser.stop() if len(sleeps) == 4 else None), run_blocking=run_blocking, interval=60.0)
    releaser.run()
    assert calls == ["release_free_memory"] * 3 and sleeps == [60.0] * 4 and releaser.releases == 3


def test_the_releaser_stops_for_good_where_the_c_library_cannot_release(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_MALLOC_TRIM", None)
    sleeps: list[float] = []
    releaser = MemoryReleaser(sleep=sleeps.append, run_blocking=lambda function: function(), interval=1.0)
    releaser.run()
    assert sleeps == [1.0] and releaser.releases == 0
