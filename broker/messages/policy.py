"""Build the policy context of a message from what the node knows, never from its content,
and the terms of onward use that a later forward of its material is decided against.

The context holds the parties (kind, jurisdiction, groups from the reference data), the
message type and the declared metadata (legal basis, purpose, data categories, data-subject
categories, handling and evaluation codes). The body is not read.

Invariants:
- ``Terms`` of a message are derived only from its payload's metadata, the decision that
  admitted it and, for a forward, the terms of the material it forwards: a forward keeps the
  provider, the permitted recipients and purposes and the original purpose of the first
  message of the material, can only narrow them, and carries every restriction that bound it.
- ``default_terms`` is the one definition of what a message's own row already implies; terms
  equal to it are not stored (``broker.messages.models.MessageTerms``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from broker.envelopes.schemas import MessagePayload
from broker.policy.service import NodePolicy, shipped_policy
from policies.engine import evaluate, reference_compared
from policies.model import Context, Decision, Forwarding


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


def context_for(
    payload: MessagePayload,
    sender: PartyFacts,
    recipient: PartyFacts,
    policy: NodePolicy | None = None,
    **known: Any,
) -> Context:
    """The context of a message, with the fields that depend on the two States filled from
    the policy's reference data (as ``policies.reference.with_reference_data`` does, in one
    construction: ingress makes one per message). ``known`` sets context fields the payload
    does not give: ``forwarding`` and ``consents`` for a forward, ``case_event``,
    ``case_fields`` and ``grounds`` for a consent message.

    Raises:
        TypeError: a ``known`` field has the wrong type (a coding error).
    """
    policy = policy or shipped_policy()
    ref = policy.reference
    here, there = sender.jurisdiction, recipient.jurisdiction
    handling = payload.handling
    return Context(
        sender=policy.party(sender.id, sender.kind, here, sender.active),
        recipient=policy.party(recipient.id, recipient.kind, there, recipient.active),
        message_type=payload.type,
        legal_basis=payload.legal_basis,
        purpose=payload.purpose,
        data_categories=frozenset(payload.data_categories),
        data_subject_categories=frozenset(s.category for s in payload.data_subjects),
        handling_code=handling.code if handling else None,
        handling_restriction=handling.restriction if handling else None,
        evaluation=payload.evaluation,
        language=payload.language,
        statement_kind=payload.statement_kind,
        transfer_basis=payload.transfer_basis,
        special_category_basis=payload.special_category_basis,
        late_notice=payload.late_notice,
        urgent=payload.urgent,
        confidential=payload.confidential,
        channel=payload.channel,
        has_attachments=bool(payload.attachments),
        persons_uncategorised=False,  # the schema requires a category for every data subject
        treaties=ref.treaties_between(here, there),
        flagged_jurisdiction=ref.is_flagged(here) or ref.is_flagged(there),
        accepted_languages=ref.languages_for(there),
        notified_channels=ref.channels_for(there),
        **known,
    )


def decide(
    payload: MessagePayload,
    sender: PartyFacts,
    recipient: PartyFacts,
    *,
    policy: NodePolicy | None = None,
    **known: Any,
) -> Decision:
    """Decide a message against the node's policy (the shipped packs when None); ``known``
    as for ``context_for``.

    Raises:
        TypeError: a ``known`` field has the wrong type (a coding error).
    """
    policy = policy or shipped_policy()
    return evaluate(context_for(payload, sender, recipient, policy, **known), policy.policy)


def refusal_reasons(
    decision: Decision,
    payload: MessagePayload,
    sender: PartyFacts,
    recipient: PartyFacts,
    *,
    policy: NodePolicy | None = None,
    **known: Any,
) -> list[dict[str, Any]]:
    """The reasons of a denial as the problem shows them: each rule with its sentence and
    citation and, for a rule that compared the message with the States' reference data, what
    that data holds (``reference``: the languages the requested State accepts for
    P1.language, 18(14); its notified channels for P2.channel; the treaties for
    MLA.legal-basis), so the sender learns what would pass. Built only on a refusal."""
    policy = policy or shipped_policy()
    context = context_for(payload, sender, recipient, policy, **known)
    out: list[dict[str, Any]] = []
    for r in decision.reasons:
        item: dict[str, Any] = {"rule": r.rule_id, "text": r.text, "citation": r.citation}
        if compared := reference_compared(policy.policy, r.rule_id, context):
            item["reference"] = compared
        out.append(item)
    return out


# --- terms of onward use ----------------------------------------------------------------


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True, slots=True)
class Terms:
    """What onward use of a message's material is decided against (FIU.md: every disclosure
    carries its permitted recipients and purposes; SIENA: restrictions bind every reader)."""

    root_message_id: str
    provider_id: str
    original_purpose: str | None
    permitted_recipients: frozenset[str]
    permitted_purposes: frozenset[str]
    handling_code: str | None
    handling_restriction: str | None = None
    restrictions: tuple[str, ...] = ()
    forwarded_from: str | None = None
    # What ``handling_text`` obligations show every reader of the material (P12): those of
    # the decision that admitted it and of every decision before it on the way here.
    handling_texts: tuple[str, ...] = ()

    @property
    def travelling(self) -> tuple[str, ...]:
        """Every restriction that binds the material: what each forward of it must carry."""
        extra = (self.handling_restriction,) if self.handling_restriction else ()
        return _unique((*self.restrictions, *extra))

    def forwarding(
        self,
        provider_kind: str,
        *,
        case_type: str | None = None,
        case_records: frozenset[str] = frozenset(),
    ) -> Forwarding:
        """The ``Context.forwarding`` of a forward of this material; ``case_type`` and
        ``case_records`` describe the case it was received in, if any."""
        return Forwarding(
            case_type=case_type,
            case_records=case_records,
            original_sender=self.provider_id,
            original_sender_kind=provider_kind,
            permitted_recipients=self.permitted_recipients,
            permitted_purposes=self.permitted_purposes,
            handling_code=self.handling_code,
            restrictions=self.travelling,
            original_purpose=self.original_purpose,
        )


def default_terms(
    *,
    message_id: str,
    sender: str,
    recipient: str,
    purpose: str | None,
    handling_code: str | None,
) -> Terms:
    """The terms a message's own row implies: its sender provides, its recipient and its
    purpose are permitted, no restrictions beyond its handling code."""
    return Terms(
        root_message_id=message_id,
        provider_id=sender,
        original_purpose=purpose,
        permitted_recipients=frozenset({recipient}),
        permitted_purposes=frozenset({purpose}) if purpose else frozenset(),
        handling_code=handling_code,
    )


def terms_for(payload: MessagePayload, decision: Decision, held: Terms | None = None) -> Terms:
    """The terms of an admitted message: from its payload and the restrictions its decision
    attaches, or, for a forward, from the terms of the material it forwards (``held``)."""
    message_id = str(payload.id)
    declared_recipients = frozenset(payload.permitted_recipients)
    declared_purposes = frozenset(payload.permitted_purposes)
    attached = [o.value for o in decision.obligations if o.kind == "restriction"]
    shown = [o.value for o in decision.obligations if o.kind == "handling_text"]
    handling = payload.handling
    if held is None:
        own = {payload.purpose} if payload.purpose else set()
        return Terms(
            root_message_id=message_id,
            provider_id=payload.sender,
            original_purpose=payload.purpose,
            permitted_recipients=declared_recipients | {payload.recipient},
            permitted_purposes=declared_purposes | own,
            handling_code=handling.code if handling else None,
            handling_restriction=handling.restriction if handling else None,
            restrictions=_unique((*payload.restrictions, *attached)),
            handling_texts=_unique(shown),
        )
    return Terms(
        root_message_id=held.root_message_id,
        provider_id=held.provider_id,
        original_purpose=held.original_purpose,
        permitted_recipients=(
            held.permitted_recipients & declared_recipients
            if declared_recipients
            else held.permitted_recipients
        ),
        permitted_purposes=(
            held.permitted_purposes & declared_purposes
            if declared_purposes
            else held.permitted_purposes
        ),
        handling_code=handling.code if handling else None,
        handling_restriction=handling.restriction if handling else None,
        restrictions=_unique((*held.travelling, *payload.restrictions, *attached)),
        forwarded_from=str(payload.forwarded_from) if payload.forwarded_from else None,
        handling_texts=_unique((*held.handling_texts, *shown)),
    )
