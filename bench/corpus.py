"""Seeded corpus of realistic hospital-application log records carrying planted ePHI.

Every record has a `patient` block and an `http` block full of identifiers; about 30%
of the free-text `msg` fields also carry PHI embedded in prose. `planted_phi` lists the
exact strings planted in a record so a test can assert none survives masking.

Output is deterministic for a given seed and Faker version. The same records encode for
each wire phimask serves: `encode_requests` (phimask.v1 TransformRequest, one JSON
payload a record), `encode_otlp_requests` (OTLP ExportLogsServiceRequest, the record
as a key/value-list body as Fluent Bit sends it) and `encode_vector_requests` (Vector
v2 PushEventsRequest, the record as a log event's fields); `ENCODERS` maps the
protocol names bench.run and bench.load_client use to them.
"""

from __future__ import annotations

import random
import re
import string
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

import orjson
from faker import Faker
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from phimask._gen.phimask.v1 import transform_pb2
from phimask._gen.vector import event_pb2, vector_pb2

PHI_MSG_SHARE = 0.30

# Placeholders that carry PHI inside message templates, and the exact shapes this module
# writes for them; `msg_phi` parses a message back against its template with these.
_PHI_SHAPES = {
    "ssn": r"\d{3}-\d{2}-\d{4}|\d{9}",
    "phone": r"\(\d{3}\) \d{3}-\d{4}|\d{3}-\d{3}-\d{4}|\+1 \d{3} \d{3} \d{4}|\d{3}\.\d{3}\.\d{4}",
    "email": r"[a-z0-9.]+@[a-z0-9-]+(?:\.[a-z]+)+",
    "date": r"[A-Z][a-z]+ \d{1,2}, \d{4}|\d{2}/\d{2}/\d{4}",
    "mrn": r"MRN-\d{8}",
    "card": r"\d{4}(?:[ -]?\d{4}){3}",
    "name": r"[A-Z][A-Za-z'-]+ [A-Z][A-Za-z'-]+",
}
_FILLER_SHAPES = {"n": r"\d+", "ms": r"\d+", "svc": r"[a-z-]+"}

_PHI_TEMPLATES = (
    "identity check failed: caller gave SSN {ssn}, record on file differs",
    "callback requested at {phone} about pending lab results",
    "patient asked to be reached at {phone} after clinic hours",
    "appointment reminder sent to {email}",
    "bounce from {email}: mailbox full, will retry in {n} min",
    "registration: patient states date of birth {date}",
    "merged duplicate chart {mrn} into primary chart",
    "payment declined for card {card}: insufficient funds",
    "copay of {n} USD charged to card {card}",
    "eligibility lookup for {name}, DOB {date}, SSN {ssn}",
    "front desk updated contact for {name}: phone {phone}, email {email}",
    "pharmacy callback for {name} at {phone} regarding refill",
    "portal login locked for {email} after {n} failed attempts",
    "claim resubmitted for {mrn}, subscriber SSN {ssn}",
    "triage note: pt {name} (DOB {date}) reports chest pain, see chart {mrn}",
)
_PLAIN_TEMPLATES = (
    "request completed",
    "health probe ok",
    "formulary cache refreshed: {n} entries in {ms} ms",
    "upstream {svc} responded slowly ({ms} ms), retrying",
    "HL7 ADT^A08 acknowledged by interface engine in {ms} ms",
    "connection pool at {n}% capacity",
    "FHIR bundle validated: {n} resources",
    "access token refreshed for client {svc}",
    "job reconcile-claims finished: {n} rows updated",
    "rate limit applied to client {svc}",
    "audit event queued on partition {n}",
    "slow query on encounters table took {ms} ms",
)

