"""Loading and checking rule packs.

A pack is a YAML file: ``pack`` (its name, equal to the file's stem), ``title``, optional
``description``, ``test_defaults``, ``rules`` and ``tests`` (see ``packs/schema.json``, and
"Writing a pack" in ``policies/RULES.md``). Loading runs two checks, in order:

1. the JSON Schema (structure: required keys, operator names, value shapes);
2. meaning: attributes exist in the context, operators fit their attribute, values have the
   right type and belong to the attribute's vocabulary, obligation references exist, rule ids
   are unique, every test's ``exercises`` names a rule group of the pack, and every test
   context is a valid context.

Invariants:

- A ``Pack`` that exists passed both checks; its conditions are compiled closures.
- Every problem found is reported as a ``Problem`` naming the file, the rule id (or test
  name) and the field; ``PackError`` carries all of them, not just the first.
- jsonschema runs only here, at load time, never while evaluating.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jsonschema
import yaml

from policies.conditions import ConditionError, Node, compile_condition, resolve_attribute
from policies.contexts import ContextError, context_from_dict
from policies.model import Attribute, Context, Effect, Obligation, ObligationKind, Reason
from policies.reference import ReferenceData

PACKS_DIR = Path(__file__).parent / "packs"
SCHEMA_PATH = PACKS_DIR / "schema.json"


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a pack: where it is and what is wrong."""

    file: str
    field: str
    message: str
    rule_id: str | None = None
    test: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.rule_id is not None:
            where.append(f"rule {self.rule_id}")
        if self.test is not None:
            where.append(f"test {self.test!r}")
        if self.field:
            where.append(self.field)
        return f"{': '.join(where)}: {self.message}"


class PackError(ValueError):
    """A pack (or a set of packs) is invalid. ``problems`` lists every mistake found;
    ``file``, ``rule_id`` and ``field`` are the first one's."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("PackError needs at least one problem")
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = tuple(problems)
        self.file = problems[0].file
        self.rule_id = problems[0].rule_id
        self.field = problems[0].field


@dataclass(frozen=True, slots=True)
class ObligationSpec:
    """An obligation a rule attaches: a constant ``value``, or the value(s) of ``ref``."""

    kind: ObligationKind
    rule_id: str
    value: str | None = None
    ref: Attribute | None = None

    def produce(self, ctx: Context) -> tuple[Obligation, ...]:
        if self.ref is None:
            assert self.value is not None
            return (Obligation(self.kind, self.value, self.rule_id),)
        found = self.ref.get(ctx)
        if not found:
            return ()
        values = (found,) if isinstance(found, str) else found
        if isinstance(found, frozenset):
            values = sorted(found)
        return tuple(Obligation(self.kind, v, self.rule_id) for v in values)


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule. It applies when ``when`` holds and ``unless`` (if any) does not."""

    id: str
    pack: str
    title: str
    citation: str
    effect: Effect
    when: Node
    unless: Node | None
    obligations: tuple[ObligationSpec, ...]

    @property
    def group(self) -> str:
        """The rule group: the id up to its first dot (``P7.ground`` -> ``P7``)."""
        return self.id.split(".", 1)[0]

    @property
    def reason(self) -> Reason:
        return Reason(self.id, self.title, self.citation)

    def applies(self, ctx: Context) -> bool:
        return self.when.test(ctx) and not (self.unless is not None and self.unless.test(ctx))


@dataclass(frozen=True, slots=True)
class PackTest:
    """A test case a pack carries: a context and the decision it must produce."""

    pack: str
    name: str
    exercises: str
    context: Context
    context_data: Mapping[str, Any]
    effect: Effect
    reasons: tuple[str, ...]
    obligations: tuple[tuple[str, str], ...] | None


@dataclass(frozen=True, slots=True)
class Pack:
    """A checked, compiled pack. ``canonical`` is its content as canonical JSON (sorted keys,
    no whitespace): what the policy set's hash covers, so comments and layout do not count."""

    name: str
    title: str
    source: str
    rules: tuple[Rule, ...]
    tests: tuple[PackTest, ...]
    content: Mapping[str, Any]
    canonical: bytes


