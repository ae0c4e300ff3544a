"""The live clients benchmark's pure parts (bench/live_clients.py): framing, the page's seq logic, the figures."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sys
from array import array
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import live_clients  # noqa: E402
from live_clients import (OP_CLOSE, OP_PING, OP_TEXT, BodyBook, FrameReader, SeqState, apply_mask,  # noqa: E402
                          encode_frame, merged_quantile, nearest_rank, parse_args, resolve, tcp_table)


def server_frame(payload: bytes, opcode: int = OP_TEXT, fin: bool = True) -> bytes:
    """A frame as a server sends it: unmasked."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes((first, n)) + payload
    if n < 1 << 16:
        return bytes((first, 126)) + n.to_bytes(2, "big") + payload
    return bytes((first, 127)) + n.to_bytes(8, "big") + payload


def read_all(data: bytes) -> list[tuple[int, bytes]]:
    async def go() -> list[tuple[int, bytes]]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        frames, found = FrameReader(reader), []
        while True:
            try:
                found.append(await frames.next())
            except asyncio.IncompleteReadError:
                return found
    # In a thread of its own: Playwright's sync API (the browser tests) keeps an event loop
    # running in the main thread for the whole session, and asyncio.run refuses to nest.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, go()).result()


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 200_000])
def test_client_frames_are_masked_and_unmask_to_the_payload(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    frame = encode_frame(payload, mask=b"\x01\x02\x03\x04")
    assert frame[0] == 0x80 | OP_TEXT and frame[1] & 0x80
    header = 2 + (0 if size < 126 else 2 if size < 65536 else 8)
    assert frame[header:header + 4] == b"\x01\x02\x03\x04"
    assert apply_mask(frame[header + 4:], b"\x01\x02\x03\x04") == payload


def test_reader_joins_fragments_and_passes_control_frames_between_them() -> None:
    big = b"x" * 70_000
    data = (server_frame(b"2")
            + server_frame(b"42/live,[\"changes\",", fin=False)
            + server_frame(b"ping!", OP_PING)
            + server_frame(b"{}]", 0x0)
            + server_frame(big)
            + server_frame(b"\x03\xe8", OP_CLOSE))
    assert read_all(data) == [(OP_TEXT, b"2"), (OP_PING, b"ping!"), (OP_TEXT, b"42/live,[\"changes\",{}]"),
                              (OP_TEXT, big), (OP_CLOSE, b"\x03\xe8")]


def test_seq_follows_the_page_apply_ignore_and_resync_on_a_gap() -> None:
    state = SeqState()
    assert state.changes(1, 0.0) == (SeqState.WAITING, False)  # nothing valid before the first snapshot
    state.snapshot(3)
    assert state.changes(4, 1.0) == (SeqState.APPLY, False)
    assert state.changes(4, 1.1) == (SeqState.STALE, False)
    assert state.changes(6, 1.2) == (SeqState.GAP, True)
    assert state.resyncs == 1
    assert state.changes(7, 2.0) == (SeqState.WAITING, False)  # dropped until the snapshot
    assert state.changes(8, 1.2 + live_clients.RESYNC_RETRY_SECONDS) == (SeqState.WAITING, True)  # asked again
    assert state.resyncs == 2
    state.snapshot(8)
    assert state.changes(9, 9.0) == (SeqState.APPLY, False)


def batch(seq: int, changes: list[dict], counters: dict | None = None) -> bytes:
    """A changes batch as the server frames it (stdlib json, default separators)."""
    return b"42/live," + json.dumps(["changes", {"seq": seq, "changes": changes,
                                                 "counters": counters or {"total": 1}}]).encode()


def task(uuid: str, state: str, timestamp: float) -> dict:
    return {"kind": "task", "op": "upsert", "key": uuid, "data": {"uuid": uuid, "state": state, "timestamp": timestamp}}


def test_a_body_is_decoded_once_and_a_task_counts_when_first_final() -> None:
    book = BodyBook()
    client = live_clients.LiveClient(0, book, reference=True)
    changes = [task("a", "SUCCESS", 100.0), task("b", "STARTED", 100.1), task("c", "FAILURE", 100.2),
               {"kind": "worker", "op": "upsert", "key": "w", "data": {}}]
    client._snapshot(0)
    client._event(batch(1, changes), 101.0)
    other = live_clients.LiveClient(1, book)
    other._snapshot(4)
    other._event(batch(5, changes), 101.5)  # same body, another seq: not decoded again
    assert len(book.bodies) == 1 and client.bodies[0] == other.bodies[0] == 0
    body = book.bodies[0]
    assert (body.changes, body.tasks, body.uuids, list(body.finals)) == (4, 3, ["a", "c"], [100.0, 100.2])
    client._event(batch(2, [task("a", "SUCCESS", 100.0), task("d", "SUCCESS", 101.0)]), 102.0)
    assert book.bodies[1].uuids == ["d"]  # "a" counted already
    assert client.first_seen == {"a": 101.0, "c": 101.0, "d": 102.0}
    latencies = live_clients.client_latencies(client, book.bodies)
    assert list(latencies) == pytest.approx([0.8, 1.0, 1.0])


def test_a_gap_emits_resync_and_the_batch_is_not_applied() -> None:
    written: list[bytes] = []

    class Writer:
        def write(self, data: bytes) -> None:
            written.append(data)

    client = live_clients.LiveClient(0, BodyBook())
    client.writer = Writer()  # type: ignore[assignment]
    client._event(b'42/live,["snapshot",{"seq": 7, "tasks": []}]', 1.0)
    client._event(batch(9, [task("a", "SUCCESS", 0.5)]), 1.1)
    assert (client.gaps, client.applied, list(client.bodies)) == (1, 0, [-1])
    assert written == [live_clients.RESYNC]
    client._event(b'42/live,["snapshot",{"seq": 9}]', 1.2)
    client._event(batch(10, []), 1.3)
    assert (client.snapshots, client.applied, client.state.resyncs) == (2, 1, 1)


def test_other_layouts_are_decoded_whole() -> None:
    client = live_clients.LiveClient(0, BodyBook())
    client._event(b'42/live,["snapshot",{"server_time": 1, "seq": 2}]', 1.0)  # seq not first
    client._event(b'42/live,["changes",{"changes": [], "seq": 3}]', 1.1)
    client._event(b'42/live,["broker",{"connected": true}]', 1.2)
    assert (client.snapshots, client.applied, dict(client.other_events)) == (1, 1, {"broker": 1})


def test_merged_quantile_matches_the_sorted_union() -> None:
    lists = [array("f", sorted(v)) for v in ([0.1, 0.5, 0.9], [0.2], [0.3, 0.4, 0.6, 0.7, 0.8, 1.0])]
    union = sorted(x for values in lists for x in values)
    for q in (0.5, 0.95, 1.0):
        assert merged_quantile(lists, q) == pytest.approx(nearest_rank(union, q), abs=1e-4)
    assert merged_quantile([array("f")], 0.5) is None


def test_tcp_table_keeps_the_connections_of_a_port() -> None:
    text = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
            "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 1 1\n"
            "   1: 0100007F:1F90 0100007F:C350 01 00002000:00000000 01:00000010 00000000  0 0 2 1\n"
            "   2: 0100007F:C350 0100007F:1F90 01 00000000:00001000 00:00000000 00000000  0 0 3 1\n"
            "   3: 0100007F:0050 0100007F:C351 01 00000000:00000000 00:00000000 00000000  0 0 4 1\n")
    assert tcp_table(text, 8080) == {(8080, 0): (0x0A, 0, 0), (8080, 50000): (0x01, 0x2000, 0),
                                     (50000, 8080): (0x01, 0, 0x1000)}


def test_quick_changes_the_defaults_and_explicit_flags_win() -> None:
    assert (lambda o: (o.clients, o.rate, o.seconds))(resolve(parse_args([]))) == (500, 5000, 120.0)
    assert (lambda o: (o.clients, o.rate, o.seconds))(resolve(parse_args(["--quick"]))) == (50, 2000, 20.0)
    options = resolve(parse_args(["--quick", "--clients", "7", "--stall", "2"]))
    assert (options.clients, options.rate, options.stall) == (7, 2000, 2)
