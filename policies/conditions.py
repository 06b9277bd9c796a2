"""The condition language of rule packs, compiled to Python closures.

A condition is ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}`` or a leaf test
``{attr: <path>, op: <operator>, value: <constant>}`` / ``{attr: ..., op: ..., ref: <path>}``.
``compile_condition`` checks a parsed condition and turns it into a tree of ``Node`` objects,
each holding a closure ``test(context) -> bool``; evaluation never parses anything.

Invariants:

- Only attributes in ``model.ATTRIBUTES`` can be named, so no rule can read content.
- Every operator is checked against the attribute's kind and the operand's type at compile
  time; a value outside the attribute's vocabulary (``policies.vocabulary.VOCABULARY``) is refused.
- ``None`` semantics: when the attribute (or the referenced attribute) resolves to ``None``,
  the positive operators (``eq``, ``in``, ``contains``, ``subset_of``, ``intersects``,
  ``present``) are false and their negations (``ne``, ``not_in``, ``not_contains``,
  ``absent``) are true. ``present`` on a set also requires it to be non-empty, and on a string
  a visible character (``declared``: whitespace and format characters alone are absent).
- A compiled test is a pure function of the context: no state, no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.model import ATTRIBUTES, Attribute, Context
from policies.vocabulary import VOCABULARY

Test = Callable[[Context], bool]

OPERATORS: Mapping[str, tuple[str, ...]] = {
    # operator: attribute kinds it applies to
    "eq": ("str", "bool"),
    "ne": ("str", "bool"),
    "in": ("str",),
    "not_in": ("str",),
    "present": ("str", "set", "object"),
    "absent": ("str", "set", "object"),
    "contains": ("set",),
    "not_contains": ("set",),
    "subset_of": ("set",),
    "intersects": ("set",),
    "is_true": ("bool",),
    "is_false": ("bool",),
}
_UNARY = frozenset({"present", "absent", "is_true", "is_false"})


class ConditionError(ValueError):
    """A condition is malformed. ``field`` is the path inside the condition (``all[1].op``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Node:
    """One compiled condition: its closure, its children, and a readable form of it.

    A leaf also keeps its attribute path, operator, and constant operand (``None`` for unary
    operators and ``ref`` tests, whose ``ref`` holds the other path), so the engine can index
    rules by the values they require.
    """

    kind: str
    test: Test
    text: str
    children: tuple[Node, ...] = ()
    attr: str | None = None
    op: str | None = None
    operand: object = None
    ref: str | None = None


def trace(node: Node, ctx: Context) -> dict[str, Any]:
    """Evaluate ``node`` step by step for an explanation: every sub-test with its result."""
    out: dict[str, Any] = {"test": node.text, "result": node.test(ctx)}
    if node.children:
        out["children"] = [trace(child, ctx) for child in node.children]
    return out


def compile_condition(raw: object, where: str = "") -> Node:
    """Check ``raw`` (a parsed YAML/JSON condition) and compile it.

    Raises:
        ConditionError: an unknown attribute or operator, a wrong operand type, a value
            outside the attribute's vocabulary, or a malformed node; ``field`` locates it.
    """
    if not isinstance(raw, Mapping) or not raw:
        raise ConditionError(where, "a condition must be a non-empty mapping")
    keys = set(raw)
    for combinator in ("all", "any", "not"):
        if combinator in keys:
            if len(keys) != 1:
                extra = ", ".join(sorted(keys - {combinator}))
                raise ConditionError(where, f"'{combinator}' cannot be combined with: {extra}")
            return _compile_combinator(combinator, raw[combinator], where)
    return _compile_leaf(raw, where)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _compile_combinator(kind: str, body: object, where: str) -> Node:
    here = _join(where, kind)
    if kind == "not":
        child = compile_condition(body, here)
        inner = child.test
        return Node("not", lambda c: not inner(c), "not", (child,))
    if not isinstance(body, list) or not body:
        raise ConditionError(here, f"'{kind}' needs a non-empty list of conditions")
    children = tuple(compile_condition(item, f"{here}[{i}]") for i, item in enumerate(body))
    tests = [child.test for child in children]
    test = _all_of(tests) if kind == "all" else _any_of(tests)
    return Node(kind, test, kind, children)


def _all_of(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda c: a(c) and b(c)
    if len(tests) == 3:
        a, b, d = tests
        return lambda c: a(c) and b(c) and d(c)
    head, rest = _all_of(tests[:3]), _all_of(tests[3:])
    return lambda c: head(c) and rest(c)


def _any_of(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda c: a(c) or b(c)
    if len(tests) == 3:
        a, b, d = tests
        return lambda c: a(c) or b(c) or d(c)
    head, rest = _any_of(tests[:3]), _any_of(tests[3:])
    return lambda c: head(c) or rest(c)


def resolve_attribute(path: object, where: str) -> Attribute:
    """The whitelisted attribute named ``path``.

    Raises:
        ConditionError: ``path`` is not a string or not a context attribute.
    """
    if not isinstance(path, str):
        raise ConditionError(where, f"an attribute path must be a string, got {path!r}")
    attr = ATTRIBUTES.get(path)
    if attr is None:
        raise ConditionError(
            where, f"unknown attribute {path!r}; rules may read only context fields"
        )
    return attr


def _check_vocabulary(path: str, values: Iterable[str], where: str) -> None:
    vocabulary = VOCABULARY.get(path)
    if vocabulary is None:
        return
    for value in values:
        if value not in vocabulary:
            known = ", ".join(sorted(vocabulary))
            raise ConditionError(
                where, f"{value!r} is not a known value of {path} (known: {known})"
            )


def _compile_leaf(raw: Mapping[str, Any], where: str) -> Node:
    unknown = set(raw) - {"attr", "op", "value", "ref"}
    if unknown:
        raise ConditionError(where, f"unknown key(s) in a test: {', '.join(sorted(unknown))}")
    if "attr" not in raw:
        raise ConditionError(where, "a test needs 'attr' (or use all/any/not)")
    if "op" not in raw:
        raise ConditionError(_join(where, "op"), "a test needs 'op'")
    attr = resolve_attribute(raw["attr"], _join(where, "attr"))
    op = raw["op"]
    op_where = _join(where, "op")
    if not isinstance(op, str) or op not in OPERATORS:
        raise ConditionError(
            op_where, f"unknown operator {op!r} (known: {', '.join(sorted(OPERATORS))})"
        )
    if attr.kind not in OPERATORS[op]:
        raise ConditionError(op_where, f"operator {op!r} does not apply to {attr.kind} {attr.path}")
    has_value, has_ref = "value" in raw, "ref" in raw
    if op in _UNARY:
        if has_value or has_ref:
            raise ConditionError(where, f"operator {op!r} takes no value or ref")
        return Node("leaf", _unary(op, attr), f"{attr.path} {op}", attr=attr.path, op=op)
    if has_value == has_ref:
        raise ConditionError(where, f"operator {op!r} needs exactly one of 'value' or 'ref'")
    if has_ref:
        other = resolve_attribute(raw["ref"], _join(where, "ref"))
        _check_ref_kinds(op, attr, other, _join(where, "ref"))
        text = f"{attr.path} {op} @{other.path}"
        return Node("leaf", _with_ref(op, attr, other), text, attr=attr.path, op=op, ref=other.path)
    value = raw["value"]
    operand = _check_value(op, attr, value, _join(where, "value"))
    text = f"{attr.path} {op} {value!r}"
    return Node(
        "leaf", _with_value(op, attr, operand), text, attr=attr.path, op=op, operand=operand
    )


def _check_value(op: str, attr: Attribute, value: object, where: str) -> object:
    """Type-check a constant operand and return it in the form the closure uses."""
    if op in ("eq", "ne"):
        want: type = bool if attr.kind == "bool" else str
        if type(value) is not want:
            raise ConditionError(
                where, f"{op} on {attr.path} needs a {want.__name__}, got {value!r}"
            )
        if isinstance(value, str):
            _check_vocabulary(attr.path, [value], where)
        return value
    if op in ("contains", "not_contains"):
        if not isinstance(value, str):
            raise ConditionError(where, f"{op} on {attr.path} needs a string, got {value!r}")
        _check_vocabulary(attr.path, [value], where)
        return value
    # in, not_in, subset_of, intersects: a non-empty list of strings
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise ConditionError(where, f"{op} needs a non-empty list of strings, got {value!r}")
    _check_vocabulary(attr.path, value, where)
    return frozenset(value)


def _check_ref_kinds(op: str, attr: Attribute, other: Attribute, where: str) -> None:
    if op in ("eq", "ne"):
        ok = other.kind == attr.kind
        want = attr.kind
    elif op in ("contains", "not_contains"):
        ok, want = other.kind == "str", "str"
    else:
        ok, want = other.kind == "set", "set"
    if not ok:
        raise ConditionError(
            where, f"{op} on {attr.path} needs a {want} attribute, {other.path} is {other.kind}"
        )


_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
"""Unicode categories that declare nothing: separators, controls and format characters
(zero-width space U+200B, the bidi marks, the BOM, soft hyphen)."""


def declared(text: str | None) -> bool:
    """Whether a string says anything: not empty once whitespace (including non-breaking and
    other Unicode spaces) and format characters are set aside. Returns at the first visible
    character, so a real legal basis costs one character's look-up."""
    if not text:
        return False
    return any(not ch.isspace() and unicodedata.category(ch) not in _INVISIBLE for ch in text)


def _unary(op: str, attr: Attribute) -> Test:
    get = attr.get
    if attr.kind == "str":
        # A legal basis or purpose of spaces, NBSP or zero-width characters is not declared
        # (issue 14 item 4): "present" means something a reader can see.
        if op == "present":
            return lambda c: declared(get(c))
        if op == "absent":
            return lambda c: not declared(get(c))
    if op == "present":
        return lambda c: bool(get(c))
    if op == "absent":
        return lambda c: not get(c)
    if op == "is_true":
        return lambda c: get(c) is True
    return lambda c: get(c) is False


def _with_value(op: str, attr: Attribute, v: Any) -> Test:
    get = attr.get
    # eq/ne/in/not_in already follow the None semantics: None never equals or belongs.
    plain: dict[str, Test] = {
        "eq": lambda c: get(c) == v,
        "ne": lambda c: get(c) != v,
        "in": lambda c: get(c) in v,
        "not_in": lambda c: get(c) not in v,
    }
    if op in plain:
        return plain[op]
    if not attr.nullable:
        sets: dict[str, Test] = {
            "contains": lambda c: v in get(c),
            "not_contains": lambda c: v not in get(c),
            "subset_of": lambda c: bool(v.issuperset(get(c))),
            "intersects": lambda c: not v.isdisjoint(get(c)),
        }
        return sets[op]
    positive = _nullable_set_test(op, get, v)
    if op == "not_contains":
        return lambda c: not positive(c)
    return positive


def _nullable_set_test(op: str, get: Callable[[Context], Any], v: Any) -> Test:
    def contains(c: Context) -> bool:
        x = get(c)
        return x is not None and v in x

    def subset_of(c: Context) -> bool:
        x = get(c)
        return x is not None and bool(v.issuperset(x))

    def intersects(c: Context) -> bool:
        x = get(c)
        return x is not None and not v.isdisjoint(x)

    return {"contains": contains, "not_contains": contains, "subset_of": subset_of}.get(
        op, intersects
    )


def _with_ref(op: str, attr: Attribute, other: Attribute) -> Test:
    get, rget = attr.get, other.get

    def eq(c: Context) -> bool:
        x, y = get(c), rget(c)
        return x is not None and y is not None and bool(x == y)

    def member(c: Context) -> bool:
        x, y = get(c), rget(c)
        return x is not None and y is not None and x in y

    def contains(c: Context) -> bool:
        x, y = get(c), rget(c)
        return x is not None and y is not None and y in x

    def subset_of(c: Context) -> bool:
        x, y = get(c), rget(c)
        return x is not None and y is not None and frozenset(y).issuperset(x)

    def intersects(c: Context) -> bool:
        x, y = get(c), rget(c)
        return x is not None and y is not None and not frozenset(y).isdisjoint(x)

    positives: dict[str, Test] = {
        "eq": eq,
        "ne": eq,
        "in": member,
        "not_in": member,
        "contains": contains,
        "not_contains": contains,
        "subset_of": subset_of,
        "intersects": intersects,
    }
    positive = positives[op]
    if op in ("ne", "not_in", "not_contains"):
        return lambda c: not positive(c)
    return positive