_SERVICES = (
    "ehr-api",
    "scheduling",
    "billing-svc",
    "lab-results",
    "patient-portal",
    "pharmacy-gw",
)
_SERVICE_CLIENTS = ("mychart-web", "epic-bridge", "hl7-router", "claims-batch", "fax-gateway")
_LEVELS = (("info", 80), ("warn", 10), ("error", 5), ("debug", 5))
_METHODS = (("GET", 70), ("POST", 15), ("PUT", 8), ("PATCH", 4), ("DELETE", 3))
_STATUSES = ((200, 78), (201, 6), (204, 4), (400, 3), (401, 2), (404, 4), (500, 2), (503, 1))
_PATHS_BY_MRN = (
    "/api/v2/patients/{mrn}/encounters",
    "/api/v2/patients/{mrn}/allergies",
    "/api/v2/patients/{mrn}",
)
_PATHS_BY_ID = (
    "/api/v2/encounters/{num}/notes",
    "/api/v2/appointments/{num}",
    "/api/v2/lab-orders/{num}/results",
    "/api/v2/claims/{num}/status",
    "/fhir/R4/Observation/{uuid}",
)
# Most calls come from the portal backend and integration services, not browsers.
_USER_AGENTS = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        6,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Safari/605.1.15",
        4,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", 3),
    ("MyChart/11.4.2 (iPhone; iOS 17.4.1)", 12),
    ("okhttp/4.12.0", 20),
    ("python-requests/2.31.0", 15),
    ("Epic-Interconnect/10.3", 20),
    ("Go-http-client/2.0", 20),
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_EPOCH = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
_DOB_FIRST = date(1930, 1, 1).toordinal()
_DOB_LAST = date(2023, 12, 31).toordinal()


def _compile(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """A regex that fully matches messages made from `template`, one group per placeholder."""
    parts: list[str] = []
    kinds: list[str] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(f"({_PHI_SHAPES.get(field) or _FILLER_SHAPES[field]})")
            kinds.append(field)
    return re.compile("".join(parts)), tuple(kinds)


_PHI_PARSERS = tuple(_compile(t) for t in _PHI_TEMPLATES)

T = TypeVar("T")


def _weighted(rng: random.Random, table: Sequence[tuple[T, int]]) -> T:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _nanp_phone(rng: random.Random, formats: Sequence[str]) -> str:
    # NANP: area code and exchange start with 2-9 and are never N11; area codes never
    # have 9 in the middle digit.
    while True:
        area = f"{rng.randint(2, 9)}{rng.randint(0, 8)}{rng.randint(0, 9)}"
        exchange = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
        if area[1:] != "11" and exchange[1:] != "11":
            break
    line = f"{rng.randint(0, 9999):04d}"
    return rng.choice(formats).format(a=area, e=exchange, n=line)


_FIELD_PHONE_FORMATS = ("({a}) {e}-{n}", "{a}-{e}-{n}", "+1 {a} {e} {n}")
_MSG_PHONE_FORMATS = (*_FIELD_PHONE_FORMATS, "{a}.{e}.{n}")


def _ssn(rng: random.Random, dashed: bool = True) -> str:
    # SSA never issues area 000, 666 or 900-999, group 00 or serial 0000.
    area = rng.randint(1, 898)
    if area >= 666:
        area += 1
    digits = (f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}")
    return "-".join(digits) if dashed else "".join(digits)


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for pos, d in enumerate(reversed(digits)):
        if pos % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(rng: random.Random) -> str:
    if rng.random() < 0.1:
        number = "4111111111111111"  # the classic test number, common in support tickets
    else:
        prefix = rng.choice(("4", "51", "52", "53", "54", "55"))
        body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(15 - len(prefix)))
        check = next(str(c) for c in range(10) if luhn_ok(body + str(c)))
        number = body + check
    sep = _weighted(rng, (("", 6), (" ", 3), ("-", 1)))
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def _dob(rng: random.Random) -> date:
    return date.fromordinal(rng.randint(_DOB_FIRST, _DOB_LAST))


