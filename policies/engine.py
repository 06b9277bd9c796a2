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
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from policies.model import Context, Decision, Obligation, Reason
from policies.packs import Pack, PackError, Problem, Rule, load_pack, pack_files
from policies.reference import ReferenceData

DEFAULT_DENY = Reason(
    rule_id="policy.default-deny",
    text="no rule permits this exchange",
    citation="Palermo policy: deny unless a rule permits (fail closed)",
)


class PolicySet:
    """A loaded, checked set of packs, ready to evaluate.

    Raises (on construction):
        PackError: two packs share a name, or two rules share an id across packs.
    """

    __slots__ = ("_compiled", "hash", "packs", "rules")

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
            digest.update(pack.canonical())
        self.hash: str = "sha256:" + digest.hexdigest()
        self._compiled = tuple(
            (
                rule.id,
                rule.effect == "deny",
                rule.when.test,
                None if rule.unless is None else rule.unless.test,
                rule.reason,
                rule.obligations,
            )
            for rule in self.rules
        )

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


def evaluate(context: Context, policy: PolicySet | None = None) -> Decision:
    """Decide ``context`` against ``policy`` (the shipped packs when None)."""
    compiled = policy if policy is not None else default_policy()
    denies: list[tuple[Reason, tuple[object, ...]]] = []
    permits: list[tuple[Reason, tuple[object, ...]]] = []
    matched: list[str] = []
    for rule_id, deny, when, unless, reason, obligations in compiled._compiled:
        if when(context) and (unless is None or not unless(context)):
            matched.append(rule_id)
            (denies if deny else permits).append((reason, obligations))
    deciding = denies or permits
    if not deciding:
        return Decision("deny", (DEFAULT_DENY,), (), compiled.hash, tuple(matched))
    produced: list[Obligation] = []
    for _, specs in deciding:
        for spec in specs:
            produced.extend(spec.produce(context))  # type: ignore[attr-defined]
    return Decision(
        "deny" if denies else "permit",
        tuple(reason for reason, _ in deciding),
        tuple(produced),
        compiled.hash,
        tuple(matched),
    )
