from __future__ import annotations

import asyncio

import orjson

from bench.corpus import encode_otlp_requests, encode_vector_requests, generate_records
from bench.sink import Sink, count_otlp_records, count_vector_events


def test_shallow_counts_match_the_encoders() -> None:
    records = generate_records(25, seed=7)
    assert [count_otlp_records(r) for r in encode_otlp_requests(records, 10)] == [10, 10, 5]
    assert [count_vector_events(r) for r in encode_vector_requests(records, 10)] == [10, 10, 5]
    assert count_otlp_records(b"") == count_vector_events(b"") == 0


def test_handlers_accept_anything_and_count() -> None:
    sink = Sink(count=True)
    otlp = sink.handler("otlp", count_otlp_records)
    vector = sink.handler("vector", count_vector_events)
    records = generate_records(4, seed=8)
    (otlp_request,) = encode_otlp_requests(records)
    (vector_request,) = encode_vector_requests(records)

    async def calls() -> list[bytes]:
        return [
            await otlp(otlp_request, None),
            await otlp(otlp_request, None),
            await otlp(b"\xff\xff", None),  # not OTLP: accepted, but flagged
            await vector(vector_request, None),
        ]

    assert asyncio.run(calls()) == [b""] * 4
    stats = orjson.loads(orjson.dumps(sink.stats()))
    assert stats["otlp"] == {
        "calls": 3,
        "bytes": 2 * len(otlp_request) + 2,
        "records": 8,
        "unparsable": 1,
    }
    assert stats["vector"] == {
        "calls": 1,
        "bytes": len(vector_request),
        "records": 4,
        "unparsable": 0,
    }
    assert stats["cpu_s"] >= 0 and stats["counting"] is True


def test_no_count_parses_nothing() -> None:
    sink = Sink(count=False)
    asyncio.run(sink.handler("otlp", count_otlp_records)(b"\xff", None))
    assert sink.stats()["otlp"] == {"calls": 1, "bytes": 1, "records": 0, "unparsable": 0}
