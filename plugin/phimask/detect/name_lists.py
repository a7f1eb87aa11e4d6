"""The census name lists the person_name detector looks names up in.

`data/names.txt.gz` holds the 1990 US Census first-name and surname lists (public
domain; see its header and scripts/gen_name_lists.py). They are read once, on first
use, into two frozensets of upper-case names (~90,000 entries, a few MB).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from importlib import resources

DATA = "data/names.txt.gz"


@dataclass(frozen=True, slots=True)
class NameLists:
    first: frozenset[str]  # upper case, ASCII letters only
    last: frozenset[str]


def parse(text: str) -> NameLists:
    """`[first]` and `[last]` sections, one name a line; `#` lines are comments."""
    sections: dict[str, set[str]] = {"first": set(), "last": set()}
    current: set[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.get(line[1:-1])
            if current is None:
                raise ValueError(f"{DATA}: unknown section {line}")
            continue
        if current is None:
            raise ValueError(f"{DATA}: a name before the first section")
        current.add(line.upper())
    return NameLists(frozenset(sections["first"]), frozenset(sections["last"]))


@cache
def name_lists() -> NameLists:
    data = resources.files("phimask.detect").joinpath(DATA).read_bytes()
    return parse(gzip.decompress(data).decode("ascii"))
