"""Policies: load and validate YAML, compile it to a Plan the pipeline runs."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ..keyring import Keyring
from .compile import IntegritySpec, Kind, Node, Plan, Rule, compile_policy, policy_version
from .loader import PolicyError, load_yaml

DEFAULT_SOURCE = "<embedded default policy>"


def default_policy_text() -> str:
    return resources.files(__package__).joinpath("default.yaml").read_text(encoding="utf-8")


def load_policy(
    path: Path | None,
    *,
    state_dir: Path,
    keys: Keyring,
    vault: Any = None,
    roots: Sequence[str] = ("payload", "attributes"),
) -> Plan:
    """Read, validate and compile a policy file (None: the embedded default)."""
    if path is None:
        text, source = default_policy_text(), DEFAULT_SOURCE
    else:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(source, None, "", f"cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise PolicyError(source, None, "", "not UTF-8 text") from None
    return compile_policy(load_yaml(text, source), roots=roots, state_dir=state_dir,
                          keys=keys, vault=vault)


__all__ = [
    "DEFAULT_SOURCE",
    "IntegritySpec",
    "Kind",
    "Node",
    "Plan",
    "PolicyError",
    "Rule",
    "compile_policy",
    "default_policy_text",
    "load_policy",
    "load_yaml",
    "policy_version",
]
