"""Engine semantics: deny overrides, default deny, ordering, obligations, hashing, operators."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.conditions import compile_condition
from policies.contexts import context_from_dict
from policies.engine import DEFAULT_DENY, PolicySet, default_policy, evaluate, load_policy
from policies.model import Context, Forwarding
from policies.packs import PACKS_DIR, Pack, pack_from_mapping

BASE: dict[str, Any] = {
    "sender": {"id": "it.police", "kind": "police"},
    "recipient": {"id": "nl.police", "kind": "police"},
    "message_type": "intel.message",
    "legal_basis": "eu-2023-977",
    "purpose": "criminal_investigation",
    "handling_code": "H0",
    "evaluation": "B2",
    "statement_kind": "fact",
}


def ctx(**changes: Any) -> Context:
    return context_from_dict({**BASE, **changes})


def rule(rule_id: str, effect: str, when: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "title": f"Generated rule {rule_id}.",
        "citation": "Test Act",
        "effect": effect,
        "when": when,
        **extra,
    }


def pack(name: str, *rules: dict[str, Any]) -> Pack:
    return pack_from_mapping({"pack": name, "title": name, "rules": list(rules), "tests": []})


ALWAYS = {"attr": "sender.active", "op": "is_true"}
URGENT = {"attr": "urgent", "op": "is_true"}


def test_empty_policy_set_denies() -> None:
    decision = evaluate(ctx(), PolicySet())
    assert decision.effect == "deny"
    assert not decision.permitted
    assert decision.reasons == (DEFAULT_DENY,)
    assert decision.reasons[0].text == "no rule permits this exchange"
    assert decision.matched == ()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", decision.pack_hash)


def test_no_applicable_permit_is_a_deny() -> None:
    policy = PolicySet([pack("p", rule("A.permit", "permit", URGENT))])
    assert evaluate(ctx(urgent=False), policy).reasons == (DEFAULT_DENY,)
    assert evaluate(ctx(urgent=True), policy).permitted


def test_deny_overrides_permit_whatever_the_order() -> None:
    permit = rule("A.permit", "permit", ALWAYS)
    deny = rule("B.deny", "deny", URGENT)
    for packs in (
        [pack("a", permit, deny)],
        [pack("a", deny, permit)],
        [pack("b", deny), pack("a", permit)],
    ):
        policy = PolicySet(packs)
        assert evaluate(ctx(urgent=False), policy).permitted
        decision = evaluate(ctx(urgent=True), policy)
        assert decision.effect == "deny"
        assert [r.rule_id for r in decision.reasons] == ["B.deny"]
        assert set(decision.matched) == {"A.permit", "B.deny"}


def test_unless_excuses_a_rule() -> None:
    policy = PolicySet(
        [
            pack(
                "a",
                rule("A.permit", "permit", ALWAYS),
                rule("B.deny", "deny", ALWAYS, unless=URGENT),
            )
        ]
    )
    assert not evaluate(ctx(urgent=False), policy).permitted
    decision = evaluate(ctx(urgent=True), policy)
    assert decision.permitted
    assert decision.matched == ("A.permit",)


def test_reasons_follow_pack_name_then_file_order() -> None:
    policy = PolicySet(
        [
            pack("zeta", rule("Z.1", "deny", ALWAYS)),
            pack("alpha", rule("A.2", "deny", ALWAYS), rule("A.1", "deny", ALWAYS)),
        ]
    )
    decision = evaluate(ctx(), policy)
    assert [r.rule_id for r in decision.reasons] == ["A.2", "A.1", "Z.1"]
    assert [p.name for p in policy.packs] == ["alpha", "zeta"]


def test_obligations_come_only_from_the_deciding_rules() -> None:
    policy = PolicySet(
        [
            pack(
                "a",
                rule(
                    "A.permit",
                    "permit",
                    ALWAYS,
                    obligations=[{"kind": "retention", "value": "P1Y"}],
                ),
                rule(
                    "B.deny",
                    "deny",
                    URGENT,
                    obligations=[{"kind": "require_consent", "ref": "recipient.id"}],
                ),
            )
        ]
    )
    permitted = evaluate(ctx(urgent=False), policy)
    assert [(o.kind, o.value, o.rule_id) for o in permitted.obligations] == [
        ("retention", "P1Y", "A.permit")
    ]
    denied = evaluate(ctx(urgent=True), policy)
    assert [(o.kind, o.value, o.rule_id) for o in denied.obligations] == [
        ("require_consent", "nl.police", "B.deny")
    ]


def test_obligation_ref_to_a_set_gives_one_obligation_per_element_in_order() -> None:
    policy = PolicySet(
        [
            pack(
                "a",
                rule(
                    "A.p",
                    "permit",
                    ALWAYS,
                    obligations=[{"kind": "restriction", "ref": "case_conditions"}],
                ),
            )
        ]
    )
    decision = evaluate(ctx(case_conditions=["second", "first"]), policy)
    assert [o.value for o in decision.obligations] == ["second", "first"]
    assert evaluate(ctx(), policy).obligations == ()


def test_default_policy_is_loaded_once_and_used_by_default() -> None:
    assert default_policy() is default_policy()
    assert evaluate(ctx()).pack_hash == default_policy().hash
    assert evaluate(ctx()) == evaluate(ctx(), default_policy())


def test_switching_the_baseline_off_denies_an_ordinary_exchange() -> None:
    assert evaluate(ctx()).permitted
    without = default_policy().without("baseline")
    decision = evaluate(ctx(), without)
    assert decision.reasons == (DEFAULT_DENY,)
    assert without.hash != default_policy().hash


def test_hash_is_content_not_layout(tmp_path: Path) -> None:
    source = (PACKS_DIR / "baseline.yaml").read_text(encoding="utf-8")
    (tmp_path / "baseline.yaml").write_text("# a comment\n" + source, encoding="utf-8")
    relaid = load_policy([tmp_path])
    assert relaid.hash == load_policy([PACKS_DIR / "baseline.yaml"]).hash
    doc = yaml.safe_load(source)
    doc["rules"][1]["title"] = "The sender is not an active participant here."
    (tmp_path / "baseline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert load_policy([tmp_path]).hash != relaid.hash


def test_hash_does_not_depend_on_the_order_packs_are_given() -> None:
    a, b = pack("a", rule("A.1", "deny", ALWAYS)), pack("b", rule("B.1", "deny", ALWAYS))
    assert PolicySet([a, b]).hash == PolicySet([b, a]).hash
    assert PolicySet([a]).hash != PolicySet([a, b]).hash


def test_decision_to_dict() -> None:
    decision = evaluate(ctx(legal_basis=None))
    assert decision.to_dict() == {
        "effect": "deny",
        "permitted": False,
        "reasons": [
            {
                "rule_id": "baseline.legal-basis-missing",
                "text": "An exchange must declare the legal basis it rests on.",
                "citation": "LED art. 8(1); UNTOC art. 18(7)",
            }
        ],
        "obligations": [],
        "pack_hash": default_policy().hash,
        "matched": ["baseline.legal-basis-missing"],
    }


def test_policy_rule_lookup() -> None:
    policy = default_policy()
    assert policy.rule("P7.ground").citation == "UNTOC art. 18(21)"
    with pytest.raises(KeyError):
        policy.rule("P99.none")


# --- operators and the None semantics -----------------------------------------------------

FWD = Forwarding(
    original_sender="de.bka",
    original_sender_kind="police",
    permitted_recipients=frozenset({"nl.police"}),
    permitted_purposes=frozenset({"criminal_investigation"}),
    handling_code="H2",
)


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"attr": "purpose", "op": "eq", "value": "criminal_investigation"}, ctx(), True),
        ({"attr": "purpose", "op": "eq", "value": "x"}, ctx(purpose=None), False),
        ({"attr": "purpose", "op": "ne", "value": "x"}, ctx(purpose=None), True),
        ({"attr": "purpose", "op": "in", "value": ["x", "criminal_investigation"]}, ctx(), True),
        ({"attr": "purpose", "op": "not_in", "value": ["x"]}, ctx(purpose=None), True),
        ({"attr": "purpose", "op": "present"}, ctx(purpose=""), False),
        ({"attr": "purpose", "op": "absent"}, ctx(purpose=""), True),
        ({"attr": "grounds", "op": "present"}, ctx(), False),
        ({"attr": "grounds", "op": "contains", "value": "other"}, ctx(grounds=["other"]), True),
        ({"attr": "grounds", "op": "not_contains", "value": "other"}, ctx(), True),
        ({"attr": "grounds", "op": "subset_of", "value": ["other"]}, ctx(), True),
        (
            {"attr": "grounds", "op": "subset_of", "value": ["other"]},
            ctx(grounds=["other", "secrecy"]),
            False,
        ),
        (
            {"attr": "grounds", "op": "intersects", "value": ["other"]},
            ctx(grounds=["other", "secrecy"]),
            True,
        ),
        (
            {"attr": "case_conditions", "op": "contains", "value": "a"},
            ctx(case_conditions=["a"]),
            True,
        ),
        (
            {"attr": "case_conditions", "op": "subset_of", "value": ["a"]},
            ctx(case_conditions=["a"]),
            True,
        ),
        ({"attr": "urgent", "op": "is_true"}, ctx(urgent=True), True),
        ({"attr": "urgent", "op": "is_false"}, ctx(urgent=True), False),
        ({"attr": "urgent", "op": "eq", "value": False}, ctx(), True),
        ({"attr": "forwarding", "op": "present"}, ctx(), False),
        ({"attr": "forwarding", "op": "absent"}, ctx(), True),
        # any field of an absent forwarding is None: positive tests fail, negative ones hold
        ({"attr": "forwarding.handling_code", "op": "eq", "value": "H2"}, ctx(), False),
        ({"attr": "forwarding.handling_code", "op": "ne", "value": "H2"}, ctx(), True),
        ({"attr": "forwarding.permitted_purposes", "op": "contains", "value": "x"}, ctx(), False),
        (
            {"attr": "forwarding.permitted_purposes", "op": "not_contains", "value": "x"},
            ctx(),
            True,
        ),
        (
            {"attr": "forwarding.permitted_purposes", "op": "subset_of", "value": ["x"]},
            ctx(),
            False,
        ),
        (
            {"attr": "forwarding.permitted_purposes", "op": "intersects", "value": ["x"]},
            ctx(),
            False,
        ),
        ({"attr": "forwarding.permitted_purposes", "op": "present"}, ctx(), False),
        ({"attr": "forwarding.restrictions", "op": "absent"}, ctx(), True),
        # comparisons with another attribute
        (
            {"attr": "recipient.id", "op": "in", "ref": "forwarding.permitted_recipients"},
            ctx(),
            False,
        ),
        (
            {"attr": "recipient.id", "op": "not_in", "ref": "forwarding.permitted_recipients"},
            ctx(),
            True,
        ),
        ({"attr": "handling_code", "op": "eq", "ref": "forwarding.handling_code"}, ctx(), False),
        ({"attr": "handling_code", "op": "ne", "ref": "forwarding.handling_code"}, ctx(), True),
        (
            {"attr": "case_parties", "op": "contains", "ref": "sender.id"},
            ctx(case_parties=["it.police"]),
            True,
        ),
        ({"attr": "case_parties", "op": "not_contains", "ref": "sender.id"}, ctx(), True),
        ({"attr": "case_parties", "op": "subset_of", "ref": "treaties"}, ctx(), True),
        (
            {"attr": "accepted_languages", "op": "intersects", "ref": "accepted_languages"},
            ctx(),
            True,
        ),
    ],
)
def test_operator(condition: dict[str, Any], context: Context, expected: bool) -> None:
    assert compile_condition(condition).test(context) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"attr": "recipient.id", "op": "in", "ref": "forwarding.permitted_recipients"}, True),
        ({"attr": "recipient.id", "op": "not_in", "ref": "forwarding.permitted_recipients"}, False),
        ({"attr": "forwarding.handling_code", "op": "eq", "value": "H2"}, True),
        ({"attr": "handling_code", "op": "ne", "ref": "forwarding.handling_code"}, True),
        ({"attr": "forwarding.permitted_purposes", "op": "contains", "ref": "purpose"}, True),
        (
            {
                "attr": "forwarding.permitted_purposes",
                "op": "subset_of",
                "value": ["criminal_investigation"],
            },
            True,
        ),
        ({"attr": "forwarding.permitted_purposes", "op": "intersects", "value": ["x"]}, False),
        ({"attr": "forwarding.permitted_purposes", "op": "not_contains", "value": "x"}, True),
    ],
)
def test_operator_on_a_forward(condition: dict[str, Any], expected: bool) -> None:
    context = dataclasses.replace(ctx(), forwarding=FWD)
    assert compile_condition(condition).test(context) is expected


def test_combinators() -> None:
    yes, no = {"attr": "urgent", "op": "is_false"}, {"attr": "urgent", "op": "is_true"}
    context = ctx()
    for n in range(1, 7):
        assert compile_condition({"all": [yes] * n}).test(context)
        assert not compile_condition({"all": [yes] * (n - 1) + [no]}).test(context)
        assert compile_condition({"any": [no] * (n - 1) + [yes]}).test(context)
        assert not compile_condition({"any": [no] * n}).test(context)
    assert compile_condition({"not": no}).test(context)


def test_rules_of_other_message_types_are_skipped_exactly() -> None:
    """The index by message type, case type, case event and forwarding changes nothing."""
    policy = default_policy()
    for result_ctx in [
        ctx(),
        ctx(message_type="receipt"),
        ctx(case_type="mla", case_event="refuse"),
    ]:
        naive = tuple(r.id for r in policy.rules if r.applies(result_ctx))
        assert evaluate(result_ctx, policy).matched == naive
