"""What the harness and the load client share: each protocol's RPC path, channel
options, a file format for pre-serialized requests, and the check of a response
against its request.

Protocols (the names bench.run and bench.load_client take):

  native  /phimask.v1.BatchTransform/Transform: the TransformResponse must carry every
          record id sent, in order, minus the rejections it lists
  otlp    /opentelemetry.proto.collector.logs.v1.LogsService/Export: the reply must be
          an ExportLogsServiceResponse without partial_success (nothing rejected)
  vector  /vector.Vector/PushEvents: the reply must be an empty PushEventsResponse

A request's payload bytes are its records' JSON size whatever the wire (for OTLP and
Vector, the record decoded back to JSON), so MB/s compares across protocols.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from phimask._gen.phimask.v1 import transform_pb2
from phimask._gen.vector import event_pb2, vector_pb2

TRANSFORM = "/phimask.v1.BatchTransform/Transform"
EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
PUSH_EVENTS = "/vector.Vector/PushEvents"
METHODS = {"native": TRANSFORM, "otlp": EXPORT, "vector": PUSH_EVENTS}
PROTOCOLS = tuple(METHODS)

MAX_MESSAGE = 64 * 1024 * 1024
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
]

_LEN = struct.Struct("<Q")


def write_requests(path: Path, requests: list[bytes]) -> None:
    """Length-prefixed frames, so a client process can load them without protobuf work."""
    with path.open("wb") as f:
        for req in requests:
            f.write(_LEN.pack(len(req)))
            f.write(req)


def read_requests(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        (size,) = _LEN.unpack_from(data, pos)
        pos += _LEN.size
        out.append(data[pos : pos + size])
        pos += size
    if pos != len(data):
        raise ValueError(f"{path}: truncated request file")
    return out


def otlp_value(value: common_pb2.AnyValue) -> Any:
    """An OTLP AnyValue as the JSON-shaped Python value it encodes (bytes stay bytes)."""
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: otlp_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [otlp_value(v) for v in value.array_value.values]
    return None if kind is None else getattr(value, kind)


def vector_value(value: event_pb2.Value) -> Any:
    """A Vector Value as a JSON-shaped Python value (raw_bytes as UTF-8 text)."""
    kind = value.WhichOneof("kind")
    if kind == "raw_bytes":
        return value.raw_bytes.decode(errors="replace")
    if kind == "map":
        return {k: vector_value(v) for k, v in value.map.fields.items()}
    if kind == "array":
        return [vector_value(v) for v in value.array.items]
    if kind == "timestamp":
        return value.timestamp.ToJsonString()
    return None if kind in (None, "null") else getattr(value, kind)


def _bytes_as_hex(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _json_size(value: Any) -> int:
    return len(orjson.dumps(value, default=_bytes_as_hex))


def otlp_records(request: bytes) -> list[Any]:
    """Each LogRecord's body of a serialized ExportLogsServiceRequest, in order."""
    req = logs_service_pb2.ExportLogsServiceRequest.FromString(request)
    return [
        otlp_value(record.body)
        for resource_logs in req.resource_logs
        for scope_logs in resource_logs.scope_logs
        for record in scope_logs.log_records
    ]


def vector_records(request: bytes) -> list[Any]:
    """Each log event's fields of a serialized PushEventsRequest, in order."""
    req = vector_pb2.PushEventsRequest.FromString(request)
    return [
        {k: vector_value(v) for k, v in event.log.fields.items()}
        for event in req.events
        if event.HasField("log")
    ]


@dataclass(frozen=True)
class RequestInfo:
    """What a response is checked against; computed once per distinct request."""

    records: int
    payload_bytes: int
    ids: tuple[str, ...] = ()  # native: the ids the response must carry, in order
    protocol: str = "native"

    @classmethod
    def of(cls, request: bytes, protocol: str = "native") -> RequestInfo:
        if protocol == "native":
            req = transform_pb2.TransformRequest.FromString(request)
            ids = tuple(r.id for r in req.records)
            return cls(len(ids), sum(len(r.payload) for r in req.records), ids)
        if protocol == "otlp":
            bodies = otlp_records(request)
        elif protocol == "vector":
            bodies = vector_records(request)
        else:
            raise ValueError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
        return cls(len(bodies), sum(_json_size(b) for b in bodies), protocol=protocol)


class BadResponse(Exception):
    """The server answered with something that breaks its protocol's contract."""


def check_response(info: RequestInfo, response: bytes) -> int:
    """Validate one response against its request; return its number of rejections."""
    if info.protocol == "otlp":
        return _check_otlp(response)
    if info.protocol == "vector":
        if response:
            raise BadResponse(f"expected an empty PushEventsResponse, got {len(response)} bytes")
        return 0
    return _check_native(info, response)


def _check_otlp(response: bytes) -> int:
    try:
        resp = logs_service_pb2.ExportLogsServiceResponse.FromString(response)
    except DecodeError as e:
        raise BadResponse(f"reply is not an ExportLogsServiceResponse ({e})") from None
    if resp.HasField("partial_success"):
        partial = resp.partial_success
        raise BadResponse(
            f"partial success: {partial.rejected_log_records} log records rejected "
            f"({partial.error_message or 'no message'})"
        )
    return 0


def _check_native(info: RequestInfo, response: bytes) -> int:
    resp = transform_pb2.TransformResponse.FromString(response)
    rejected = [r.index for r in resp.rejections]
    if len(set(rejected)) != len(rejected) or any(i >= info.records for i in rejected):
        raise BadResponse(f"rejection indexes out of range or repeated: {sorted(rejected)[:10]}")
    skip = set(rejected)
    expected = [rid for i, rid in enumerate(info.ids) if i not in skip]
    if len(resp.records) != len(expected):
        raise BadResponse(
            f"{len(resp.records)} records back for {info.records} sent "
            f"minus {len(rejected)} rejections"
        )
    got = [r.id for r in resp.records]
    if got != expected:
        first = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)
        raise BadResponse(f"record ids out of order or altered at position {first}")
    for rec in resp.records:
        try:
            obj = orjson.loads(rec.payload)
        except orjson.JSONDecodeError as e:
            raise BadResponse(f"record {rec.id}: payload is not JSON ({e})") from None
        if not isinstance(obj, dict):
            raise BadResponse(f"record {rec.id}: payload is not a JSON object")
    return len(rejected)
