"""Signatures are checked before anything else, on every wire: a record with a bad or
missing signature never comes out, and the caller learns which one and why."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from phimask._gen.phimask.v1 import transform_pb2 as pb
from phimask.adapters.native import Limits, transform_request
from phimask.adapters.otlp import OTLP_ROOTS, transform_export
from phimask.adapters.vector import VECTOR_ROOTS, transform_push
from phimask.detect import Scanner
from phimask.integrity import Signer, build_verifier, canonical_json
from phimask.keyring import Key, KeyLoadError, Keyring, KeySet
from phimask.pipeline import Masker
from phimask.policy import IntegritySpec, compile_policy, load_yaml
from tests.adapters import test_otlp as otlp
from tests.adapters import test_vector as vec
from tests.conftest import fixed_keyring

HMAC = bytes(range(4, 36))  # fixed_keyring's verify-hmac key, kid t1
SEED = bytes(range(50, 82))
LIMITS = Limits()
SSN = "123-45-6789"


def keyring() -> Keyring:
    base = fixed_keyring()
    public = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes_raw()
    extra = {"verify-ed25519": Key("e1", "verify-ed25519", public),
             "sign": Key("out1", "sign", bytes(range(90, 122)))}
    sets = {p: base.keyset(p) for p in ("hmac", "fpe", "vault", "vault-index", "verify-hmac")}
    sets.update({p: KeySet(p, k, {k.kid: k}) for p, k in extra.items()})
    return Keyring(sets)


def masker(mode: str, roots: tuple[str, ...] = ("payload", "attributes"), *,
           accept: str = "[hmac-sha256, ed25519]", sign_output: bool = False) -> Masker:
    text = (f"version: 1\nintegrity: {{mode: {mode}, accept: {accept}, "
            f"sign_output: {str(sign_output).lower()}}}\n"
            "fields:\n  - {path: patient.ssn, action: redact}\n")
    keys = keyring()
    plan = compile_policy(load_yaml(text, "p.yaml"), roots=roots, state_dir=Path("/x"),
                          keys=keys)
    return Masker(plan, Scanner.build(plan.detectors), build_verifier(plan.integrity, keys))


HMAC_SIGNER = Signer("hmac-sha256", "t1", HMAC)
ED_SIGNER = Signer("ed25519", "e1", SEED)


def native(*records: pb.Record) -> bytes:
    return pb.TransformRequest(records=records).SerializeToString()


def signed(payload: dict[str, Any], signer: Signer = HMAC_SIGNER) -> pb.Record:
    data = orjson.dumps(payload)
    return pb.Record(payload=data, signature=signer.sign(data), key_id=signer.kid)


def reply(m: Masker, data: bytes, batch: tuple[str, str] | None = None
          ) -> pb.TransformResponse:
    return pb.TransformResponse.FromString(transform_request(m, data, LIMITS,
                                                             batch_signature=batch))


def reasons(response: pb.TransformResponse) -> dict[int, str]:
    return {r.index: f"{r.reason}/{r.rule}" for r in response.rejections}


def flip(data: bytes, at: int = 3) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def test_native_records_by_hmac_and_ed25519_pass_and_are_masked() -> None:
    out = reply(masker("require"), native(signed({"patient": {"ssn": SSN}}),
                                          signed({"patient": {"ssn": SSN}}, ED_SIGNER)))
    assert not out.rejections and len(out.records) == 2
    assert all(SSN.encode() not in r.payload for r in out.records)


def test_native_failures_say_which_record_and_why() -> None:
    good = signed({"patient": {"ssn": SSN}, "n": 0})
    tampered = pb.Record(payload=good.payload.replace(b"0", b"1"), signature=good.signature,
                         key_id="t1")
    flipped = pb.Record(payload=good.payload, signature=flip(good.signature), key_id="t1")
    wrong_kid = pb.Record(payload=good.payload, signature=good.signature, key_id="nope")
    wrong_alg = pb.Record(payload=good.payload, signature=good.signature, key_id="e1")
    missing = pb.Record(payload=good.payload)
    out = reply(masker("require"), native(good, tampered, flipped, wrong_kid, wrong_alg,
                                          missing))
    assert len(out.records) == 1
    assert reasons(out) == {1: "bad_signature/integrity:mismatch",
                            2: "bad_signature/integrity:mismatch",
                            3: "bad_signature/integrity:unknown_key",
                            4: "bad_signature/integrity:mismatch",
                            5: "bad_signature/integrity:missing"}
    assert all(SSN.encode() not in r.payload for r in out.records)


def test_if_present_passes_unsigned_but_not_badly_signed() -> None:
    good = signed({"patient": {"ssn": SSN}})
    bad = pb.Record(payload=good.payload, signature=flip(good.signature), key_id="t1")
    out = reply(masker("if_present"), native(pb.Record(payload=good.payload), bad))
    assert len(out.records) == 1 and reasons(out) == {1: "bad_signature/integrity:mismatch"}


def test_off_checks_nothing() -> None:
    good = signed({"patient": {"ssn": SSN}})
    bad = pb.Record(payload=good.payload, signature=flip(good.signature), key_id="t1")
    assert not reply(masker("off"), native(bad)).rejections


def test_checksums_only_where_accepted() -> None:
    checksum = Signer("sha256", "")
    record = signed({"patient": {"ssn": SSN}}, checksum)
    assert reasons(reply(masker("require"), native(record))) == {
        0: "bad_signature/integrity:algorithm_not_accepted"}
    assert not reply(masker("require", accept="[sha256]"), native(record)).rejections


def test_batch_signature_covers_every_record_and_a_bad_one_rejects_all() -> None:
    data = native(pb.Record(payload=b'{"patient": {"ssn": "123-45-6789"}}'),
                  pb.Record(payload=b'{"a": 1}'))
    sig = base64.b64encode(ED_SIGNER.sign(data)).decode()
    ok = reply(masker("require"), data, (sig, "e1"))
    assert not ok.rejections and len(ok.records) == 2
    bad = reply(masker("require"), flip(data, len(data) - 3), (sig, "e1"))
    assert len(bad.rejections) == 2 and not bad.records
    assert set(reasons(bad).values()) == {"bad_signature/integrity:mismatch"}
    assert reasons(reply(masker("require"), data, ("not base64!", "e1"))) == {
        0: "bad_signature/integrity:malformed", 1: "bad_signature/integrity:malformed"}


def test_output_signing_lets_the_next_hop_verify() -> None:
    out = reply(masker("off", sign_output=True), native(pb.Record(payload=b'{"a": 1}')))
    (record,) = out.records
    assert record.key_id == "out1"
    public = Ed25519PrivateKey.from_private_bytes(bytes(range(90, 122))).public_key()
    public.verify(record.signature, record.payload)  # raises if it does not verify


def test_require_without_verify_keys_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match="needs a verify-hmac or verify-ed25519 key"):
        build_verifier(IntegritySpec(mode="require"), Keyring.load(tmp_path, env={}))


# OTLP: signature attributes on each LogRecord, canonical JSON of the record


def otlp_record(body: Any, attributes: dict[str, Any], signer: Signer | None = HMAC_SIGNER
                ) -> Any:
    if signer is not None:
        doc = {"attributes": attributes, "body": body}
        attributes = {**attributes, **signer.signature_fields(doc, IntegritySpec())}
    return otlp.record(body, attributes)


def otlp_bodies(result: Any) -> list[Any]:
    return [otlp.python(r.body) for r in otlp.all_records(otlp.forwarded(result))]


def test_otlp_records_are_verified_and_lose_their_signature_attributes() -> None:
    m = masker("require", OTLP_ROOTS)
    good = otlp_record({"patient": {"ssn": SSN}}, {"host": "a"})
    edsig = otlp_record({"patient": {"ssn": SSN}}, {"n": 2}, ED_SIGNER)
    tampered = otlp_record({"patient": {"ssn": SSN}}, {"host": "a"})
    tampered.attributes[0].value.string_value = "b"  # after signing
    unsigned = otlp_record({"x": 1}, {}, None)
    data = otlp.request(otlp.resource(otlp.scope(good, edsig, tampered, unsigned)))
    result = transform_export(m, data, LIMITS)
    assert [(i, r.reason, r.rule) for i, r in result.rejections] == [
        (2, "bad_signature", "integrity:mismatch"), (3, "bad_signature", "integrity:missing")]
    records = otlp.all_records(otlp.forwarded(result))
    assert len(records) == 2
    for rec in records:
        assert {kv.key for kv in rec.attributes}.isdisjoint({"phimask.sig", "phimask.kid"})
    assert SSN not in str(otlp_bodies(result))


def test_otlp_batch_signature_and_its_failure() -> None:
    m = masker("require", OTLP_ROOTS)
    data = otlp.request(otlp.resource(otlp.scope(otlp_record({"a": 1}, {}, None))))
    sig = base64.b64encode(HMAC_SIGNER.sign(data)).decode()
    assert transform_export(m, data, LIMITS, (sig, "t1")).accepted == 1
    failed = transform_export(m, data, LIMITS, (sig, "e1"))
    assert failed.accepted == 0 and failed.rejections[0][1].reason == "bad_signature"


# Vector: signature fields at the top of each log event


def vector_event(fields: dict[str, Any], signer: Signer | None = HMAC_SIGNER) -> Any:
    if signer is not None:
        fields = {**fields, **signer.signature_fields(fields, IntegritySpec())}
    return vec.log_event(fields)


def test_vector_events_are_verified() -> None:
    m = masker("require", VECTOR_ROOTS)
    good = vector_event({"patient": {"ssn": SSN}, "n": 1})
    tampered = vector_event({"patient": {"ssn": SSN}, "n": 1})
    tampered.log.fields["n"].integer = 2
    data = vec.request(good, tampered, vector_event({"n": 3}, None))
    result = transform_push(m, data, LIMITS)
    assert [(i, r.rule) for i, r in result.rejections] == [(1, "integrity:mismatch"),
                                                           (2, "integrity:missing")]
    (event,) = vec.forwarded(result)
    fields = vec.fields_of(event)
    assert fields["patient"]["ssn"] != SSN and "phimask.sig" not in fields


def test_canonical_form_is_sorted_compact_json_with_base64_bytes() -> None:
    assert canonical_json({"b": 1, "a": {"z": b"\x00\x01", "y": "é"}}) == (
        '{"a":{"y":"é","z":"AAE="},"b":1}'.encode())


# `phimask sign`, the reference signer, produces what phimask verifies


def run_sign(*args: str, stdin: bytes) -> bytes:
    done = subprocess.run([sys.executable, "-m", "phimask", "sign", *args], input=stdin,
                          capture_output=True, check=True, timeout=60)
    return done.stdout


def test_phimask_sign_round_trips_through_verification(tmp_path: Path) -> None:
    key = tmp_path / "verify-hmac.t1.key"
    key.write_text(HMAC.hex())
    lines = b'{"patient": {"ssn": "123-45-6789"}}\n{"n": 2}\n'
    signed_lines = [orjson.loads(x) for x in run_sign("--key", str(key), stdin=lines).splitlines()]
    records = [pb.Record(payload=s["payload"].encode(), key_id=s["key_id"],
                         signature=base64.b64decode(s["signature"])) for s in signed_lines]
    assert records[0].payload == b'{"patient": {"ssn": "123-45-6789"}}'
    out = reply(masker("require"), native(*records))
    assert not out.rejections and len(out.records) == 2

    otlp_line = orjson.dumps({"attributes": {"host": "a"}, "body": {"patient": {"ssn": SSN}}})
    signed_otlp = orjson.loads(run_sign("--key", str(key), "--format", "otlp", stdin=otlp_line))
    rec = otlp.record(signed_otlp["body"], signed_otlp["attributes"])
    result = transform_export(masker("require", OTLP_ROOTS),
                              otlp.request(otlp.resource(otlp.scope(rec))), LIMITS)
    assert result.accepted == 1 and not result.rejections

    batch = native(pb.Record(payload=b'{"a": 1}'))
    (tmp_path / "batch.bin").write_bytes(batch)
    headers = dict(line.split(": ", 1) for line in run_sign(
        "--key", str(key), "--format", "batch", str(tmp_path / "batch.bin"), stdin=b""
    ).decode().splitlines())
    ok = reply(masker("require"), batch, (headers["x-phimask-batch-signature"],
                                          headers["x-phimask-key-id"]))
    assert not ok.rejections


def next_hop(roots: tuple[str, ...]) -> Masker:
    """A second phimask that requires the first one's output signatures."""
    public = Ed25519PrivateKey.from_private_bytes(bytes(range(90, 122))).public_key()
    key = Key("out1", "verify-ed25519", public.public_bytes_raw())
    keys = Keyring({"verify-ed25519": KeySet("verify-ed25519", key, {"out1": key})})
    text = "version: 1\nprofile: none\nunmapped_strings: keep\nintegrity: {mode: require}\n"
    plan = compile_policy(load_yaml(text, "p.yaml"), roots=roots, state_dir=Path("/x"),
                          keys=keys)
    return Masker(plan, Scanner.build(plan.detectors), build_verifier(plan.integrity, keys))


