"""Write plugin/phimask/detect/data/names.txt.gz, the name lists of the person_name detector.

Source: the 1990 US Census name files (Frequently Occurring Surnames and First Names,
US Census Bureau, Population Division, 1995): dist.male.first (1,219 names),
dist.female.first (4,275) and dist.all.last (88,799). They are a US government work,
in the public domain. This script reads them from the sdist of the PyPI package
`names` 0.3.0 (MIT licence, https://github.com/treyhunner/names), which ships them
unchanged; `names` is not a dependency of phimask, only where the files come from:

    pip download names==0.3.0 --no-deps -d /tmp/names
    python scripts/gen_name_lists.py /tmp/names/names-0.3.0.tar.gz

The output is gzip (mtime 0, so the same input gives the same bytes): a header of `#`
lines naming the source and licence, then `[first]` and `[last]` sections, one
upper-case name a line, sorted. Frequencies are not kept. Which first names are also
common English words (May, Will, Grant, ...) is decided in phimask.detect.name_words,
not here: this file holds the census lists as published.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "plugin" / "phimask" / "detect" / "data" / "names.txt.gz"
MEMBERS = {
    "first": ("names/dist.male.first", "names/dist.female.first"),
    "last": ("names/dist.all.last",),
}
HEADER = """\
# Name lists of phimask's person_name detector (phimask.detect.names).
# Source: US Census Bureau, 1990 census, "Frequently Occurring First Names and
# Surnames" (dist.male.first, dist.female.first, dist.all.last), a US government
# work in the public domain; taken unchanged from the PyPI package `names` 0.3.0
# (MIT licence), which ships those files. Frequencies dropped, names sorted.
# Regenerate: python scripts/gen_name_lists.py PATH/TO/names-0.3.0.tar.gz
"""


def _names(lines: Iterable[str]) -> set[str]:
    """The first column of a census file: the name, upper case, ASCII letters."""
    out: set[str] = set()
    for line in lines:
        fields = line.split()
        if fields and fields[0].isalpha() and fields[0].isascii():
            out.add(fields[0].upper())
    return out


def read_lists(sdist: Path) -> dict[str, set[str]]:
    lists: dict[str, set[str]] = {}
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
        for section, names in MEMBERS.items():
            found: set[str] = set()
            for name in names:
                member = members.get(name)
                if member is None:
                    raise SystemExit(f"{sdist}: no {name} in the archive")
                data = tar.extractfile(member)
                assert data is not None
                found |= _names(data.read().decode("ascii").splitlines())
            lists[section] = found
    return lists


def render(lists: dict[str, set[str]]) -> bytes:
    lines = [HEADER.rstrip("\n")]
    for section in MEMBERS:
        lines.append(f"[{section}]")
        lines.extend(sorted(lists[section]))
    text = "\n".join(lines) + "\n"
    return gzip.compress(text.encode("ascii"), compresslevel=9, mtime=0)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sdist", type=Path, help="names-0.3.0.tar.gz from `pip download names==0.3.0`")
    p.add_argument("--out", type=Path, default=OUT, help=f"default {OUT.relative_to(ROOT)}")
    args = p.parse_args(argv)
    lists = read_lists(args.sdist)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(render(lists))
    sizes = ", ".join(f"{len(v)} {k}" for k, v in lists.items())
    print(f"wrote {args.out} ({sizes}; {args.out.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
