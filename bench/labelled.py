"""A seeded, labelled corpus of log-message strings for measuring PHI detection quality.

Every sample is one free-text log message, as an application writes it, with the exact
character span of each planted identifier and its label (SSN, PHONE, EMAIL, MRN, CARD,
IP, DATE, PERSON). The formats are the ones people and systems actually write, generated first
and independently of any detector: Faker's locale phone formats (en_GB, de_DE, fr_FR,
en_IN, en_AU, es_ES, it_IT, nl_NL, pt_BR, ja_JP), NANP numbers in the ways US systems
print them, Faker's SSNs, emails and Luhn-valid card numbers (JCB drawn from its real
IIN range 3528-3589, which Faker's jcb16 does not keep to), MRNs under the labels
hospital systems use, IPv4/IPv6 as proxies and servers log them, and dates in prose and
in numeric, ISO, HL7 and European forms, and personal names in prose: Faker's en_US
names as patients and staff are written (First Last, with a middle initial, Dr./Mrs.
titles, Last, First), plus forms phimask is known to miss (all capitals, lower case, a
first name alone, other locales' names), so PERSON recall is not flattered.

Three groups:
  positive   one or more labelled PHI spans (`Sample.spans`)
  negative   no PHI, but something that looks like it (`Sample.decoy` names the label
             it resembles): order numbers, versions such as 10.2.3.4, OIDs, MAC
             addresses, digit strings that fail the Luhn or SSA rules, ...
  ambiguous  no labelled span and not scored: things whose PHI status depends on what
             they describe (log-line timestamps, HTTP Date headers, role mailboxes);
             reported only as how often each tool flags them

`Sample.format` names the exact format (e.g. "phone: intl de_DE", "mrn: mrn=ID"), so a
detector's misses can be reported per format. Output depends only on the seed (and the
Faker version): no clock, no network.
"""

from __future__ import annotations

import ipaddress
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from faker import Faker

LABELS = ("SSN", "PHONE", "EMAIL", "MRN", "CARD", "IP", "DATE", "PERSON")
Group = Literal["positive", "negative", "ambiguous"]

# A generated value: its pieces, each (text, label or None). Only labelled pieces are
# PHI; e.g. an MRN is [("MRN: ", None), ("00123456", "MRN")].
Pieces = list[tuple[str, str | None]]


@dataclass(frozen=True)
class Span:
    start: int  # str offsets into Sample.text
    end: int
    label: str


@dataclass(frozen=True)
class Sample:
    text: str
    spans: tuple[Span, ...]
    group: Group
    format: str
    decoy: str | None = None  # negative/ambiguous: the label the sample resembles
    label: str | None = None  # positive: its format's label (a sample may hold others too)


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_FIRST_DAY = date(1930, 1, 1).toordinal()
_LAST_DAY = date(2025, 12, 31).toordinal()
_RECENT_DAY = date(2020, 1, 1).toordinal()  # log timestamps are of the last few years
_INTL_LOCALES = (
    "en_GB",
    "de_DE",
    "fr_FR",
    "en_IN",
    "en_AU",
    "es_ES",
    "it_IT",
    "nl_NL",
    "pt_BR",
)
_NATIONAL_LOCALES = (*(loc for loc in _INTL_LOCALES if loc != "es_ES"), "ja_JP")
_EMAIL_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "en_AU")


class _Ctx:
    """The seeded sources a generator draws from."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fakers: dict[str, Faker] = {}
        for i, locale in enumerate(sorted({"en_US", *_NATIONAL_LOCALES, *_EMAIL_LOCALES})):
            fake = Faker(locale)
            fake.seed_instance(seed * 1000 + i)
            self.fakers[locale] = fake

    @property
    def us(self) -> Faker:
        return self.fakers["en_US"]

    def digits(self, n: int, first: str = "0123456789") -> str:
        rng = self.rng
        return rng.choice(first) + "".join(rng.choice(string.digits) for _ in range(n - 1))

    def day(self, first: int = _FIRST_DAY) -> date:
        return date.fromordinal(self.rng.randint(first, _LAST_DAY))

    def fill(self, template: str) -> str:
        """The filler placeholders of a context template (never PHI)."""
        rng = self.rng
        return template.format(
            n=rng.randint(2, 99),
            ms=rng.randint(1, 2000),
            svc=rng.choice(("ehr-api", "scheduling", "billing-svc", "lab-results")),
            v="{v}",
        )


Make = Callable[[_Ctx], Pieces]


@dataclass(frozen=True)
class Format:
    name: str
    group: Group
    label: str  # positive: the PHI label; negative/ambiguous: the decoy label
    weight: float  # share of its label's (or group's) samples, relative
    make: Make
    contexts: tuple[str, ...] = ()  # overrides the label's contexts


def _one(label: str | None, text: str) -> Pieces:
    return [(text, label)]


# --- SSN ---------------------------------------------------------------------------


def _ssn_dashed(c: _Ctx) -> Pieces:
    return _one("SSN", c.us.ssn())


def _ssn_plain(c: _Ctx) -> Pieces:
    return _one("SSN", c.us.ssn().replace("-", ""))


def _ssn_spaced(c: _Ctx) -> Pieces:
    return _one("SSN", c.us.ssn().replace("-", " "))


# --- phone -------------------------------------------------------------------------


def _nanp(c: _Ctx) -> tuple[str, str, str]:
    """A dialable NANP number: area code and exchange start 2-9, neither is N11, and
    the area code's middle digit is not 9."""
    rng = c.rng
    while True:
        area = f"{rng.randint(2, 9)}{rng.randint(0, 8)}{rng.randint(0, 9)}"
        exchange = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
        if area[1:] != "11" and exchange[1:] != "11":
            return area, exchange, f"{rng.randint(0, 9999):04d}"


