"""Build a Masker from policy text for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phimask.detect import Scanner
from phimask.pipeline import Masker
from phimask.policy import compile_policy, load_yaml
from tests.conftest import fixed_keyring


def masker_for(text: str, state_dir: Path, engine: str = "auto") -> Masker:
    plan = compile_policy(load_yaml(text, "test.yaml"), state_dir=state_dir, keys=fixed_keyring())
    return Masker(plan, Scanner.build(plan.detectors, engine=engine))


def mask_one(masker: Masker, payload: dict[str, Any], attributes: dict[str, str] | None = None
             ) -> dict[str, Any]:
    doc = {"payload": payload, "attributes": attributes or {}}
    (outcome,) = masker.mask_batch([doc])
    assert outcome is None, outcome
    return doc
