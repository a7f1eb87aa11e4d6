"""`redact`: replace the whole value with a fixed text, `[REDACTED:<TYPE>]` by default."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from .base import CompileContext, OptionError, Scalar, reject_unknown, str_option

_LABEL_CHARS = re.compile(r"[^A-Z0-9]+")


def label_for(field_name: str) -> str:
    """`patient_ssn` -> `PATIENT_SSN`: the default type of a redaction."""
    label = _LABEL_CHARS.sub("_", field_name.upper()).strip("_")
    return label or "VALUE"


@dataclass(frozen=True, slots=True)
class Redact:
    name: ClassVar[str] = "redact"
    text: str

    @classmethod
    def from_options(cls, options: Mapping[str, Any], ctx: CompileContext) -> Self:
        reject_unknown(options, {"text", "type"})
        kind = str_option(options, "type", ctx.label or label_for(ctx.field_name))
        if not kind:
            raise OptionError("type", "must not be empty")
        return cls(text=str_option(options, "text", f"[REDACTED:{kind}]"))

    def apply(self, value: Scalar) -> Scalar:
        return None if value is None else self.text
