"""policies/RULES.md says, for every rule P1-P22, where it lives; keep it true."""

from __future__ import annotations

import re
from pathlib import Path

from policies.engine import default_policy

RULES_MD = Path(__file__).resolve().parents[3] / "policies" / "RULES.md"


def rows() -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for line in RULES_MD.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"P\d+|baseline|MLA|FIU|LED10", cells[0]):
            table[cells[0]] = cells[1:]
    return table


def test_every_policy_rule_has_a_row() -> None:
    assert {f"P{i}" for i in range(1, 23)} <= set(rows())


def test_listed_rule_ids_exist_in_the_named_pack_and_every_rule_is_listed() -> None:
    policy = default_policy()
    listed: list[str] = []
    for group, (where, pack_file, ids, _) in rows().items():
        rule_ids = [i.strip() for i in ids.split(",") if i.strip()]
        if "engine" not in where:
            assert not rule_ids, group
            assert not pack_file, group
            continue
        assert rule_ids, group
        for rule_id in rule_ids:
            rule = policy.rule(rule_id)
            assert f"{rule.pack}.yaml" == pack_file, rule_id
            assert rule.group == group, rule_id
        listed.extend(rule_ids)
    assert sorted(listed) == sorted(r.id for r in policy.rules)
    assert len(listed) == len(set(listed))
