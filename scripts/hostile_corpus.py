"""Write tests/data/hostile_messages.jsonl: event messages no reader may choke on.

The tests run the dashboard with ``--max-event-bytes 65536``, which the
oversized shapes exceed, so that the file stays small. Each line is one pub/sub payload as kombu puts it on Redis for the ``celeryev``
fanout (``{"shape", "routing_key", "data_b64"}``, the bytes base64-encoded since
some are not UTF-8). The tests publish each one, followed by a normal task,
to both event readers, and check that the stream goes on and that both build
the same model. Run it again after adding a shape: ``python3 scripts/hostile_corpus.py``.
"""
from __future__ import annotations

import base64
import bz2
import json
import lzma
import zlib
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "hostile_messages.jsonl"
TIMESTAMP = 1_795_600_000.0


def envelope(body: Any, routing_key: str = "task.received", *, base64_body: bool = True,
             content_type: Any = "application/json", content_encoding: Any = "utf-8",
             headers: Any = None, properties: Any = "default") -> bytes:
    """Return kombu's Redis envelope around ``body`` (bytes are base64-encoded like kombu does)."""
    if properties == "default":
        properties = {"delivery_mode": 1, "delivery_info": {"exchange": "celeryev", "routing_key": routing_key},
                      "priority": 0, "body_encoding": "base64" if base64_body else None,
                      "delivery_tag": "0d1c6f0e-0000-4000-8000-000000000000"}
    if isinstance(body, bytes) and base64_body:
        body = base64.b64encode(body).decode()
    message: dict[str, Any] = {"body": body, "content-encoding": content_encoding, "content-type": content_type,
                               "headers": {"hostname": "hostile@test"} if headers is None else headers}
    if properties is not None:
        message["properties"] = properties
    return json.dumps(message).encode()


def event(**fields: Any) -> bytes:
    return json.dumps({"hostname": "hostile@test", "timestamp": TIMESTAMP, "utcoffset": 0, "pid": 1,
                       "clock": 1, **fields}).encode()


def shapes() -> list[tuple[str, str, bytes]]:
    uuid = "hostile-{:04d}".format
    nested_args = "[" * 1000 + "1" + "]" * 1000
    zeros = b"\0" * (1 << 20)  # the tests run with --max-event-bytes 65536: this is a bomb there
    return [
        ("body is an int", "task.received", envelope(5, base64_body=False)),
        ("body is null", "task.received", envelope(None, base64_body=False)),
        ("body is an object", "task.received", envelope({"type": "task-received"}, base64_body=False)),
        ("base64 body is an int", "task.received", envelope(7)),
        ("content-encoding is an int", "task.received", envelope(event(type="task-received", uuid=uuid(1)),
                                                                  content_encoding=5)),
        ("unknown content-encoding", "task.received", envelope(event(type="task-received", uuid=uuid(2)),
                                                               content_encoding="no-such-codec")),
        ("content type pickle", "task.received", envelope(b"\x80\x04K\x01.", content_type="application/x-python-serialize")),
        ("garbage zlib", "task.received", envelope(b"not zlib at all", headers={"compression": "application/x-gzip"})),
        ("garbage bz2", "task.received", envelope(b"not bz2 at all", headers={"compression": "application/x-bz2"})),
        ("garbage lzma", "task.received", envelope(b"not lzma at all", headers={"compression": "application/x-lzma"})),
        ("compression header is an int", "task.received", envelope(event(type="task-received", uuid=uuid(3)),
                                                                    headers={"compression": 9})),
        ("zlib bomb", "task.received", envelope(zlib.compress(zeros, 9), headers={"compression": "application/x-gzip"})),
        ("bz2 bomb", "task.received", envelope(bz2.compress(zeros, 9), headers={"compression": "application/x-bz2"})),
        ("lzma bomb", "task.received", envelope(lzma.compress(zeros), headers={"compression": "application/x-lzma"})),
        ("kombu datetime of the wrong type", "task.received",
         envelope(event(type="task-received", uuid=uuid(4), eta={"__type__": "datetime", "__value__": 5}))),
        ("kombu uuid of the wrong type", "task.received",
         envelope(event(type="task-received", uuid=uuid(5), extra={"__type__": "uuid", "__value__": []}))),
        ("kombu bytes of the wrong type", "task.received",
         envelope(event(type="task-received", uuid=uuid(6), extra={"__type__": "bytes", "__value__": {}}))),
        ("5,000-deep nesting", "task.received", envelope(b"[" * 5000 + b"]" * 5000)),
        ("1,000-deep nested args", "task.received",
         envelope(event(type="task-received", uuid=uuid(7)).replace(b'"pid"', f'"args": {nested_args}, "pid"'.encode()))),
        ("unknown field over --max-event-bytes", "task.received",
         envelope(event(type="task-received", uuid=uuid(8), blob="x" * (200 << 10)))),
        ("unknown field of 40 KB, kept cut", "task.received",
         envelope(event(type="task-received", uuid=uuid(14), name="hostile.blob", blob="y" * (40 << 10)))),
        ("many unknown fields", "task.received",
         envelope(event(type="task-received", uuid=uuid(15), name="hostile.fields",
                        **{f"field_{i:03d}": i for i in range(200)}))),
        ("retries beyond 64 bits", "task.retried",
         envelope(event(type="task-retried", uuid=uuid(9), retries=9223372036854775808))),
        ("not JSON", "task.received", b"\xff\xfenot json"),
        ("envelope is a list", "task.received", b"[1, 2, 3]"),
        ("envelope without properties", "task.received",
         envelope(event(type="task-received", uuid=uuid(10)), properties=None)),
        ("envelope properties is a string", "task.received",
         envelope(event(type="task-received", uuid=uuid(11)), properties="x")),
        ("NaN progress", "task.progress",
         envelope(event(type="task-received", uuid=uuid(12), name="hostile.progress").replace(b'"pid"', b'"x": NaN, "pid"'))),
        ("lone surrogate in a traceback", "task.failed",
         envelope(json.dumps({"type": "task-failed", "uuid": uuid(13), "hostname": "hostile@test",
                              "timestamp": TIMESTAMP, "exception": "OSError()",
                              "traceback": "File \udcff\udcfe.py, line 1"}).encode("utf-8", "surrogatepass")
                  .replace(b"\xed\xb3\xbf\xed\xb3\xbe", b"\\udcff\\udcfe"))),
        ("control characters in a hostname", "worker.heartbeat",
         envelope(event(type="worker-heartbeat", hostname="evil\n2026-01-01 INFO forged\x1b[2J@test", freq=2.0,
                        active=0, processed=0), "worker.heartbeat")),
    ]


def main() -> None:
    with OUT.open("w") as out:
        for shape, routing_key, data in shapes():
            out.write(json.dumps({"shape": shape, "routing_key": routing_key,
                                  "data_b64": base64.b64encode(data).decode()}) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
