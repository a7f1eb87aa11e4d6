"""What every masking operator is: options validated once at compile time, then a pure
per-value function.

An operator never sees more than one value, never logs, and never puts the value it
was given into an exception: `OperatorError` carries a reason code only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..keyring import Keyring

Scalar = str | int | float | bool | None


class OperatorError(Exception):
    """A value this operator cannot mask. `reason` is a code, never the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OptionError(Exception):
    """A bad operator option in a policy; `option` names it, the message says why."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"option {option!r}: {message}")
        self.option = option


@dataclass(frozen=True)
class CompileContext:
    """What an operator may need when the policy compiles.

    `path` is the rule's path as written; `field_name` its last key, used for
    default labels and hints; `state_dir` where local default keys live.
    """

    path: str
    field_name: str
    state_dir: Path
    label: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


class Operator(Protocol):
    name: ClassVar[str]

    def apply(self, value: Scalar) -> Scalar:
        """Mask one value. None passes through (a null carries no identifier)."""
        ...


@runtime_checkable
class BatchOperator(Protocol):
    """An operator that is cheaper for many values at once (a vault round trip): the
    pipeline calls `prepare` per value (checks, the text) and `apply_many` once per
    batch. `apply_many` raises OperatorError when any value cannot be masked."""

    name: ClassVar[str]

    def prepare(self, value: Scalar) -> str: ...

    def apply_many(self, texts: list[str]) -> list[str]: ...


def keyring_of(ctx: CompileContext) -> Keyring:
    """The keyring the policy compiles with; a missing key raises KeyLoadError, which
    names the purpose and where the key was looked for."""
    keys = ctx.extra.get("keys")
    if keys is None:
        raise OptionError("key", "no keyring is configured")
    return keys  # type: ignore[no-any-return]


def reject_unknown(options: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise OptionError(unknown[0], f"unknown option (this action takes: {known})")


def int_option(options: Mapping[str, Any], name: str, default: int, *, minimum: int) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(name, "must be an integer")
    if value < minimum:
        raise OptionError(name, f"must be at least {minimum}")
    return value


def str_option(options: Mapping[str, Any], name: str, default: str) -> str:
    value = options.get(name, default)
    if not isinstance(value, str):
        raise OptionError(name, "must be a string")
    return value


def choice_option(
    options: Mapping[str, Any], name: str, default: str, choices: tuple[str, ...]
) -> str:
    value = str_option(options, name, default)
    if value not in choices:
        raise OptionError(name, f"must be one of {', '.join(choices)}")
    return value


def as_text(value: Scalar) -> str:
    """The text form of a scalar a string operator was mapped to (an SSN stored as int)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        raise OperatorError("unsupported_type")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise OperatorError("unsupported_type")
        if value.is_integer():
            return str(int(value))
    return str(value)
