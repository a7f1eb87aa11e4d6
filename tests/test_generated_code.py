"""The checked-in protobuf code is exactly what scripts/gen_protos.py generates."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gen_protos.py"


def test_generated_code_is_fresh() -> None:
    spec = importlib.util.spec_from_file_location("gen_protos", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.stale_files() == [], "run: make protos (python scripts/gen_protos.py)"
