"""phimask.v1: TransformRequest bytes in, TransformResponse bytes out.

Works on serialized messages so a worker process can take a request straight off
the wire and hand back the reply without the server process parsing either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.message import DecodeError

from .._gen.phimask.v1 import transform_pb2 as pb
from ..errors import CallError
from ..integrity import BatchVerdict, Verifier
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
    masker: Masker, data: bytes, limits: Limits, part: tuple[int, int] = (0, 1),
    batch_signature: tuple[str, str] | None = None,
) -> bytes:
    """Mask one serialized TransformRequest; raise RequestError for a bad request.

    `part=(i, k)` masks only the i-th of k equal slices of the records, with
    rejection indices still counted from the start of the whole request: the k
    replies, concatenated in order, are the reply to the whole request (protobuf
    concatenation appends repeated fields). `batch_signature` is (base64 signature,
    key id) from the call's metadata, over all of `data`.
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
    docs = _verified_docs(masker.verifier, data, records, batch_signature)
    outcomes = masker.mask_batch(docs)
    signer = masker.verifier if masker.verifier is not None and masker.verifier.signs else None
    response = pb.TransformResponse(policy_version=masker.policy_version)
    rejected = masker.settle_rejections(
        "native", len(records), [(i, o) for i, o in enumerate(outcomes) if o is not None],
        lambda i: records[i].SerializeToString())
    for i, why in rejected:
        response.rejections.append(pb.Rejection(
            index=first + i, reason=why.reason, rule=why.rule, id=records[i].id,
            quarantine_id=why.quarantine_id))
    add, dumps = response.records.add, orjson.dumps  # once, not per record
    for record, doc, outcome in zip(records, docs, outcomes, strict=True):
        if outcome is not None:
            continue
        assert isinstance(doc, dict)
        payload = dumps(doc["payload"])
        out = add(payload=payload, id=record.id)
        if signer is not None:
            signed = signer.sign(payload)
            if signed is not None:
                out.signature, out.key_id = signed
        attributes = doc["attributes"]
        if attributes:
            out.attributes.update(_as_strings(attributes))
    return response.SerializeToString()


def _verified_docs(verifier: Verifier | None, data: bytes, records: Sequence[pb.Record],
                   batch_signature: tuple[str, str] | None) -> list[Document | Rejection]:
    """Each record's document, or why it is rejected: signatures are checked before a
    payload is even parsed."""
    if verifier is None or not verifier.checks:
        return [decode_record(r) for r in records]
    verdict = verifier.check_batch(data, batch_signature)
    if isinstance(verdict, Rejection):
        return [verdict] * len(records)
    if verdict == BatchVerdict.VERIFIED:
        return [decode_record(r) for r in records]
    return [failure if (failure := verifier.verify(r.payload, r.signature, r.key_id))
            else decode_record(r) for r in records]


def _as_strings(attributes: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in attributes.items()}
