"""Build the policy context of a message from what the node knows, never from its content.

The context holds the parties (kind, jurisdiction, groups from the reference data), the
message type and the declared metadata (legal basis, purpose, data categories, data-subject
categories, handling and evaluation codes). The body is not read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from broker.envelopes.schemas import MessagePayload
from policies.engine import evaluate
from policies.model import Context, Decision, Party
from policies.reference import groups_for, with_reference_data


@dataclass(frozen=True, slots=True)
class PartyFacts:
    id: str
    kind: str
    jurisdiction: str
    active: bool
    encryption_kid: str | None = None
    encryption_key: bytes | None = None

    def with_encryption_key(self, kid: str, key: bytes) -> PartyFacts:
        return replace(self, encryption_kid=kid, encryption_key=key)


def party(facts: PartyFacts) -> Party:
    return Party(
        id=facts.id,
        kind=facts.kind,
        jurisdiction=facts.jurisdiction,
        groups=groups_for(facts.jurisdiction),
        active=facts.active,
    )


def context_for(payload: MessagePayload, sender: PartyFacts, recipient: PartyFacts) -> Context:
    return Context(
        sender=party(sender),
        recipient=party(recipient),
        message_type=payload.type,
        legal_basis=payload.legal_basis,
        purpose=payload.purpose,
        data_categories=frozenset(payload.data_categories),
        data_subject_categories=frozenset(s.category for s in payload.data_subjects),
        handling_code=payload.handling.code if payload.handling else None,
        handling_restriction=payload.handling.restriction if payload.handling else None,
        evaluation=payload.evaluation,
        language=payload.language,
        statement_kind=payload.statement_kind,
        transfer_basis=payload.transfer_basis,
        urgent=payload.urgent,
        confidential=payload.confidential,
        channel=payload.channel,
        has_attachments=bool(payload.attachments),
        persons_uncategorised=False,  # the schema requires a category for every data subject
    )


def decide(payload: MessagePayload, sender: PartyFacts, recipient: PartyFacts) -> Decision:
    return evaluate(with_reference_data(context_for(payload, sender, recipient)))
