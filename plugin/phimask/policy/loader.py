"""Read a policy YAML into plain values, keeping the line of every key.

The safe loader builds the values; the composed node tree gives the line numbers,
so an error can say `policy.yaml line 12: fields[3].action: unknown action 'mask'`.
Duplicate keys are errors (YAML would silently keep the last one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


class PolicyError(ValueError):
    """A policy that cannot be used. The message names the file, line and key path."""

    def __init__(self, source: str, line: int | None, where: str, message: str) -> None:
        at = f" line {line}" if line else ""
        key = f"{where}: " if where else ""
        super().__init__(f"{source}{at}: {key}{message}")
        self.source, self.line, self.where, self.problem = source, line, where, message


@dataclass(frozen=True)
class Located:
    """A parsed YAML document plus the line of each key path (`fields[2].action`)."""

    source: str
    data: Any
    lines: dict[str, int]

    def line(self, where: str) -> int | None:
        """The line of `where`, or of its nearest parent that has one."""
        while where not in self.lines:
            if not where:
                return None
            cut = max(where.rfind("."), where.rfind("["))
            where = where[:cut] if cut > 0 else ""
        return self.lines[where]

    def error(self, where: str, message: str) -> PolicyError:
        return PolicyError(self.source, self.line(where), where, message)


def load_yaml(text: str, source: str) -> Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise PolicyError(source, mark.line + 1 if mark else None, "", problem) from None
    if node is None:
        raise PolicyError(source, None, "", "the policy is empty")
    lines: dict[str, int] = {}
    _index(node, "", lines, source)
    data = yaml.SafeLoader(text).get_single_data()
    return Located(source, data, lines)


def _index(node: yaml.Node, where: str, lines: dict[str, int], source: str) -> None:
    lines.setdefault(where, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{where}.{key}" if where else key
            if key in seen:
                raise PolicyError(source, key_node.start_mark.line + 1, child, "duplicate key")
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _index(value_node, child, lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, f"{where}[{i}]", lines, source)
