"""The built-in free-text PHI detectors and policy-defined ones.

Patterns are written in the common subset of Hyperscan and Python `re` (ASCII, no
lookaround, no backreferences, no anchors) and never match "\\x00", which the scanner
uses to separate texts. Every repetition is bounded where an unbounded one would let
`re` backtrack over long runs, and alternatives that share a start are ordered
longest first, since `re` takes the first alternative that matches.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

from phimask.detect import context as ctx
from phimask.detect import validators as v
from phimask.detect.person import PERSON, PERSON_PREFILTER, person_context
from phimask.detect.safety import PatternError, UnsafePatternError, check_pattern_safe

# Which characters may not touch a match on either side (checked by the scanner):
# "digit"/"alnum"/"word" are ASCII classes; "dotted" is "alnum" plus a "." that has an
# alphanumeric beyond it (so 1.2.3.4.5 is no IPv4 address) and, on the left, a "/"
# right after a letter (so Chrome/120.0.0.0 is a version, not an address).
Boundary = Literal["none", "digit", "alnum", "word", "dotted"]
BOUNDARIES: tuple[Boundary, ...] = ("none", "digit", "alnum", "word", "dotted")


@dataclass(frozen=True)
class Detector:
    name: str
    label: str
    pattern: str
    validator: Callable[[str], bool] | None = None
    boundary: Boundary = "none"
    case_insensitive: bool = False
    # What Hyperscan looks for instead of `pattern`, to report fewer events; every match
    # of `pattern` must contain a match of it (e.g. a prefix of it).
    prefilter: str | None = None
    # A check of the text around a match, `context(text, start, end)`, run after the
    # validator (cue words such as "tel" or "order #"); pure, like the validator.
    context: Callable[[str, int, int], bool] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise PatternError("a detector needs a name")
        if self.boundary not in BOUNDARIES:
            raise PatternError(f"detector {self.name!r}: unknown boundary {self.boundary!r}")
        if not self.pattern:
            raise PatternError(f"detector {self.name!r}: empty pattern")


_SSN = r"\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}|\d{9}"

_PHONE = (
    r"(?:(?:(?:\+|00)?1[-. ]?)?(?:\(\d{3}\) ?|\d{3}[-. ]?)\d{3}[-. ]?\d{4}"  # NANP; +1, 1, 001
    r"|\+[1-9]\d{0,2} ?\(0\) ?\d(?:[-. ]?\d){5,13}"  # +44 (0)20 ..., +49(0)30 ...
    r"|\+[1-9](?:[-. ]?\d){7,14}"  # +<country code> ..., 8-15 digits
    r"|\(0\d{1,4}\)[-. ]?\d{2,4}(?:[-. ]?\d{2,4}){1,3}"  # national: (020) 7946 0958
    r"|0\d{1,4}[-. ]?\d{2,8}(?:[-. ]\d{2,4}){0,3})"  # national: 030 12345678, 06 12 34 56 78
    r"(?: ?(?:x|ext\.?) ?\d{1,5})?"  # extension
)

_EMAIL = r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,63}"
_EMAIL_PREFILTER = r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]"

_URL = (
    r"(?:(?:https?|ftp)://|www\.)"
    r"[^\x00-\x20<>\"'`]*[^\x00-\x20<>\"'`.,;:!?)\]}]"  # no trailing punctuation
)
_URL_PREFILTER = r"(?:(?:https?|ftp)://|www\.)[^\x00-\x20<>\"'`]"

_IPV4 = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"

_H = r"[0-9A-Fa-f]{1,4}"
_V4 = r"\d{1,3}(?:\.\d{1,3}){3}"
_IPV6 = (
    rf"(?:{_H}:){{6}}{_V4}"  # 1:2:3:4:5:6:1.2.3.4
    rf"|(?:{_H}(?::{_H}){{0,5}})?::(?:{_H}:){{0,5}}{_V4}"  # ::ffff:1.2.3.4
    rf"|(?:{_H}:){{7}}{_H}"  # full
    rf"|(?:{_H}(?::{_H}){{0,6}})?::(?:{_H}(?::{_H}){{0,6}})?"  # compressed
)

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DATE = (
    r"\d{4}-\d{2}-\d{2}"  # ISO date, optionally with a time
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{4}/\d{1,2}/\d{1,2}"  # 1961/04/12
    r"|\d{8}"  # HL7 19610412: only after a date cue (context.date_context)
    r"|\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})"  # 4/12/1961, 4/12/61
    r"|\d{1,2}-\d{1,2}-\d{4}"  # 04-12-1961 (two-digit years only with "/")
    r"|\d{1,2}\.\d{1,2}\.\d{4}"  # 12.04.1961
    rf"|\d{{1,2}}-{_MONTH}\.?-(?:\d{{4}}|\d{{2}})"  # 12-Apr-1961, 12-APR-61
    # 12 April 1961; 12th of April (no year: only with an ordinal, see date_valid)
    rf"|\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{_MONTH}(?:\.?,? \d{{4}})?"
    # April 1961; April 12, 1961; April 12th (no year: only with an ordinal)
    rf"|{_MONTH}\.? {{1,2}}(?:\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?(?:,? {{1,2}}\d{{4}})?)"
)

_CARD = (
    r"\d{13,19}"
    r"|\d{4}[- ]\d{4}[- ]\d{4}[- ]\d{1,4}(?:[- ]\d{1,3})?"  # 4-4-4-4 (13 to 19 digits)
    r"|\d{4}[- ]\d{6}[- ]\d{4,5}"  # Amex 4-6-5, Diners 4-6-4
)

_VIN = r"[A-HJ-NPR-Z0-9]{17}"

_NUMBER_TAG = r"(?: ?(?:ID|No\.?|Number|#))?[-:# ]{0,3}"
DEFAULT_MRN = (
    r"(?:MRN|MR ?#|Med(?:ical|\.)? ?Rec(?:ord|\.)?(?: ?(?:Number|No\.?|#))?)"
    r"[\"']?[-:#= \"']{0,5}(?:[A-Z]{1,3}-?)?\d{6,10}"  # MRN: 1234567, "mrn": "A1234567"
)
DEFAULT_HEALTH_PLAN = (
    rf"(?:HPN|MBR|MEM|Member|Subscriber|Policy|Health ?Plan){_NUMBER_TAG}[A-Z]{{0,3}}\d{{6,12}}"
    rf"|Plan ?(?:ID|No\.?|Number|#)[-:# ]{{0,3}}[A-Z]{{0,3}}\d{{6,12}}"
)
DEFAULT_ACCOUNT = rf"(?:Account|Acct){_NUMBER_TAG}\d{{6,17}}"

# Order is the tie-break when two detectors match the same span.
_BUILTINS: tuple[Detector, ...] = (
    Detector("ssn", "SSN", _SSN, v.ssn_valid, "alnum", context=ctx.ssn_context),
    Detector("credit_card", "CREDIT_CARD", _CARD, v.card_valid, "alnum"),
    Detector("phone", "PHONE", _PHONE, None, "alnum", True, context=ctx.phone_context),
    Detector("email", "EMAIL", _EMAIL, prefilter=_EMAIL_PREFILTER),
    Detector("url", "URL", _URL, case_insensitive=True, prefilter=_URL_PREFILTER),
    Detector("ipv4", "IPV4", _IPV4, v.ipv4_valid, "dotted", context=ctx.ipv4_context),
    Detector("ipv6", "IP", _IPV6, v.ipv6_valid, "word"),
    Detector("date", "DATE", _DATE, v.date_valid, "alnum", True, context=ctx.date_context),
    Detector("mrn", "MRN", DEFAULT_MRN, None, "alnum", case_insensitive=True),
    Detector("health_plan", "HEALTH_PLAN", DEFAULT_HEALTH_PLAN, None, "alnum", True),
    Detector("account", "ACCOUNT", DEFAULT_ACCOUNT, None, "alnum", case_insensitive=True),
    Detector("vin", "VIN", _VIN, v.vin_valid, "alnum", case_insensitive=True),
    Detector(
        "person_name",
        "PERSON",
        PERSON,
        None,
        "alnum",
        prefilter=PERSON_PREFILTER,
        context=person_context,
    ),
)
BUILTIN_NAMES: tuple[str, ...] = tuple(d.name for d in _BUILTINS)


def builtin_detectors(
    *,
    mrn_pattern: str | None = None,
    health_plan_pattern: str | None = None,
    account_pattern: str | None = None,
    enabled: Collection[str] | None = None,
) -> list[Detector]:
    """The built-in detectors, in priority order.

    A configured mrn/health_plan/account pattern comes from a policy: it is checked
    with `check_pattern_safe`, and matched case-insensitively with an alphanumeric
    boundary like the default it replaces. `enabled` keeps only the named detectors.
    """
    if enabled is not None:
        unknown = sorted(set(enabled) - set(BUILTIN_NAMES))
        if unknown:
            raise ValueError(
                f"unknown detector {unknown[0]!r} (built-in: {', '.join(BUILTIN_NAMES)})"
            )
    overrides = {"mrn": mrn_pattern, "health_plan": health_plan_pattern, "account": account_pattern}
    out = []
    for det in _BUILTINS:
        if enabled is not None and det.name not in enabled:
            continue
        pattern = overrides.get(det.name)
        if pattern is not None:
            _check(det.name, pattern)
            det = Detector(det.name, det.label, pattern, None, "alnum", case_insensitive=True)
        out.append(det)
    return out


def custom_detector(
    name: str,
    pattern: str,
    label: str | None = None,
    *,
    boundary: Boundary = "none",
    case_insensitive: bool = False,
) -> Detector:
    """A detector from a policy; the pattern must pass `check_pattern_safe`."""
    _check(name, pattern)
    return Detector(name, label or name.upper(), pattern, None, boundary, case_insensitive)


def _check(name: str, pattern: str) -> None:
    try:
        check_pattern_safe(pattern)
    except UnsafePatternError as exc:
        raise UnsafePatternError(exc.reason, pattern, detector=name) from None
