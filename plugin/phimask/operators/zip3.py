"""`zip3`: a ZIP code becomes its first three digits (Safe Harbor), or "000" where the
three-digit area holds 20,000 people or fewer (the HHS restricted prefixes).

Options:
  table   which census the restricted list comes from: "2000", "2010" or "union"
          (default: both, so a prefix restricted by either census is masked).
  suffix  text appended to the three digits: "**" gives "021**" / "000**".

Accepted values: "02139", "02139-1234", "021391234" (surrounding whitespace ignored),
and ints: up to 5 digits is a ZIP that lost its leading zeros (2139 -> "02139"), 6 to 9
digits is a ZIP+4 that lost them (21391234 -> "02139-1234"). Anything else fails with
"invalid_zip" (a bool with "unsupported_type").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Self

from .base import (
    CompileContext,
    OperatorError,
    OptionError,
    Scalar,
    choice_option,
    reject_unknown,
    str_option,
)

# HHS de-identification guidance, section 2.4: three-digit ZIP areas of 20,000 people or fewer.
# fmt: off
_2000 = frozenset({
    "036", "059", "063", "102", "203", "556", "692", "790", "821",
    "823", "830", "831", "878", "879", "884", "890", "893",
})
_2010 = frozenset({
    "036", "059", "102", "203", "205", "369", "556", "692", "821",
    "823", "878", "879", "884", "893",
})
# fmt: on
RESTRICTED_ZIP3: Mapping[str, frozenset[str]] = MappingProxyType(
    {"2000": _2000, "2010": _2010, "union": _2000 | _2010}
)
TABLES = tuple(RESTRICTED_ZIP3)
RESTRICTED = "000"

_ZIP = re.compile(r"(\d{3})\d{2}(?:-?\d{4})?", re.ASCII)


@dataclass(frozen=True, slots=True)
class Zip3:
    name: ClassVar[str] = "zip3"
    table: str = "union"
    suffix: str = ""
    restricted: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.table not in RESTRICTED_ZIP3:
            raise OptionError("table", f"must be one of {', '.join(TABLES)}")
        object.__setattr__(self, "restricted", RESTRICTED_ZIP3[self.table])

    @classmethod
    def from_options(cls, options: Mapping[str, Any], ctx: CompileContext) -> Self:
        reject_unknown(options, {"table", "suffix"})
        table = options.get("table", "union")
        # YAML reads an unquoted `table: 2010` as an int.
        if isinstance(table, int) and not isinstance(table, bool):
            table = str(table)
        table = choice_option({"table": table}, "table", "union", TABLES)
        return cls(table=table, suffix=str_option(options, "suffix", ""))

    def apply(self, value: Scalar) -> Scalar:
        if value is None:
            return None
        if isinstance(value, bool):
            raise OperatorError("unsupported_type")
        if isinstance(value, int):
            if 0 <= value <= 99_999:
                prefix = f"{value:05d}"[:3]
            elif 99_999 < value <= 999_999_999:
                prefix = f"{value:09d}"[:3]
            else:
                raise OperatorError("invalid_zip")
        elif isinstance(value, str) and (m := _ZIP.fullmatch(value.strip())):
            prefix = m[1]
        else:
            raise OperatorError("invalid_zip")
        return (RESTRICTED if prefix in self.restricted else prefix) + self.suffix
