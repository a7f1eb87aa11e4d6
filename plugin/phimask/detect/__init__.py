"""Free-text PHI detection: built-in detectors and a one-pass batch scanner."""

from phimask.detect.detectors import (
    BUILTIN_NAMES,
    Boundary,
    Detector,
    builtin_detectors,
    custom_detector,
)
from phimask.detect.safety import PatternError, UnsafePatternError, check_pattern_safe
from phimask.detect.scanner import Match, Scanner, available_engines

__all__ = [
    "BUILTIN_NAMES",
    "Boundary",
    "Detector",
    "Match",
    "PatternError",
    "Scanner",
    "UnsafePatternError",
    "available_engines",
    "builtin_detectors",
    "check_pattern_safe",
    "custom_detector",
]
