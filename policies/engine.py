"""The policy decision point: ``evaluate(context, policy) -> Decision``.

Semantics (the invariants every caller may rely on):

- A rule *matches* when its ``when`` condition holds and its ``unless`` condition (if any)
  does not.
- Deny overrides: if any deny rule matches, the decision is deny, whatever permits match.
- No matching permit is a deny, with the reason ``policy.default-deny`` ("no rule permits
  this exchange"). An empty policy set therefore denies everything (fail closed).
- Deterministic: rules are evaluated in a fixed order (packs by name, rules in file order);
  reasons, obligations and ``matched`` follow that order. The same context and policy set
  always give an equal decision.
- ``reasons`` are the matching deny rules of a deny, or the matching permit rules of a
  permit; ``obligations`` come only from the rules that decided (the deny rules of a deny,
  the permit rules of a permit).
- Every decision records the policy set's content hash (``sha256:<hex>`` over the canonical
  JSON of the packs, so comments and YAML layout do not change it).
- Evaluation calls precompiled closures only: no parsing, no schema validation, no I/O.
- Indexing is exact: a rule is skipped for a context only when one of the top-level
  conjuncts of its ``when`` condition is a test on ``message_type``, ``case_type``,
  ``case_event`` or ``forwarding`` that the context's value fails, so skipping it cannot
  change the outcome. ``matched`` equals the rules whose ``applies`` holds, in order.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from policies.conditions import Node, Test
from policies.model import ATTRIBUTES, Context, Decision, Obligation, Reason
from policies.packs import ObligationSpec, Pack, PackError, Problem, Rule, load_pack, pack_files
from policies.reference import ReferenceData

DEFAULT_DENY = Reason(
    rule_id="policy.default-deny",
    text="no rule permits this exchange",
    citation="Palermo policy: deny unless a rule permits (fail closed)",
)


_KEYED = ("message_type", "case_type", "case_event")
_FORWARDING_REQUIRED = frozenset({"eq", "in", "present", "contains", "intersects", "subset_of"})
_CACHE_LIMIT = 4096

# (message_type, case_type, case_event, forwarding present)
_Key = tuple[str, str | None, str | None, bool]
# (applies, rule id, is deny, reason, obligations); ``applies`` folds ``when`` and ``unless``
_Compiled = tuple[Test, str, bool, Reason, tuple[ObligationSpec, ...]]


def _applies(when: Test, unless: Test | None) -> Test:
    if unless is None:
        return when
    return lambda c: when(c) and not unless(c)


def _conjuncts(node: Node) -> Iterator[Node]:
    if node.kind == "all":
        for child in node.children:
            yield from _conjuncts(child)
    else:
        yield node


@dataclass(frozen=True, slots=True)
class _Scope:
    """The values of the keyed attributes a rule's ``when`` can hold for."""

    allowed: tuple[frozenset[str] | None, ...]
    excluded: tuple[frozenset[str], ...]
    forwarding: bool | None

    @classmethod
    def of(cls, when: Node) -> _Scope:
        allowed: list[frozenset[str] | None] = [None] * len(_KEYED)
        excluded: list[frozenset[str]] = [frozenset()] * len(_KEYED)
        forwarding: bool | None = None
        for leaf in _conjuncts(when):
            if leaf.kind != "leaf" or leaf.attr is None or leaf.ref is not None:
                continue
            if leaf.attr in _KEYED:
                i = _KEYED.index(leaf.attr)
                values = leaf.operand if isinstance(leaf.operand, frozenset) else None
                if isinstance(leaf.operand, str):
                    values = frozenset({leaf.operand})
                if values is None:
                    continue
                if leaf.op in ("eq", "in"):
                    current = allowed[i]
                    allowed[i] = values if current is None else current & values
                elif leaf.op in ("ne", "not_in"):
                    excluded[i] = excluded[i] | values
            elif leaf.attr == "forwarding" and leaf.op == "absent":
                forwarding = False
            elif leaf.attr.split(".")[0] == "forwarding" and leaf.op in _FORWARDING_REQUIRED:
                forwarding = True
        return cls(tuple(allowed), tuple(excluded), forwarding)

    def admits(self, key: _Key) -> bool:
        for i in range(len(_KEYED)):
            value = key[i]
            allowed = self.allowed[i]
            if allowed is not None and value not in allowed:
                return False
            if value in self.excluded[i]:
                return False
        return self.forwarding is None or self.forwarding == key[3]


