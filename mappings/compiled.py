"""A stream's mapping compiled once into one straight-line Python function.

A migration applies every rule of a stream to every row (hundreds of thousands of rows, a
dozen rules or more each). Interpreting the rules row by row (a generic reader per rule, a
call and three emptiness checks per transform, a path walk per assignment) cost more than the
work the rules describe. :func:`compile_stream` writes, once per stream, the source of a single
function that does what the rules say, in their order: each rule's column read, its text checks,
its transforms and its code list inline for the common case, a value that is text. Any other
value (a number, a date, a list) goes through the rule's generic reader
(:meth:`~mappings.engine.FieldRule.read`, the reference), and a transform this module does not know how to
inline is called as it is, so every outcome (the value, the default, the quarantine reason and
message, and which rule fails first) is the one the rules give.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hub.contract import MappedRecord
from hub.errors import QuarantineError
from mappings.documents import assign, present, prune
from mappings.transforms import TEXT_FORMS, TEXT_FUNCTIONS

if TYPE_CHECKING:
    from mappings.engine import FieldRule, StreamMapping

# Transforms that take text to text (``_each_str`` in mappings.transforms), as an expression of ``v``, a non-empty
# str; on a list of str the same expression is applied to each element.
_TEXT_EXPRESSIONS = {
    "trim": "v.strip()",
    "upper": "v.upper()",
    "lower": "v.lower()",
    "collapse_spaces": "' '.join(v.split())",
    "string": "v",  # str(v) of a str is v itself
}
_TEXT_FUNCTIONS = ("title", "digits_only")  # text to text through mappings.transforms' own function
# Transforms that give a value or raise, never None, "" or []: no emptiness check after them.
_NEVER_EMPTY = ("date", "datetime", "decimal", "pence_to_pounds", "int", "bool")

_NO_CODE = object()  # what a code list's get gives for a code it does not hold

Applier = Callable[[Mapping[str, Any]], MappedRecord]


class _Source:
    """The function's source lines and the objects its names stand for."""

    def __init__(self, text_functions: Mapping[str, Callable[[str], Any]],
                 text_forms: Mapping[Any, Callable[[str], Any]]) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}
        self.text_functions = text_functions  # text to text, by transform name (title, digits_only)
        self.text_forms = text_forms  # a transform's quicker function for a str value, where it has one

    def bind(self, value: Any, hint: str) -> str:
        name = f"_{hint}{len(self.names)}"
        self.names[name] = value
        return name

    def add(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)


def compile_stream(stream: StreamMapping) -> Applier:
    """One function mapping a row of ``stream`` exactly as its rules do (see the module)."""
    src = _Source(TEXT_FUNCTIONS, TEXT_FORMS)
    src.names.update(_MappedRecord=MappedRecord, _assign=assign, _prune=prune, _element=_element,
                     _NO_CODE=_NO_CODE)
    # top-level names only ever written as name[i].key may be written through _element (no path walk)
    shapes: dict[str, bool] = {}
    for rule in stream.rules:
        top = rule.path[0][0]
        shapes[top] = shapes.get(top, True) and _element_path(rule) is not None and rule.each is None
    src.add(0, "def apply(row):")
    src.add(1, "doc = {}")
    src.add(1, "references = {}")
    src.add(1, "get = row.get")
    for rule in stream.rules:
        src.add(1, f"# {rule.target}")
        if rule.each is not None:
            _emit_collection(src, rule)
            continue
        if not _emit_value(src, rule, 1, "row", "get"):
            continue
        src.add(1, "if v is not None:")
        if rule.ref is not None:
            src.add(2, f"references[{rule.target!r}] = ({rule.ref!r}, str(v))")
        else:
            src.add(2, _assignment(src, rule, "doc", shapes.get(rule.path[0][0], False)))
    for name in sorted(stream.list_fields):  # only lists can hold elements left empty by a sparse row
        src.add(1, f"if {name!r} in doc:")
        src.add(2, f"x = _prune(doc[{name!r}])")
        src.add(2, "if x:")
        src.add(3, f"doc[{name!r}] = x")
        src.add(2, "else:")
        src.add(3, f"del doc[{name!r}]")
    src.add(1, f"return _MappedRecord({stream.entity!r}, doc, references)")
    code = compile("\n".join(src.lines) + "\n", f"<mapping of stream {stream.name!r}>", "exec")
    namespace = dict(src.names)
    exec(code, namespace)  # noqa: S102 - source written above from a validated mapping; values bound by name
    applier: Applier = namespace["apply"]
    applier.source = "\n".join(src.lines)  # type: ignore[attr-defined]  # for reading what a mapping became
    return applier


