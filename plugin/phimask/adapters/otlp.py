"""OTLP logs: ExportLogsServiceRequest bytes in, the masked request to forward out.

Documents (roots `OTLP_ROOTS`), all masked by one `Masker.mask_batch` call a request:

* a LogRecord: ``{"body": <value>, "attributes": {key: value}}``, no `body` if it has
  nothing set. `body` is the default root: Fluent Bit sends a record as a kvlist body,
  so `patient.ssn` finds `body.patient.ssn` as the native path finds the payload's.
* once for all the records under it, a resource: ``{"resource": {key: value}}``, and
  a scope: ``{"scope": {"scope_name", "scope_version", "attributes"}}`` (not `name`:
  safe-harbor takes a bare `name` for a person's); an empty one gets no document.

A rejected resource rejects all its records, else a rejected scope, else the record's
own rejection. Values: string/bool/int/double/bytes -> str/bool/int/float/bytes (bytes
are not scanned), array -> list, kvlist -> dict (of duplicate keys the last wins, and
only it goes back out), nothing set -> None, and back as their Python type says (an
int beyond int64 as text). `string_value_strindex` rejects its record
(`unsupported_value`); what protobuf does not parse (strings that are not UTF-8 too)
fails the request: INVALID_ARGUMENT. Masked values are written into the parsed request
where they changed (dicts and lists are compared with snapshots of their values as
read); rejected records, and the containers they leave empty, are deleted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from ..integrity import BatchVerdict, Verifier, canonical_json
from ..pipeline import Document, Masker, Rejection, describe_rejections
from .native import Limits, RequestError

OTLP_ROOTS = ("body", "attributes", "resource", "scope")


@dataclass(frozen=True)
class OtlpResult:
    # A serialized ExportLogsServiceRequest with only the accepted records, masked, in
    # their original ResourceLogs/ScopeLogs; b"" when nothing was accepted.
    forward: bytes
    accepted: int  # LogRecords in `forward`
    # (flat index of the LogRecord in request order, why); never a value
    rejections: list[tuple[int, Rejection]]


# id(dict or list read from the request) -> its values as read. A snapshot holds the
# containers inside it, so an id stays theirs for as long as the request is masked.
_Snapshots = dict[int, list[Any]]
_INT64 = range(-(1 << 63), 1 << 63)
_FIELDS = {str: "string_value", bool: "bool_value", float: "double_value", bytes: "bytes_value"}


class _Unsupported(Exception):
    """A string_value_strindex: an index into a string table only profiles have."""


def _value(value: AnyValue, snaps: _Snapshots) -> Any:
    """An AnyValue as a Python value."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "kvlist_value":
        return _dict(value.kvlist_value.values, snaps)
    if which == "array_value":
        out = [_value(item, snaps) for item in value.array_value.values]
        snaps[id(out)] = out[:]
        return out
    if which == "string_value_strindex":
        raise _Unsupported
    return None if which is None else getattr(value, which)  # int, double, bool, bytes


def _dict(entries: Any, snaps: _Snapshots) -> dict[str, Any]:
    """Repeated KeyValues (attributes, a kvlist) as a dict."""
    out = {kv.key: _value(kv.value, snaps) for kv in entries}
    snaps[id(out)] = list(out.values())
    return out


def _set(target: AnyValue, value: Any) -> None:
    """Make `target` the AnyValue of a Python value."""
    t = type(value)
    if t in _FIELDS:
        setattr(target, _FIELDS[t], value)
    elif t is dict or t is list:
        inner = target.kvlist_value if t is dict else target.array_value
        inner.SetInParent()  # an empty map or list is still one
        _fill(inner.values, value)
    elif t is int and value in _INT64:
        target.int_value = value
    elif value is None:
        target.Clear()
    else:  # a bigger int; no operator returns other types
        target.string_value = str(value)


