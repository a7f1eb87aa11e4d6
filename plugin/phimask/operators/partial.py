"""`partial`: keep the last `keep` letters/digits, mask the others, keep separators.

`555-123-4567` -> `***-***-4567`. A value with no more than `keep` letters/digits is
masked entirely (`ab` -> `**` with keep=4): keeping "the last four" of a four-character
value would reveal all of it.

Letters and digits are what `str.isalnum` says (so Unicode letters count); every other
character is a separator and stays where it is, except a combining mark (an accent in
decomposed text) that follows a masked character: it is masked too, since it belongs to
the masked letter. Length is always preserved. Ints and floats are masked through their
text form and come back as strings.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from .base import (
    CompileContext,
    OptionError,
    Scalar,
    as_text,
    int_option,
    reject_unknown,
    str_option,
)


@dataclass(frozen=True, slots=True)
class Partial:
    name: ClassVar[str] = "partial"
    keep: int = 4
    mask: str = "*"

    @classmethod
    def from_options(cls, options: Mapping[str, Any], ctx: CompileContext) -> Self:
        reject_unknown(options, {"keep", "mask"})
        keep = int_option(options, "keep", 4, minimum=0)
        mask = str_option(options, "mask", "*")
        if len(mask) != 1 or not mask.isprintable():
            raise OptionError("mask", "must be a single printable character")
        return cls(keep=keep, mask=mask)

    def apply(self, value: Scalar) -> Scalar:
        if value is None:
            return None
        text = as_text(value)
        total = sum(1 for ch in text if ch.isalnum())
        to_mask = total - self.keep if total > self.keep else total
        if to_mask == 0:
            return text
        out: list[str] = []
        masked_prev = False
        for ch in text:
            if ch.isalnum():
                masked_prev = to_mask > 0
                if masked_prev:
                    out.append(self.mask)
                    to_mask -= 1
                else:
                    out.append(ch)
            elif masked_prev and not ch.isascii() and unicodedata.category(ch).startswith("M"):
                out.append(self.mask)
            else:
                masked_prev = False
                out.append(ch)
        return "".join(out)
