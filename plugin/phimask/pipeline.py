"""The one core: mask a batch of documents by a compiled Plan.

A document maps root names (`payload`, `attributes`, ...) to nested dict/list/scalar
values. Masking happens in place. Each record either comes out fully masked or is
rejected with a reason code; there is no third way out (fail closed).

Free text is not scanned record by record: every string due for scanning in the
whole batch is handed to the scanner at once, which is what makes scanning cheap.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .audit import audit
from .detect import Match, Scanner
from .errors import CallError
from .operators import BatchOperator, OperatorError
from .policy import Kind, Node, Plan, Rule
from .policy.hints import hint_for
from .stats import BatchStats

if TYPE_CHECKING:
    from .integrity import Verifier
    from .monitor import ResidualMonitor
    from .vault import Vault

log = logging.getLogger("phimask.pipeline")
Document = dict[str, Any]
MAX_DEPTH = 64
# Integers this long may be an identifier stored as a number (SSN 123456789).
_SCAN_INT_FROM = 100_000
_CLEAN_CACHE_SIZE = 50_000
_CLEAN_CACHE_MAX_LEN = 256


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # a code: operator_error, too_deep, ...
    rule: str = ""  # the rule involved, never a value
    quarantine_id: str = ""  # where the original is kept (on_error: quarantine)


def describe_rejections(rejections: Iterable[tuple[int, Rejection]], noun: str,
                        plural: str) -> str:
    """`3 log records rejected: operator_error x2 (rule patient.dob), invalid_float x1`.

    Reason codes and rule ids only, most frequent first: never a value. "" for none.
    """
    counts = Counter(Rejection(r.reason, r.rule) for _, r in rejections)
    total = sum(counts.values())
    if not total:
        return ""
    parts = [
        f"{r.reason} x{n}" + (f" (rule {r.rule})" if r.rule else "")
        for r, n in sorted(counts.items(), key=lambda item: (-item[1], item[0].reason,
                                                             item[0].rule))
    ]
    return f"{total} {noun if total == 1 else plural} rejected: " + ", ".join(parts)


class _Reject(Exception):
    def __init__(self, reason: str, rule: str = "") -> None:
        super().__init__(reason)
        self.rejection = Rejection(reason, rule)


_DROP = object()
# (container, key or index, text to scan)
ScanJob = tuple[Any, Any, str]
# (container, key or index, text, rule, index of the document in the batch)
DeferredJob = tuple[Any, Any, str, Rule, int]


class Masker:
    """Masks batches by one Plan. Cheap to call, not cheap to build: build once."""

    def __init__(self, plan: Plan, scanner: Scanner, verifier: Verifier | None = None,
                 quarantine: Vault | None = None, monitor: ResidualMonitor | None = None
                 ) -> None:
        self.plan = plan
        self.scanner = scanner
        self.monitor = monitor
        # ids of the values operators produced in the records the monitor will check
        self._produced: set[int] | None = None
        self._named: dict[tuple[Any, ...], bool] = {}
        # Where rejected originals are kept, encrypted (on_error: quarantine).
        self.quarantine = quarantine
        # Signature checks the adapters run before a record is decoded or masked.
        self.verifier = verifier
        self._hints = plan.hints
        self._scan_unmapped = plan.unmapped_scan
        # A root whose trie is empty needs no path matching at all.
        self._roots = {name: node for name, node in plan.roots.items() if not _empty(node)}
        self._top_hints: dict[str, Rule | None] = {}
        self._deep_hints: dict[str, Rule | None] = {}
        self._clean: set[str] = set()
        self._deferred: list[DeferredJob] = []
        self._doc_index = 0
        labels = {d.name: f"[REDACTED:{d.label}]" for d in plan.detectors}
        detections = self._detections = Counter[str]()
        self._counted = [*plan.rules, *(plan.hints or {}).values()]
        self._stats = BatchStats(policy_version=plan.version)

        def replace(match: Match) -> str:
            name = match.detector.name
            detections[name] += 1
            return labels[name]

        self._replace: Callable[[Match], str] = replace

    @property
    def policy_version(self) -> str:
        return self.plan.version

    def settle_rejections(self, protocol: str, records: int,
                          rejections: list[tuple[int, Rejection]],
                          original: Callable[[int], bytes]) -> list[tuple[int, Rejection]]:
        """Account for a batch of `records` records: audit signature failures; with
        `on_error: quarantine`, store each rejected record's original (the wire bytes
        `original(index)` gives) encrypted in the vault, and name where. A store that
        cannot be reached raises VaultUnavailable: the batch is not acknowledged, so
        nothing is lost."""
        stats = self._stats
        stats.records_in += records
        stats.records_out += records - len(rejections)
        stats.rejected.update(r.reason for _, r in rejections)
        failed = Counter(r.rule for _, r in rejections if r.reason == "bad_signature")
        if self.verifier is not None and self.verifier.checks:
            stats.integrity["failed"] += sum(failed.values())
            stats.integrity["passed"] += records - sum(failed.values())
        if failed:
            audit("integrity.failed", protocol=protocol, count=sum(failed.values()),
                  details=dict(failed), policy_version=self.plan.version)
        if self.quarantine is None or not rejections:
            return rejections
        kept = []
        for index, rejection in rejections:
            entry = self.quarantine.quarantine_put(protocol, original(index), rejection.reason,
                                                   rejection.rule)
            kept.append((index, Rejection(rejection.reason, rejection.rule, entry)))
        stats.quarantined += len(kept)
        return kept

    def names(self, segments: tuple[Any, ...]) -> bool:
        """Whether an explicit policy rule covers the value at `segments` (root first;
        an int for a list element): what drift is measured against."""
        key = segments
        known = self._named.get(key)
        if known is not None:
            return known
        node = self.plan.roots.get(segments[0]) if segments else None
        nodes: tuple[Node, ...] = (node,) if node is not None else ()
        for seg in segments[1:]:
            if _best_rule(nodes) is not None or not nodes:
                break
            nodes = _step(nodes, seg)
        covered = _best_rule(nodes) is not None
        if len(self._named) < 10_000:  # paths come from input: bound the cache
            self._named[key] = covered
        return covered

    def take_stats(self) -> BatchStats:
        """The counts since the last call (one batch), and start new ones."""
        stats, self._stats = self._stats, BatchStats(policy_version=self.plan.version)
        for rule in self._counted:
            if rule.hits:
                stats.rule_hits[rule.rule_id] += rule.hits
                stats.rule_actions[rule.rule_id] = rule.action
                rule.hits = 0
        stats.detections.update(self._detections)
        self._detections.clear()
        return stats

    def mask_batch(self, docs: list[Document | Rejection]) -> list[Rejection | None]:
        """Mask every document in place; a Rejection in the input stays rejected."""
        results: list[Rejection | None] = []
        jobs: list[ScanJob] = []
        deferred = self._deferred = []
        monitor = self.monitor
        produced: set[int] = set()
        checked: list[Document | None] = []
        for doc in docs:
            if isinstance(doc, Rejection):
                results.append(doc)
                checked.append(None)
                continue
            sampled = monitor is not None and monitor.sampled()
            checked.append(doc if sampled else None)
            self._produced = produced if sampled else None
            mark, deferred_mark = len(jobs), len(deferred)
            self._doc_index = len(results)
            try:
                self._mask_document(doc, jobs)
            except _Reject as exc:
                del jobs[mark:], deferred[deferred_mark:]
                results.append(exc.rejection)
            except RecursionError:
                del jobs[mark:], deferred[deferred_mark:]
                results.append(Rejection("too_deep"))
            else:
                results.append(None)
        self._produced = None
        if deferred:
            self._resolve_deferred(deferred, results, produced)
        if jobs:
            self._scan(jobs)
        if monitor is not None and any(checked):
            self._check_residual(monitor, checked, results, produced)
        return results

    def _check_residual(self, monitor: ResidualMonitor, checked: list[Document | None],
                        results: list[Rejection | None], produced: set[int]) -> None:
        emitted = [doc if results[i] is None else None for i, doc in enumerate(checked)]
        checked_out = monitor.check(emitted, produced, self.names)
        self._stats.unmapped.update(checked_out.unmapped)
        self._stats.unmapped_phi.update(checked_out.unmapped_phi)
        found: Counter[tuple[str, str]] = Counter()
        for index, counts in checked_out.hits.items():
            found.update(counts)
            if monitor.block:
                detector, path = next(iter(counts))
                results[index] = Rejection("residual_phi", path)
        self._stats.residual.update(found)
        for (detector, path), count in sorted(found.items()):
            # The path and the detector, never the value: the gap, not its content.
            log.warning("residual PHI in emitted records: a policy gap",
                        extra={"detector": detector, "path": path, "count": count,
                               "blocked": monitor.block, "policy_version": self.plan.version})
            audit("residual_phi", detector=detector, path=path, count=count,
                  blocked=monitor.block, policy_version=self.plan.version)

    def _resolve_deferred(self, deferred: list[DeferredJob], results: list[Rejection | None],
                          produced: set[int]) -> None:
        """Values of batched operators (tokenize: one vault round trip per rule, not per
        value). A group that fails by value goes one by one, so only the records at
        fault are rejected; a vault that is down fails the batch."""
        groups: dict[int, list[DeferredJob]] = {}
        for job in deferred:
            groups.setdefault(id(job[3]), []).append(job)
        for group in groups.values():
            rule = group[0][3]
            op = rule.op
            assert isinstance(op, BatchOperator)
            try:
                outputs = op.apply_many([job[2] for job in group])
            except OperatorError:
                outputs = []
                for job in group:
                    try:
                        outputs.append(op.apply_many([job[2]])[0])
                    except OperatorError:
                        outputs.append(None)
                        if results[job[4]] is None:
                            results[job[4]] = Rejection("operator_error", rule.rule_id)
            for job, output in zip(group, outputs, strict=True):
                if output is not None:
                    job[0][job[1]] = output
                    produced.add(id(output))

    def _scan(self, jobs: list[ScanJob]) -> None:
        # Strings already known clean never become jobs (see _queue); what is left is
        # mostly unique, so it goes to the scanner as it is.
        clean = self._clean
        texts = [job[2] for job in jobs]
        for job, masked in zip(jobs, self.scanner.redact_many(texts, self._replace),
                               strict=True):
            text = job[2]
            if masked is not text:
                job[0][job[1]] = masked
            elif len(text) <= _CLEAN_CACHE_MAX_LEN:
                if len(clean) >= _CLEAN_CACHE_SIZE:
                    clean.clear()  # bounded memory; it refills with what is common now
                clean.add(text)

    def _mask_document(self, doc: Document, jobs: list[ScanJob]) -> None:
        for root, value in doc.items():
            if type(value) is not dict and type(value) is not list:
                self._mask_scalar_root(doc, root, value, jobs)
                continue
            node = self._roots.get(root)
            if node is not None:
                self._walk(value, (node,), None, None, 1, jobs)
            elif isinstance(value, dict):
                self._free_dict(value, None, 1, jobs)
            else:
                self._free_list(value, None, 1, jobs)

    def _mask_scalar_root(self, doc: Document, root: str, value: Any,
                          jobs: list[ScanJob]) -> None:
        """A root that is one value (an OTLP body that is a plain string)."""
        node = self.plan.roots.get(root)
        rule = node.rule if node is not None else None
        if rule is None:
            if self._scan_unmapped:
                self._queue(value, doc, root, jobs)
            return
        masked = self._apply(value, rule, doc, root, jobs)
        if masked is not value:
            doc[root] = None if masked is _DROP else masked

    def _hint_miss(self, key: str, top_level: bool) -> Rule | None:
        hint = hint_for(key, top_level)
        assert self._hints is not None
        rule = self._hints[hint.rule_id] if hint is not None else None
        cache = self._top_hints if top_level else self._deep_hints
        if len(cache) < 100_000:  # keys come from input: bound the cache
            cache[key] = rule
        return rule

    # Three walks, from general to fast: `_walk` while policy paths still match,
    # `_under` below an explicit rule that no deeper path refines, `_free_*` where no
    # explicit rule reaches (hints and scanning only). Most of a record is `_free`.

    def _walk(self, container: Any, nodes: tuple[Node, ...], inherited: Rule | None,
              hint: Rule | None, depth: int, jobs: list[ScanJob]) -> None:
        if depth > MAX_DEPTH:
            raise _Reject("too_deep")
        drops: list[Any] = []
        items = container.items() if type(container) is dict else enumerate(container)
        for key, value in items:
            children = _step(nodes, key)
            rule = _best_rule(children) or inherited
            child_hint = hint
            if rule is None and self._hints is not None and type(key) is str:
                child_hint = self._hint(key, depth == 1) or hint
            t = type(value)
            if t is dict or t is list:
                if child_hint is not None and child_hint.scalar_only:
                    child_hint = hint
                if rule is not None and rule.kind is Kind.DROP:
                    drops.append(key)
                elif children:
                    self._walk(value, children, rule, child_hint, depth + 1, jobs)
                elif rule is not None:
                    self._under(value, rule, depth + 1, jobs)
                elif t is dict:
                    self._free_dict(value, child_hint, depth + 1, jobs)
                else:
                    self._free_list(value, child_hint, depth + 1, jobs)
                continue
            applied = rule or child_hint
            if applied is not None:
                masked = self._apply(value, applied, container, key, jobs)
                if masked is _DROP:
                    drops.append(key)
                elif masked is not value:
                    container[key] = masked
            elif self._scan_unmapped:
                self._queue(value, container, key, jobs)
        for key in reversed(drops):
            del container[key]

    def _hint(self, key: str, top_level: bool) -> Rule | None:
        cache = self._top_hints if top_level else self._deep_hints
        try:
            return cache[key]
        except KeyError:
            return self._hint_miss(key, top_level)

    def _under(self, container: Any, rule: Rule, depth: int, jobs: list[ScanJob]) -> None:
        if depth > MAX_DEPTH:
            raise _Reject("too_deep")
        if rule.kind is Kind.KEEP:
            if self._produced is not None:  # kept by decision: not the monitor's finding
                self._produced.add(id(container))
            return
        items = container.items() if type(container) is dict else enumerate(container)
        for key, value in items:
            t = type(value)
            if t is dict or t is list:
                self._under(value, rule, depth + 1, jobs)
                continue
            masked = self._apply(value, rule, container, key, jobs)
            if masked is not value:
                container[key] = masked

    def _free_dict(self, container: dict[str, Any], hint: Rule | None, depth: int,
                   jobs: list[ScanJob]) -> None:
        if depth > MAX_DEPTH:
            raise _Reject("too_deep")
        hints = self._hints is not None
        cache = self._top_hints if depth == 1 else self._deep_hints
        scan = self._scan_unmapped
        clean = self._clean
        for key, value in container.items():
            rule = hint
            if hints:
                try:
                    own = cache[key]
                except KeyError:
                    own = self._hint_miss(key, depth == 1)
                if own is not None:
                    rule = own
            t = type(value)
            if t is str:
                if rule is None:
                    if scan and value and value not in clean:
                        jobs.append((container, key, value))
                    continue
            elif t is dict or t is list:
                if rule is not None and rule.scalar_only:
                    rule = hint
                if t is dict:
                    self._free_dict(value, rule, depth + 1, jobs)
                else:
                    self._free_list(value, rule, depth + 1, jobs)
                continue
            elif rule is None:
                if scan:
                    self._queue(value, container, key, jobs)
                continue
            if rule.kind is Kind.KEEP:
                if self._produced is not None:
                    self._produced.add(id(value))
                continue
            if rule.constant is not None and value is not None and type(value) is not bool:
                rule.hits += 1
                container[key] = rule.constant
                continue
            masked = self._apply(value, rule, container, key, jobs)
            if masked is not value:
                container[key] = masked

    def _free_list(self, container: list[Any], hint: Rule | None, depth: int,
                   jobs: list[ScanJob]) -> None:
        if depth > MAX_DEPTH:
            raise _Reject("too_deep")
        for index, value in enumerate(container):
            t = type(value)
            if t is dict:
                self._free_dict(value, hint, depth + 1, jobs)
            elif t is list:
                self._free_list(value, hint, depth + 1, jobs)
            elif hint is not None:
                masked = self._apply(value, hint, container, index, jobs)
                if masked is not value:
                    container[index] = masked
            elif self._scan_unmapped:
                self._queue(value, container, index, jobs)

    def _apply(self, value: Any, rule: Rule, container: Any, key: Any,
               jobs: list[ScanJob]) -> Any:
        kind = rule.kind
        if kind is Kind.VALUE:
            # Null and booleans cannot carry any of the 18 identifiers.
            if value is None or value is True or value is False:
                return value
            rule.hits += 1
            op = rule.op
            assert op is not None
            try:
                if rule.batched:
                    # Done for the whole batch at the end; never left as it was.
                    text = cast(BatchOperator, op).prepare(value)
                    self._deferred.append((container, key, text, rule, self._doc_index))
                    return value
                if self._produced is not None:
                    out = op.apply(value)
                    self._produced.add(id(out))
                    return out
                return op.apply(value)
            except OperatorError:
                raise _Reject("operator_error", rule.rule_id) from None
            except CallError:
                raise  # the vault is down: the whole batch, not this record
            except UnicodeError:  # text that is not UTF-8 (Vector keeps raw bytes)
                raise _Reject("invalid_utf8", rule.rule_id) from None
            except Exception:
                # A value no operator was written for (bytes where an age was expected)
                # rejects its record, never the batch: fail closed, but only here.
                raise _Reject("operator_error", rule.rule_id) from None
        if kind is Kind.SCAN:
            self._queue(value, container, key, jobs)
            return value
        if kind is Kind.DROP:
            rule.hits += 1
            return _DROP
        if self._produced is not None:  # keep: a decision, not a gap
            self._produced.add(id(value))
        return value

    def _queue(self, value: Any, container: Any, key: Any, jobs: list[ScanJob]) -> None:
        if type(value) is str:
            if value and value not in self._clean:
                jobs.append((container, key, value))
        elif type(value) is int and abs(value) >= _SCAN_INT_FROM:
            jobs.append((container, key, str(value)))


def _empty(node: Node) -> bool:
    return node.rule is None and not node.keys and node.any_key is None and node.any_index is None


def _step(nodes: tuple[Node, ...], key: Any) -> tuple[Node, ...]:
    out: list[Node] = []
    for node in nodes:
        if isinstance(key, str):
            child = node.keys.get(key)
            if child is not None:
                out.append(child)
            if node.any_key is not None:
                out.append(node.any_key)
        elif node.any_index is not None:
            out.append(node.any_index)
    return tuple(out)


def _best_rule(nodes: tuple[Node, ...]) -> Rule | None:
    best: Rule | None = None
    for node in nodes:
        rule = node.rule
        if rule is not None and (
            best is None or (rule.wildcards, rule.order) < (best.wildcards, best.order)
        ):
            best = rule
    return best
