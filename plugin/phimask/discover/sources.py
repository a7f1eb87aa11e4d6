"""Sample records from the files a log pipeline already writes.

* `ndjson`: one JSON object a line (what `phimask mask` reads).
* `vector-json`: Vector's `json` codec (a file or console sink): one event object a
  line, its fields at the top, as phimask's Vector adapter masks it.
* `otlp-json`: OTLP/JSON, as the OpenTelemetry Collector's `file` exporter writes it:
  one ExportLogsServiceRequest a line (`resourceLogs[].scopeLogs[].logRecords[]`).
  Each LogRecord becomes a document as the OTLP adapter builds it: the body (the
  default root, AnyValue JSON turned into plain values), `attributes`, and the
  resource's attributes under `resource`.

A line that cannot be read is reported by number and reason, never by content, and
skipped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

FORMATS = ("ndjson", "otlp-json", "vector-json")
MAX_BAD_LINES = 1_000  # bad lines remembered (all are counted)


@dataclass(frozen=True)
class BadLine:
    number: int
    reason: str  # a code-like phrase, never content


@dataclass
class ReadStats:
    lines: int = 0
    bad_total: int = 0
    bad: list[BadLine] | None = None

    def reject(self, number: int, reason: str) -> None:
        self.bad_total += 1
        if self.bad is None:
            self.bad = []
        if len(self.bad) < MAX_BAD_LINES:
            self.bad.append(BadLine(number, reason))


class NotOtlp(ValueError):
    """A line that is JSON but not an OTLP logs export; the message is a reason."""


def read_documents(stream: IO[bytes], fmt: str, stats: ReadStats,
                   progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Documents (`{"payload": ..., ...}`) of the records in `stream`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")
    for number, raw in enumerate(stream, start=1):
        if progress is not None:
            progress(len(raw))
        line = raw.strip()
        if not line:
            continue
        stats.lines += 1
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            stats.reject(number, "invalid JSON")
            continue
        if not isinstance(data, dict):
            stats.reject(number, "not a JSON object")
            continue
        if fmt != "otlp-json":
            yield {"payload": data}
            continue
        try:
            docs = otlp_documents(data)
        except NotOtlp as exc:
            stats.reject(number, str(exc))
            continue
        yield from docs


def otlp_documents(export: dict[str, Any]) -> list[dict[str, Any]]:
    """The LogRecords of one OTLP/JSON ExportLogsServiceRequest as documents."""
    resource_logs = _field(export, "resourceLogs", "resource_logs")
    if not isinstance(resource_logs, list):
        raise NotOtlp("not an OTLP logs export (no resourceLogs list)")
    docs: list[dict[str, Any]] = []
    for rl in resource_logs:
        if not isinstance(rl, dict):
            raise NotOtlp("resourceLogs entry is not an object")
        resource = rl.get("resource") or {}
        if not isinstance(resource, dict):
            raise NotOtlp("resource is not an object")
        resource_attrs = key_values(resource.get("attributes") or [])
        for sl in _field(rl, "scopeLogs", "scope_logs") or []:
            if not isinstance(sl, dict):
                raise NotOtlp("scopeLogs entry is not an object")
            for record in _field(sl, "logRecords", "log_records") or []:
                if not isinstance(record, dict):
                    raise NotOtlp("logRecords entry is not an object")
                doc: dict[str, Any] = {}
                if "body" in record:
                    doc["payload"] = any_value(record["body"])
                attributes = key_values(record.get("attributes") or [])
                if attributes:
                    doc["attributes"] = attributes
                if resource_attrs:
                    doc["resource"] = resource_attrs
                docs.append(doc)
    return docs


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj[camel] if camel in obj else obj.get(snake)


_KINDS = {
    "stringValue": "string", "string_value": "string",
    "boolValue": "bool", "bool_value": "bool",
    "intValue": "int", "int_value": "int",
    "doubleValue": "double", "double_value": "double",
    "bytesValue": "bytes", "bytes_value": "bytes",
    "arrayValue": "array", "array_value": "array",
    "kvlistValue": "kvlist", "kvlist_value": "kvlist",
}


def any_value(value: Any, depth: int = 0) -> Any:
    """An OTLP/JSON AnyValue as the plain value the OTLP adapter masks: strings, bools,
    ints (JSON carries int64 as a string), floats, bytes, lists, dicts; `{}` is null."""
    if depth > 100:
        raise NotOtlp("AnyValue nested too deep")
    if not isinstance(value, dict):
        raise NotOtlp("AnyValue is not an object")
    for key, item in value.items():
        kind = _KINDS.get(key)
        if kind is None:
            continue
        if kind == "string":
            if not isinstance(item, str):
                raise NotOtlp("stringValue is not a string")
            return item
        if kind == "bool":
            if not isinstance(item, bool):
                raise NotOtlp("boolValue is not a boolean")
            return item
        if kind == "int":
            try:
                return int(item)
            except (TypeError, ValueError):
                raise NotOtlp("intValue is not an integer") from None
        if kind == "double":
            if isinstance(item, bool) or not isinstance(item, int | float | str):
                raise NotOtlp("doubleValue is not a number")
            try:
                return float(item)
            except ValueError:
                raise NotOtlp("doubleValue is not a number") from None
        if kind == "bytes":
            try:
                return base64.b64decode(str(item), validate=True)
            except (binascii.Error, ValueError):
                raise NotOtlp("bytesValue is not base64") from None
        if kind == "array":
            items = (item or {}).get("values") or [] if isinstance(item, dict) else None
            if not isinstance(items, list):
                raise NotOtlp("arrayValue is not {values: [...]}")
            return [any_value(v, depth + 1) for v in items]
        entries = (item or {}).get("values") or [] if isinstance(item, dict) else None
        if not isinstance(entries, list):
            raise NotOtlp("kvlistValue is not {values: [...]}")
        return key_values(entries, depth + 1)
    return None


def key_values(entries: Any, depth: int = 0) -> dict[str, Any]:
    """Repeated KeyValue JSON (`[{"key": k, "value": {...}}]`) as a dict; of duplicate
    keys the last wins, as in the OTLP adapter."""
    if not isinstance(entries, list):
        raise NotOtlp("attributes are not a list of {key, value}")
    out: dict[str, Any] = {}
    for kv in entries:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise NotOtlp("attribute is not {key, value}")
        out[kv["key"]] = any_value(kv.get("value") or {}, depth)
    return out
