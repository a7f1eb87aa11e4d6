"""bench.labelled (the labelled corpus) and bench.quality in its quick mode."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.labelled import FORMATS, LABELS, Sample, Span, counts, generate, shape
from bench.quality import QUICK_PER_LABEL, Found, Tool, main, score

HAVE = {
    "presidio": importlib.util.find_spec("presidio_analyzer") is not None,
    "scrubadub": importlib.util.find_spec("scrubadub") is not None,
}

Run = tuple[dict[str, Any], str, str]


def test_corpus_is_deterministic_for_a_seed() -> None:
    a, b = generate(24, seed=3), generate(24, seed=3)
    assert a == b
    assert [s.text for s in generate(24, seed=4)] != [s.text for s in a]


def test_corpus_spans_and_groups() -> None:
    samples = generate(24, seed=1)
    n = counts(24)
    assert Counter(s.format for s in samples) == {f.name: n[f.name] for f in FORMATS}
    assert len({f.name for f in FORMATS}) == len(FORMATS)
    by_group = Counter(s.group for s in samples)
    assert by_group["positive"] and by_group["negative"] and by_group["ambiguous"]
    for s in samples:
        if s.group == "positive":
            assert s.spans and s.decoy is None
        else:
            assert not s.spans and s.decoy in LABELS
        previous_end = 0
        for span in s.spans:
            assert span.label in LABELS
            assert previous_end <= span.start < span.end <= len(s.text)
            piece = s.text[span.start : span.end]
            assert piece == piece.strip() and any(c.isalnum() for c in piece)
            previous_end = span.end
    labels = Counter(sp.label for s in samples for sp in s.spans)
    assert set(labels) == set(LABELS)


def test_shape_hides_values() -> None:
    assert shape("+44(0)20 7946-0958") == "+dd(d)dd dddd-dddd"
    assert shape("Jane.Doe@Example.org") == "Aaaa.Aaa@Aaaaaaa.aaa"


def test_scoring_counts_overlaps_by_label() -> None:
    text = "SSN 123-45-6789 call 415-555-0100 ref 12345"
    samples = [
        Sample(text, (Span(4, 15, "SSN"), Span(21, 33, "PHONE")), "positive", "mixed"),
        Sample("order 987654321 shipped", (), "negative", "neg: order", "SSN"),
    ]
    found = [
        [
            Found(4, 8, "SSN", "ssn"),  # overlaps the SSN: a hit, though partial
            Found(7, 15, "SSN", "ssn"),  # overlaps the one before: merged, one detection
            Found(21, 33, "SSN", "ssn"),  # on the phone, wrong label: false positive
            Found(38, 43, None, "other"),  # outside the labels: not scored
        ],
        [Found(6, 15, "SSN", "ssn")],  # a false positive on a negative
    ]
    tool = Tool("t", "0", lambda texts: found, {"ssn": "SSN", "phone": "PHONE"})
    result = score(tool, samples, found)
    ssn, phone = result["labels"]["SSN"], result["labels"]["PHONE"]
    assert (ssn["hit"], ssn["detections"], ssn["true_detections"]) == (1, 3, 1)
    assert ssn["recall"] == 1.0 and ssn["precision"] == pytest.approx(1 / 3)
    assert phone["recall"] == 0.0 and phone["precision"] is None
    assert phone["fully_masked"] == 1.0  # the SSN detection covered every digit
    assert result["labels"]["MRN"]["supported"] is False
    assert result["labels"]["MRN"]["recall"] is None
    assert result["formats"]["neg: order"]["flag_rate"] == 1.0
    assert result["formats"]["mixed"]["missed_shapes"] == ["ddd-ddd-dddd"]
    assert result["unmapped_detections"] == {"other": 1}


def run(out: Path, *args: str) -> Run:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["--quick", "--out", str(out), *args])
    assert code == 0, stderr.getvalue()
    report = orjson.loads((out / "quality.json").read_bytes())
    md = (out / "quality.md").read_text()
    assert stdout.getvalue().strip() == md.strip()
    return report, md, stderr.getvalue()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run(tmp_path_factory.mktemp("quality"))


def test_quick_report_is_well_formed(quick_run: Run) -> None:
    report, md, _ = quick_run
    assert report["config"]["per_label"] == QUICK_PER_LABEL
    phimask = report["tools"]["phimask"]
    assert phimask["available"]
    for label in LABELS:
        stats = phimask["labels"][label]
        assert stats["supported"] and stats["spans"] > 0
        assert 0 <= stats["recall"] <= 1 and 0 <= stats["precision"] <= 1
        target = report["targets"][label]
        assert target["recall_met"] == (stats["recall"] >= 0.995)
    for heading in (
        "## Recall and precision by label",
        "## phimask against its targets",
        "## phimask's misses, by format",
        "## Recall by format",
        "## Negatives",
    ):
        assert heading in md
    for peer, name in (("presidio", "Presidio"), ("scrubadub", "scrubadub")):
        tool = report["tools"][peer]
        assert tool["available"] == HAVE[peer]
        if HAVE[peer]:
            assert f"{name} recall" in md
        else:
            assert "pip install" in tool["reason"] and f"{name}: not measured" in md
    if HAVE["presidio"]:
        assert report["tools"]["presidio"]["labels"]["MRN"]["supported"] is False


def test_no_sample_value_is_written(quick_run: Run) -> None:
    report, md, progress = quick_run
    written = orjson.dumps(report["tools"]).decode() + md.split("\n", 3)[3] + progress
    for s in generate(QUICK_PER_LABEL, 1):
        for span in s.spans:
            value = s.text[span.start : span.end]
            if len(value) >= 6:
                assert value not in written


def test_without_peers_phimask_is_still_scored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("presidio_analyzer", "presidio_anonymizer", "scrubadub"):
        monkeypatch.setitem(sys.modules, module, None)
    report, md, progress = run(tmp_path, "--per-label", "16")
    assert report["tools"]["phimask"]["available"]
    for peer in ("presidio", "scrubadub"):
        assert "pip install -e '.[compare]'" in report["tools"][peer]["reason"]
    assert "skipping Presidio" in progress and "skipping scrubadub" in progress
    assert "Presidio: not measured" in md
