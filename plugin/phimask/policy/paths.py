"""Field paths as policies write them.

    patient.ssn            dotted keys
    patient.*.phone        `*` is any one key
    notes[*].text          `[*]` is every element of an array
    "dotted.key".value     a quoted key may contain dots (escape a quote with \\")
"""

from __future__ import annotations

from dataclasses import dataclass


class PathError(ValueError):
    """A malformed path; the message says where in the path it breaks."""


@dataclass(frozen=True, slots=True)
class Key:
    name: str


@dataclass(frozen=True, slots=True)
class AnyKey:
    pass


@dataclass(frozen=True, slots=True)
class AnyIndex:
    pass


Segment = Key | AnyKey | AnyIndex
ANY_KEY = AnyKey()
ANY_INDEX = AnyIndex()


def parse_path(text: str) -> tuple[Segment, ...]:
    if not isinstance(text, str) or not text.strip():
        raise PathError("path is empty")
    segments: list[Segment] = []
    i, n = 0, len(text)
    expect_key = True
    while i < n:
        ch = text[i]
        if ch == "[":
            if text.startswith("[*]", i):
                if not segments:
                    raise PathError("a path cannot start with [*]")
                segments.append(ANY_INDEX)
                i += 3
                expect_key = False
                continue
            raise PathError(f"at column {i + 1}: only [*] is allowed inside brackets")
        if ch == ".":
            if expect_key:
                raise PathError(f"at column {i + 1}: empty key")
            expect_key = True
            i += 1
            continue
        if not expect_key:
            raise PathError(f"at column {i + 1}: expected '.' or '[*]'")
        if ch == '"':
            name, i = _quoted(text, i)
            segments.append(Key(name))
        else:
            start = i
            while i < n and text[i] not in '.["':
                i += 1
            name = text[start:i]
            if name != name.strip():
                raise PathError(f"at column {start + 1}: keys with spaces must be quoted")
            segments.append(ANY_KEY if name == "*" else Key(name))
        expect_key = False
    if expect_key:
        raise PathError("path ends with '.'")
    return tuple(segments)


def _quoted(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            if not out:
                raise PathError(f"at column {start + 1}: empty quoted key")
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise PathError(f"at column {start + 1}: unterminated quote")

