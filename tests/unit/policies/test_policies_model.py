"""The context model: type checks on construction, the derived consent flag, the whitelist."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from policies.model import (
    ATTRIBUTES,
    Consent,
    Context,
    Decision,
    Forwarding,
    Obligation,
    Party,
    Reason,
)

IT = Party("it.police", "police", "IT", frozenset({"eu"}))
NL = Party("nl.police", "police", "NL", frozenset({"eu"}))


def make(**changes: Any) -> Context:
    return Context(sender=IT, recipient=NL, message_type="intel.message", **changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"data_categories": ["personal"]},  # a list, not a frozenset
        {"data_categories": frozenset({1})},
        {"case_conditions": ["a"]},
        {"urgent": 1},
        {"purpose": 3},
        {"forwarding": {"original_sender": "de.bka"}},
        {"consents": [Consent("a", "b", "c")]},
    ],
)
def test_wrong_types_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        make(**changes)


def test_party_checks_its_types() -> None:
    with pytest.raises(TypeError, match="groups"):
        Party("it.police", "police", "IT", {"eu"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="active"):
        Party("it.police", "police", "IT", frozenset(), "yes")  # type: ignore[arg-type]


def test_context_is_frozen() -> None:
    ctx = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.purpose = "x"  # type: ignore[misc]


def forward(**changes: Any) -> Context:
    fwd = Forwarding(original_sender="de.bka", original_sender_kind="police")
    return make(forwarding=fwd, purpose="tax_audit", **changes)


def test_consent_recorded_needs_provider_recipient_and_purpose_to_match() -> None:
    assert not forward().consent_recorded
    assert forward(consents=(Consent("de.bka", "nl.police", "tax_audit"),)).consent_recorded
    assert not forward(consents=(Consent("it.police", "nl.police", "tax_audit"),)).consent_recorded
    assert not forward(consents=(Consent("de.bka", "fr.police", "tax_audit"),)).consent_recorded
    assert not forward(consents=(Consent("de.bka", "nl.police", "other"),)).consent_recorded


def test_consent_recorded_without_forwarding_is_false() -> None:
    ctx = make(purpose="tax_audit", consents=(Consent("de.bka", "nl.police", "tax_audit"),))
    assert not ctx.consent_recorded


def test_consent_recorded_cannot_be_given_and_follows_replace() -> None:
    with pytest.raises(TypeError):
        Context(sender=IT, recipient=NL, message_type="x", consent_recorded=True)  # type: ignore[call-arg]
    ctx = forward()
    assert dataclasses.replace(
        ctx, consents=(Consent("de.bka", "nl.police", "tax_audit"),)
    ).consent_recorded


def test_the_whitelist_is_the_context_fields() -> None:
    top = {f.name for f in dataclasses.fields(Context)} - {"sender", "recipient", "consents"}
    party = {
        f"{side}.{f.name}" for side in ("sender", "recipient") for f in dataclasses.fields(Party)
    }
    fwd = {f"forwarding.{f.name}" for f in dataclasses.fields(Forwarding)}
    assert set(ATTRIBUTES) == top | party | fwd
    assert ATTRIBUTES["forwarding.handling_code"].nullable
    assert not ATTRIBUTES["sender.kind"].nullable
    assert ATTRIBUTES["case_conditions"].kind == "set"
    assert ATTRIBUTES["forwarding"].kind == "object"


def test_attribute_getters_read_the_context() -> None:
    ctx = forward()
    assert ATTRIBUTES["sender.jurisdiction"].get(ctx) == "IT"
    assert ATTRIBUTES["forwarding.original_sender"].get(ctx) == "de.bka"
    assert ATTRIBUTES["forwarding.original_sender"].get(make()) is None


def test_decision_permitted() -> None:
    reason = Reason("r", "text", "cite")
    assert Decision("permit", (reason,), (), "sha256:x", ("r",)).permitted
    decision = Decision("deny", (reason,), (Obligation("follow_up", "v", "r"),), "sha256:x", ())
    assert not decision.permitted
    assert decision.to_dict()["obligations"] == [
        {"kind": "follow_up", "value": "v", "rule_id": "r"}
    ]
