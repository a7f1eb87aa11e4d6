from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus import encode_requests, generate_records
from bench.wire import BadResponse, RequestInfo, check_response, read_requests, write_requests
from phimask._gen.phimask.v1 import transform_pb2


@pytest.fixture(scope="module")
def request_bytes() -> bytes:
    return encode_requests(generate_records(20, seed=2), batch_size=20)[0]


def test_request_file_round_trip(tmp_path: Path, request_bytes: bytes) -> None:
    path = tmp_path / "requests.bin"
    write_requests(path, [request_bytes, b"", request_bytes])
    assert read_requests(path) == [request_bytes, b"", request_bytes]


def test_an_echo_is_a_valid_response(request_bytes: bytes) -> None:
    # Request and response share field 1 (records), so echoed bytes parse as a response.
    assert check_response(RequestInfo.of(request_bytes), request_bytes) == 0


def test_rejections_must_account_for_missing_records(request_bytes: bytes) -> None:
    info = RequestInfo.of(request_bytes)
    request = transform_pb2.TransformRequest.FromString(request_bytes)
    response = transform_pb2.TransformResponse(records=request.records[1:])
    with pytest.raises(BadResponse):
        check_response(info, response.SerializeToString())
    response.rejections.add(index=0, reason="invalid_json")
    assert check_response(info, response.SerializeToString()) == 1
    response.rejections.add(index=0, reason="invalid_json")
    with pytest.raises(BadResponse):
        check_response(info, response.SerializeToString())


def test_records_must_come_back_in_order(request_bytes: bytes) -> None:
    request = transform_pb2.TransformRequest.FromString(request_bytes)
    shuffled = [request.records[1], request.records[0], *request.records[2:]]
    response = transform_pb2.TransformResponse(records=shuffled)
    with pytest.raises(BadResponse, match="out of order"):
        check_response(RequestInfo.of(request_bytes), response.SerializeToString())
