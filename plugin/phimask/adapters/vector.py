"""Vector's native protocol (v2): PushEventsRequest bytes in, the masked request to forward out.

No server code here: this is the translation between Vector's events and the core's
documents. One `Masker.mask_batch` call a request, so free-text scanning sees the
whole batch at once.

Documents (roots `VECTOR_ROOTS`): a log event is ``{"payload": <its value>}``, so a
policy's `payload.patient.ssn` or bare `patient.ssn` means the event's `.patient.ssn`.

* An object-rooted event comes in `fields` only: the payload is a dict of them.
* A non-object root (a string, a number, an array, ...) comes in `value` with a dummy
  ``fields = {".": null}``: the payload is that value, and on the way back `value` is
  set. Vector reads `value` over `fields`, so `fields` is kept as received when it is
  that dummy (or empty) and reset to the dummy otherwise: nothing unmasked rides along.
* `metadata` and `metadata_full` (its `secrets` too) are never read, logged or
  changed; nor is anything else in the event outside `fields` and `value`.
* Metric and Trace are empty messages here: their content stays unknown fields, which
  protobuf writes back unchanged, so those events go back byte for byte. An
  EventWrapper with no known event in it is rejected (`unsupported_event`).

Values, Vector -> Python:

* raw_bytes -> str, decoded as UTF-8 with ``errors="surrogateescape"``: bytes that are
  not UTF-8 become lone surrogates, the rest of the text is still scanned, and the
  string encodes back to exactly the bytes that came in. An operator that needs the
  text as UTF-8 (hmac) cannot take such a string: that event alone is rejected
  (`invalid_utf8`).
* timestamp -> str: its RFC 3339 UTC text (``2025-03-03T08:00:00.070Z``, with 0, 3, 6
  or 9 fraction digits: nanoseconds are kept). The masker treats it the way the native
  path treats a JSON date string: hints and rules apply (`generalize` gives the year,
  `redact` its text) and an unmapped one is scanned. A nested `admitted_at` is masked
  as it would be in JSON, and a top-level `timestamp` is kept by the safe-harbor hints.
  A timestamp string that comes out of the masker as the same object goes back as
  the exact Timestamp (seconds, nanos) that came in; any text the masker put in its
  place goes back as raw_bytes. A timestamp outside 0001-01-01..9999-12-31, or with
  nanos out of range, rejects its event (`invalid_timestamp`). Why not a `datetime`:
  the walker scans `str` values only, and operators take scalars (`generalize` would
  raise TypeError on a datetime, failing the whole batch).
* integer -> int, float -> float, boolean -> bool, map -> dict, array -> list,
  null -> None. A Value with no kind set (Vector never sends one) -> None.

Python -> Vector: str -> raw_bytes (so a masked int or float becomes raw_bytes),
int -> integer, float -> float, bool -> boolean, None -> null, dict -> map,
list -> array. Every Value written has a kind, empty maps and arrays included. A NaN or
infinite float is never written (Vector would crash on it): an event that would
carry one is rejected (`invalid_float`); one the masker replaced is not.

The request is parsed once and log events are rewritten in place; rejected events are
then deleted and the request is serialized again. If the request does not parse as a
whole, its events are parsed one by one: an event that does not parse (for example,
one nested deeper than protobuf's limit of about 32 maps) is rejected alone
(`invalid_event`). Only bytes that cannot be split into events are INVALID_ARGUMENT.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from .._gen.vector import event_pb2 as ev
from .._gen.vector import vector_pb2
from ..errors import CallError
from ..integrity import MISSING, BatchVerdict, Verifier, canonical_json
from ..pipeline import MAX_DEPTH, Document, Masker, Rejection
from .native import Limits, RequestError

VECTOR_ROOTS = ("payload",)


@dataclass(frozen=True)
class VectorResult:
    # Serialized PushEventsRequest: accepted log events masked, metric and trace events
    # untouched, in request order; b"" when nothing is left.
    forward: bytes
    accepted: int  # log events accepted
    passed_through: int  # metric and trace events
    rejections: list[tuple[int, Rejection]]  # (index of the event in the request, why)
    left_out: int = 0  # metric/trace events a cross route to OTLP logs could not carry


def transform_push(masker: Masker, data: bytes, limits: Limits,
                   batch_signature: tuple[str, str] | None = None) -> VectorResult:
    """Mask one serialized PushEventsRequest; raise RequestError for a bad request.
    `batch_signature`: (base64 signature, key id) from the call's metadata."""
    # `where[p]`: the index in the request of `events[p]`.
    request, where, rejections = _parse(data, limits)
    events = request.events
    positions: list[int] = []  # in `events`, of the log events
    logs: list[ev.Log] = []
    dropped: list[int] = []  # positions in `events` to leave out
    passed = 0
    for position, wrapper in enumerate(events):
        kind = wrapper.WhichOneof("event")
        if kind == "log":
            positions.append(position)
            logs.append(wrapper.log)
        elif kind is not None:
            passed += 1
        else:
            dropped.append(position)
            rejections.append((where[position], Rejection("unsupported_event")))

    stamps: _Stamps = {}
    docs = [_decode_log(log, stamps) for log in logs]
    failures = _verify(masker.verifier, data, batch_signature, docs)
    try:
        outcomes = masker.mask_batch(docs)
    except CallError:
        raise  # the vault is down: the whole batch waits, nothing is rejected for it
    except Exception:
        # An event the masker cannot take (an hmac rule on text that is not UTF-8)
        # must not fail its whole batch forever (Vector retries): mask one at a time
        # from a fresh decode, the documents above being half masked.
        stamps = {}
        docs = [_decode_log(log, stamps) for log in logs]
        if failures is not None:  # as checked above; take the signature fields out again
            _verify(masker.verifier, data, batch_signature, docs, failures)
        outcomes = [_mask_alone(masker, doc) for doc in docs]

    accepted = 0
    signer = masker.verifier if masker.verifier is not None and masker.verifier.signs else None
    for position, log, doc, outcome in zip(positions, logs, docs, outcomes, strict=True):
        if outcome is None:
            assert not isinstance(doc, Rejection)
            try:
                _write_log(log, doc["payload"], stamps)
                if signer is not None and type(doc["payload"]) is dict:
                    for key, text in (signer.signature_fields(doc["payload"]) or {}).items():
                        log.fields[key].raw_bytes = text.encode()
            except _Invalid as exc:
                outcome = Rejection(exc.reason)
            except UnicodeEncodeError:
                outcome = Rejection("invalid_utf8")
        if outcome is None:
            accepted += 1
        else:
            dropped.append(position)
            rejections.append((where[position], outcome))
    for position in sorted(dropped, reverse=True):
        del events[position]
    rejections.sort(key=lambda item: item[0])
    # The originals as sent: an event that failed on its way out is half written.
    originals = functools.cache(lambda: _split_events(data) or [])  # only if quarantined
    rejections = masker.settle_rejections("vector", accepted + len(rejections), rejections,
                                          lambda i: originals()[i])
    forward = request.SerializeToString() if len(events) else b""
    return VectorResult(forward, accepted, passed, rejections)


