"""Field-name hints of the safe-harbor profile: a key's name alone says what it holds.

A key is split into lower-case word tokens (`patientFirstName`, `patient_first_name`
and `patient-first-name` all give patient/first/name, digits dropped), and a hint
matches when its tokens END the key's tokens. Some hints (a bare `name`) match only
after a qualifier that makes them personal, so `pod_name` and `service_name` in
Kubernetes metadata are left alone while `patient_name` is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")


@dataclass(frozen=True)
class Hint:
    tokens: tuple[str, ...]
    action: str
    label: str
    options: Mapping[str, Any] = field(default_factory=dict)
    qualifiers: frozenset[str] | None = None  # required previous token, when set
    top_level_only: bool = False  # only a key directly under the document root

    @property
    def rule_id(self) -> str:
        return "hint:" + "_".join(self.tokens)


_PERSON = frozenset(
    [
        "patient", "first", "last", "full", "middle", "given", "family", "maiden", "legal",
        "preferred", "display", "contact", "guardian", "emergency", "mother", "father",
        "spouse", "parent", "member", "subscriber", "guarantor", "insured", "person",
        "employer", "provider", "physician", "doctor", "nurse", "caregiver", "sur", "nick"
    ]
)


def _h(words: str, action: str, label: str, qualifiers: frozenset[str] | None = None,
       **options: Any) -> Hint:
    return Hint(tuple(words.split()), action, label, options, qualifiers)


def _log_field(words: str) -> Hint:
    return Hint(tuple(words.split()), "keep", "", {}, frozenset(), top_level_only=True)


HINTS: tuple[Hint, ...] = (
    # A log line's own time and trace ids are what makes it a log; the date detector
    # would otherwise take every timestamp. Exact top-level keys only: `admission_time`
    # or `visit.time` is PHI.
    _log_field("ts"),
    _log_field("timestamp"),
    _log_field("time"),
    _log_field("trace id"),
    _log_field("span id"),
    _h("ssn", "redact", "SSN"),
    _h("social security", "redact", "SSN"),
    _h("social security number", "redact", "SSN"),
    _h("social security no", "redact", "SSN"),
    _h("mrn", "hmac", "MRN"),
    _h("medical record number", "hmac", "MRN"),
    _h("medical record", "hmac", "MRN"),
    _h("dob", "generalize", "DOB", kind="birth_date"),
    _h("birth date", "generalize", "DOB", kind="birth_date"),
    _h("birthdate", "generalize", "DOB", kind="birth_date"),
    _h("birthday", "generalize", "DOB", kind="birth_date"),
    _h("date of birth", "generalize", "DOB", kind="birth_date"),
    _h("admission date", "generalize", "DATE", kind="date"),
    _h("admit date", "generalize", "DATE", kind="date"),
    _h("discharge date", "generalize", "DATE", kind="date"),
    _h("death date", "generalize", "DATE", kind="date"),
    _h("date of death", "generalize", "DATE", kind="date"),
    _h("age", "generalize", "AGE", kind="age"),
    _h("name", "redact", "NAME", _PERSON),
    _h("firstname", "redact", "NAME"),
    _h("lastname", "redact", "NAME"),
    _h("fullname", "redact", "NAME"),
    _h("surname", "redact", "NAME"),
    _h("email", "redact", "EMAIL"),
    _h("email address", "redact", "EMAIL"),
    _h("e mail", "redact", "EMAIL"),
    _h("phone", "redact", "PHONE"),
    _h("phone number", "redact", "PHONE"),
    _h("telephone", "redact", "PHONE"),
    _h("mobile", "redact", "PHONE"),
    _h("cell phone", "redact", "PHONE"),
    _h("fax", "redact", "FAX"),
    _h("fax number", "redact", "FAX"),
    _h("address", "redact", "ADDRESS"),
    _h("address line", "redact", "ADDRESS"),
    _h("street", "redact", "ADDRESS"),
    _h("city", "redact", "ADDRESS"),
    _h("county", "redact", "ADDRESS"),
    _h("zip", "zip3", "ZIP"),
    _h("zip code", "zip3", "ZIP"),
    _h("zipcode", "zip3", "ZIP"),
    _h("postal code", "zip3", "ZIP"),
    _h("postcode", "zip3", "ZIP"),
    _h("ip", "redact", "IP"),
    _h("ip address", "redact", "IP"),
    _h("ipv4", "redact", "IP"),
    _h("ipv6", "redact", "IP"),
    _h("forwarded for", "redact", "IP"),
    _h("url", "redact", "URL"),
    _h("uri", "redact", "URL"),
    _h("referer", "redact", "URL"),
    _h("referrer", "redact", "URL"),
    _h("license", "redact", "LICENSE"),
    _h("license number", "redact", "LICENSE"),
    _h("licence", "redact", "LICENSE"),
    _h("plate", "redact", "PLATE"),
    _h("license plate", "redact", "PLATE"),
    _h("vin", "redact", "VIN"),
    _h("device id", "redact", "DEVICE_ID"),
    _h("serial number", "redact", "SERIAL"),
    _h("certificate number", "redact", "CERTIFICATE"),
    _h("account", "hmac", "ACCOUNT"),
    _h("account number", "hmac", "ACCOUNT"),
    _h("account id", "hmac", "ACCOUNT"),
    _h("member id", "hmac", "MEMBER_ID"),
    _h("subscriber id", "hmac", "MEMBER_ID"),
    _h("beneficiary id", "hmac", "MEMBER_ID"),
    _h("health plan id", "hmac", "HEALTH_PLAN"),
    _h("policy number", "hmac", "HEALTH_PLAN"),
    _h("insurance id", "hmac", "HEALTH_PLAN"),
)

_BY_LAST: dict[str, list[Hint]] = {}
for _hint in sorted(HINTS, key=lambda h: -len(h.tokens)):
    _BY_LAST.setdefault(_hint.tokens[-1], []).append(_hint)


def tokens_of(key: str) -> tuple[str, ...]:
    return tuple(t.lower() for t in _TOKEN.findall(key))


def hint_for(key: str, top_level: bool = False) -> Hint | None:
    """The longest hint whose tokens end `key`'s tokens, if any."""
    words = tokens_of(key)
    if not words:
        return None
    for hint in _BY_LAST.get(words[-1], ()):
        if hint.top_level_only and not top_level:
            continue
        n = len(hint.tokens)
        if words[-n:] != hint.tokens:
            continue
        if hint.qualifiers is not None and len(words) > n and words[-n - 1] not in hint.qualifiers:
            continue
        return hint
    return None
