"""The audit log (HIPAA 164.312(b)): append-only JSONL, hash-chained and sealed with
the `audit` key, so that an edited, deleted, moved or cut entry shows.

One entry a line, members in this order:

    {"seq": 7, "ts": "2026-01-02T03:04:05.678Z", "event": "reidentify",
     "fields": {...}, "prev": "<sha256 hex of line 6>", "kid": "<audit key id>",
     "mac": "<HMAC-SHA256 hex>"}

- `seq` counts from 1 and goes up by one, across files.
- `ts` is the time of the `append` call (UTC, ms); the order is `seq`'s.
- `prev` is the SHA-256 of the previous line's bytes (without its newline); the first
  entry of a log has 64 zeros.
- `mac` is HMAC-SHA256, with the audit key `kid` names, over the entry without `mac`
  serialized canonically: orjson, keys sorted, compact (`canonical`).

Files. The live file (`audit.jsonl`) is renamed `audit.jsonl.1`, `.2`, ... when the
next entry would take it past `max_bytes` (0: never). Numbers only grow: the smallest
is the oldest file and the live file is the newest; a rotated file is never renamed
again or overwritten (a hard link makes the new name, so an existing one fails). The
new live file continues the chain: its first `prev` is the hash of the last line of
the file before, and `seq` goes on.

Reopening continues the chain from the last line. A last line that is cut or does not
verify is not built on: the damaged file is rotated away as it is, and the new live
file starts with a `chain.break` entry (the file, the reason, the seq it resumes
after), which `verify_files` reports.

Writing is off the caller's path: `append` puts the entry on a bounded queue; one
writer thread seals, writes and fsyncs entries in groups. When the queue is full,
`append` blocks up to `block_seconds` (a short stall is better than a lost audit
record) and then drops the entry, counts it in `dropped` and logs nothing on the
caller's path; the writer then records an `audit.dropped` entry (count) in the chain.

One process writes a log: the writer holds an exclusive lock on `.audit.jsonl.lock`
beside it, and a second AuditLog on the same path raises AuditLogBusy.

What verification cannot see from the files alone: a log cut cleanly after a whole line
(or whose newest files were deleted) looks like a shorter, intact log. Keep the last
seq somewhere else and pass `expect_last_seq`.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import orjson

from ..keyring import Key, Keyring

if TYPE_CHECKING:
    from ..config import Settings

# Not `phimask.audit`: audit() may be routed into this log, and its own warnings must
# not come back into it.
log = logging.getLogger("phimask.telemetry.audit_log")

PURPOSE = "audit"
GENESIS_PREV = "0" * 64
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
BREAK_EVENT = "chain.break"
DROPPED_EVENT = "audit.dropped"
GROUP = 256  # entries per write + fsync, at most
RETRY_SECONDS = 1.0  # between attempts after a failed write
MAX_LISTED_PROBLEMS = 1000

_ROTATED = re.compile(r"(?P<base>.+)\.(?P<n>[0-9]+)")
_SHAPE: dict[str, type] = {"seq": int, "ts": str, "event": str, "fields": dict, "prev": str,
                           "kid": str, "mac": str}

ProblemKind = Literal["truncated", "malformed", "unknown_key", "bad_mac", "chain_break",
                      "missing_head", "seq_gap", "reordered", "duplicate", "prev_mismatch",
                      "missing_tail"]


class AuditLogBusy(OSError):
    """Another AuditLog (in this or another process) holds the log."""


# --- entries -------------------------------------------------------------------------

def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes the MAC covers: the entry without `mac`, keys sorted, compact."""
    return orjson.dumps({k: v for k, v in entry.items() if k != "mac"},
                        option=orjson.OPT_SORT_KEYS)


def entry_mac(key: Key, entry: Mapping[str, Any]) -> str:
    return hmac.new(key.material, canonical(entry), hashlib.sha256).hexdigest()


def line_hash(line: bytes) -> str:
    """What the next entry's `prev` holds: SHA-256 of a line without its newline."""
    return hashlib.sha256(line).hexdigest()