def _verify(verifier: Verifier | None, data: bytes, batch_signature: tuple[str, str] | None,
            docs: list[Document | Rejection], known: list[Rejection | None] | None = None
            ) -> list[Rejection | None] | None:
    """Check each event's signature before it is masked; a failed document becomes its
    rejection in `docs`. With `known` (the failures found before) nothing is checked
    again. None when integrity is off."""
    if verifier is None or not verifier.checks:
        return None
    verified = True  # with `known`, what passed was verified before
    if known is None:
        verdict = verifier.check_batch(data, batch_signature)
        if isinstance(verdict, Rejection):
            known = [verdict] * len(docs)
        verified = verdict == BatchVerdict.VERIFIED
    failures: list[Rejection | None] = []
    for index, doc in enumerate(docs):
        failure = known[index] if known is not None else None
        if failure is None and isinstance(doc, dict):
            payload = doc["payload"]
            if isinstance(payload, dict):
                failure = verifier.check_fields(payload, _canonical_of(payload), verified)
            elif verifier.required and not verified:
                failure = MISSING
        if failure is not None:
            docs[index] = failure
        failures.append(failure)
    return failures


def _canonical_of(payload: dict[str, Any]) -> Callable[[], bytes]:
    return lambda: canonical_json(payload)


class _Invalid(Exception):
    """A value that cannot be carried; `reason` is a code, never the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mask_alone(masker: Masker, doc: Document | Rejection) -> Rejection | None:
    try:
        (outcome,) = masker.mask_batch([doc])
    except UnicodeError:
        return Rejection("invalid_utf8")
    except CallError:
        raise
    except Exception:  # never a value, never the whole batch
        return Rejection("mask_error")
    return outcome


# Parsing


def _parse(data: bytes, limits: Limits
           ) -> tuple[vector_pb2.PushEventsRequest, Sequence[int], list[tuple[int, Rejection]]]:
    """The request, the index in the request of each of its events, and the events
    that did not parse (index in the request, rejection)."""
    request = vector_pb2.PushEventsRequest()
    try:
        request.ParseFromString(data)
    except DecodeError:
        pass
    else:
        _check_count(len(request.events), limits)
        return request, range(len(request.events)), []
    # One event may be at fault (nested too deep, say): take the events one by one.
    chunks = _split_events(data)
    if chunks is None:
        raise RequestError("INVALID_ARGUMENT",
                           "request is not a valid PushEventsRequest") from None
    _check_count(len(chunks), limits)
    request = vector_pb2.PushEventsRequest()
    where: list[int] = []
    failed: list[tuple[int, Rejection]] = []
    for index, chunk in enumerate(chunks):
        wrapper = request.events.add()
        try:
            wrapper.ParseFromString(chunk)
        except DecodeError:
            del request.events[-1]
            failed.append((index, Rejection("invalid_event")))
        else:
            where.append(index)
    return request, where, failed


def _check_count(count: int, limits: Limits) -> None:
    if count > limits.max_batch_records:
        raise RequestError(
            "RESOURCE_EXHAUSTED",
            f"events: {count} events exceed the limit of {limits.max_batch_records} a request",
        )


def _split_events(data: bytes) -> list[bytes] | None:
    """The serialized EventWrappers of a PushEventsRequest (field 1, length-delimited),
    unknown fields skipped; None if the bytes are not a protobuf message."""
    chunks: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        if pos < 0:
            return None
        wire_type = key & 7
        if wire_type == 0:
            _, pos = _read_varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length, start = _read_varint(data, pos)
            if start < 0:
                return None
            pos = start + length
            if key == 0x0A and pos <= end:
                chunks.append(data[start:pos])
        else:
            return None
        if pos < 0 or pos > end or key >> 3 == 0:
            return None
    return chunks


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); position -1 if there is no valid varint at `pos`."""
    result = shift = 0
    for i in range(pos, min(pos + 10, len(data))):
        byte = data[i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i + 1
        shift += 7
    return 0, -1


# Vector -> Python

# id(str) -> (that str, seconds, nanos): the timestamps decoded from one request.
_Stamps = dict[int, tuple[str, int, int]]


def _decode_log(log: ev.Log, stamps: _Stamps) -> Document | Rejection:
    try:
        if log.HasField("value"):
            return {"payload": _decode(log.value, stamps, 1)}
        return {"payload": _decode_map(log.fields, stamps, 1)}
    except _Invalid as exc:
        return Rejection(exc.reason)


def _decode_map(fields: Any, stamps: _Stamps, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise _Invalid("too_deep")
    out: dict[str, Any] = {}
    for key in fields:
        value = fields[key]
        if value.HasField("raw_bytes"):  # the common case, inline
            out[key] = value.raw_bytes.decode("utf-8", "surrogateescape")
        else:
            out[key] = _decode(value, stamps, depth + 1)
    return out


def _decode(value: ev.Value, stamps: _Stamps, depth: int) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "raw_bytes":
        return value.raw_bytes.decode("utf-8", "surrogateescape")
    if kind == "integer":
        return value.integer
    if kind == "map":
        return _decode_map(value.map.fields, stamps, depth)
    if kind == "float":
        return value.float  # a NaN or infinity is refused on the way out
    if kind == "boolean":
        return value.boolean
    if kind == "timestamp":
        stamp = value.timestamp
        seconds, nanos = stamp.seconds, stamp.nanos
        text = _rfc3339(seconds, nanos)
        stamps[id(text)] = (text, seconds, nanos)
        return text
    if kind == "array":
        if depth > MAX_DEPTH:
            raise _Invalid("too_deep")
        return [_decode(item, stamps, depth + 1) for item in value.array.items]
    return None  # null, or no kind at all


# Timestamp.seconds of 0001-01-01T00:00:00Z and of 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
_EPOCH = dt.datetime(1970, 1, 1)  # naive: isoformat() then has no offset to strip


# seconds -> its text: the events of a batch mostly share a few seconds.
_SECOND_TEXTS: dict[int, str] = {}


def _rfc3339(seconds: int, nanos: int) -> str:
    if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos <= 999_999_999):
        raise _Invalid("invalid_timestamp")
    text = _SECOND_TEXTS.get(seconds)
    if text is None:
        if len(_SECOND_TEXTS) >= 4096:
            _SECOND_TEXTS.clear()  # bounded; it refills with the seconds of now
        text = _SECOND_TEXTS[seconds] = (_EPOCH + dt.timedelta(seconds=seconds)).isoformat()
    if not nanos:
        return text + "Z"
    if not nanos % 1_000_000:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if not nanos % 1_000:
        return f"{text}.{nanos // 1_000:06d}Z"
    return f"{text}.{nanos:09d}Z"


# Python -> Vector

_NULL = ev.NULL_VALUE


def _write_log(log: ev.Log, payload: Any, stamps: _Stamps) -> None:
    if log.HasField("value"):
        target = log.value
        target.Clear()
        _encode(target, payload, stamps)
        fields = log.fields
        if fields and not (
            len(fields) == 1 and "." in fields and fields["."].WhichOneof("kind") == "null"
        ):
            # Vector reads `value` over `fields`: leave nothing unmasked in there.
            fields.clear()
            fields["."].null = _NULL
        return
    if type(payload) is not dict:  # the masker keeps an object root an object
        raise _Invalid("unsupported_value")
    fields = log.fields
    fields.clear()
    _encode_map(fields, payload, stamps)


def _encode_map(target: Any, items: dict[str, Any], stamps: _Stamps) -> None:
    for key, value in items.items():
        if type(value) is str and not (stamps and id(value) in stamps):
            target[key].raw_bytes = value.encode("utf-8", "surrogateescape")
        else:
            _encode(target[key], value, stamps)


def _encode(target: ev.Value, value: Any, stamps: _Stamps) -> None:
    """Set `target` (an empty Value) to a Python value, always with a kind."""
    t = type(value)
    if t is str:
        stamp = stamps.get(id(value)) if stamps else None
        if stamp is not None and stamp[0] is value:  # a timestamp the masker left alone
            ts = target.timestamp
            ts.seconds = stamp[1]
            ts.nanos = stamp[2]
        else:
            target.raw_bytes = value.encode("utf-8", "surrogateescape")
    elif t is int:
        if not -(1 << 63) <= value < 1 << 63:
            raise _Invalid("unsupported_value")
        target.integer = value
    elif t is dict:
        vmap = target.map
        if value:
            _encode_map(vmap.fields, value, stamps)
        else:
            vmap.SetInParent()
    elif t is float:
        if not math.isfinite(value):
            raise _Invalid("invalid_float")
        target.float = value
    elif t is bool:
        target.boolean = value
    elif value is None:
        target.null = _NULL
    elif t is list:
        array = target.array
        if value:
            add = array.items.add
            for item in value:
                _encode(add(), item, stamps)
        else:
            array.SetInParent()
    else:  # nothing the decoder or an operator makes
        raise _Invalid("unsupported_value")
