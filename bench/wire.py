"""What the harness and the load client share: the RPC path, channel options, a file
format for pre-serialized requests, and the check of a response against its request."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import orjson

from phimask._gen.phimask.v1 import transform_pb2

TRANSFORM = "/phimask.v1.BatchTransform/Transform"
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


@dataclass(frozen=True)
class RequestInfo:
    """What a response is checked against; computed once per distinct request."""

    ids: tuple[str, ...]
    payload_bytes: int

    @property
    def records(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, request: bytes) -> RequestInfo:
        req = transform_pb2.TransformRequest.FromString(request)
        return cls(tuple(r.id for r in req.records), sum(len(r.payload) for r in req.records))


class BadResponse(Exception):
    """The server answered with something that breaks the BatchTransform contract."""


def check_response(info: RequestInfo, response: bytes) -> int:
    """Validate one response against its request; return its number of rejections."""
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