def _canonical(content: Mapping[str, Any]) -> bytes:
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def _path_text(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _locate(
    data: Mapping[str, Any], path: Sequence[str | int]
) -> tuple[str | None, str | None, str]:
    """(rule id, test name, field) for a path into a pack document."""
    if len(path) >= 2 and path[0] in ("rules", "tests") and isinstance(path[1], int):
        items = data.get(str(path[0]))
        item = items[path[1]] if isinstance(items, list) and path[1] < len(items) else None
        key = "id" if path[0] == "rules" else "name"
        label = item.get(key) if isinstance(item, dict) else None
        if not isinstance(label, str):
            label = f"{path[0]}[{path[1]}]"
        field = _path_text(path[2:])
        return (label, None, field) if path[0] == "rules" else (None, label, field)
    return None, None, _path_text(path)


def _schema_problems(source: str, data: Mapping[str, Any]) -> list[Problem]:
    problems = []
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        path: list[str | int] = list(error.absolute_path)
        message = error.message
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [k for k in cast(list[str], error.validator_value) if k not in error.instance]
            if missing:
                path.append(missing[0])
                message = "is required"
        rule_id, test, field = _locate(data, path)
        problems.append(Problem(source, field, message, rule_id, test))
    return problems


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _compile_rule(
    source: str, pack: str, raw: Mapping[str, Any], problems: list[Problem]
) -> Rule | None:
    rule_id = raw["id"]
    before = len(problems)
    nodes: dict[str, Node | None] = {"when": None, "unless": None}
    for key in nodes:
        if key in raw:
            try:
                nodes[key] = compile_condition(raw[key], key)
            except ConditionError as exc:
                problems.append(Problem(source, exc.field, exc.message, rule_id))
    specs = []
    for i, ob in enumerate(raw.get("obligations", [])):
        where = f"obligations[{i}]"
        if ("value" in ob) == ("ref" in ob):
            problems.append(Problem(source, where, "give exactly one of 'value' or 'ref'", rule_id))
            continue
        ref = None
        if "ref" in ob:
            try:
                ref = resolve_attribute(ob["ref"], f"{where}.ref")
            except ConditionError as exc:
                problems.append(Problem(source, exc.field, exc.message, rule_id))
                continue
            if ref.kind not in ("str", "set"):
                problems.append(
                    Problem(source, f"{where}.ref", f"{ref.path} is {ref.kind}, not text", rule_id)
                )
                continue
        specs.append(ObligationSpec(ob["kind"], rule_id, ob.get("value"), ref))
    if len(problems) > before:
        return None
    when = nodes["when"]
    assert when is not None
    return Rule(
        id=rule_id,
        pack=pack,
        title=raw["title"],
        citation=raw["citation"],
        effect=raw["effect"],
        when=when,
        unless=nodes["unless"],
        obligations=tuple(specs),
    )


def _compile_test(
    source: str,
    pack: str,
    raw: Mapping[str, Any],
    defaults: Mapping[str, Any],
    groups: set[str],
    reference: ReferenceData | None,
    problems: list[Problem],
) -> PackTest | None:
    name = raw["name"]
    if raw["exercises"] not in groups:
        known = ", ".join(sorted(groups)) or "none"
        problems.append(
            Problem(
                source,
                "exercises",
                f"{raw['exercises']!r} is not a rule group here ({known})",
                test=name,
            )
        )
        return None
    data = _merge(defaults, raw["context"])
    try:
        context = context_from_dict(data, reference)
    except ContextError as exc:
        problems.append(Problem(source, f"context.{exc.field}", exc.message, test=name))
        return None
    expect = raw["expect"]
    obligations = expect.get("obligations")
    return PackTest(
        pack=pack,
        name=name,
        exercises=raw["exercises"],
        context=context,
        context_data=data,
        effect=expect["effect"],
        reasons=tuple(expect["reasons"]),
        obligations=None
        if obligations is None
        else tuple((o["kind"], o["value"]) for o in obligations),
    )


def pack_from_mapping(
    data: object,
    source: str = "<memory>",
    *,
    expected_name: str | None = None,
    reference: ReferenceData | None = None,
) -> Pack:
    """Check and compile a parsed pack document.

    Raises:
        PackError: the document breaks the schema or a semantic check; every problem names
            ``source``, the rule id or test name, and the field.
    """
    if not isinstance(data, dict):
        raise PackError([Problem(source, "", "a pack must be a mapping at the top level")])
    problems = _schema_problems(source, data)
    if problems:
        raise PackError(problems)
    name = data["pack"]
    if expected_name is not None and name != expected_name:
        problems.append(Problem(source, "pack", f"must equal the file name {expected_name!r}"))
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(data["rules"]):
        if raw["id"] in seen:
            problems.append(
                Problem(
                    source, "id", f"duplicate rule id (also rules[{seen[raw['id']]}])", raw["id"]
                )
            )
            continue
        seen[raw["id"]] = i
        rule = _compile_rule(source, name, raw, problems)
        if rule is not None:
            rules.append(rule)
    groups = {r["id"].split(".", 1)[0] for r in data["rules"]}
    tests: list[PackTest] = []
    names: set[str] = set()
    for raw in data["tests"]:
        if raw["name"] in names:
            problems.append(Problem(source, "name", "duplicate test name", test=raw["name"]))
            continue
        names.add(raw["name"])
        test = _compile_test(
            source, name, raw, data.get("test_defaults", {}), groups, reference, problems
        )
        if test is not None:
            tests.append(test)
    if problems:
        raise PackError(problems)
    return Pack(name, data["title"], source, tuple(rules), tuple(tests), data, _canonical(data))


def load_pack(path: str | Path, reference: ReferenceData | None = None) -> Pack:
    """Read, check and compile one pack file.

    Raises:
        PackError: the file cannot be read, is not YAML, or is not a valid pack.
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PackError([Problem(source, "", f"cannot read: {exc.strerror}")]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PackError([Problem(source, "", f"not valid YAML: {exc}")]) from exc
    return pack_from_mapping(data, source, expected_name=path.stem, reference=reference)


def pack_files(paths: Sequence[str | Path] | None = None) -> list[Path]:
    """The pack files named by ``paths`` (files, or directories whose ``*.yaml`` are taken in
    name order); the shipped packs when ``paths`` is None."""
    out: list[Path] = []
    for entry in [PACKS_DIR] if paths is None else [Path(p) for p in paths]:
        out.extend(sorted(entry.glob("*.yaml")) if entry.is_dir() else [entry])
    return out
