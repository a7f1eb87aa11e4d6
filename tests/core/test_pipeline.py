from pathlib import Path

import orjson
import pytest

from phimask.pipeline import Rejection
from tests.core.helpers import mask_one, masker_for

POLICY = """\
version: 1
profile: safe-harbor
fields:
  - {path: patient.ssn, action: redact}
  - {path: patient.mrn, action: hmac}
  - {path: patient.phone, action: partial}
  - {path: patient.dob, action: generalize}
  - {path: patient.address.zip, action: zip3}
  - {path: "notes[*].text", action: scan}
  - {path: debug, action: drop}
  - {path: attributes.user, action: redact}
  - {path: patient.age, action: generalize}
  - {path: trace, action: keep}
  - {path: "patient.*", action: redact, type: PATIENT}
"""

RECORD = {
    "patient": {
        "ssn": "123-45-6789",
        "mrn": "MRN-00123456",
        "phone": "555-867-5309",
        "dob": "1961-04-12",
        "address": {"zip": "02139", "street": "12 Elm St"},
        "age": 93,
        "nickname": "Jo",
    },
    "notes": [{"text": "call 212-555-0188 re SSN 219-09-9999", "kind": "call"}],
    "debug": {"raw": "123-45-6789"},
    "trace": "id 219099999",
    "msg": "patient jane@example.org seen",
    "count": 3,
}


@pytest.fixture
def masker(state_dir: Path):  # type: ignore[no-untyped-def]
    return masker_for(POLICY, state_dir)


def test_explicit_rules(masker) -> None:  # type: ignore[no-untyped-def]
    doc = mask_one(masker, orjson.loads(orjson.dumps(RECORD)), {"user": "jdoe", "host": "web-1"})
    p = doc["payload"]["patient"]
    assert p["ssn"] == "[REDACTED:SSN]"
    assert p["mrn"].startswith("hmac:t1:") and len(p["mrn"]) == len("hmac:t1:") + 16
    assert p["phone"] == "***-***-5309"
    assert p["dob"] == "1961"
    assert p["address"]["zip"] == "021"
    assert p["address"]["street"] == "[REDACTED:PATIENT]"  # `patient.*` reaches down the subtree
    assert p["age"] == "90+"
    assert p["nickname"] == "[REDACTED:PATIENT]"
    assert doc["payload"]["notes"][0]["text"] == "call [REDACTED:PHONE] re SSN [REDACTED:SSN]"
    assert "debug" not in doc["payload"]
    assert doc["payload"]["trace"] == "id 219099999"  # keep wins over scanning
    assert doc["payload"]["msg"] == "patient [REDACTED:EMAIL] seen"  # unmapped: scanned
    assert doc["payload"]["count"] == 3
    assert doc["attributes"] == {"user": "[REDACTED:USER]", "host": "web-1"}


def test_deterministic(masker) -> None:  # type: ignore[no-untyped-def]
    a = mask_one(masker, orjson.loads(orjson.dumps(RECORD)))
    b = mask_one(masker, orjson.loads(orjson.dumps(RECORD)))
    assert a == b


def test_hints_apply_only_without_explicit_rule(state_dir: Path) -> None:
    masker = masker_for("version: 1\nfields:\n  - {path: user.email, action: keep}\n", state_dir)
    doc = mask_one(masker, {
        "user": {"email": "a@b.org", "first_name": "Ann", "ssn": 123456789, "zip": 2139,
                 "home_address": {"line1": "1 Main St", "city": "Salem"}},
        "kubernetes": {"pod_name": "api-7f9c", "namespace_name": "ehr"},
    })
    user = doc["payload"]["user"]
    assert user["email"] == "a@b.org"
    assert user["first_name"] == "[REDACTED:NAME]"
    assert user["ssn"] == "[REDACTED:SSN]"  # a number where a string operator is mapped
    assert user["zip"] == "021"
    assert user["home_address"] == {"line1": "[REDACTED:ADDRESS]", "city": "[REDACTED:ADDRESS]"}
    assert doc["payload"]["kubernetes"] == {"pod_name": "api-7f9c", "namespace_name": "ehr"}


def test_profile_none_and_keep_unmapped(state_dir: Path) -> None:
    masker = masker_for("version: 1\nprofile: none\nunmapped_strings: keep\n", state_dir)
    record = {"ssn": "123-45-6789", "msg": "SSN 123-45-6789"}
    assert mask_one(masker, dict(record))["payload"] == record


def test_unmapped_numbers_are_scanned(state_dir: Path) -> None:
    masker = masker_for("version: 1\nprofile: none\n", state_dir)
    doc = mask_one(masker, {"x": 219099999, "y": 42, "z": 1700000000123})
    assert doc["payload"] == {"x": "[REDACTED:SSN]", "y": 42, "z": 1700000000123}