def _us_phone(pattern: str) -> Make:
    def make(c: _Ctx) -> Pieces:
        a, e, n = _nanp(c)
        x = str(c.rng.randint(1, 9999))
        return _one("PHONE", pattern.format(a=a, e=e, n=n, x=x))

    return make


_US_PHONE_FORMATS = (
    ("({a}) {e}-{n}", 3.0),
    ("{a}-{e}-{n}", 3.0),
    ("{a}.{e}.{n}", 1.0),
    ("{a}{e}{n}", 1.0),
    ("+1 {a} {e} {n}", 1.0),
    ("+1-{a}-{e}-{n}", 1.0),
    ("+1{a}{e}{n}", 1.5),  # E.164, as SMS gateways and phone APIs log it
    ("+1 ({a}) {e}-{n}", 1.0),
    ("1-{a}-{e}-{n}", 1.0),
    ("1 ({a}) {e}-{n}", 0.5),
    ("({a}){e}-{n}", 1.0),
    ("{a} {e} {n}", 1.0),
    ("001-{a}-{e}-{n}", 0.3),
    ("{a}-{e}-{n} x{x}", 0.5),
    ("({a}) {e}-{n} ext. {x}", 0.5),
    ("{a}.{e}.{n}x{x}", 0.3),
)


def _intl_phone(locale: str) -> Make:
    """Faker's own formats for `locale`, those written with a +country code."""

    def make(c: _Ctx) -> Pieces:
        fake = c.fakers[locale]
        for _ in range(200):
            number = fake.phone_number()
            if number.startswith("+"):
                return _one("PHONE", number)
        raise RuntimeError(f"Faker {locale} writes no international phone numbers")

    return make


def _national_phone(locale: str) -> Make:
    """Faker's own formats for `locale`, those written without a country code (none
    starting 00: Faker de_DE writes a few 00... numbers that are neither)."""

    def make(c: _Ctx) -> Pieces:
        fake = c.fakers[locale]
        for _ in range(200):
            number = fake.phone_number()
            if not number.startswith(("+", "00")):
                return _one("PHONE", number)
        raise RuntimeError(f"Faker {locale} writes no national phone numbers")

    return make


# --- email -------------------------------------------------------------------------


def _email_faker(locale: str, kind: str) -> Make:
    def make(c: _Ctx) -> Pieces:
        fake = c.fakers[locale]
        return _one("EMAIL", fake.free_email() if kind == "free" else fake.company_email())

    return make


def _email_tagged(c: _Ctx) -> Pieces:
    local, domain = c.us.free_email().split("@")
    tag = c.rng.choice(("portal", "mychart", "billing", "2024"))
    return _one("EMAIL", f"{local}+{tag}@{domain}")


def _email_upper(c: _Ctx) -> Pieces:
    first, last = c.us.first_name(), c.us.last_name()
    return _one("EMAIL", f"{first}.{last}@{c.us.domain_name().upper()}")


def _email_subdomain(c: _Ctx) -> Pieces:
    first, last = c.us.first_name().lower(), c.us.last_name().lower()
    sep = c.rng.choice((".", "_", "-"))
    sub = c.rng.choice(("mail", "med", "students", "alumni"))
    tld = c.rng.choice(("edu", "org", "co.uk", "com.au", "ac.uk"))
    return _one("EMAIL", f"{first}{sep}{last}@{sub}.{c.us.domain_word()}.{tld}")


