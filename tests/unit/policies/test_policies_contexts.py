"""Contexts from JSON: checked field by field, enriched from the reference data."""

from __future__ import annotations

from typing import Any

import pytest

from policies.contexts import ContextError, context_from_dict, context_to_dict
from policies.reference import load_reference_data

MINIMAL: dict[str, Any] = {
    "sender": {"id": "it.fiu", "kind": "fiu"},
    "recipient": {"id": "us.fincen", "kind": "fiu"},
    "message_type": "fiu.disclosure",
}


def test_minimal_context_is_enriched() -> None:
    ctx = context_from_dict(MINIMAL)
    data = load_reference_data()
    assert ctx.sender.jurisdiction == "IT"
    assert ctx.sender.groups == data.groups_for("IT")
    assert ctx.treaties == data.treaties_between("IT", "US")
    assert ctx.accepted_languages == frozenset({"en"})
    assert ctx.notified_channels == frozenset({"central_authority"})
    assert ctx.flagged_jurisdiction is False
    assert ctx.forwarding is None


def test_given_fields_are_kept() -> None:
    ctx = context_from_dict(
        {
            **MINIMAL,
            "sender": {"id": "it.fiu", "kind": "fiu", "jurisdiction": "CH", "groups": ["g"]},
            "treaties": [],
            "flagged_jurisdiction": True,
            "data_categories": ["personal", "personal"],
            "case_conditions": ["b", "a"],
        }
    )
    assert ctx.sender.jurisdiction == "CH"
    assert ctx.sender.groups == frozenset({"g"})
    assert ctx.treaties == frozenset()
    assert ctx.flagged_jurisdiction is True
    assert ctx.data_categories == frozenset({"personal"})
    assert ctx.case_conditions == ("b", "a")


def test_forwarding_and_consents() -> None:
    ctx = context_from_dict(
        {
            **MINIMAL,
            "purpose": "analysis",
            "forwarding": {
                "original_sender": "nl.fiu",
                "original_sender_kind": "fiu",
                "permitted_recipients": ["it.fiu"],
            },
            "consents": [{"provider": "nl.fiu", "recipient": "us.fincen", "purpose": "analysis"}],
        }
    )
    assert ctx.forwarding is not None
    assert ctx.forwarding.permitted_recipients == frozenset({"it.fiu"})
    assert ctx.consent_recorded


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"body": "text"}, "body", "unknown field"),
        ({"urgent": "yes"}, "urgent", "expected true or false"),
        ({"purpose": 3}, "purpose", "expected a string or null"),
        ({"message_type": None}, "message_type", "expected a string"),
        ({"grounds": "other"}, "grounds", "expected a list of strings"),
        ({"grounds": [1]}, "grounds", "expected a list of strings"),
        ({"sender": {"id": "it.fiu"}}, "sender.kind", "is required"),
        ({"sender": {"id": "fiu", "kind": "fiu"}}, "sender.id", "iso alpha-2"),
        ({"sender": {"id": "it.fiu", "kind": "fiu", "name": "x"}}, "sender.name", "unknown field"),
        ({"sender": "it.fiu"}, "sender", "expected a mapping"),
        (
            {"forwarding": {"original_sender": "nl.fiu"}},
            "forwarding.original_sender_kind",
            "is required",
        ),
        (
            {"forwarding": {"original_sender": "nl.fiu", "original_sender_kind": "fiu", "x": 1}},
            "forwarding.x",
            "unknown field",
        ),
        ({"consents": [{"provider": "a", "recipient": "b"}]}, "consents[0].purpose", "is required"),
        ({"consents": {"provider": "a"}}, "consents", "expected a list"),
        ({"consent_recorded": True}, "consent_recorded", "derived"),
    ],
)
def test_errors_name_the_field(changes: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ContextError) as caught:
        context_from_dict({**MINIMAL, **changes})
    assert caught.value.field == field
    assert message in str(caught.value)


def test_required_top_level_fields() -> None:
    for key in ("sender", "recipient", "message_type"):
        data = {k: v for k, v in MINIMAL.items() if k != key}
        with pytest.raises(ContextError) as caught:
            context_from_dict(data)
        assert caught.value.field == key


def test_not_a_mapping() -> None:
    with pytest.raises(ContextError, match="must be a mapping"):
        context_from_dict(["x"])  # type: ignore[arg-type]


def test_round_trip() -> None:
    ctx = context_from_dict(
        {
            **MINIMAL,
            "forwarding": {"original_sender": "nl.fiu", "original_sender_kind": "fiu"},
            "consents": [{"provider": "nl.fiu", "recipient": "us.fincen", "purpose": "p"}],
            "case_conditions": ["z", "a"],
        }
    )
    plain = context_to_dict(ctx)
    assert "consent_recorded" not in plain
    assert plain["sender"]["groups"] == sorted(ctx.sender.groups)
    assert context_from_dict(plain) == ctx
