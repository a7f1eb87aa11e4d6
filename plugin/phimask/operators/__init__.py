"""Masking operators, registered by the action name a policy uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .base import BatchOperator, CompileContext, Operator, OperatorError, OptionError, Scalar
from .fpe import FormatPreservingEncryption
from .generalize import Generalize
from .keyed_hash import KeyedHash
from .partial import Partial
from .redact import Redact, label_for
from .tokenize import Tokenize
from .zip3 import Zip3


class OperatorFactory(Protocol):
    def from_options(self, options: Mapping[str, Any], ctx: CompileContext) -> Operator: ...


VALUE_OPERATORS: dict[str, OperatorFactory] = {
    "redact": Redact,
    "hmac": KeyedHash,
    "partial": Partial,
    "generalize": Generalize,
    "zip3": Zip3,
    "fpe": FormatPreservingEncryption,
    "tokenize": Tokenize,
}
# Actions the walker carries out itself: they decide about a node, not a value.
STRUCTURAL_ACTIONS = ("drop", "keep", "scan")
ACTIONS = (*VALUE_OPERATORS, *STRUCTURAL_ACTIONS)

__all__ = [
    "ACTIONS",
    "STRUCTURAL_ACTIONS",
    "VALUE_OPERATORS",
    "BatchOperator",
    "CompileContext",
    "Operator",
    "OperatorError",
    "OptionError",
    "Scalar",
    "label_for",
]