def _emit_collection(src: _Source, rule: FieldRule) -> None:
    """An ``each`` rule: one item per child row, its nested rules inline (a nested ``ref`` is a plain value)."""
    src.add(1, "built = []")
    src.add(1, f"for child in get({rule.each!r}) or []:")
    src.add(2, "item = {}")
    src.add(2, "cget = child.get")
    for sub in rule.nested:
        src.add(2, f"# {rule.target}: {sub.target}")
        if not _emit_value(src, sub, 2, "child", "cget"):
            continue
        src.add(2, "if v is not None:")
        src.add(3, _assignment(src, sub, "item", False))
    src.add(2, "built.append(item)")
    src.add(1, _assignment(src, rule, "doc", False, "built"))


def _emit_value(src: _Source, rule: FieldRule, depth: int, row: str, get: str) -> bool:
    """Code leaving the rule's value (or None) in ``v``; False when the rule never has one (a None constant)."""
    if rule.is_constant:
        if rule.constant is None:
            return False
        src.add(depth, f"v = {src.bind(rule.constant, 'value')}")
        return True
    generic = src.bind(rule.read, "read")
    steps = _steps(rule)
    if rule.each is not None or steps is None:
        src.add(depth, f"v = {generic}({row})")
        return True
    missing = _missing(src, rule)
    if rule.join is not None:
        src.add(depth, f"v = {src.bind(_joiner(tuple(rule.columns), rule.join), 'join')}({row})")
    else:
        src.add(depth, f"v = {get}({rule.columns[0]!r})")
    src.add(depth, "if v is None:")
    src.add(depth + 1, missing)
    src.add(depth, "elif type(v) is str:")
    _emit_text(src, rule, steps, depth + 1, missing)
    if rule.join is None:  # a joined value is text or None
        src.add(depth, "else:")
        src.add(depth + 1, f"v = {generic}({row})")
    return True


def _emit_text(src: _Source, rule: FieldRule, steps: list[tuple[str, Any, Any]], depth: int, missing: str) -> None:
    """The rule applied to ``v``, a str: blank or ``null_if`` text, the transforms, the code list."""
    src.add(depth, "t = v.strip()")
    if rule.null_if:
        src.add(depth, f"if not t or t in {src.bind(frozenset(rule.null_if), 'null')}:")
    else:
        src.add(depth, "if not t:")
    src.add(depth + 1, missing)
    src.add(depth, "else:")
    depth += 1
    kind = "text"  # what v is now: "text" (a non-empty str), "texts" (a non-empty list of str) or "any"
    for i, (name, arg, function) in enumerate(steps):
        check: str | None = "if not v:"  # the reference's None / "" / [] check, for text or a list of text
        inline = _TEXT_EXPRESSIONS.get(name) or (f"{src.bind(src.text_functions[name], name)}(v)"
                                                 if name in _TEXT_FUNCTIONS else None)
        if kind == "text" and i == 0 and name == "trim":
            src.add(depth, "v = t")  # the text checked above is v.strip(), and not empty
            check = None
        elif kind == "text" and inline is not None:
            if inline != "v":
                src.add(depth, f"v = {inline}")
            else:
                check = None
        elif kind == "text" and name == "split" and arg is None:
            src.add(depth, "v = v.split()")  # str.split() drops the same white space str.strip() would
            kind = "texts"
        elif kind == "texts" and inline is not None:  # element by element: as many, and none is a list
            if inline != "v":
                src.add(depth, f"v = [{inline} for v in v]")
            check = None
        else:
            on_text = src.text_forms.get(function) if kind == "text" else None
            src.add(depth, f"v = {src.bind(on_text or function, 'transform')}(v)")
            if name in _NEVER_EMPTY:
                check, kind = None, "any"
            elif kind == "text" and name == "regex":
                pass  # None or text
            elif kind == "text" and name in ("split", "split_name"):
                kind = "texts" if name == "split" or arg == "given" else "text"
            else:
                check, kind = "if v is None or v == '' or v == []:", "any"
        if check is not None:
            src.add(depth, check)
            src.add(depth + 1, missing)
            src.add(depth, "else:")
            depth += 1
    if rule.value_map is not None:
        src.add(depth, "key = v" if kind == "text" else "key = str(v)")
        src.add(depth, f"code = {src.bind(rule.value_map, 'codes')}.get(key, _NO_CODE)")
        src.add(depth, "if code is not _NO_CODE:")
        src.add(depth + 1, "v = code")
        if rule.on_unmapped == "quarantine":
            src.add(depth, "else:")
            src.add(depth + 1, f"{src.bind(_unmapped(rule.columns[0], rule.target), 'unmapped')}(key)")
        elif rule.on_unmapped == "default":
            src.add(depth, "else:")
            src.add(depth + 1, f"v = {src.bind(rule.default, 'default')}")
        # keep: v stays what it was
    if src.lines[-1].endswith("else:"):  # the last check's else has nothing left to do
        src.lines.pop()


