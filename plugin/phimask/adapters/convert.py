"""Masked batches from one shipper protocol to the other, for cross routes.

OTLP -> Vector lays a LogRecord out as Vector's own `opentelemetry` source does: the
body's keys (or `message` for a plain body), `attributes`, `resources`, `scope`,
`severity_text`, `severity_number`, `timestamp`, `observed_timestamp`, `trace_id`,
`span_id`, `flags`. Vector -> OTLP puts a log event's fields in a key/value body and
its `timestamp` in time_unix_nano. Metric and trace events have no OTLP-logs form:
they are counted, and the caller reports them. Both run on masked data only.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2

from .._gen.vector import event_pb2 as ev
from .._gen.vector import vector_pb2


def _value_of_any(value: AnyValue) -> ev.Value:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return ev.Value(raw_bytes=value.string_value.encode())
    if kind == "bool_value":
        return ev.Value(boolean=value.bool_value)
    if kind == "int_value":
        return ev.Value(integer=value.int_value)
    if kind == "double_value":
        return ev.Value(float=value.double_value)
    if kind == "bytes_value":
        return ev.Value(raw_bytes=value.bytes_value)
    if kind == "array_value":
        return ev.Value(array=ev.ValueArray(items=[_value_of_any(v)
                                                   for v in value.array_value.values]))
    if kind == "kvlist_value":
        return ev.Value(map=ev.ValueMap(fields=_map_of_kvs(value.kvlist_value.values)))
    return ev.Value(null=ev.NULL_VALUE)


def _map_of_kvs(kvs: Any) -> dict[str, ev.Value]:
    return {kv.key: _value_of_any(kv.value) for kv in kvs}


def _stamp(nanos: int) -> ev.Value:
    return ev.Value(timestamp=Timestamp(seconds=nanos // 1_000_000_000,
                                        nanos=nanos % 1_000_000_000))


def otlp_to_vector(data: bytes) -> bytes:
    """A serialized ExportLogsServiceRequest as a serialized PushEventsRequest."""
    request = ExportLogsServiceRequest.FromString(data)
    out = vector_pb2.PushEventsRequest()
    for rl in request.resource_logs:
        resources = _map_of_kvs(rl.resource.attributes)
        for sl in rl.scope_logs:
            scope = {"name": ev.Value(raw_bytes=sl.scope.name.encode()),
                     "version": ev.Value(raw_bytes=sl.scope.version.encode())}
            if sl.scope.attributes:
                scope["attributes"] = ev.Value(map=ev.ValueMap(
                    fields=_map_of_kvs(sl.scope.attributes)))
            for record in sl.log_records:
                out.events.append(ev.EventWrapper(log=ev.Log(
                    fields=_fields_of(record, resources, scope))))
    return out.SerializeToString()


def _fields_of(record: logs_pb2.LogRecord, resources: dict[str, ev.Value],
               scope: dict[str, ev.Value]) -> dict[str, ev.Value]:
    fields: dict[str, ev.Value] = {}
    if record.body.WhichOneof("value") == "kvlist_value":
        fields.update(_map_of_kvs(record.body.kvlist_value.values))
    elif record.HasField("body"):
        fields["message"] = _value_of_any(record.body)
    if record.attributes:
        fields["attributes"] = ev.Value(map=ev.ValueMap(fields=_map_of_kvs(record.attributes)))
    if resources:
        fields["resources"] = ev.Value(map=ev.ValueMap(fields=resources))
    fields["scope"] = ev.Value(map=ev.ValueMap(fields=scope))
    if record.severity_text:
        fields["severity_text"] = ev.Value(raw_bytes=record.severity_text.encode())
    if record.severity_number:
        fields["severity_number"] = ev.Value(integer=record.severity_number)
    if record.time_unix_nano:
        fields["timestamp"] = _stamp(record.time_unix_nano)
    if record.observed_time_unix_nano:
        fields["observed_timestamp"] = _stamp(record.observed_time_unix_nano)
    if record.trace_id:
        fields["trace_id"] = ev.Value(raw_bytes=record.trace_id.hex().encode())
    if record.span_id:
        fields["span_id"] = ev.Value(raw_bytes=record.span_id.hex().encode())
    if record.flags:
        fields["flags"] = ev.Value(integer=record.flags)
    return fields


def _any_of_value(value: ev.Value) -> AnyValue:
    kind = value.WhichOneof("kind")
    if kind == "raw_bytes":
        try:
            return AnyValue(string_value=value.raw_bytes.decode())
        except UnicodeDecodeError:
            return AnyValue(bytes_value=value.raw_bytes)
    if kind == "boolean":
        return AnyValue(bool_value=value.boolean)
    if kind == "integer":
        return AnyValue(int_value=value.integer)
    if kind == "float":
        return AnyValue(double_value=value.float)
    if kind == "timestamp":
        return AnyValue(string_value=value.timestamp.ToJsonString())
    if kind == "array":
        out = AnyValue()
        out.array_value.values.extend(_any_of_value(v) for v in value.array.items)
        return out
    if kind == "map":
        out = AnyValue()
        out.kvlist_value.values.extend(_kvs_of_map(value.map.fields))
        return out
    return AnyValue()


def _kvs_of_map(fields: Any) -> list[KeyValue]:
    return [KeyValue(key=k, value=_any_of_value(v)) for k, v in fields.items()]


def vector_to_otlp(data: bytes) -> tuple[bytes, int]:
    """A serialized PushEventsRequest as a serialized ExportLogsServiceRequest, and how
    many metric/trace events had to be left out."""
    request = vector_pb2.PushEventsRequest.FromString(data)
    records: list[logs_pb2.LogRecord] = []
    left_out = 0
    for wrapper in request.events:
        if wrapper.WhichOneof("event") != "log":
            left_out += 1
            continue
        log = wrapper.log
        record = logs_pb2.LogRecord()
        fields = dict(log.fields)
        stamp = fields.get("timestamp")
        if stamp is not None and stamp.WhichOneof("kind") == "timestamp":
            record.time_unix_nano = stamp.timestamp.ToNanoseconds()
            del fields["timestamp"]
        if log.HasField("value"):
            record.body.CopyFrom(_any_of_value(log.value))
        else:
            record.body.kvlist_value.values.extend(_kvs_of_map(fields))
        records.append(record)
    out = ExportLogsServiceRequest()
    if records:
        out.resource_logs.add().scope_logs.add(
            scope={"name": "phimask"}, log_records=records)
    return (out.SerializeToString() if records else b""), left_out
