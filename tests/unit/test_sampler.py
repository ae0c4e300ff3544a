"""The queue sampler's rounds: where the broker read runs and what its round trip counts."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dashboard import create_app
from dashboard.broker import QueueSample
from dashboard.sampler import QueueSampler
from dashboard.settings import Settings


def test_the_sampler_reads_the_broker_away_from_the_loop_and_times_the_read_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under eventlet ``run_blocking`` is a native thread: the broker read and its timing run there, the samples
    are applied by the caller afterwards, and the wait to get back (a busy event loop) is not in the round trip."""
    dashboard = create_app(Settings(db=str(tmp_path / "d.db"), async_mode="threading", queues=("billing",))
                           ).extensions["dashboard"]
    read_in: list[int] = []
    clock = [100.0]  # the sampler's perf_counter: the read takes 5 ms of it, the way back 300 ms
    monkeypatch.setattr("dashboard.sampler.time.perf_counter", lambda: clock[0])

    class Reader:
        def sample(self, names: list[str]) -> dict[str, QueueSample]:
            read_in.append(threading.get_ident())
            clock[0] += 0.005
            return {name: QueueSample(depth=7, consumers=1) for name in names}

        def close(self) -> None:
            pass

    def elsewhere(function: Any, *args: Any) -> Any:  # another thread, then a slow way back
        done: list[Any] = []
        thread = threading.Thread(target=lambda: done.append(function(*args)))
        thread.start()
        thread.join()
        clock[0] += 0.3
        return done[0]

    sampler = QueueSampler(dashboard.collector, lambda alert: None, elsewhere, reader=Reader())
    sampler.step(time.time())
    assert read_in and read_in[0] != threading.get_ident()
    assert sampler.health()["last_ms"] == 5.0 and sampler.health()["queues"] == 1
    assert next(q for q in dashboard.cluster.queues(time.time()) if q["name"] == "billing")["depth"] == 7
    dashboard.store.close()
