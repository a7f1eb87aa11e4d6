from __future__ import annotations

import re
from statistics import mean
from typing import Any

import orjson
import pytest

from bench.corpus import (
    encode_requests,
    generate_records,
    iter_records,
    luhn_ok,
    msg_phi,
    planted_phi,
)
from phimask._gen.phimask.v1 import transform_pb2

NANP = re.compile(r"\D*(?:1\D+)?([2-9]\d\d)\D+([2-9]\d\d)\D+(\d{4})")


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return generate_records(800, seed=3)


def test_same_seed_same_corpus_other_seed_other_corpus() -> None:
    assert generate_records(40, seed=5) == generate_records(40, seed=5)
    assert generate_records(40, seed=6) != generate_records(40, seed=5)
    assert generate_records(10, seed=5) == generate_records(40, seed=5)[:10]


def test_iter_records_matches_generate_records() -> None:
    stream = iter_records(seed=9)
    assert [next(stream) for _ in range(5)] == generate_records(5, seed=9)


def test_average_serialized_size(records: list[dict[str, Any]]) -> None:
    assert 500 <= mean(len(orjson.dumps(r)) for r in records) <= 600


def test_about_thirty_percent_of_messages_carry_phi(records: list[dict[str, Any]]) -> None:
    share = sum(bool(msg_phi(r)) for r in records) / len(records)
    assert 0.20 <= share <= 0.40


def test_planted_phi_appears_in_the_record(records: list[dict[str, Any]]) -> None:
    for rec in records:
        text = orjson.dumps(rec).decode()
        planted = planted_phi(rec)
        patient = rec["patient"]
        assert {
            patient["ssn"],
            patient["mrn"],
            patient["name"],
            rec["http"]["client_ip"],
        } <= planted
        assert msg_phi(rec) <= planted
        for value in planted:
            assert value and value in text, value
        for fragment in msg_phi(rec):
            assert fragment in rec["msg"]


def test_identifier_shapes(records: list[dict[str, Any]]) -> None:
    for rec in records:
        patient = rec["patient"]
        ssn = patient["ssn"].replace("-", "")
        assert len(ssn) == 9 and ssn.isdigit()
        assert ssn[:3] not in {"000", "666"} and ssn[0] != "9"
        assert ssn[3:5] != "00" and ssn[5:] != "0000"
        assert re.fullmatch(r"MRN-\d{8}", patient["mrn"])
        assert NANP.fullmatch(patient["phone"]), patient["phone"]
        for fragment in msg_phi(rec):
            digits = re.sub(r"[ -]", "", fragment)
            if len(digits) == 16 and digits.isdigit():
                assert luhn_ok(digits), fragment


def test_encode_requests_round_trip(records: list[dict[str, Any]]) -> None:
    requests = encode_requests(records, batch_size=300)
    decoded = [transform_pb2.TransformRequest.FromString(r) for r in requests]
    assert [len(d.records) for d in decoded] == [300, 300, 200]
    flat = [rec for d in decoded for rec in d.records]
    assert [orjson.loads(r.payload) for r in flat] == records
    ids = [r.id for r in flat]
    assert len(set(ids)) == len(ids) and all(ids)
    assert len(encode_requests(records)) == 1
