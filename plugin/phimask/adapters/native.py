"""phimask.v1: TransformRequest bytes in, TransformResponse bytes out.

Works on serialized messages so a worker process can take a request straight off
the wire and hand back the reply without the server process parsing either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.message import DecodeError

from .._gen.phimask.v1 import transform_pb2 as pb
from ..errors import CallError
from ..pipeline import Document, Masker, Rejection


class RequestError(CallError):
    """A request phimask cannot take (malformed, too big, overloaded)."""


@dataclass(frozen=True)
class Limits:
    max_batch_records: int = 100_000


def decode_record(record: pb.Record) -> Document | Rejection:
    try:
        payload = orjson.loads(record.payload)
    except orjson.JSONDecodeError:
        return Rejection("invalid_json")
    if not isinstance(payload, dict):
        return Rejection("not_an_object")
    attributes = record.attributes
    return {"payload": payload, "attributes": dict(attributes) if attributes else {}}


def transform_request(
    masker: Masker, data: bytes, limits: Limits, part: tuple[int, int] = (0, 1)
) -> bytes:
    """Mask one serialized TransformRequest; raise RequestError for a bad request.

    `part=(i, k)` masks only the i-th of k equal slices of the records, with
    rejection indices still counted from the start of the whole request: the k
    replies, concatenated in order, are the reply to the whole request (protobuf
    concatenation appends repeated fields).
    """
    request = pb.TransformRequest()
    try:
        request.ParseFromString(data)
    except DecodeError:
        raise RequestError("INVALID_ARGUMENT", "request is not a valid TransformRequest") from None
    count = len(request.records)
    if count > limits.max_batch_records:
        raise RequestError(
            "RESOURCE_EXHAUSTED",
            f"records: {count} records exceed the limit of {limits.max_batch_records} a request",
        )
    first, stop = part[0] * count // part[1], (part[0] + 1) * count // part[1]
    records = request.records[first:stop]
    docs = [decode_record(r) for r in records]
    outcomes = masker.mask_batch(docs)
    response = pb.TransformResponse(policy_version=masker.policy_version)
    for index, (record, doc, outcome) in enumerate(zip(records, docs, outcomes, strict=True),
                                                   start=first):
        if outcome is not None:
            response.rejections.append(
                pb.Rejection(index=index, reason=outcome.reason, rule=outcome.rule, id=record.id)
            )
            continue
        assert isinstance(doc, dict)
        out = response.records.add(
            payload=orjson.dumps(doc["payload"]), id=record.id, key_id=record.key_id
        )
        if doc["attributes"]:
            out.attributes.update(_as_strings(doc["attributes"]))
    return response.SerializeToString()


def _as_strings(attributes: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in attributes.items()}
