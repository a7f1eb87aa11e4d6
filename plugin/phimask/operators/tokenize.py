"""`tokenize`: replace a value by a random token kept in the vault, reversible only by
an authorized re-identification call.

HIPAA 164.514(c): a re-identification code must not be derived from the value, so the
token is random (`tok_<kid>_<random>`, or the value's shape with `shape: digits |
alnum`); the vault keeps one token per value and domain across every replica. The
domain is the rule's path unless `domain` names one (to share tokens between fields).
A vault that cannot be reached fails the whole batch (UNAVAILABLE, the shipper
retries): never a clear value, never a token the vault does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ..vault import TokenShapeError
from .base import (
    CompileContext,
    OperatorError,
    OptionError,
    Scalar,
    as_text,
    choice_option,
    reject_unknown,
    str_option,
)

if TYPE_CHECKING:
    from ..vault import Vault

SHAPES = ("tok", "digits", "alnum")


class Tokenize:
    name: ClassVar[str] = "tokenize"
    __slots__ = ("domain", "shape", "vault")

    def __init__(self, vault: Vault | None, domain: str, shape: str) -> None:
        self.vault = vault
        self.domain = domain
        self.shape = shape

    @classmethod
    def from_options(cls, options: Mapping[str, Any], ctx: CompileContext) -> Self:
        reject_unknown(options, {"shape", "domain"})
        shape = choice_option(options, "shape", "tok", SHAPES)
        domain = str_option(options, "domain", ctx.path)
        if not domain:
            raise OptionError("domain", "must not be empty")
        # The vault opens here, at startup: an unreachable one stops the start. Without
        # one (`phimask check`) the rule compiles, and would reject every value.
        source = ctx.extra.get("vault")
        vault = source() if callable(source) else source
        return cls(vault, domain, shape)

    def apply(self, value: Scalar) -> Scalar:
        if value is None:
            return None
        return self.apply_many([self.prepare(value)])[0]

    def prepare(self, value: Scalar) -> str:
        text = as_text(value)
        if self.shape != "tok" and not any(c.isalnum() for c in text):
            raise OperatorError("nothing_to_tokenize")  # a shaped token keeps no letter
        return text

    def apply_many(self, texts: list[str]) -> list[str]:
        """One vault round trip for a batch's values (two when some are new)."""
        if self.vault is None:
            raise OperatorError("vault_not_open")
        try:
            return self.vault.tokenize_many(self.domain, texts, self.shape)
        except TokenShapeError as exc:
            if exc.status == "RESOURCE_EXHAUSTED":
                raise  # no free token is left in this shape: an operator must act
            raise OperatorError("tokenize_shape") from None