def _email_named(c: _Ctx) -> Pieces:
    email = c.us.free_email()
    name = f"{c.us.first_name()} {c.us.last_name()}"
    return [(name, "PERSON"), (" <", None), (email, "EMAIL"), (">", None)]


def _email_mailto(c: _Ctx) -> Pieces:
    return [("mailto:", None), (c.us.free_email(), "EMAIL")]


# --- MRN ---------------------------------------------------------------------------


def _mrn(label_text: str, digits: tuple[int, int] = (6, 10), prefix: str = "") -> Make:
    def make(c: _Ctx) -> Pieces:
        n = c.rng.randint(*digits)
        ident = c.digits(n)
        if prefix:
            ident = c.rng.choice(prefix) + ident
        return [(label_text, None), (ident, "MRN")]

    return make


def _mrn_json(c: _Ctx) -> Pieces:
    return [('"mrn": "', None), (c.digits(c.rng.randint(6, 10)), "MRN"), ('"', None)]


_MRN_FORMATS = (
    ("MRN ", 3.0),
    ("MRN: ", 3.0),
    ("MRN:", 1.0),
    ("MRN#", 1.0),
    ("MRN # ", 1.0),
    ("MRN-", 1.0),
    ("mrn ", 1.0),
    ("MR# ", 1.0),
    ("MR #", 1.0),
    ("Med Rec # ", 1.0),
    ("Med. Rec. No. ", 0.5),
    ("Medical Record Number: ", 1.0),
    ("medical record no. ", 0.5),
    ("Medical Record #: ", 0.5),
    ("mrn=", 1.0),
    ("MRN=", 0.5),
)

# --- card --------------------------------------------------------------------------


def _card(kind: str, grouping: str) -> Make:
    """A Faker card number of `kind`, grouped as printed: "none", "4s" (4-4-4-4 with
    spaces), "4d" (dashes), or "amex" (4-6-5 / 4-6-4 with spaces)."""

    def make(c: _Ctx) -> Pieces:
        number = _jcb(c) if kind == "jcb16" else c.us.credit_card_number(kind)
        if grouping in ("4s", "4d"):
            sep = " " if grouping == "4s" else "-"
            number = sep.join(number[i : i + 4] for i in range(0, len(number), 4))
        elif grouping == "amex":
            number = f"{number[:4]} {number[4:10]} {number[10:]}"
        return _one("CARD", number)

    return make


def _jcb(c: _Ctx) -> str:
    """A JCB number from JCB's own range, 3528-3589: Faker's jcb16 also draws 35xx
    prefixes outside it, which no issuer hands out."""
    body = str(c.rng.randint(3528, 3589)) + c.digits(11)
    return body + next(d for d in "0123456789" if _luhn_ok(body + d))


# --- IP ----------------------------------------------------------------------------


def _ipv4(kind: str) -> Make:
    def make(c: _Ctx) -> Pieces:
        ip = c.us.ipv4_public() if kind != "private" else c.us.ipv4_private()
        if kind == "port":
            return [(ip, "IP"), (f":{c.rng.randint(1024, 65535)}", None)]
        return _one("IP", ip)

    return make


def _ipv4_xff(c: _Ctx) -> Pieces:
    return [(c.us.ipv4_public(), "IP"), (", ", None), (c.us.ipv4_private(), "IP")]


def _ipv6(kind: str) -> Make:
    def make(c: _Ctx) -> Pieces:
        if kind == "mapped":
            return _one("IP", f"::ffff:{c.us.ipv4_public()}")
        if kind == "link-local":
            groups = ":".join(f"{c.rng.getrandbits(16):x}" for _ in range(4))
            return _one("IP", f"fe80::{groups}")
        # A documentation-style /64 with a sparse host part, as hosts number themselves.
        addr = ipaddress.IPv6Address(c.us.ipv6())
        if kind == "full":  # with leading zeros, or without them as Faker writes it
            return _one("IP", addr.exploded if c.rng.random() < 0.5 else str(c.us.ipv6()))
        sparse = ipaddress.IPv6Address(
            (int(addr) >> 64 << 64) | c.rng.randint(1, 0xFFFF)
        ).compressed
        if kind == "bracket-port":
            return [("[", None), (sparse, "IP"), (f"]:{c.rng.randint(1024, 65535)}", None)]
        return _one("IP", sparse)

    return make


# --- date --------------------------------------------------------------------------


def _ordinal(day: int) -> str:
    if 10 <= day % 100 <= 20:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th') }"


