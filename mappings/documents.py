"""Building a mapped document: a value put at a rule's path, and what is empty pruned away.

Shared by the reference (:meth:`mappings.engine.FieldRule.read`, stream by stream) and the
compiled form (:mod:`mappings.compiled`).
"""

from __future__ import annotations

from typing import Any


def present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    if isinstance(value, list | dict):
        return len(value) > 0
    return True


def assign(doc: dict[str, Any], path: list[tuple[str, int | None]], value: Any) -> None:
    node: Any = doc
    for i, (name, index) in enumerate(path):
        last = i == len(path) - 1
        if index is None:
            if last:
                node[name] = value
            else:
                node = node.setdefault(name, {})
            continue
        items = node.setdefault(name, [])
        while len(items) <= index:
            items.append({} if not last else None)
        if last:
            items[index] = value
        else:
            if items[index] is None:
                items[index] = {}
            node = items[index]


def prune(value: Any) -> Any:
    """Drop None values, list elements whose values are all empty, and empty containers.

    Exactly ``present`` of each value, with the common types (text, lists, dicts) decided inline:
    a mapping of a sparse row prunes every list field of every record.
    """
    kind = type(value)
    if kind is dict:
        out = {}
        for k, v in value.items():
            kind = type(v)
            if kind is dict or kind is list:
                v = prune(v)
                if v:
                    out[k] = v
            elif kind is str:
                if v.strip():
                    out[k] = v
            elif present(v):
                out[k] = v
        return out
    if kind is list:
        items = []
        for v in value:
            kind = type(v)
            if kind is dict:
                v = prune(v)
                if _meaningful(v):  # not empty, and more than constants
                    items.append(v)
            elif kind is list:
                v = prune(v)
                if v:
                    items.append(v)
            elif kind is str:
                if v.strip():
                    items.append(v)
            elif present(v):
                items.append(v)
        return items
    return value


_CONSTANT_KEYS = frozenset({"use", "system"})


def _meaningful(doc: dict[str, Any]) -> bool:
    """A list element counts only if it holds something besides constants like `use`."""
    return not doc.keys() <= _CONSTANT_KEYS
