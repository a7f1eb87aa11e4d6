"""Find every detector match in a batch of texts, with one Hyperscan pass per batch.

Both engines run the same per-detector search (`rules.Rule.find`), then resolve
overlaps across detectors: candidates sorted by (start, longest first, detector
order) are kept greedily when they do not overlap an earlier kept one. The "re" engine
searches every text for every detector that could match it (a text lacking all of a
pattern's required characters is skipped); the "hyperscan" engine scans the whole batch
once and searches only the (text, detector) pairs Hyperscan reported, guided by the
reported offsets. Results are identical; offsets are `str` offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from phimask.detect.detectors import Detector
from phimask.detect.hyperscan_engine import HyperscanBatch, hyperscan_module
from phimask.detect.rules import Candidate, Rule
from phimask.detect.safety import PatternError

ENGINES = ("hyperscan", "re")


@dataclass(frozen=True, slots=True)
class Match:
    start: int  # str offsets into the scanned text
    end: int
    detector: Detector


def available_engines() -> list[str]:
    return ["hyperscan", "re"] if hyperscan_module() is not None else ["re"]


class Scanner:
    """Immutable once built; `scan_many` may be called from several threads at once."""

    engine: str

    def __init__(self, rules: list[Rule], engine: str, batch: HyperscanBatch | None) -> None:
        self.engine = engine
        self.detectors: tuple[Detector, ...] = tuple(r.detector for r in rules)
        self._rules = rules
        self._batch = batch

    @classmethod
    def build(cls, detectors: Sequence[Detector], engine: str = "auto") -> Scanner:
        """ "auto" picks hyperscan when it is available, else re."""
        if engine not in ("auto", *ENGINES):
            raise ValueError(f"unknown scan engine {engine!r} (choose auto, hyperscan or re)")
        if engine == "auto":
            engine = "hyperscan" if hyperscan_module() is not None else "re"
        if engine == "hyperscan" and hyperscan_module() is None:
            raise PatternError("the hyperscan engine is not available on this machine")
        seen: set[str] = set()
        for d in detectors:
            if d.name in seen:
                raise PatternError(f"detector {d.name!r} is listed twice")
            seen.add(d.name)
        rules = [Rule(d, i) for i, d in enumerate(detectors)]
        batch = HyperscanBatch(detectors) if engine == "hyperscan" and detectors else None
        return cls(rules, engine, batch)

    def scan(self, text: str) -> list[Match]:
        return self.scan_many([text])[0]

    def scan_many(self, texts: Sequence[str]) -> list[list[Match]]:
        """One list per text, sorted by start, non-overlapping."""
        results: list[list[Match]] = [[] for _ in range(len(texts))]
        for i, matches in self._scan_sparse(texts).items():
            results[i] = matches
        return results

    def redact_many(self, texts: Sequence[str], replace: Callable[[Match], str]) -> list[str]:
        """Each text with every match replaced by `replace(match)`; a text without
        matches is returned as the same object."""
        out = list(texts)
        for i, matches in self._scan_sparse(texts).items():
            text = out[i]
            parts: list[str] = []
            pos = 0
            for m in matches:
                parts.append(text[pos : m.start])
                parts.append(replace(m))
                pos = m.end
            parts.append(text[pos:])
            out[i] = "".join(parts)
        return out

    def _scan_sparse(self, texts: Sequence[str]) -> dict[int, list[Match]]:
        """Matches of the texts that have any, by index."""
        rules = self._rules
        found: dict[int, list[Match]] = {}
        if not rules or not texts:
            return found
        if self._batch is None:
            for i, text in enumerate(texts):
                if text:
                    chars = set(text)
                    candidates: list[Candidate] = []
                    for rule in rules:
                        if rule.required is None or not rule.required.isdisjoint(chars):
                            rule.find(text, candidates)
                    if candidates:
                        found[i] = self._resolve(candidates)
            return found
        current, text, candidates = -1, "", []
        for i, r, hints in self._batch.scan(texts):  # each text's pairs come together
            if i != current:
                if candidates:
                    found[current] = self._resolve(candidates)
                    candidates = []
                current, text = i, texts[i]
            if hints is None:
                rules[r].find(text, candidates)
            else:
                rules[r].find_hinted(text, candidates, hints)
        if candidates:
            found[current] = self._resolve(candidates)
        return found

    def _resolve(self, candidates: list[Candidate]) -> list[Match]:
        detectors = self.detectors
        if len(candidates) == 1:
            start, _, index, end = candidates[0]
            return [Match(start, end, detectors[index])]
        candidates.sort()
        out: list[Match] = []
        taken = 0
        for start, _, index, end in candidates:
            if start >= taken:
                out.append(Match(start, end, detectors[index]))
                taken = end
        return out
