from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from bench.corpus import (
    ENCODERS,
    encode_otlp_requests,
    encode_requests,
    encode_vector_requests,
    generate_records,
)
from bench.wire import (
    METHODS,
    PROTOCOLS,
    BadResponse,
    RequestInfo,
    check_response,
    otlp_records,
    read_requests,
    vector_records,
    write_requests,
)
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


# --- OTLP and Vector: request info and reply checks -----------------------------------


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    return generate_records(30, seed=4)


@pytest.mark.parametrize("protocol", ["otlp", "vector"])
def test_forward_request_info_counts_records_and_json_bytes(
    protocol: str, corpus: list[dict[str, Any]]
) -> None:
    (request,) = ENCODERS[protocol](corpus, 30)
    info = RequestInfo.of(request, protocol)
    native = RequestInfo.of(encode_requests(corpus, 30)[0])
    assert info.protocol == protocol
    assert info.records == native.records == 30
    # MB/s compares across protocols: the same records weigh the same.
    assert info.payload_bytes == native.payload_bytes
    assert info.ids == ()


def test_wire_decoders_give_back_the_records(corpus: list[dict[str, Any]]) -> None:
    assert otlp_records(encode_otlp_requests(corpus)[0]) == corpus
    assert vector_records(encode_vector_requests(corpus)[0]) == corpus


def test_unknown_protocol_is_refused(request_bytes: bytes) -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        RequestInfo.of(request_bytes, "syslog")


def test_otlp_reply_must_not_be_a_partial_success(corpus: list[dict[str, Any]]) -> None:
    info = RequestInfo.of(encode_otlp_requests(corpus)[0], "otlp")
    assert check_response(info, b"") == 0
    partial = logs_service_pb2.ExportLogsServiceResponse()
    partial.partial_success.rejected_log_records = 2
    partial.partial_success.error_message = "2 log records rejected: operator_error x2"
    with pytest.raises(BadResponse, match="2 log records rejected"):
        check_response(info, partial.SerializeToString())
    with pytest.raises(BadResponse, match="not an ExportLogsServiceResponse"):
        check_response(info, b"\xff\xff")


def test_vector_reply_must_be_empty(corpus: list[dict[str, Any]]) -> None:
    info = RequestInfo.of(encode_vector_requests(corpus)[0], "vector")
    assert check_response(info, b"") == 0
    with pytest.raises(BadResponse, match="empty PushEventsResponse"):
        check_response(info, b"\x08\x01")


def test_every_protocol_has_a_method_and_an_encoder() -> None:
    assert set(METHODS) == set(ENCODERS) == set(PROTOCOLS) == {"native", "otlp", "vector"}
    assert METHODS["otlp"] == "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
    assert METHODS["vector"] == "/vector.Vector/PushEvents"