def _date(style: str) -> Make:
    def make(c: _Ctx) -> Pieces:
        d = c.day()
        month, mon = _MONTHS[d.month - 1], _MONTHS[d.month - 1][:3]
        text = {
            "long": f"{month} {d.day}, {d.year}",
            "abbr": f"{mon} {d.day}, {d.year}",
            "abbr-dot": f"{mon}. {d.day}, {d.year}",
            "month-ordinal": f"{month} {_ordinal(d.day)}, {d.year}",
            "weekday": f"{_WEEKDAYS[d.weekday()]}, {month} {d.day}, {d.year}",
            "day-month-year": f"{d.day} {month} {d.year}",
            "ordinal-of": f"{_ordinal(d.day)} of {month} {d.year}",
            "ordinal-of-noyear": f"{_ordinal(d.day)} of {month}",
            "month-ordinal-noyear": f"{month} {_ordinal(d.day)}",
            "month-year": f"{month} {d.year}",
            "dd-mon-yyyy": f"{d.day:02d}-{mon}-{d.year}",
            "dd-MON-yy": f"{d.day:02d}-{mon.upper()}-{d.year % 100:02d}",
            "mm/dd/yyyy": f"{d.month:02d}/{d.day:02d}/{d.year}",
            "m/d/yyyy": f"{d.month}/{d.day}/{d.year}",
            "m/d/yy": f"{d.month}/{d.day}/{d.year % 100:02d}",
            "mm-dd-yyyy": f"{d.month:02d}-{d.day:02d}-{d.year}",
            "dd/mm/yyyy": f"{d.day:02d}/{d.month:02d}/{d.year}",
            "dd.mm.yyyy": f"{d.day:02d}.{d.month:02d}.{d.year}",
            "iso": d.isoformat(),
            "yyyy/mm/dd": f"{d.year}/{d.month:02d}/{d.day:02d}",
            "hl7 yyyymmdd": f"{d.year}{d.month:02d}{d.day:02d}",
        }[style]
        return _one("DATE", text)

    return make


# --- person names ------------------------------------------------------------------


def _person(style: str, locale: str = "en_US") -> Make:
    def make(c: _Ctx) -> Pieces:
        fake = c.fakers[locale]
        first, last = fake.first_name(), fake.last_name()
        initial = c.rng.choice(string.ascii_uppercase)
        if style == "first last":
            return _one("PERSON", f"{first} {last}")
        if style == "first M. last":
            return _one("PERSON", f"{first} {initial}. {last}")
        if style == "last, first":
            return _one("PERSON", f"{last}, {first}")
        if style == "Dr. last":
            return [(c.rng.choice(("Dr. ", "Dr ")), None), (last, "PERSON")]
        if style == "Dr. first last":
            return [("Dr. ", None), (f"{first} {last}", "PERSON")]
        if style == "Mrs. last":
            title = c.rng.choice(("Mr. ", "Mrs. ", "Ms. ", "Mr ", "Mrs "))
            return [(title, None), (last, "PERSON")]
        if style == "CAPITALS":
            return _one("PERSON", f"{first} {last}".upper())
        if style == "lower case":
            return _one("PERSON", f"{first} {last}".lower())
        if style == "first name alone":
            return _one("PERSON", first)
        raise ValueError(style)

    return make


_STAFF_CONTEXTS = (
    "seen by {v} in clinic",
    "referred to {v} for follow-up",
    "note signed by {v}",
    "{v} ordered a CBC",
    "consult request routed to {v}",
)

# --- negatives and ambiguous -------------------------------------------------------


def _neg(text_of: Callable[[_Ctx], str]) -> Make:
    return lambda c: _one(None, text_of(c))


def _bad_ssn(c: _Ctx) -> str:
    rng = c.rng
    area, group, serial = f"{rng.randint(1, 665):03d}", f"{rng.randint(1, 99):02d}", None
    rule = rng.choice(("000", "666", "9xx", "group 00", "serial 0000"))
    if rule in ("000", "666"):
        area = rule
    elif rule == "9xx":
        area = f"9{rng.randint(0, 99):02d}"
    elif rule == "group 00":
        group = "00"
    else:
        serial = "0000"
    serial = serial or f"{rng.randint(1, 9999):04d}"
    return f"{area}-{group}-{serial}"


def _luhn_ok(number: str) -> bool:
    total = 0
    for pos, ch in enumerate(reversed(number)):
        d = int(ch)
        if pos % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _bad_card(grouped: bool) -> Callable[[_Ctx], str]:
    def text(c: _Ctx) -> str:
        while True:
            number = c.digits(16, "45")
            if not _luhn_ok(number):
                break
        if grouped:
            return " ".join(number[i : i + 4] for i in range(0, 16, 4))
        return number

    return text