def _long_date(rng: random.Random) -> str:
    d = _dob(rng)
    if rng.random() < 0.7:
        return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"
    return f"{d.month:02d}/{d.day:02d}/{d.year}"


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)
        self.clock = _EPOCH

    def name(self) -> tuple[str, str]:
        first, last = self.fake.first_name(), self.fake.last_name()
        return first, f"{first} {last}"

    def email(self, full_name: str) -> str:
        local = ".".join(re.sub(r"[^a-z]", "", p) for p in full_name.lower().split())
        if self.rng.random() < 0.5:
            local += str(self.rng.randint(1, 99))
        return f"{local}@{self.fake.free_email_domain()}"

    def mrn(self) -> str:
        return f"MRN-{self.rng.randint(1, 99_999_999):08d}"

    def msg(self) -> str:
        rng = self.rng
        phi = rng.random() < PHI_MSG_SHARE
        template = rng.choice(_PHI_TEMPLATES if phi else _PLAIN_TEMPLATES)
        values: dict[str, str] = {
            "n": str(rng.randint(1, 99)),
            "ms": str(rng.randint(1, 2000)),
            "svc": rng.choice(_SERVICE_CLIENTS),
        }
        if phi:
            other = self.name()[1]
            values |= {
                "ssn": _ssn(rng, dashed=rng.random() < 0.7),
                "phone": _nanp_phone(rng, _MSG_PHONE_FORMATS),
                "email": self.email(other),
                "date": _long_date(rng),
                "mrn": self.mrn(),
                "card": _card(rng),
                "name": other,
            }
        return template.format_map(values)

    def record(self) -> dict[str, Any]:
        rng, fake = self.rng, self.fake
        self.clock += timedelta(microseconds=rng.randint(0, 400_000))
        first, full = self.name()
        mrn = self.mrn()
        patient: dict[str, Any] = {"name": full}
        if rng.random() < 0.25:
            patient["first_name"] = first
        patient |= {
            "ssn": _ssn(rng, dashed=rng.random() < 0.85),
            "mrn": mrn,
            "dob": _dob(rng).isoformat(),
            "phone": _nanp_phone(rng, _FIELD_PHONE_FORMATS),
            "email": self.email(full),
        }
        # Only handlers that touch demographics (registration, billing) log the address.
        if rng.random() < 0.55:
            patient["address"] = {
                "street": fake.street_address(),
                "city": fake.city(),
                "state": fake.state_abbr(include_territories=False),
                "zip": fake.zipcode(),
            }
        if rng.random() < 0.3:
            path = rng.choice(_PATHS_BY_MRN).format(mrn=mrn)
        else:
            path = rng.choice(_PATHS_BY_ID).format(
                num=rng.randint(1_000_000, 9_999_999),
                uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
            )
        client_ip = fake.ipv4_private() if rng.random() < 0.4 else fake.ipv4_public()
        return {
            "ts": self.clock.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": _weighted(rng, _LEVELS),
            "service": rng.choice(_SERVICES),
            "trace_id": f"{rng.getrandbits(128):032x}",
            "msg": self.msg(),
            "patient": patient,
            "http": {
                "method": _weighted(rng, _METHODS),
                "path": path,
                "status": _weighted(rng, _STATUSES),
                "client_ip": client_ip,
                "user_agent": _weighted(rng, _USER_AGENTS),
                "latency_ms": round(rng.lognormvariate(3.5, 0.8), 1),
            },
        }


def iter_records(seed: int = 1) -> Iterator[dict[str, Any]]:
    """An endless stream of records, deterministic for `seed`."""
    gen = _Generator(seed)
    while True:
        yield gen.record()


def generate_records(n: int, seed: int = 1) -> list[dict[str, Any]]:
    return list(islice(iter_records(seed), n))


def msg_phi(record: dict[str, Any]) -> set[str]:
    """The PHI fragments planted in the record's `msg` (empty for plain operational text)."""
    msg = record.get("msg", "")
    for pattern, kinds in _PHI_PARSERS:
        m = pattern.fullmatch(msg)
        if m:
            return {v for v, k in zip(m.groups(), kinds, strict=True) if k in _PHI_SHAPES}
    return set()


def planted_phi(record: dict[str, Any]) -> set[str]:
    """Every PHI string planted in `record`; none may appear in its masked form.

    Coarse or short values (first_name alone, city, state, zip) are left out on purpose:
    they also occur by chance in unrelated text, so asserting their absence would flake.
    """
    patient = record["patient"]
    values = {
        patient["name"],
        patient["ssn"],
        patient["mrn"],
        patient["dob"],
        patient["phone"],
        patient["email"],
        record["http"]["client_ip"],
    }
    if "address" in patient:
        values.add(patient["address"]["street"])
    return values | msg_phi(record)


