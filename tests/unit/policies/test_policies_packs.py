"""The shipped packs: every embedded test case passes, and together they cover every rule."""

from __future__ import annotations

from collections import defaultdict

import pytest

from policies.cli import TestResult, run_tests
from policies.engine import default_policy

RESULTS = run_tests()


def test_the_shipped_packs_carry_test_cases() -> None:
    assert len(RESULTS) > 100
    assert {r.pack for r in RESULTS} == {p.name for p in default_policy().packs}


@pytest.mark.parametrize("result", RESULTS, ids=[f"{r.pack}:{r.name}" for r in RESULTS])
def test_embedded_case(result: TestResult) -> None:
    assert result.passed, result.detail


def test_every_shipped_rule_is_reached_by_a_test_case() -> None:
    """Coverage: each rule must match (``when`` holds, ``unless`` does not) in some test."""
    policy = default_policy()
    reached: dict[str, int] = defaultdict(int)
    for result in RESULTS:
        for rule_id in result.decision.matched:
            reached[rule_id] += 1
    print(f"\nrule coverage: {len(reached)}/{len(policy.rules)} rules reached")
    for rule in policy.rules:
        print(f"  {rule.id:32} {reached[rule.id]:3} test case(s)")
    unreached = [rule.id for rule in policy.rules if reached[rule.id] == 0]
    assert not unreached, f"rules no pack test case reaches: {unreached}"


def test_every_rule_group_has_a_permitting_and_a_denying_case() -> None:
    effects: dict[tuple[str, str], set[str]] = defaultdict(set)
    for result in RESULTS:
        effects[(result.pack, result.exercises)].add(result.expected_effect)
    groups = {(rule.pack, rule.group) for rule in default_policy().rules}
    incomplete = sorted(g for g in groups if effects[g] != {"permit", "deny"})
    assert not incomplete, f"groups without both a permit and a deny test case: {incomplete}"


def test_every_deny_rule_is_the_reason_of_some_denying_case() -> None:
    policy = default_policy()
    reasons = {rid for r in RESULTS if r.actual_effect == "deny" for rid in r.actual_reasons}
    missing = [rule.id for rule in policy.rules if rule.effect == "deny" and rule.id not in reasons]
    assert not missing


def test_every_rule_cites_its_law() -> None:
    for rule in default_policy().rules:
        assert rule.citation.strip(), rule.id
        assert rule.title[0].isupper(), rule.id
        assert rule.title.endswith("."), rule.id