def _fill(entries: Any, value: dict[str, Any] | list[Any]) -> None:
    """Replace repeated KeyValues (from a dict) or AnyValues (from a list)."""
    del entries[:]
    if type(value) is dict:
        for key, item in value.items():
            _set(entries.add(key=key).value, item)
    else:
        for item in value:
            _set(entries.add(), item)


def _put(entries: Any, value: dict[str, Any] | list[Any], snaps: _Snapshots) -> None:
    """Write a masked dict or list into the entries it was read from, where it changed."""
    if not value or len(value) != len(entries):  # entries dropped, duplicates collapsed
        _fill(entries, value)
        return
    is_dict = type(value) is dict
    items = value.values() if isinstance(value, dict) else value
    for index, (item, was) in enumerate(zip(items, snaps[id(value)], strict=True)):
        if item is not was:
            _set(entries[index].value if is_dict else entries[index], item)
        elif type(item) is dict or type(item) is list:
            _update(entries[index].value if is_dict else entries[index], item, was, snaps)


def _update(target: AnyValue, value: Any, was: Any, snaps: _Snapshots) -> None:
    """Write a masked value into the AnyValue it was read as (`was`), where it changed."""
    if value is not was:
        _set(target, value)
    elif type(value) is dict:
        _put(target.kvlist_value.values, value, snaps)
    elif type(value) is list:
        _put(target.array_value.values, value, snaps)


def _read(message: Any, snaps: _Snapshots) -> Document | Rejection:
    """The document of a LogRecord, a Resource or an InstrumentationScope."""
    try:
        attributes = _dict(message.attributes, snaps) if message.attributes else {}
        body = _value(message.body, snaps) if isinstance(message, LogRecord) else None
    except _Unsupported:
        return Rejection("unsupported_value")
    if isinstance(message, Resource):
        return {"resource": attributes}
    if isinstance(message, InstrumentationScope):
        return {"scope": {"scope_name": message.name, "scope_version": message.version,
                          "attributes": attributes}}
    # attributes first (as before): a record's first rejection found is the one it gets
    return {"attributes": attributes} if body is None else {"attributes": attributes, "body": body}


def _write(message: Any, doc: Document, body: Any, snaps: _Snapshots) -> None:
    """Put a masked document back into the message it was read from (`body`: as read)."""
    if "resource" in doc:
        _put(message.attributes, doc["resource"], snaps)
    elif "scope" in doc:
        scope = doc["scope"]
        for field in ("name", "version"):
            text = scope.get("scope_" + field)  # None if dropped
            if text != getattr(message, field):
                setattr(message, field, "" if text is None else str(text))
        _put(message.attributes, scope.get("attributes") or {}, snaps)  # {} if dropped
    else:
        _update(message.body, doc.get("body"), body, snaps)
        _put(message.attributes, doc["attributes"], snaps)


def _drop(entries: Any, keep: list[bool]) -> None:
    """Delete the entries of a repeated field that are not to be kept."""
    for index in reversed(range(len(entries))):
        if not keep[index]:
            del entries[index]


