"""Inference: shapes, paths as policies write them, distinct counts, and no value kept."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest
import yaml

from bench.corpus import generate_records, planted_phi
from phimask.discover import Inference, PathId, render_path, shape_of
from phimask.discover.infer import ANY_SEG, INDEX_SEG, KEY, DistinctSketch
from phimask.discover.propose import display_path, yaml_scalar
from phimask.policy.paths import ANY_INDEX, ANY_KEY, Key, Segment, parse_path
from tests.discover import full_scanner


@pytest.mark.parametrize(("value", "shape"), [
    ("123-45-6789", "ddd-dd-dddd"),
    ("Ann Lee", "Aaa Aaa"),
    ("5551234567", "d{10}"),
    ("1961-04-12", "dddd-dd-dd"),
    ("MRN-00123456", "AAA-d{8}"),
    ("(617) 555-0142", "(ddd) ddd-dddd"),
    ("a\nb\tc", "a a a"),  # no control character reaches a comment
    ("Zoë Ångström", "Aaa Aa{7}"),
    ("x---y", "a-{3}a"),
    ("", "(empty)"),
    ("the patient called back about the results today", "text(41-64)"),
])
def test_shapes_keep_no_letter_or_digit(value: str, shape: str) -> None:
    assert shape_of(value) == shape


def _segments(path: PathId) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for kind, name in path.segs:
        out.append(Key(name) if kind == KEY else ANY_INDEX if kind == "i" else ANY_KEY)
    return tuple(out)


@pytest.mark.parametrize("keys", [
    ("patient", "ssn"),
    ("app.kubernetes.io/name",),
    ("k8s", "app.kubernetes.io/name"),
    ('say "hi"', "x"),
    ("back\\slash",),
    ("with space", "a b"),
    ("*", "star"),
    ("@timestamp",),
    ("null",),
    ("a[*]b", "c"),
    ("new\nline",),
])
def test_paths_render_as_the_policy_parser_reads_them(keys: tuple[str, ...]) -> None:
    path = PathId("payload", tuple((KEY, k) for k in keys))
    for p in (path, path.child(INDEX_SEG), path.child(INDEX_SEG).child((KEY, "v")),
              path.child(ANY_SEG)):
        rendered = render_path(p)
        assert rendered is not None
        assert parse_path(rendered) == _segments(p)
        # and survives YAML
        assert yaml.safe_load(f"path: {yaml_scalar(rendered)}") == {"path": rendered}


def test_root_words_and_roots() -> None:
    payload_attrs = PathId("payload", ((KEY, "attributes"), (KEY, "user")))
    assert render_path(payload_attrs) == "payload.attributes.user"
    assert render_path(PathId("attributes", ((KEY, "http.client_ip"),))) == (
        'attributes."http.client_ip"')
    assert render_path(PathId("resource", ((KEY, "host.name"),))) == 'resource."host.name"'
    assert render_path(PathId("payload", ())) is None  # the record itself
    assert render_path(PathId("payload", (INDEX_SEG,))) is None  # an array body
    assert display_path(PathId("payload", (INDEX_SEG, (KEY, "x")))) == "(record)[*].x"


@pytest.mark.parametrize("text", ["plain", "null", "yes", "1.5", "- x", "a: b", "#c",
                                  'q"uote', "tab\there", "\x7f\x85\u2028", "😀 emoji",
                                  "\ufeffbom", "{x}", "[*]"])
def test_yaml_scalars_load_back(text: str) -> None:
    assert yaml.safe_load(f"k: {yaml_scalar(text)}") == {"k": text}


def test_distinct_sketch_is_exact_then_close() -> None:
    sketch = DistinctSketch(k=64)
    rng = random.Random(3)
    for _ in range(3):
        for i in range(50):
            sketch.add(i * 0x9E3779B97F4A7C15 % 2**64)
    assert sketch.exact and sketch.estimate() == 50
    big = DistinctSketch()
    for _ in range(40_000):
        big.add(rng.getrandbits(64) % (2**64) if rng.random() < 0.5 else rng.getrandbits(64))
    assert not big.exact
    assert 0.85 * 40_000 <= big.estimate() <= 40_000  # never above what was added


def _infer(records: list[Any], **kw: Any) -> Any:
    inference = Inference(full_scanner(), **kw)
    for rec in records:
        inference.add({"payload": rec})
    return inference.finish()


def test_the_sample_holds_no_value() -> None:
    records = generate_records(400, seed=3)
    sample = _infer(records)
    blob = pickle.dumps(sample)
    for value in set().union(*(planted_phi(r) for r in records)):
        assert value.encode() not in blob
    by_path = {render_path(s.path): s for s in sample.paths}
    ssn = by_path["patient.ssn"]
    assert ssn.whole == {"ssn": 400} and ssn.scanned == 400
    assert set(ssn.shapes) == {"ddd-dd-dddd", "d{9}"}
    assert by_path["msg"].inside["ssn"] > 0 and not by_path["msg"].whole.get("ssn")
    assert by_path["http.status"].types == {"integer": 400}
    assert by_path["http.status"].distinct.estimate() <= 8


def test_keys_that_are_identifiers_are_never_path_names() -> None:
    records = [{"by_email": {"ann.lee@example.org": 1, "count": 2},
                "by_name": {"Ann Lee": {"visits": 3}},
                "": "empty key"}]
    sample = _infer(records)
    paths = {display_path(s.path) for s in sample.paths}
    assert paths == {"(record)", "by_email", "by_email.*", "by_email.count", "by_name",
                     "by_name.*", "by_name.*.visits", "*"}
    by_path = {display_path(s.path): s for s in sample.paths}
    assert by_path["by_email"].key_hits == {"email": 1}
    assert by_path["by_name"].key_hits == {"person_name": 1}  # the name detector
    assert b"ann.lee" not in pickle.dumps(sample)


def test_maps_keyed_by_data_go_under_star_whole_and_depth_is_bounded() -> None:
    # A map keyed by something no detector knows (first names): past `max_keys` distinct
    # keys, every key goes under `*`, also those seen before the limit.
    wide = {f"Name{i}": {"seen": i, "by": {f"Nurse{j}": "x" for j in range(i % 15)}}
            for i in range(40)}
    deep: dict[str, Any] = {"v": "x"}
    for _ in range(70):
        deep = {"d": deep}
    sample = _infer([{"wide": wide, "fixed": {"a": 1}}, deep], max_keys=10)
    by_path = {display_path(s.path): s for s in sample.paths}
    assert {p for p in by_path if not p.startswith("d")} == {
        "(record)", "wide", "wide.*", "wide.*.seen", "wide.*.by", "wide.*.by.*", "fixed",
        "fixed.a"}
    assert max(len(s.path.segs) for s in sample.paths) == 64  # not deeper than masked
    assert by_path["wide"].dynamic_keys == 30
    assert by_path["wide.*"].count == 40 and by_path["wide.*.seen"].count == 40
    assert by_path["wide.*.by.*"].count == sum(i % 15 for i in range(40))
    assert sample.too_deep == 1
    assert b"Name1" not in pickle.dumps(sample) and b"Nurse1" not in pickle.dumps(sample)