def _steps(rule: FieldRule) -> list[tuple[str, Any, Any]] | None:
    """The rule's transforms as (name, argument, function), or None when they are not known by name."""
    specs = rule.transform_specs
    if len(specs) != len(rule.transforms):
        return None
    return [(name, arg, function) for (name, arg), function in zip(specs, rule.transforms, strict=True)]


def _missing(src: _Source, rule: FieldRule) -> str:
    """The statement for a rule with no value: its default, or the rule's own MISSING_FIELD error."""
    if rule.required:
        return f"v = {src.bind(rule.missing, 'missing')}()"
    if rule.default is None:
        return "v = None"
    return f"v = {src.bind(rule.default, 'default')}"


def _unmapped(column: str, target: str) -> Callable[[str], None]:
    def unmapped(key: str) -> None:
        raise QuarantineError("CODE_UNMAPPED", f"code {key!r} in {column} has no mapping", field=target)

    return unmapped


def _joiner(columns: tuple[str, ...], separator: str) -> Callable[[Mapping[str, Any]], str | None]:
    """A ``from: [...]`` rule's text: the present columns' values, stripped, joined (None if none is)."""
    def joined(row: Mapping[str, Any]) -> str | None:
        parts = []
        for column in columns:
            value = row.get(column)
            if type(value) is str:
                value = value.strip()
                if value:
                    parts.append(value)
            elif present(value):
                value = str(value).strip()
                if value:
                    parts.append(value)
        return separator.join(parts) or None

    return joined


def _plain_key(rule: FieldRule) -> str | None:
    return rule.path[0][0] if len(rule.path) == 1 and rule.path[0][1] is None else None


def _element_path(rule: FieldRule) -> tuple[str, int, str] | None:
    """``name[i].key`` as (name, i, key)."""
    path = rule.path
    if len(path) == 2 and path[0][1] is not None and path[1][1] is None:
        return path[0][0], path[0][1], path[1][0]
    return None


def _assignment(src: _Source, rule: FieldRule, doc: str, by_element: bool, value: str = "v") -> str:
    """The statement putting ``value`` at the rule's path in ``doc`` (``by_element``: the path's list is
    only ever written as name[i].key, so its element is reached without a path walk)."""
    key = _plain_key(rule)
    if key is not None:
        return f"{doc}[{key!r}] = {value}"
    element = _element_path(rule)
    if by_element and element is not None:
        name, index, field = element
        return f"_element({doc}, {name!r}, {index})[{field!r}] = {value}"
    return f"_assign({doc}, {src.bind(rule.path, 'path')}, {value})"


def _element(doc: dict[str, Any], name: str, index: int) -> dict[str, Any]:
    """``doc[name][index]``, made as mappings.documents.assign makes it (list and dicts up to index)."""
    items: list[dict[str, Any]] | None = doc.get(name)
    if items is None:
        items = doc[name] = []
    while len(items) <= index:
        items.append({})
    return items[index]