class PolicySet:
    """A loaded, checked set of packs, ready to evaluate.

    Raises (on construction):
        PackError: two packs share a name, or two rules share an id across packs.
    """

    __slots__ = ("_candidates", "_compiled", "_scopes", "hash", "packs", "rules")

    def __init__(self, packs: Iterable[Pack] = ()) -> None:
        ordered = sorted(packs, key=lambda p: p.name)
        problems: list[Problem] = []
        names: dict[str, Pack] = {}
        owners: dict[str, Pack] = {}
        for pack in ordered:
            if pack.name in names:
                problems.append(
                    Problem(
                        pack.source, "pack", f"duplicate pack name (also {names[pack.name].source})"
                    )
                )
            names[pack.name] = pack
            for rule in pack.rules:
                if rule.id in owners:
                    problems.append(
                        Problem(
                            pack.source,
                            "id",
                            f"duplicate rule id (also in {owners[rule.id].source})",
                            rule.id,
                        )
                    )
                owners[rule.id] = pack
        if problems:
            raise PackError(problems)
        self.packs: tuple[Pack, ...] = tuple(ordered)
        self.rules: tuple[Rule, ...] = tuple(r for p in ordered for r in p.rules)
        digest = hashlib.sha256()
        digest.update(json.dumps([p.name for p in ordered]).encode("utf-8"))
        for pack in ordered:
            digest.update(b"\n")
            digest.update(pack.canonical)
        self.hash: str = "sha256:" + digest.hexdigest()
        self._compiled: tuple[_Compiled, ...] = tuple(
            (
                _applies(rule.when.test, None if rule.unless is None else rule.unless.test),
                rule.id,
                rule.effect == "deny",
                rule.reason,
                rule.obligations,
            )
            for rule in self.rules
        )
        self._scopes = tuple(_Scope.of(rule.when) for rule in self.rules)
        self._candidates: dict[_Key, tuple[_Compiled, ...]] = {}

    def _candidates_for(self, key: _Key) -> tuple[_Compiled, ...]:
        found = tuple(
            compiled
            for compiled, scope in zip(self._compiled, self._scopes, strict=True)
            if scope.admits(key)
        )
        if len(self._candidates) < _CACHE_LIMIT:
            self._candidates[key] = found
        return found

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id.

        Raises:
            KeyError: no such rule in this set.
        """
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def without(self, *names: str) -> PolicySet:
        """This set with the named packs switched off."""
        return PolicySet(p for p in self.packs if p.name not in names)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"PolicySet(packs={[p.name for p in self.packs]}, hash={self.hash!r})"


def load_policy(
    paths: Sequence[str | Path] | None = None, reference: ReferenceData | None = None
) -> PolicySet:
    """Load the packs named by ``paths`` (files or directories of ``*.yaml``), or the shipped
    packs when ``paths`` is None. ``reference`` is used to build the packs' test contexts.

    Raises:
        PackError: any file is unreadable or invalid; problems of every file are reported.
    """
    packs: list[Pack] = []
    problems: list[Problem] = []
    for path in pack_files(paths):
        try:
            packs.append(load_pack(path, reference))
        except PackError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PackError(problems)
    return PolicySet(packs)


@functools.cache
def default_policy() -> PolicySet:
    """The shipped packs, loaded and checked once per process.

    Raises:
        PackError: a shipped pack is invalid (a packaging bug).
    """
    return load_policy()


REFERENCE_ATTRIBUTES = frozenset({"accepted_languages", "notified_channels", "treaties"})
"""Context fields filled from the two States' reference data (``policies.reference``): public
configuration, which a refusal may name so the sender knows what would be accepted."""


def _nodes(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _nodes(child)


def reference_compared(policy: PolicySet, rule_id: str, context: Context) -> dict[str, list[str]]:
    """The reference data ``rule_id``'s condition compared ``context`` with, by attribute
    (``{"accepted_languages": ["en", "fr"]}`` for P1.language): what the requested State
    accepts, for the refusal to name. Empty for a rule that reads none, or an unknown id."""
    try:
        rule = policy.rule(rule_id)
    except KeyError:
        return {}
    out: dict[str, list[str]] = {}
    for node in _nodes(rule.when):
        if node.ref in REFERENCE_ATTRIBUTES:
            out[node.ref] = sorted(ATTRIBUTES[node.ref].get(context) or ())
    return out


def evaluate(context: Context, policy: PolicySet | None = None) -> Decision:
    """Decide ``context`` against ``policy`` (the shipped packs when None).

    Raises:
        PackError: only when ``policy`` is None and a shipped pack is invalid (a packaging
            bug, surfaced on the first call; the broker loads ``default_policy()`` at start).
    """
    policy = policy if policy is not None else default_policy()
    key = (
        context.message_type,
        context.case_type,
        context.case_event,
        context.forwarding is not None,
    )
    candidates = policy._candidates.get(key)
    if candidates is None:
        candidates = policy._candidates_for(key)
    denies: list[_Compiled] = []
    permits: list[_Compiled] = []
    matched: list[_Compiled] = []
    for compiled in candidates:
        if compiled[0](context):
            matched.append(compiled)
            (denies if compiled[2] else permits).append(compiled)
    matched_ids = tuple(compiled[1] for compiled in matched)
    deciding = denies or permits
    if not deciding:
        return Decision("deny", (DEFAULT_DENY,), (), policy.hash, matched_ids)
    produced: list[Obligation] = []
    for compiled in deciding:
        for spec in compiled[4]:
            produced.extend(spec.produce(context))
    return Decision(
        "deny" if denies else "permit",
        tuple(compiled[3] for compiled in deciding),
        tuple(produced),
        policy.hash,
        matched_ids,
    )
