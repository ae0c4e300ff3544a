"""The replay benchmark (bench/replay.py): a stream captured off a real redis-server from Celery's own
EventDispatcher, then fed to a dashboard in the process, every event taken and the CPU split by part."""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from replay import capture, replay_once  # noqa: E402


def test_a_captured_stream_is_replayed_whole(tmp_path: Path, redis_port: int) -> None:
    stream = tmp_path / "stream.pickle"
    assert capture(argparse.Namespace(out=str(stream), rate=400.0, seconds=1.5, processes=2, generator="dispatcher",
                                      broker=f"redis://127.0.0.1:{redis_port}/13")) == 0
    messages = pickle.loads(stream.read_bytes())
    assert len(messages) > 300
    assert [t for t, _ in messages] == sorted(t for t, _ in messages) and messages[0][0] == 0.0
    figures = replay_once(messages, 0.02)
    assert figures["events"] == len(messages)
    assert figures["total_us_per_event"] > 0 and figures["store_write_us_per_event"] > 0
    parts = sum(v for k, v in figures.items() if k.endswith("_us_per_event") and k != "total_us_per_event")
    assert parts <= figures["total_us_per_event"] * 1.001  # the parts are shares of the whole