def test_operator_error_rejects_only_that_record(masker) -> None:  # type: ignore[no-untyped-def]
    good = {"patient": {"ssn": "123-45-6789"}, "msg": "email a@b.org"}
    bad = {"patient": {"address": {"zip": "not a zip"}}, "msg": "email c@d.org"}
    docs = [{"payload": dict(good)}, {"payload": bad}, Rejection("invalid_json")]
    outcomes = masker.mask_batch(docs)
    assert outcomes[0] is None
    assert outcomes[1] == Rejection("operator_error", "patient.address.zip")
    assert outcomes[2] == Rejection("invalid_json")
    assert docs[0]["payload"]["msg"] == "email [REDACTED:EMAIL]"


def test_too_deep_is_rejected(masker) -> None:  # type: ignore[no-untyped-def]
    deep: dict = {}
    node = deep
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    assert masker.mask_batch([{"payload": deep}]) == [Rejection("too_deep")]


def test_nulls_and_bools_pass(masker) -> None:  # type: ignore[no-untyped-def]
    doc = mask_one(masker, {"patient": {"ssn": None, "mrn": True}})
    assert doc["payload"]["patient"] == {"ssn": None, "mrn": True}


def test_more_specific_rule_wins(state_dir: Path) -> None:
    text = """\
version: 1
profile: none
unmapped_strings: keep
fields:
  - {path: "a.*", action: redact}
  - {path: a.b, action: keep}
  - {path: "list[*]", action: partial, keep: 2}
"""
    masker = masker_for(text, state_dir)
    doc = mask_one(masker, {"a": {"b": "x1", "c": "x2"}, "list": ["abcd", "efgh"]})
    assert doc["payload"] == {"a": {"b": "x1", "c": "[REDACTED:A]"}, "list": ["**cd", "**gh"]}


def test_log_timestamps_stay_but_personal_dates_do_not(state_dir: Path) -> None:
    masker = masker_for("version: 1\n", state_dir)
    when = "2024-05-01T10:00:00Z"
    doc = mask_one(masker, {"ts": when, "@timestamp": when, "trace_id": "219099999",
                            "admission_time": when, "visit": {"time": when}})
    assert doc["payload"]["ts"] == doc["payload"]["@timestamp"] == when
    assert doc["payload"]["trace_id"] == "219099999"
    assert doc["payload"]["admission_time"] == "[REDACTED:DATE]"
    assert doc["payload"]["visit"]["time"] == "[REDACTED:DATE]"  # only a top-level `time`


def test_other_roots_scalar_roots_and_the_payload_alias(state_dir: Path) -> None:
    from phimask.detect import Scanner
    from phimask.pipeline import Masker
    from phimask.policy import compile_policy, load_yaml
    from tests.conftest import fixed_keyring

    text = ("version: 1\nfields:\n  - {path: payload.patient.ssn, action: redact}\n"
            "  - {path: resource.host, action: hmac}\n")
    plan = compile_policy(load_yaml(text, "t.yaml"), roots=("body", "attributes", "resource"),
                          state_dir=state_dir, keys=fixed_keyring())
    masker = Masker(plan, Scanner.build(plan.detectors))
    docs = [{"body": {"patient": {"ssn": "x"}}, "attributes": {"a": "mail a@b.org"}},
            {"body": "call 212-555-0188 now", "attributes": {}},
            {"resource": {"host": "web-1"}}]
    assert masker.mask_batch(docs) == [None, None, None]
    assert docs[0] == {"body": {"patient": {"ssn": "[REDACTED:SSN]"}},
                       "attributes": {"a": "mail [REDACTED:EMAIL]"}}
    assert docs[1]["body"] == "call [REDACTED:PHONE] now"
    assert docs[2]["resource"]["host"].startswith("hmac:")


def test_a_path_also_names_dotted_keys(state_dir: Path) -> None:
    text = "version: 1\nprofile: none\nunmapped_strings: keep\nfields:\n" \
           "  - {path: attributes.user.email, action: redact}\n" \
           "  - {path: host.name, action: hmac}\n"
    masker = masker_for(text, state_dir)
    doc = mask_one(masker, {"host.name": "web-1", "host": {"name": "web-2"}, "other": "x"},
                   {"user.email": "a@b.org", "user": "kept"})
    assert doc["payload"]["host.name"].startswith("hmac:")
    assert doc["payload"]["host"]["name"].startswith("hmac:")
    assert doc["payload"]["other"] == "x"
    assert doc["attributes"] == {"user.email": "[REDACTED:EMAIL]", "user": "kept"}