def encode_requests(records: Sequence[dict[str, Any]], batch_size: int = 1000) -> list[bytes]:
    """Serialized TransformRequests of `batch_size` records; ids are `rec-<index>`."""
    out: list[bytes] = []
    start = 0
    for batch in _batches(records, batch_size):
        request = transform_pb2.TransformRequest()
        for i, rec in enumerate(batch, start):
            request.records.add(payload=orjson.dumps(rec), id=f"rec-{i:08d}")
        start += len(batch)
        out.append(request.SerializeToString())
    return out


def _batches(
    records: Sequence[dict[str, Any]], batch_size: int
) -> Iterator[Sequence[dict[str, Any]]]:
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    for start in range(0, len(records), batch_size):
        yield records[start : start + batch_size]


def _set_any_value(target: common_pb2.AnyValue, value: Any) -> None:
    """Write a JSON-shaped Python value into an OTLP AnyValue, in place."""
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):  # before int: a bool is an int
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, dict):
        kvlist = target.kvlist_value
        kvlist.SetInParent()  # an empty map is still a map
        for key, item in value.items():
            _set_any_value(kvlist.values.add(key=key).value, item)
    elif isinstance(value, list):
        array = target.array_value
        array.SetInParent()
        for item in value:
            _set_any_value(array.values.add(), item)
    elif value is None:
        target.SetInParent()  # an AnyValue with nothing set is OTLP's null
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as an OTLP AnyValue")


def _unix_nanos(ts: str) -> int:
    when = datetime.fromisoformat(ts)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def encode_otlp_requests(records: Sequence[dict[str, Any]], batch_size: int = 1000) -> list[bytes]:
    """Serialized ExportLogsServiceRequests of `batch_size` LogRecords each.

    As Fluent Bit's opentelemetry output sends a structured record: the whole record is
    the LogRecord's body, a key/value list (nested maps as nested lists, numbers and
    bools typed), with `time_unix_nano` taken from the record's `ts`. One ResourceLogs
    holding one ScopeLogs per request; resource and scope carry nothing.
    """
    out: list[bytes] = []
    for batch in _batches(records, batch_size):
        request = logs_service_pb2.ExportLogsServiceRequest()
        scope_logs = request.resource_logs.add().scope_logs.add()
        for rec in batch:
            log_record: logs_pb2.LogRecord = scope_logs.log_records.add()
            if isinstance(rec.get("ts"), str):
                log_record.time_unix_nano = _unix_nanos(rec["ts"])
            _set_any_value(log_record.body, rec)
        out.append(request.SerializeToString())
    return out


def _set_vector_value(target: event_pb2.Value, value: Any) -> None:
    """Write a JSON-shaped Python value into a Vector Value, in place."""
    if isinstance(value, str):
        target.raw_bytes = value.encode()
    elif isinstance(value, bool):
        target.boolean = value
    elif isinstance(value, int):
        target.integer = value
    elif isinstance(value, float):
        target.float = value
    elif isinstance(value, dict):
        fields = target.map.fields
        target.map.SetInParent()
        for key, item in value.items():
            _set_vector_value(fields[key], item)
    elif isinstance(value, list):
        items = target.array.items
        target.array.SetInParent()
        for item in value:
            _set_vector_value(items.add(), item)
    elif value is None:
        target.null = event_pb2.NULL_VALUE
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as a Vector Value")


def encode_vector_requests(
    records: Sequence[dict[str, Any]], batch_size: int = 1000
) -> list[bytes]:
    """Serialized Vector v2 PushEventsRequests of `batch_size` log events each.

    As a Vector `vector` sink sends an object-rooted log event: the record's top-level
    keys are the Log's `fields`; strings go as raw_bytes, ints as integer, floats as
    float, bools as boolean, maps as map, lists as array and None as null.
    """
    out: list[bytes] = []
    for batch in _batches(records, batch_size):
        request = vector_pb2.PushEventsRequest()
        for rec in batch:
            log = request.events.add().log
            log.SetInParent()
            for key, item in rec.items():
                _set_vector_value(log.fields[key], item)
        out.append(request.SerializeToString())
    return out


ENCODERS: dict[str, Callable[[Sequence[dict[str, Any]], int], list[bytes]]] = {
    "native": encode_requests,
    "otlp": encode_otlp_requests,
    "vector": encode_vector_requests,
}
