"""The broker's context builder: one ``Context`` per message, equal to what the policy
library's own ``with_reference_data`` makes, and the terms of onward use it derives."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from broker.core.ids import uuid7
from broker.envelopes.schemas import MessagePayload
from broker.messages.policy import PartyFacts, Terms, context_for, decide, default_terms, terms_for
from broker.policy.service import shipped_policy
from policies.engine import evaluate
from policies.model import Consent
from policies.reference import with_reference_data

BKA = PartyFacts("de.bka", "police", "DE", True)
ITALY = PartyFacts("it.central-authority", "central_authority", "IT", True)
USA = PartyFacts("us.central-authority", "central_authority", "US", True)
FLAGGED = PartyFacts("xa.central-authority", "central_authority", "XA", False)


def message(**over: Any) -> MessagePayload:
    data: dict[str, Any] = {
        "id": str(uuid7()),
        "type": "intel.message",
        "sender": "de.bka",
        "recipient": "it.central-authority",
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "legal_basis": "UNTOC art. 27",
        "purpose": "investigation",
        "handling": {"code": "H3", "restriction": "do not contact the subject"},
        "evaluation": "B2",
        "statement_kind": "fact",
        "data_subjects": [{"ref": "p1", "category": "suspect"}],
    }
    data.update(over)
    return MessagePayload.model_validate(data)


@pytest.mark.parametrize(("sender", "recipient"), [(BKA, ITALY), (BKA, USA), (ITALY, FLAGGED)])
def test_the_context_holds_the_reference_data_as_the_library_fills_it(
    sender: PartyFacts, recipient: PartyFacts
) -> None:
    payload = message(sender=sender.id, recipient=recipient.id)
    built = context_for(payload, sender, recipient)
    bare = replace(built, treaties=frozenset(), accepted_languages=frozenset(),
                   notified_channels=frozenset(), flagged_jurisdiction=False)  # fmt: skip
    assert built == with_reference_data(bare)
    assert built.sender.groups  # the groups of the participant's State
    assert built.data_subject_categories == frozenset({"suspect"})


def test_known_fields_are_set_and_decide_uses_them() -> None:
    payload = message(purpose="tax audit", forwarded_from=str(uuid7()))
    terms = default_terms(
        message_id=str(uuid7()),
        sender="de.bka",
        recipient="it.central-authority",
        purpose="investigation",
        handling_code="H3",
    )
    forwarding = terms.forwarding("police")
    context = context_for(payload, ITALY, BKA, forwarding=forwarding, consents=())
    assert context.forwarding == forwarding
    assert decide(payload, ITALY, BKA, forwarding=forwarding) == evaluate(
        context, shipped_policy().policy
    )
    assert not decide(payload, ITALY, BKA, forwarding=forwarding).permitted
    consent = Consent("de.bka", "de.bka", "tax audit")
    assert decide(payload, ITALY, BKA, forwarding=forwarding, consents=(consent,)).permitted
    with pytest.raises(TypeError):
        context_for(payload, ITALY, BKA, consents=[consent])


def test_terms_of_an_original_and_of_its_forward() -> None:
    original = message(
        permitted_recipients=["nl.fiu"],
        permitted_purposes=["prosecution"],
        restrictions=["evidence only with permission"],
    )
    decision = decide(original, BKA, ITALY)
    terms = terms_for(original, decision)
    assert terms.provider_id == "de.bka"
    assert terms.root_message_id == str(original.id)
    assert terms.permitted_recipients == {"it.central-authority", "nl.fiu"}
    assert terms.permitted_purposes == {"investigation", "prosecution"}
    assert terms.travelling == ("evidence only with permission", "do not contact the subject")
    assert terms != default_terms(
        message_id=str(original.id),
        sender="de.bka",
        recipient="it.central-authority",
        purpose="investigation",
        handling_code="H3",
    )

    onward = message(
        sender="it.central-authority",
        recipient="nl.fiu",
        forwarded_from=str(original.id),
        permitted_recipients=["nl.fiu", "us.central-authority"],  # cannot widen
        restrictions=[*terms.travelling, "no onward transfer"],
    )
    forwarded = terms_for(onward, decide(onward, ITALY, BKA), held=terms)
    assert forwarded.provider_id == "de.bka"
    assert forwarded.root_message_id == str(original.id)
    assert forwarded.permitted_recipients == {"nl.fiu"}
    assert forwarded.permitted_purposes == terms.permitted_purposes
    assert forwarded.forwarded_from == str(original.id)
    assert forwarded.travelling == (*terms.travelling, "no onward transfer")


def test_plain_messages_need_no_terms_row() -> None:
    plain = message(handling={"code": "H0"})
    terms = terms_for(plain, decide(plain, BKA, ITALY))
    assert terms == default_terms(
        message_id=str(plain.id),
        sender="de.bka",
        recipient="it.central-authority",
        purpose="investigation",
        handling_code="H0",
    )
    assert isinstance(terms, Terms)
