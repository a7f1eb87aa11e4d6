"""The person_name detector: personal names in prose, by dictionary and cues.

The pattern finds runs of capitalized, name-shaped words (`Ann Lee`, `Mary-Jo O'Neil`,
`John Q. Public`, `Lee, Ann`), optionally after a title (`Dr.`, `Mrs`, `pt`); it is
loose on purpose, and `person_context` decides, from the words and what stands right
before them, whether the run is a name:

* after a title or a cue word (`Dr. Lee`, `seen by Ann Lee`, `patient: Ann Lee`): the
  words are name-shaped, none is a known non-name (`Portal`, `Error`, `Monday`), and one
  is a census first name or surname;
* otherwise a census first name and, last, a census surname (`Ann Lee`), where the first
  name is no common word (`Will`, `May`, `Grant`, `Austin`: those only before a surname
  that is no common word either); or `Surname, First` (`Lee, Ann`).

So `Internal Server Error`, `User Agent`, `Will retry`, `Patient Portal` and `May 2024`
are no names. Names in capitals (`ANN LEE`), lower case, or one word without a cue are
not found. The pattern uses only what both scan engines share (no lookaround), so the
engines agree by construction: the scanner runs it like any detector's, and this check
sees only the text. Lists: name_lists.py (census), name_words.py (by hand).
"""

from __future__ import annotations

import re
import unicodedata

from phimask.detect.name_lists import name_lists
from phimask.detect.name_words import (
    AMBIGUOUS_FIRST,
    CUES_BEFORE,
    NOT_NAMES,
    TITLES,
)

# Latin-1 letters count: `José García` is a name. Both engines read these as code points
# (Hyperscan in UTF-8 mode), so they stay out of case-insensitive parts.
_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
_U, _L = f"[{_UPPER}]", f"[{_LOWER}]"
_PART = f"{_L}{{1,15}}"
# Ann, O'Neil, McDonald, DeShawn, Mary-Jo
TOKEN = f"{_U}(?:'{_U})?{_PART}(?:{_U}{_PART})?(?:-{_U}{_PART})?"
INITIAL = f"{_U}\\.?"
_TITLE = "(?:" + "|".join(TITLES) + ")"

PERSON = (
    f"{_TITLE}\\.?:? {{1,2}}(?:{INITIAL} )?{TOKEN}(?: (?:{TOKEN}|{INITIAL})){{0,2}}"
    f"|{TOKEN}(?:,? (?:{TOKEN}|{INITIAL})){{1,3}}"
)
# Contained in every match person_context accepts (a space between a letter, "." or ","
# and a capital followed by a lower-case letter or "'"): Hyperscan scans for this.
PERSON_PREFILTER = f"[A-Za-zÀ-ÖØ-öø-ÿ.:,] {{1,2}}{_U}['{_LOWER}]"

_TITLE_AT = re.compile(f"{_TITLE}\\.?:? {{1,2}}")
_CUE_WINDOW = 24
_CUE_BEFORE = re.compile(
    r"(?<![A-Za-z])(?:" + "|".join(re.escape(c) for c in CUES_BEFORE) + r")"
    r"(?:[-_ ]?name)?[\s:=#'\"(]{1,4}$|(?<=[a-z])Name[:=\"' ]{1,3}$",
    re.IGNORECASE,
)
_CUE_TRAIL = " \t:=#'\"("
_CUE_ENDINGS = tuple({c.split()[-1] for c in CUES_BEFORE} | {"name"})
# Mc/Mac/De/... before a second capital: McDonald, DeShawn; other inner capitals
# (JavaScript, WebKit) are no names.
_CAMEL_PREFIXES = frozenset({"MC", "MAC", "DE", "DI", "DA", "DU", "LA", "LE", "VAN", "VON"})


def _key(word: str) -> str:
    """Upper case, accents and apostrophes dropped: how the census lists spell it."""
    if not word.isascii():
        word = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
    return word.replace("'", "").upper()


def _plain(word: str) -> bool:
    """ASCII, one capital, no hyphen or apostrophe: most words, checked fast."""
    return word.isascii() and word[1:].islower() and "-" not in word and "'" not in word


def _shaped(word: str) -> bool:
    """A capital only at the start of each hyphen part, after an O' / D', or after a
    surname prefix (Mc, Mac, De, ...)."""
    if word[1:].islower():
        return True
    for part in word.split("-"):
        body = part[3:] if part[1:2] == "'" else part[1:]
        inner = [i for i, ch in enumerate(body) if ch.isupper()]
        if inner and (len(inner) > 1 or _key(part[: inner[0] + 1]) not in _CAMEL_PREFIXES):
            return False
    return True


def _in(word: str, names: frozenset[str]) -> bool:
    if _plain(word):
        return word.upper() in names
    key = _key(word)
    return key in names or ("-" in key and any(p in names for p in key.split("-")))


def _stop(word: str) -> bool:
    if _plain(word):
        return word.upper() in NOT_NAMES
    return any(p in NOT_NAMES for p in _key(word).split("-"))


def person_context(text: str, start: int, end: int) -> bool:
    """Whether `text[start:end]`, a match of PERSON, is a personal name."""
    if (start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")) or (
        end < len(text) and (text[end].isalnum() or text[end] == "_")
    ):
        return False  # inside a longer word (a non-ASCII letter the pattern did not take)
    span = text[start:end]
    title = _TITLE_AT.match(span)
    words = span[title.end() :].split(" ") if title else span.split(" ")
    comma = [i for i, w in enumerate(words) if w.endswith(",")]
    if comma:
        if comma != [0] or len(words) not in (2, 3) or _initial(words[1]):
            return False
        words = [words[0][:-1], *words[1:]]
        if len(words) == 3 and not _initial(words[2]):
            return False
    elif _initial(words[-1]):
        return False
    tokens = [w for w in words if not _initial(w)]
    if any(_stop(w) or not _shaped(w) for w in tokens):
        return False
    lists = name_lists()
    if title is not None or _cue_before(text, start):
        # One listed word is enough: `Dr. Okonkwo-Bell`, `seen by Ann Xu`.
        return any(_in(w, lists.first) or _in(w, lists.last) for w in tokens)
    first, last = (tokens[1], tokens[0]) if comma else (tokens[0], tokens[-1])
    if not (_in(first, lists.first) and _in(last, lists.last)):
        return False
    return _key(first) not in AMBIGUOUS_FIRST or _key(last) not in AMBIGUOUS_FIRST


def _initial(word: str) -> bool:
    return len(word.rstrip(".")) == 1


def _cue_before(text: str, start: int) -> bool:
    before = text[max(0, start - _CUE_WINDOW) : start]
    # A cue word ends within the last few characters: a cheap test first.
    if not before.rstrip(_CUE_TRAIL).lower().endswith(_CUE_ENDINGS):
        return False
    return _CUE_BEFORE.search(before) is not None