def parse_entry(line: bytes) -> dict[str, Any] | None:
    """The entry on `line` (no newline), or None if it is not one."""
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or entry.keys() != _SHAPE.keys():
        return None
    for name, kind in _SHAPE.items():
        value = entry[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            return None
    return entry


def _mac_matches(keys: Keyring, entry: Mapping[str, Any]) -> bool | None:
    """None when the keyring lacks the key the entry names."""
    key = keys.get(PURPOSE, entry["kid"])
    if key is None:
        return None
    return hmac.compare_digest(entry_mac(key, entry), entry["mac"])


@dataclass(frozen=True)
class _Chain:
    """Where the chain stands: the last seq written and the hash of its line."""

    seq: int
    prev: str


GENESIS = _Chain(0, GENESIS_PREV)


class _Item(NamedTuple):
    event: str
    fields: dict[str, Any]
    ts: str
    counted: bool = True  # False for entries the writer adds itself (not awaited by flush)


def _now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _snapshot(fields: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-native copy taken at the call: later changes to the caller's objects do not
    reach the log, and what is sealed is exactly what a reader parses back."""
    try:
        copy = orjson.loads(orjson.dumps(dict(fields), default=str,
                                         option=orjson.OPT_NON_STR_KEYS))
    except (orjson.JSONEncodeError, TypeError, ValueError):
        log.warning("audit fields not serializable; recorded without them")
        return {"_unserializable": True}
    assert isinstance(copy, dict)
    return copy


def _seal(key: Key, chain: _Chain, item: _Item) -> tuple[bytes, _Chain]:
    entry: dict[str, Any] = {"seq": chain.seq + 1, "ts": item.ts, "event": item.event,
                             "fields": item.fields, "prev": chain.prev, "kid": key.kid}
    entry["mac"] = entry_mac(key, entry)
    line = orjson.dumps(entry)
    return line, _Chain(chain.seq + 1, line_hash(line))


# --- files ---------------------------------------------------------------------------

def rotated_files(path: Path) -> list[Path]:
    """The rotated files of the log at `path` (`path.1`, `path.2`, ...), oldest first."""
    found: list[tuple[int, Path]] = []
    if path.parent.is_dir():
        for child in path.parent.iterdir():
            match = _ROTATED.fullmatch(child.name)
            if match and match["base"] == path.name and child.is_file():
                found.append((int(match["n"]), child))
    return [p for _, p in sorted(found)]


def log_files(path: Path) -> list[Path]:
    """Every file of the log at `path`, oldest first: rotated ones, then the live one."""
    return rotated_files(path) + ([path] if path.is_file() else [])


def rotation_order(paths: Sequence[Path]) -> list[Path] | None:
    """`paths` oldest first when they are files of one log (`B`, `B.1`, `B.2`, ...:
    numbers in order, `B` last), whatever order they came in (a shell glob puts
    `B.10` before `B.2`); None when the names are not one log's."""
    for base in _candidate_bases(paths):
        order = [_rotation_number(p.name, base) for p in paths]
        if None not in order:
            return [p for _, p in sorted(zip(order, paths, strict=True),
                                         key=lambda pair: pair[0] or 0)]
    return None


def _candidate_bases(paths: Sequence[Path]) -> list[str]:
    if not paths:
        return []
    first = paths[0].name
    match = _ROTATED.fullmatch(first)
    return [first] + ([match["base"]] if match else [])


def _rotation_number(name: str, base: str) -> float | None:
    if name == base:
        return float("inf")
    match = _ROTATED.fullmatch(name)
    return int(match["n"]) if match and match["base"] == base else None


def _last_line(path: Path, block: int = 65536) -> bytes:
    """The file's last line with its newline, if it has one."""
    with path.open("rb") as f:
        pos = f.seek(0, os.SEEK_END)
        data = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
            cut = data.rfind(b"\n", 0, len(data) - 1)
            if cut >= 0:
                return data[cut + 1:]
        return data


def _line_state(raw: bytes, keys: Keyring) -> _Chain | str:
    """The chain after `raw` (a line with its newline), or why it cannot be built on.
    An entry sealed with a key the keyring lacks is taken as it is."""
    if not raw.endswith(b"\n"):
        return "the last line is incomplete"
    entry = parse_entry(raw[:-1])
    if entry is None:
        return "the last line is not an audit entry"
    if _mac_matches(keys, entry) is False:
        return "the last line's MAC does not match"
    return _Chain(entry["seq"], line_hash(raw[:-1]))


def _last_good(path: Path, keys: Keyring) -> tuple[_Chain, int] | None:
    """The chain after the last line of `path` that can be built on, and the bytes up
    to and including it."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        state = _line_state(data[start:end], keys)
        if isinstance(state, _Chain):
            return state, end
        end = start
    return None


def _open_append(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_fully(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AuditLogBusy(f"audit log {path} is open in another writer (lock {lock}); "
                           "one process writes a log") from None
    return fd


def _finish_rotation(path: Path) -> None:
    """A rotation cut short between the link and the unlink leaves the live name on the
    newest rotated file: finish it, or the next append would change a rotated file."""
    rotated = rotated_files(path)
    if rotated and path.exists() and os.path.samefile(path, rotated[-1]):
        path.unlink()


# --- the writer ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Damage:
    file: str
    reason: str
    resumed_after_seq: int
    discarded_bytes: int


class AuditLog:
    """The writer of one audit log. Thread-safe; see the module doc for the format."""

    _fd: int  # the live file, opened for appending
    _size: int  # its length: whole lines only
    _chain: _Chain  # after the last line written

    def __init__(self, path: Path, keys: Keyring, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 queue_size: int = 10_000, block_seconds: float = 0.5) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._keys = keys
        self._key = keys.active(PURPOSE)
        self._block = block_seconds
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=queue_size)
        self._enqueue_lock = threading.Lock()  # puts and the accepted count move together
        self._done = threading.Condition()
        self._accepted = 0
        self._durable = 0
        self._dropped = 0
        self._recorded_drops = 0
        self._closed = False
        self._stopping = threading.Event()
        self._next_number = 0
        self._lock_fd = _lock(path)
        try:
            self._open()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._thread = threading.Thread(target=self._run, name="phimask-audit-log",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @classmethod
    def from_settings(cls, settings: Settings, keys: Keyring) -> AuditLog:
        return cls(settings.audit_log_path, keys, max_bytes=settings.audit_log_max_bytes)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dropped(self) -> int:
        """Entries not written: the queue stayed full, or they came after close."""
        with self._done:
            return self._dropped

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, event: str, fields: Mapping[str, Any]) -> None:
        """Queue an entry and return; see the module doc for a full queue."""
        item = _Item(event.encode("utf-8", "replace").decode("utf-8"), _snapshot(fields),
                     _now())
        if not self._enqueue(item):
            with self._done:
                self._dropped += 1
            if self._closed:
                log.warning("audit entry after close not written", extra={"event": item.event})

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every entry queued before this call is written and fsynced.
        False if `timeout` (seconds) passed first."""
        with self._done:
            target = self._accepted
            return self._done.wait_for(lambda: self._durable >= target, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the writer and release the log. Idempotent."""
        with self._enqueue_lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._stopping.set()
            with self._done:
                unwritten = self._accepted - self._durable
            log.error("audit log writer did not finish in time",
                      extra={"path": str(self.path), "unwritten": unwritten})
        else:
            os.close(self._fd)
        os.close(self._lock_fd)

    # The caller's side.

    def _enqueue(self, item: _Item) -> bool:
        deadline = time.monotonic() + self._block
        if not self._enqueue_lock.acquire(timeout=self._block):
            return False
        try:
            if self._closed:
                return False
            self._queue.put(item, timeout=max(0.0, deadline - time.monotonic()))
            with self._done:
                self._accepted += 1
            return True
        except queue.Full:
            return False
        finally:
            self._enqueue_lock.release()

    # Opening.

    def _open(self) -> None:
        _finish_rotation(self.path)
        self._chain, damage = self._resume()
        self._fd = _open_append(self.path)
        self._size = os.fstat(self._fd).st_size
        _fsync_dir(self.path.parent)
        if damage is not None:
            log.warning("audit log damaged: the chain restarts with a chain.break entry",
                        extra={"path": str(self.path), "file": damage.file,
                               "reason": damage.reason,
                               "resumed_after_seq": damage.resumed_after_seq})
            if not self._write([_Item(BREAK_EVENT, asdict(damage), _now(), counted=False)]):
                os.close(self._fd)
                raise OSError(f"audit log {self.path}: cannot record the chain break")

    def _resume(self) -> tuple[_Chain, _Damage | None]:
        """Where the chain continues, and the damage found on the way."""
        rotated = rotated_files(self.path)
        live = self.path if self.path.is_file() and self.path.stat().st_size else None
        last = live or (rotated[-1] if rotated else None)
        if last is None:
            return GENESIS, None
        state = _line_state(_last_line(last), self._keys)
        if isinstance(state, _Chain):
            return state, None
        earlier = [p for p in rotated if p != last]
        anchor, kept = self._anchor(last, earlier[-1] if earlier else None)
        discarded = last.stat().st_size - kept
        if live is not None:
            last = self._rotate_file()
        return anchor, _Damage(last.name, state, anchor.seq, discarded)

    def _anchor(self, damaged: Path, earlier: Path | None) -> tuple[_Chain, int]:
        """The last line to build on: in the damaged file, else the end of the file
        before it, else the beginning."""
        found = _last_good(damaged, self._keys)
        if found is not None:
            return found
        if earlier is not None:
            state = _line_state(_last_line(earlier), self._keys)
            if isinstance(state, _Chain):
                return state, 0
        return GENESIS, 0

    # The writer thread.

    def _run(self) -> None:
        stop = False
        while not stop:
            items, stop = self._take()
            self._write_all(self._drop_notice() + items)

    def _take(self) -> tuple[list[_Item], bool]:
        """The next group of entries, waiting for the first; True when close asked."""
        items: list[_Item] = []
        item = self._queue.get()
        while item is not None:
            items.append(item)
            if len(items) >= GROUP:
                return items, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items, False
        return items, True

    def _drop_notice(self) -> list[_Item]:
        with self._done:
            total = self._dropped
        new = total - self._recorded_drops
        if not new:
            return []
        self._recorded_drops = total
        log.warning("audit entries dropped: the queue stayed full",
                    extra={"path": str(self.path), "dropped": new, "total": total})
        return [_Item(DROPPED_EVENT, {"count": new, "total": total}, _now(), counted=False)]

    def _write_all(self, items: list[_Item]) -> None:
        """Write `items`, retrying after an error (disk full, I/O) until close gives up."""
        while items:
            items = items[self._write(items):]
            if items and self._stopping.wait(RETRY_SECONDS):
                return

    def _write(self, items: list[_Item]) -> int:
        """Seal, write and fsync `items` in order, rotating on the way; how many are
        durable. After an error the file holds whole lines only."""
        chain, buf, start = self._chain, bytearray(), 0
        try:
            for i, item in enumerate(items):
                line, after = _seal(self._key, chain, item)
                if self._full(len(buf), len(line) + 1):
                    self._commit(buf, chain, items[start:i])
                    start, buf = i, bytearray()
                    self._rotate()
                buf += line + b"\n"
                chain = after
            self._commit(buf, chain, items[start:])
            return len(items)
        except OSError as exc:
            log.error("audit log write failed; retrying",
                      extra={"path": str(self.path), "error": exc.strerror})
            return start

    def _full(self, pending: int, adding: int) -> bool:
        """Whether `adding` more bytes go to a new file; a file holds at least one entry."""
        used = self._size + pending
        return self.max_bytes > 0 and used > 0 and used + adding > self.max_bytes

    def _commit(self, buf: bytearray, chain: _Chain, items: list[_Item]) -> None:
        if buf:
            try:
                _write_fully(self._fd, buf)
                os.fsync(self._fd)
            except OSError:
                os.ftruncate(self._fd, self._size)
                raise
            self._size += len(buf)
        self._chain = chain
        counted = sum(item.counted for item in items)
        if counted:
            with self._done:
                self._durable += counted
                self._done.notify_all()

    def _rotate(self) -> None:
        # A retry after a failure half-way must not rotate the live file twice.
        if self.path.exists() and os.path.samestat(os.fstat(self._fd), self.path.stat()):
            self._rotate_file()
        fd = _open_append(self.path)
        os.close(self._fd)
        self._fd, self._size = fd, 0
        _fsync_dir(self.path.parent)

    def _rotate_file(self) -> Path:
        """Give the live file the next rotated name; never replaces a file."""
        if not self._next_number:
            rotated = rotated_files(self.path)
            last = _ROTATED.fullmatch(rotated[-1].name) if rotated else None
            self._next_number = int(last["n"]) + 1 if last else 1
        while True:
            target = self.path.with_name(f"{self.path.name}.{self._next_number}")
            self._next_number += 1
            try:
                os.link(self.path, target)
                break
            except FileExistsError:
                continue
        self.path.unlink()
        _fsync_dir(self.path.parent)
        return target


# --- verification --------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"{self.path} line {self.line}: {self.kind}: {self.detail}"


@dataclass
class VerifyReport:
    files: list[Path]
    entries: int = 0  # lines that parsed as entries, sealed right or not
    last_seq: int | None = None
    problem_count: int = 0
    problems: list[Problem] = field(default_factory=list)  # the first MAX_LISTED_PROBLEMS

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def verify_files(paths: Sequence[Path], keys: Keyring, *, expect_last_seq: int | None = None,
                 allow_pruned: bool = False) -> VerifyReport:
    """Check the log in `paths`, taken in the given order (oldest first;
    `rotation_order` sorts one log's files): every line whole and sealed by its key,
    seq up by one and prev the hash of the line before, across files; the chain
    starting at seq 1 (or anywhere with `allow_pruned`, for archived older files); no
    chain.break; and, with `expect_last_seq`, no entries cut from the end. Raises
    OSError for an unreadable file."""
    checker = _Checker(VerifyReport(list(paths)), keys, allow_pruned)
    position = (Path(), 0)
    for path in paths:
        with path.open("rb") as f:
            number = 0
            for number, raw in enumerate(f, start=1):
                checker.feed(path, number, raw)
        position = (path, number)
    if expect_last_seq is not None:
        checker.check_tail(*position, expect_last_seq)
    return checker.report


class _Checker:
    def __init__(self, report: VerifyReport, keys: Keyring, allow_pruned: bool) -> None:
        self.report = report
        self._keys = keys
        self._allow_pruned = allow_pruned
        self._expect_seq: int | None = None  # None until the first entry
        self._expect_prev = GENESIS_PREV
        self._gap: tuple[int, int] | None = None  # (problem index, seq it expected)

    def feed(self, path: Path, number: int, raw: bytes) -> None:
        if not raw.endswith(b"\n"):
            self._add(path, number, "truncated",
                      "the file ends inside this line (cut, or a write was interrupted)")
            return
        entry = parse_entry(raw[:-1])
        if entry is None:
            self._add(path, number, "malformed", "not an audit entry (a JSON object of "
                      "seq, ts, event, fields, prev, kid, mac)")
            return
        found = self._problem(entry)
        if found is not None:
            self._add(path, number, *found)
        self._advance(entry, raw[:-1])

    def check_tail(self, path: Path, number: int, expected: int) -> None:
        last = self.report.last_seq or 0
        if last < expected:
            self._add(path, number + 1, "missing_tail",
                      f"the log ends at seq {last}, expected {expected}: "
                      f"{_entries(expected - last)} missing from the end")

    def _problem(self, entry: dict[str, Any]) -> tuple[ProblemKind, str] | None:
        matches = _mac_matches(self._keys, entry)
        if matches is None:
            return "unknown_key", (f"sealed with audit key {entry['kid']!r}, which the "
                                   "keyring does not hold")
        if not matches:
            return "bad_mac", ("the MAC does not match the entry: it was edited, or sealed "
                               "with another key")
        if entry["event"] == BREAK_EVENT:
            return "chain_break", _break_detail(entry["fields"])
        if self._expect_seq is None:
            return self._head(entry)
        return self._seq(entry["seq"]) or self._prev(entry["prev"])

    def _head(self, entry: dict[str, Any]) -> tuple[ProblemKind, str] | None:
        if self._allow_pruned or (entry["seq"] == 1 and entry["prev"] == GENESIS_PREV):
            return None
        return "missing_head", (f"the log starts at seq {entry['seq']}, not at seq 1: older "
                                "entries or files are missing (--allow-pruned if archived)")

    def _seq(self, seq: int) -> tuple[ProblemKind, str] | None:
        expected = self._expect_seq
        assert expected is not None
        last = expected - 1
        if seq > expected:
            self._gap = (len(self.report.problems), expected)
            return "seq_gap", (f"expected seq {expected}, found {seq}: "
                               f"{_entries(seq - expected)} missing or moved")
        if seq < expected:
            if seq == last:
                return "duplicate", f"seq {seq} appears again"
            self._relabel_gap(seq)
            return "reordered", f"seq {seq} after seq {last}: entries out of order"
        return None

    def _prev(self, prev: str) -> tuple[ProblemKind, str] | None:
        if prev == self._expect_prev:
            return None
        return "prev_mismatch", ("prev is not the hash of the line before: that line was "
                                 "changed, removed or moved")

    def _relabel_gap(self, seq: int) -> None:
        """A gap the next entries fill was a move, not a loss."""
        if self._gap is None or self._gap[1] != seq or self._gap[0] >= len(self.report.problems):
            return
        index = self._gap[0]
        gap = self.report.problems[index]
        self.report.problems[index] = Problem(
            gap.path, gap.line, "reordered", f"seq {seq} belongs here: entries out of order")
        self._gap = None

    def _advance(self, entry: dict[str, Any], line: bytes) -> None:
        self.report.entries += 1
        self.report.last_seq = entry["seq"]
        self._expect_seq = max(entry["seq"] + 1, self._expect_seq or 0)
        self._expect_prev = line_hash(line)

    def _add(self, path: Path, number: int, kind: ProblemKind, detail: str) -> None:
        self.report.problem_count += 1
        if len(self.report.problems) < MAX_LISTED_PROBLEMS:
            self.report.problems.append(Problem(path, number, kind, detail))


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _break_detail(fields: Mapping[str, Any]) -> str:
    return (f"the writer found {fields.get('file', '?')} damaged "
            f"({fields.get('reason', '?')}) and restarted the chain after seq "
            f"{fields.get('resumed_after_seq', '?')}")