def transform_export(masker: Masker, data: bytes, limits: Limits,
                     batch_signature: tuple[str, str] | None = None) -> OtlpResult:
    """Mask one serialized ExportLogsServiceRequest; raise RequestError for a bad one.
    `batch_signature`: (base64 signature, key id) from the call's metadata."""
    try:
        request = ExportLogsServiceRequest.FromString(data)
    except DecodeError:
        raise RequestError("INVALID_ARGUMENT",
                           "request is not a valid ExportLogsServiceRequest") from None
    resource_logs = request.resource_logs
    count = sum(len(sl.log_records) for rl in resource_logs for sl in rl.scope_logs)
    if count > limits.max_batch_records:
        raise RequestError("RESOURCE_EXHAUSTED", f"log_records: {count} exceed the limit "
                           f"of {limits.max_batch_records} a request")
    if not count:
        return OtlpResult(b"", 0, [])

    # Documents in request order ([resource], per scope [scope] and its records), and
    # for each (the message it was read from, its body as read).
    snaps: _Snapshots = {}
    docs: list[Document | Rejection] = []
    sources: list[tuple[Any, Any]] = []
    # per ScopeLogs: it, its resource's and scope's documents, its records' first, end
    groups: list[tuple[Any, list[int], int, int]] = []

    check = _record_check(masker.verifier, data, batch_signature)

    def add(message: Any) -> int:
        doc = _read(message, snaps)
        if check is not None and isinstance(message, LogRecord):
            doc = check(doc)
        docs.append(doc)
        sources.append((message, doc.get("body") if isinstance(doc, dict) else None))
        return len(docs) - 1

    for rl in resource_logs:
        above = [add(rl.resource)] if rl.resource.attributes else []
        for sl in rl.scope_logs:
            scope = sl.scope
            has_scope = scope.name or scope.version or scope.attributes
            shared = [*above, add(scope)] if has_scope else above
            start = len(docs)
            for record in sl.log_records:
                add(record)
            groups.append((sl, shared, start, len(docs)))

    outcomes = masker.mask_batch(docs)
    for _, shared, start, end in groups:  # the resource's rejection, else the scope's
        inherited = next((outcomes[i] for i in shared if outcomes[i] is not None), None)
        outcomes[start:end] = [inherited or o for o in outcomes[start:end]]
    signer = masker.verifier if masker.verifier is not None and masker.verifier.signs else None
    for doc, outcome, (message, body) in zip(docs, outcomes, sources, strict=True):
        if outcome is None and isinstance(doc, dict):
            _write(message, doc, body, snaps)
            if signer is not None and isinstance(message, LogRecord):
                for key, text in (signer.signature_fields(doc) or {}).items():
                    message.attributes.add(key=key).value.string_value = text
    per_record = [o for _, _, start, end in groups for o in outcomes[start:end]]
    rejections = [(flat, o) for flat, o in enumerate(per_record) if o is not None]
    # A rejected LogRecord was never written to: it is still the original.
    messages = functools.cache(lambda: [sources[i][0] for _, _, start, end in groups
                                        for i in range(start, end)])  # only if quarantined
    rejections = masker.settle_rejections("otlp", count, rejections,
                                          lambda flat: messages()[flat].SerializeToString())
    for sl, _, start, end in groups:  # the records rejected, then what they leave empty
        _drop(sl.log_records, [o is None for o in outcomes[start:end]])
    for rl in resource_logs:
        _drop(rl.scope_logs, [bool(sl.log_records) for sl in rl.scope_logs])
    _drop(resource_logs, [bool(rl.scope_logs) for rl in resource_logs])
    forward = request.SerializeToString() if resource_logs else b""  # b"": all rejected
    return OtlpResult(forward, count - len(rejections), rejections)


def _record_check(verifier: Verifier | None, data: bytes,
                  batch_signature: tuple[str, str] | None
                  ) -> Callable[[Document | Rejection], Document | Rejection] | None:
    """What checks each LogRecord's document before it is masked (signature attributes
    taken out), or None when integrity is off."""
    if verifier is None or not verifier.checks:
        return None
    verdict = verifier.check_batch(data, batch_signature)
    if isinstance(verdict, Rejection):
        return lambda doc: verdict
    verified = verdict == BatchVerdict.VERIFIED

    def check(doc: Document | Rejection) -> Document | Rejection:
        if isinstance(doc, Rejection):
            return doc
        failure = verifier.check_fields(doc["attributes"], lambda: canonical_json(doc), verified)
        return doc if failure is None else failure

    return check


def partial_success_message(rejections: Iterable[tuple[int, Rejection]]) -> str:
    """`3 log records rejected: operator_error x2 (rule patient.dob), ...`: no values."""
    return describe_rejections(rejections, "log record", "log records")
