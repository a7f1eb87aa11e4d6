"""Property tests: whatever the record, PHI in mapped fields and in free text never
survives, and masking is deterministic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phimask.pipeline import Masker
from tests.core.helpers import masker_for

POLICY = """\
version: 1
fields:
  - {path: patient.ssn, action: redact}
  - {path: patient.mrn, action: hmac}
  - {path: patient.phone, action: partial}
  - {path: patient.contact, action: redact}
  - {path: "visits[*].note", action: scan}
"""

areas = st.integers(1, 899).filter(lambda a: a != 666)
ssns = st.builds(lambda a, g, s: f"{a:03d}-{g:02d}-{s:04d}", areas, st.integers(1, 99),
                 st.integers(1, 9999))
phones = st.builds(lambda a, e, n, fmt: fmt.format(a, e, n), st.integers(200, 999),
                   st.integers(200, 999), st.integers(0, 9999),
                   st.sampled_from(["{}-{}-{:04d}", "({}) {}-{:04d}", "{}.{}.{:04d}",
                                    "+1 {} {} {:04d}"]))
emails = st.builds(lambda u, d: f"{u}@{d}.org", st.from_regex(r"[a-z]{3,10}", fullmatch=True),
                   st.from_regex(r"[a-z]{3,10}", fullmatch=True))
mrns = st.builds(lambda n: f"MRN-{n:08d}", st.integers(0, 99_999_999))
phi_values = st.one_of(ssns, phones, emails)
words = st.from_regex(r"[a-zA-Z ]{0,30}", fullmatch=True)
keys = st.sampled_from(["status", "service", "level", "path", "region", "kind", "tag"])
plain = st.recursive(
    st.one_of(words, st.integers(-1000, 1000), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(keys, inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def records(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    ssn, mrn, phone, contact = draw(ssns), draw(mrns), draw(phones), draw(emails)
    notes = draw(st.lists(st.tuples(words, phi_values, words), max_size=3))
    free = draw(st.tuples(words, phi_values, words))
    record: dict[str, Any] = draw(st.dictionaries(keys, plain, max_size=4))
    record["patient"] = {"ssn": ssn, "mrn": mrn, "phone": phone, "contact": contact}
    record["visits"] = [{"note": f"{a} {p} {b}"} for a, p, b in notes]
    record["msg"] = f"{free[0]} {free[1]} {free[2]}"
    secrets = [ssn, mrn, phone, contact, free[1], *[p for _, p, _ in notes]]
    return record, secrets


_maskers: dict[str, Masker] = {}


def masker(tmp: Path) -> Masker:
    if "m" not in _maskers:
        _maskers["m"] = masker_for(POLICY, tmp)
    return _maskers["m"]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=records())
def test_no_phi_survives_and_masking_is_deterministic(case: tuple[dict[str, Any], list[str]],
                                                      state_dir: Path) -> None:
    record, secrets = case
    m = masker(state_dir)
    first = {"payload": orjson.loads(orjson.dumps(record))}
    second = {"payload": orjson.loads(orjson.dumps(record))}
    assert m.mask_batch([first, second]) == [None, None]
    out = orjson.dumps(first).decode()
    for secret in secrets:
        assert secret not in out
    # the last four digits of a partial phone stay; the rest does not
    assert first == second
