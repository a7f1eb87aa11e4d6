"""A seeded corpus of short log strings: words, HTTP paths, user agents, and ~30%
free-text messages carrying PHI (plus some non-ASCII text)."""

from __future__ import annotations

import random

WORDS = [
    "INFO",
    "WARN",
    "ERROR",
    "ok",
    "GET",
    "POST",
    "patient-service",
    "checkout",
    "true",
    "false",
    "us-east-1",
    "prod",
    "v2",
    "200",
    "404",
    "application/json",
    "gzip",
    "Zoë",
    "naïve",
    "réservation",
    "dispatcher",
    "k8s-node-7",
    "1.27.3",
    "3.11.7",
    "null",
]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "curl/8.4.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
]
FIRST = ["John", "Maria", "Zoë", "Li", "Ahmed", "Søren", "Priya", "José"]
MONTHS = [
    "January",
    "Feb",
    "Mar.",
    "April",
    "May",
    "Jun",
    "July",
    "Aug",
    "Sept",
    "Oct",
    "Nov",
    "Dec",
]


def _ssn(r: random.Random) -> str:
    area, group, serial = r.randint(1, 899), r.randint(1, 99), r.randint(1, 9999)
    sep = r.choice(["-", "-", " ", ""])
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


def _phone(r: random.Random) -> str:
    a, b, c = r.randint(200, 999), r.randint(200, 999), r.randint(0, 9999)
    return r.choice(
        [
            f"{a}-{b}-{c:04d}",
            f"({a}) {b}-{c:04d}",
            f"{a}.{b}.{c:04d}",
            f"+1 {a} {b} {c:04d}",
            f"1-{a}-{b}-{c:04d}",
            f"{a}{b}{c:04d}",
            f"+44 20 {b}{c % 10} {c:04d}",
        ]
    )


def _date(r: random.Random) -> str:
    y, m, d = r.randint(1930, 2024), r.randint(1, 12), r.randint(1, 28)
    return r.choice(
        [
            f"{y}-{m:02d}-{d:02d}",
            f"{m}/{d}/{y}",
            f"{m:02d}-{d:02d}-{y}",
            f"{MONTHS[m - 1]} {d}, {y}",
            f"{d} {MONTHS[m - 1]} {y}",
            f"{y}-{m:02d}-{d:02d}T10:2{d % 10}:00Z",
        ]
    )


def _phi(r: random.Random) -> str:
    name = r.choice(FIRST)
    kind = r.randrange(9)
    if kind == 0:
        return f"{name}'s SSN is {_ssn(r)}, please verify"
    if kind == 1:
        return f"callback requested at {_phone(r)} by {name}"
    if kind == 2:
        return f"seen on {_date(r)} for follow-up; DOB {_date(r)}"
    if kind == 3:
        return f"email {name.lower()}.{r.randint(1, 99)}@example.org bounced"
    if kind == 4:
        return f"login from 10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)} ok"
    if kind == 5:
        return f"MRN: {r.randint(10**7, 10**8 - 1)} admitted, Member ID W{r.randint(10**8, 10**9)}"
    if kind == 6:
        return f"paid with 4111 1111 1111 1111 acct #{r.randint(10**7, 10**9)} ✓"
    if kind == 7:
        return f"see https://portal.example.com/p/{r.randint(1, 10**6)}?ref=mail for {name}"
    return f"vehicle 1HGCM82633A004352 registered to {name}, client 2001:db8::{r.randint(1, 999):x}"


def _path(r: random.Random) -> str:
    return r.choice(
        [
            f"/api/v1/patients/{r.randint(1, 10**6)}/records?page={r.randint(1, 9)}",
            f"/static/js/app.{r.getrandbits(32):08x}.js",
            "/healthz",
            f"/orders/{r.randint(10**11, 10**12)}",
            f"/v2/users/{r.getrandbits(64):016x}/avatar.png",
        ]
    )


def realistic_corpus(n: int, seed: int = 7) -> list[str]:
    r = random.Random(seed)
    out = []
    for _ in range(n):
        roll = r.random()
        if roll < 0.30:
            out.append(_phi(r))
        elif roll < 0.65:
            out.append(r.choice(WORDS))
        elif roll < 0.85:
            out.append(_path(r))
        elif roll < 0.93:
            out.append(r.choice(AGENTS))
        else:
            ms, minute, second = r.randint(1, 900), r.randint(10, 59), r.randint(0, 9)
            out.append(f"request took {ms}ms at 12:{minute}:0{second}")
    return out