def test_signed_otlp_output_verifies_at_the_next_hop() -> None:
    first = masker("off", OTLP_ROOTS, sign_output=True)
    data = otlp.request(otlp.resource(otlp.scope(
        otlp_record({"patient": {"ssn": SSN}, "n": 1.5}, {"host": "a"}, None))))
    result = transform_export(first, data, LIMITS)
    (record,) = otlp.all_records(otlp.forwarded(result))
    assert "phimask.sig" in {kv.key for kv in record.attributes}
    second = transform_export(next_hop(OTLP_ROOTS), result.forward, LIMITS)
    assert second.accepted == 1 and not second.rejections
    tampered = otlp.forwarded(result)
    otlp.all_records(tampered)[0].attributes[0].value.string_value = "b"
    third = transform_export(next_hop(OTLP_ROOTS), tampered.SerializeToString(), LIMITS)
    assert third.rejections[0][1].rule == "integrity:mismatch"


def test_signed_vector_output_verifies_at_the_next_hop() -> None:
    first = masker("off", VECTOR_ROOTS, sign_output=True)
    result = transform_push(first, vec.request(vector_event({"patient": {"ssn": SSN}}, None)),
                            LIMITS)
    second = transform_push(next_hop(VECTOR_ROOTS), result.forward, LIMITS)
    assert second.accepted == 1 and not second.rejections
