"""Every scanner test runs once per available engine."""

from __future__ import annotations

from functools import cache

import pytest

from phimask.detect import Scanner, available_engines, builtin_detectors


@pytest.fixture(params=available_engines())
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@cache
def builtin_scanner(engine: str) -> Scanner:
    return Scanner.build(builtin_detectors(), engine)


@pytest.fixture
def scanner(engine: str) -> Scanner:
    return builtin_scanner(engine)


def found(scanner: Scanner, text: str) -> list[tuple[str, str]]:
    """(detector name, matched text) for each match."""
    return [(m.detector.name, text[m.start : m.end]) for m in scanner.scan(text)]