def _version4(c: _Ctx) -> str:
    rng = c.rng
    return f"{rng.randint(1, 12)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 999)}"


def _package_at_version(c: _Ctx) -> str:
    rng = c.rng
    name = rng.choice(("lodash", "express", "axios", "@babel/core"))
    return f"{name}@{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"


def _oid(c: _Ctx) -> str:
    rng = c.rng
    tail = ".".join(str(rng.randint(1, 99999)) for _ in range(rng.randint(3, 6)))
    return f"1.2.840.{rng.choice(('113619', '10008', '114350'))}.{tail}"


def _mac(c: _Ctx) -> str:
    return ":".join(f"{c.rng.getrandbits(8):02X}" for _ in range(6))


def _hex(c: _Ctx, n: int) -> str:
    return f"{c.rng.getrandbits(4 * n):0{n}x}"


def _uuid(c: _Ctx) -> str:
    h = _hex(c, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _iso_stamp(c: _Ctx) -> str:
    d = c.day(_RECENT_DAY)
    rng = c.rng
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    return f"{d.isoformat()}T{clock}.{rng.randint(0, 999):03d}Z"


def _http_date(c: _Ctx) -> str:
    d = c.day(_RECENT_DAY)
    rng = c.rng
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    day = f"{_WEEKDAYS[d.weekday()][:3]}, {d.day:02d} {_MONTHS[d.month - 1][:3]} {d.year}"
    return f"{day} {clock} GMT"


def _syslog_stamp(c: _Ctx) -> str:
    d = c.day(_RECENT_DAY)
    rng = c.rng
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    return f"{_MONTHS[d.month - 1][:3]} {d.day:>2} {clock}"


# --- contexts ----------------------------------------------------------------------

CONTEXTS: dict[str, tuple[str, ...]] = {
    "SSN": (
        "identity check failed: caller gave SSN {v}, record on file differs",
        "eligibility lookup: subscriber SSN {v} not found at payer",
        "ssn={v} verified against MPI",
        "SSN: {v}",
        "patient provided social security number {v} at registration",
        "W-9 on file (SSN {v}), status active",
        "claim resubmitted, subscriber SSN {v}",
        "Social Security No. {v} does not match {svc} record",
    ),
    "PHONE": (
        "callback requested at {v} about pending lab results",
        "patient asked to be reached at {v} after clinic hours",
        "phone={v} updated by front desk",
        "SMS reminder to {v} failed: carrier rejected",
        "emergency contact: {v} (spouse)",
        "tel: {v}",
        "fax sent to {v}, {n} pages",
        "pharmacy callback at {v} regarding refill",
    ),
    "EMAIL": (
        "appointment reminder sent to {v}",
        "bounce from {v}: mailbox full, will retry in {n} min",
        "portal login locked for {v} after {n} failed attempts",
        "email={v} verified",
        "Reply-To: {v}",
        "password reset link mailed to {v}",
    ),
    "MRN": (
        "merged duplicate chart {v} into primary chart",
        "triage note: chest pain, see {v}",
        "ADT A08 update for {v} acknowledged in {ms} ms",
        "lab result posted to {v}",
        "order {n} placed for patient {v}",
        "discharge summary filed ({v})",
    ),
    "CARD": (
        "payment declined for card {v}: insufficient funds",
        "copay of {n} USD charged to card {v}",
        "card_number={v} tokenized",
        "refund issued to {v}",
        "CC: {v} declined by issuer",
        "autopay enrolled with {v}",
    ),
    "IP": (
        "login from {v} succeeded",
        "client_ip={v}",
        "X-Forwarded-For: {v}",
        "blocked {n} requests from {v}",
        "patient portal session started from {v}",
        "connection reset by peer {v}",
    ),
    "DATE": (
        "registration: patient states date of birth {v}",
        "DOB: {v}",
        "admitted on {v}, discharged {n} days later",
        "appointment rescheduled to {v}",
        "last seen {v} for follow-up",
        "dob={v}",
        "procedure performed {v} at {svc}",
    ),
    "PERSON": (
        "eligibility lookup for {v}, status active",
        "triage note: pt {v} reports chest pain",
        "front desk updated contact for {v}",
        "pharmacy callback for {v} regarding refill",
        "{v} called about the bill",
        "emergency contact: {v} (spouse)",
        "patient {v} checked in at {svc}",
        "appointment booked for {v} with cardiology",
    ),
}

_NEUTRAL = (
    "reference {v} closed by {svc}",
    "ticket {v} updated",
    "id={v} not found",
    "processing item {v} ({ms} ms)",
)


def _formats() -> list[Format]:
    f: list[Format] = [
        Format("ssn: ddd-dd-dddd", "positive", "SSN", 4, _ssn_dashed),
        Format("ssn: ddddddddd", "positive", "SSN", 2, _ssn_plain),
        Format("ssn: ddd dd dddd", "positive", "SSN", 1, _ssn_spaced),
    ]
    for pattern, w in _US_PHONE_FORMATS:
        shape = pattern.format(a="ddd", e="ddd", n="dddd", x="N")
        f.append(Format(f"phone: us {shape}", "positive", "PHONE", w, _us_phone(pattern)))
    for locale in _INTL_LOCALES:
        f.append(Format(f"phone: intl {locale}", "positive", "PHONE", 0.8, _intl_phone(locale)))
    for locale in _NATIONAL_LOCALES:
        f.append(
            Format(f"phone: national {locale}", "positive", "PHONE", 0.4, _national_phone(locale))
        )
    for locale in _EMAIL_LOCALES:
        for kind, w in (("free", 1.5), ("company", 1.0)):
            f.append(
                Format(
                    f"email: {kind} {locale}", "positive", "EMAIL", w, _email_faker(locale, kind)
                )
            )
    f += [
        Format("email: plus-tag", "positive", "EMAIL", 1, _email_tagged),
        Format("email: upper-case domain", "positive", "EMAIL", 1, _email_upper),
        Format("email: subdomain, multi-part TLD", "positive", "EMAIL", 1, _email_subdomain),
        Format("email: Name <addr>", "positive", "EMAIL", 1, _email_named),
        Format("email: mailto:", "positive", "EMAIL", 0.5, _email_mailto),
    ]
    for label_text, w in _MRN_FORMATS:
        f.append(Format(f"mrn: '{label_text}ID'", "positive", "MRN", w, _mrn(label_text)))
    f += [
        Format("mrn: MRN: letter+digits", "positive", "MRN", 1, _mrn("MRN: ", (6, 9), "EMV")),
        Format('mrn: "mrn": "ID" (JSON in text)', "positive", "MRN", 0.5, _mrn_json),
    ]
    card_kinds = (("visa16", 4), ("mastercard", 3), ("amex", 1.5), ("discover", 1), ("jcb16", 0.5))
    for kind, w in card_kinds:
        groupings = ("none", "amex") if kind == "amex" else ("none", "4s", "4d")
        for grouping in groupings:
            f.append(
                Format(
                    f"card: {kind} {grouping}",
                    "positive",
                    "CARD",
                    w / len(groupings),
                    _card(kind, grouping),
                )
            )
    f.append(Format("card: diners none", "positive", "CARD", 0.3, _card("diners", "none")))
    f += [
        Format("ip: ipv4 public", "positive", "IP", 3, _ipv4("public")),
        Format("ip: ipv4 private", "positive", "IP", 2, _ipv4("private")),
        Format("ip: ipv4:port", "positive", "IP", 1, _ipv4("port")),
        Format(
            "ip: ipv4 X-Forwarded-For list",
            "positive",
            "IP",
            1,
            _ipv4_xff,
            ("X-Forwarded-For: {v}", "upstream chain {v}"),
        ),
        Format("ip: ipv6 full", "positive", "IP", 1, _ipv6("full")),
        Format("ip: ipv6 compressed", "positive", "IP", 1, _ipv6("compressed")),
        Format("ip: ipv6 [addr]:port", "positive", "IP", 0.5, _ipv6("bracket-port")),
        Format("ip: ipv6 link-local", "positive", "IP", 0.5, _ipv6("link-local")),
        Format("ip: ipv4-mapped ipv6", "positive", "IP", 0.5, _ipv6("mapped")),
    ]
    date_styles = (
        ("long", 3), ("abbr", 1), ("abbr-dot", 0.5), ("month-ordinal", 1), ("weekday", 0.5),
        ("day-month-year", 1), ("ordinal-of", 1), ("ordinal-of-noyear", 0.5),
        ("month-ordinal-noyear", 0.5), ("month-year", 0.5), ("dd-mon-yyyy", 1),
        ("dd-MON-yy", 0.5), ("mm/dd/yyyy", 3), ("m/d/yyyy", 1.5), ("m/d/yy", 1),
        ("mm-dd-yyyy", 1), ("dd/mm/yyyy", 0.5), ("dd.mm.yyyy", 0.5), ("iso", 3),
        ("yyyy/mm/dd", 0.5), ("hl7 yyyymmdd", 0.5),
    )  # fmt: skip
    for style, w in date_styles:
        f.append(Format(f"date: {style}", "positive", "DATE", w, _date(style)))
    person_styles = (
        ("first last", 4, ()), ("first M. last", 1, ()), ("last, first", 1, ()),
        ("Dr. last", 1, _STAFF_CONTEXTS), ("Dr. first last", 1, _STAFF_CONTEXTS),
        ("Mrs. last", 1, ()), ("CAPITALS", 0.5, ()), ("lower case", 0.5, ()),
        ("first name alone", 0.5, ()),
    )
    for style, w, person_contexts in person_styles:
        f.append(Format(f"person: {style}", "positive", "PERSON", w, _person(style),
                        person_contexts))
    for locale in ("de_DE", "fr_FR", "es_ES", "it_IT"):
        f.append(Format(f"person: first last {locale}", "positive", "PERSON", 0.25,
                        _person("first last", locale)))

    def rng_digits(n: int, first: str) -> Callable[[_Ctx], str]:
        return lambda c: c.digits(n, first)

    negatives: list[tuple[str, str, Callable[[_Ctx], str], tuple[str, ...]]] = [
        ("ssn-shaped, invalid (000/666/9xx/00/0000)", "SSN", _bad_ssn, _NEUTRAL),
        ("9-digit order number", "SSN", rng_digits(9, "123456789"),
         ("order #{v} shipped", "order {v} shipped to {svc}")),
        ("ZIP+4", "SSN", lambda c: f"{c.digits(5, '123456789')}-{c.digits(4)}",
         ("address validated, ZIP {v}",)),
        ("10-digit order number", "PHONE", rng_digits(10, "23456789"),
         ("order #{v} shipped", "invoice {v} paid")),
        ("epoch seconds", "PHONE", lambda c: str(c.rng.randint(1_500_000_000, 1_800_000_000)),
         ("cache entry expires at {v}", "ts={v}")),
        ("byte counts", "PHONE", lambda c: str(c.rng.randint(1_000_000_000, 9_999_999_999)),
         ("heap size {v} bytes", "uploaded {v} bytes")),
        ("npm-style pkg@version", "EMAIL", _package_at_version, ("dependency {v} installed",)),
        ("user@host without TLD", "EMAIL",
         lambda c: c.rng.choice(("postgres", "svc_ehr", "deploy"))
         + "@" + c.rng.choice(("db-primary", "localhost", "app01")),
         ("ssh session opened for {v}", "connected as {v}")),
        ("@mention", "EMAIL", lambda c: f"@{c.rng.choice(('oncall-team', 'sre', 'billing-devs'))}",
         ("paged {v} about the outage",)),
        ("MRN word without id", "MRN", lambda c: "MRN", (
            "{v} lookup returned {n} results in {ms} ms", "{v} index rebuilt, {n} shards")),
        ("merge request MR #", "MRN", lambda c: f"MR #{c.rng.randint(100, 99999)}",
         ("deployed {v} to staging",)),
        ("16 digits failing Luhn, grouped", "CARD", _bad_card(True), _NEUTRAL),
        ("16 digits failing Luhn", "CARD", _bad_card(False), _NEUTRAL),
        ("12-digit FedEx tracking", "CARD", rng_digits(12, "123456789"),
         ("shipment tracking {v}",)),
        ("UPS tracking 1Z...", "CARD",
         lambda c: "1Z" + "".join(c.rng.choice(string.ascii_uppercase + string.digits)
                                  for _ in range(16)),
         ("shipment tracking {v}",)),
        ("4-part version", "IP", _version4,
         ("upgraded agent to version {v}", "interface engine {v} started")),
        ("DICOM/HL7 OID", "IP", _oid, ("study instance uid {v}", "root OID {v}")),
        ("MAC address", "IP", _mac, ("DHCP lease for {v}",)),
        ("C++ scope", "IP", lambda c: c.rng.choice(("std::vector", "Foo::bar", "ns::Impl::run")),
         ("exception thrown in {v}",)),
        ("fractions and ratios", "DATE",
         lambda c: f"{c.rng.randint(1, 9)}/{c.rng.randint(2, 12)}",
         ("took {v} of the dose", "pain score {v}")),
        ("blood pressure", "DATE", lambda c: f"{c.rng.randint(90, 180)}/{c.rng.randint(50, 110)}",
         ("BP {v} mmHg",)),
        ("ICD-10 code", "DATE",
         lambda c: f"{c.rng.choice('EIJKM')}{c.rng.randint(10, 99)}.{c.rng.randint(0, 9)}",
         ("diagnosis code {v} added",)),
        ("UUID", "CARD", _uuid, ("request {v} completed", "trace {v}")),
        ("hex trace id", "PHONE", lambda c: _hex(c, 32), ("trace_id={v}",)),
        ("capitalized log phrases", "PERSON",
         lambda c: c.rng.choice(("Internal Server Error", "Bad Gateway", "User Agent",
                                 "Service Unavailable", "Patient Portal", "Front Desk",
                                 "Epic Bridge", "Grant Type", "Mark Complete", "Will Retry",
                                 "Access Denied", "Connection Reset", "Health Check")),
         ("upstream said {v} ({ms} ms)", "{v}: request {n} failed", "module {v} loaded")),
        ("stack frames", "PERSON",
         lambda c: c.rng.choice(("java.lang.IllegalStateException: Could Not Find Bean",
                                 "at com.example.Foo.bar(Foo.java:12)",
                                 'File "/srv/app/Handler.py", line 88, in Dispatch',
                                 "Caused by: org.Apache.Kafka.Errors.TimeoutException")),
         ("worker crashed: {v}",)),
        ("browser user agent", "PERSON",
         lambda c: c.rng.choice(("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit"
                                 "/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
                                 "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                                 "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")),
         ("ua={v}",)),
        ("Faker city names", "PERSON", lambda c: c.us.city(),
         ("address validated, city {v}", "shipping to {v} depot")),
    ]  # fmt: skip
    for name, decoy, text_of, contexts in negatives:
        f.append(Format(f"neg: {name}", "negative", decoy, 1, _neg(text_of), contexts))
    ambiguous: list[tuple[str, str, Callable[[_Ctx], str], tuple[str, ...]]] = [
        ("ISO-8601 log timestamp", "DATE", _iso_stamp, ("job started at {v}", "ts={v}")),
        ("HTTP Date header", "DATE", _http_date, ("Date: {v}", "If-Modified-Since: {v}")),
        ("syslog timestamp", "DATE", _syslog_stamp, ("{v} ehr01 sshd: session opened",)),
        ("role mailbox", "EMAIL",
         lambda c: f"{c.rng.choice(('noreply', 'support', 'it-helpdesk'))}@{c.us.domain_name()}",
         ("notification sent from {v}",)),
    ]  # fmt: skip
    for name, decoy, text_of, contexts in ambiguous:
        f.append(Format(f"ambiguous: {name}", "ambiguous", decoy, 1, _neg(text_of), contexts))
    return f


FORMATS: tuple[Format, ...] = tuple(_formats())


def counts(per_label: int) -> dict[str, int]:
    """Samples per format: `per_label` positives per label split by weight (at least 2 a
    format); each negative format gets per_label // 8, each ambiguous one per_label // 16."""
    totals: dict[str, float] = {}
    for fmt in FORMATS:
        if fmt.group == "positive":
            totals[fmt.label] = totals.get(fmt.label, 0.0) + fmt.weight
    out: dict[str, int] = {}
    for fmt in FORMATS:
        if fmt.group == "positive":
            out[fmt.name] = max(2, round(per_label * fmt.weight / totals[fmt.label]))
        elif fmt.group == "negative":
            out[fmt.name] = max(2, per_label // 8)
        else:
            out[fmt.name] = max(2, per_label // 16)
    return out


def _compose(c: _Ctx, fmt: Format) -> Sample:
    contexts = fmt.contexts or CONTEXTS[fmt.label]
    template = c.fill(c.rng.choice(contexts))
    before, after = template.split("{v}", 1)
    text, spans = before, []
    for piece, label in fmt.make(c):
        if label is not None:
            spans.append(Span(len(text), len(text) + len(piece), label))
        text += piece
    text += after
    decoy = None if fmt.group == "positive" else fmt.label
    label = fmt.label if fmt.group == "positive" else None
    return Sample(text, tuple(spans), fmt.group, fmt.name, decoy, label)


def generate(per_label: int = 1500, seed: int = 1) -> list[Sample]:
    """The labelled corpus: deterministic for (per_label, seed) and the Faker version."""
    c = _Ctx(seed)
    out: list[Sample] = []
    n = counts(per_label)
    for fmt in FORMATS:
        out.extend(_compose(c, fmt) for _ in range(n[fmt.name]))
    return out


def shape(text: str) -> str:
    """`text` with every digit as d, letter as a/A: a sample's format, not its value."""
    return "".join(
        "d" if ch.isdigit() else ("A" if ch.isupper() else "a") if ch.isalpha() else ch
        for ch in text
    )


def by_format(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in samples:
        out.setdefault(s.format, []).append(s)
    return out
