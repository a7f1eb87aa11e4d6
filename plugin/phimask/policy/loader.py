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
    """Every problem becomes a PolicyError: a policy file is input, and a reload must
    be able to refuse any of them."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            raise PolicyError(source, None, "", "the policy is empty")
        lines: dict[str, int] = {}
        _index(node, "", lines, source, set())
        data = yaml.SafeLoader(text).get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise PolicyError(source, mark.line + 1 if mark else None, "", problem) from None
    except PolicyError:
        raise  # (a ValueError too) from _index: it names line and key already
    except RecursionError:
        raise PolicyError(source, None, "", "nested too deep") from None
    except (ValueError, TypeError) as exc:  # a value YAML's types refuse (2024-13-01)
        raise PolicyError(source, None, "", f"a value cannot be read: "
                          f"{type(exc).__name__}") from None
    return Located(source, data, lines)


def _index(node: yaml.Node, where: str, lines: dict[str, int], source: str,
           seen_nodes: set[int]) -> None:
    # An alias is the same node object again. Policies have no use for anchors, and
    # following them lets 300 bytes expand exponentially ("billion laughs").
    if id(node) in seen_nodes:
        raise PolicyError(source, node.start_mark.line + 1, where,
                          "YAML anchors and aliases are not supported in a policy")
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        seen_nodes.add(id(node))
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
            _index(value_node, child, lines, source, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, f"{where}[{i}]", lines, source, seen_nodes)
