"""Pure functions behind ``palermo policy check|test|explain``.

The broker's CLI parses arguments, calls these and prints what they return; nothing here
prints, exits or reads the environment.

Invariants:

- ``check`` never raises for a bad pack: every problem comes back as one line naming the file,
  the rule id or test name, and the field.
- ``run_tests`` runs every pack's embedded test cases against the whole policy set given
  (rules of one pack routinely decide together with the baseline's), and a test passes only
  when the effect, the ordered reason rule ids and (when the test lists them) the obligations
  all match.
- ``explain`` evaluates with the same compiled rules as ``evaluate`` and reports the same
  decision, plus a step-by-step trace of every rule whose ``when`` condition held.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from policies.conditions import trace
from policies.contexts import ContextError, context_from_dict, context_to_dict
from policies.engine import PolicySet, default_policy, evaluate, load_policy
from policies.model import Decision
from policies.packs import PackError
from policies.reference import ReferenceData, load_reference_data

__all__ = [
    "ContextError",
    "TestResult",
    "check",
    "context_from_dict",
    "explain",
    "format_results",
    "run_tests",
]

_GROUP_ATTRIBUTES = frozenset({"sender.groups", "recipient.groups"})


@dataclass(frozen=True, slots=True)
class TestResult:
    """The outcome of one embedded pack test case."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    pack: str
    name: str
    exercises: str
    passed: bool
    expected_effect: str
    actual_effect: str
    expected_reasons: tuple[str, ...]
    actual_reasons: tuple[str, ...]
    detail: str
    decision: Decision


def _leaves(condition: object) -> Iterator[Mapping[str, Any]]:
    if not isinstance(condition, Mapping):
        return
    if "attr" in condition:
        yield condition
    for key in ("all", "any"):
        for child in condition.get(key, ()):
            yield from _leaves(child)
    if "not" in condition:
        yield from _leaves(condition["not"])


def _unknown_groups(policy: PolicySet, reference: ReferenceData) -> list[str]:
    problems = []
    for pack in policy.packs:
        for raw in pack.content["rules"]:
            for key in ("when", "unless"):
                for leaf in _leaves(raw.get(key)):
                    if leaf["attr"] not in _GROUP_ATTRIBUTES or "value" not in leaf:
                        continue
                    value = leaf["value"]
                    for name in [value] if isinstance(value, str) else value:
                        if name not in reference.groups:
                            problems.append(
                                f"{pack.source}: rule {raw['id']}: {key}: group {name!r} is "
                                f"not defined in the reference data ({reference.source})"
                            )
    return problems


def check(
    paths: Sequence[str | Path] | None = None, reference: ReferenceData | None = None
) -> list[str]:
    """Every problem in the packs at ``paths`` (the shipped packs when None), one per line;
    an empty list means the packs load. Also reports groups that rules name but the reference
    data does not define (such a test could never hold).

    Raises:
        ReferenceDataError: only when loading the shipped reference data fails (a packaging
            bug); pass ``reference`` to check against a deployment's own data.
    """
    ref = reference or load_reference_data()
    missing = [str(p) for p in paths or () if not Path(p).exists()]
    if missing:
        return [f"{p}: no such file or directory" for p in missing]
    try:
        policy = load_policy(paths, ref)
    except PackError as exc:
        return [str(problem) for problem in exc.problems]
    return _unknown_groups(policy, ref)


def run_tests(policy: PolicySet | None = None) -> list[TestResult]:
    """Run every embedded test case of every pack in ``policy`` (the shipped packs when None)
    against the whole set, in pack and file order."""
    policy = policy if policy is not None else default_policy()
    results = []
    for pack in policy.packs:
        for test in pack.tests:
            decision = evaluate(test.context, policy)
            reasons = tuple(r.rule_id for r in decision.reasons)
            problems = []
            if decision.effect != test.effect:
                problems.append(f"effect {decision.effect}, expected {test.effect}")
            if reasons != test.reasons:
                problems.append(f"reasons {list(reasons)}, expected {list(test.reasons)}")
            if test.obligations is not None:
                got = tuple((o.kind, o.value) for o in decision.obligations)
                if got != test.obligations:
                    problems.append(f"obligations {list(got)}, expected {list(test.obligations)}")
            results.append(
                TestResult(
                    pack=pack.name,
                    name=test.name,
                    exercises=test.exercises,
                    passed=not problems,
                    expected_effect=test.effect,
                    actual_effect=decision.effect,
                    expected_reasons=test.reasons,
                    actual_reasons=reasons,
                    detail="; ".join(problems),
                    decision=decision,
                )
            )
    return results


def format_results(results: Sequence[TestResult]) -> str:
    """A plain-text table of ``results`` with a summary line, ready to print."""
    rows = [("result", "pack", "test", "effect", "reasons")]
    for r in results:
        rows.append(
            (
                "ok" if r.passed else "FAIL",
                r.pack,
                r.name,
                r.actual_effect,
                ", ".join(r.actual_reasons),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:4])]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    for r in results:
        if not r.passed:
            lines.append(f"FAIL {r.pack}: {r.name}: {r.detail}")
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results)} tests, {len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


def explain(
    context: Mapping[str, Any],
    policy: PolicySet | None = None,
    reference: ReferenceData | None = None,
) -> dict[str, Any]:
    """Evaluate a JSON-like context and say which rules matched and why.

    Returns ``{"context", "decision", "rules_evaluated", "rules"}`` where ``rules`` lists every
    rule whose ``when`` condition held, with ``matched`` (false when its ``unless`` excused
    it) and a trace of each condition.

    Raises:
        ContextError: the context mapping is malformed; ``field`` names the bad field.
    """
    policy = policy if policy is not None else default_policy()
    ctx = context_from_dict(context, reference)
    decision = evaluate(ctx, policy)
    rules = []
    for rule in policy.rules:
        if not rule.when.test(ctx):
            continue
        rules.append(
            {
                "id": rule.id,
                "pack": rule.pack,
                "effect": rule.effect,
                "title": rule.title,
                "citation": rule.citation,
                "matched": rule.applies(ctx),
                "when": trace(rule.when, ctx),
                "unless": None if rule.unless is None else trace(rule.unless, ctx),
            }
        )
    return {
        "context": context_to_dict(ctx),
        "decision": decision.to_dict(),
        "rules_evaluated": len(policy.rules),
        "rules": rules,
    }
