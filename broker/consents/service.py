"""Consent for onward use: requested by the holder of received material, answered by the
participant that provided it (FIU.md: CONSENT_REQUESTED -> CONSENT_GRANTED | CONSENT_REFUSED).

Invariants:
- A request and an answer are each a signed ``fiu.consent`` message (the node signs with the
  acting participant's custodial key), routed to the other party and decided by the policy
  engine like any message, with ``case_event`` ``request_consent``, ``grant_consent`` or
  ``refuse_consent`` (so a refusal without reasons, or on fiscal or secrecy grounds, is
  denied with the rule that forbids it). A denied message changes no consent.
- The consent row, its message and its audit leaf (``consent:requested``, ``consent:granted``
  or ``consent:refused``; ids, parties, purpose, grounds, the number of conditions and the
  end, never the reasons' or the conditions' text) commit together.
- Only the holder (the recipient of the message) asks; only the provider answers, once. A
  grant may set conditions and an end in the future; a refusal sets neither (422).
- A granted consent counts for the material of its ``root_message_id`` only, until its end,
  and widens exactly the recipient and purpose it names
  (``policies.model.Context.consent_recorded``).
- A consent is one record whichever door it came through: this one (``/v1/messages/{id}/
  consent-requests``) or a case consent thread (``broker.cases``, listed in the parent case's
  ``terms.consents``). ``consents_on_record`` is the one reader of both: forwards decide with
  it, and a request for a use it already covers is refused (409).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import messages
from broker.cases.models import Case, CaseEvent
from broker.consents.models import Consent, ConsentStatus
from broker.consents.schemas import ConsentAnswer, ConsentCreate
from broker.core.context import Caller
from broker.core.db import utcnow
from broker.core.errors import Conflict, Forbidden, InvalidState, NotFound, SchemaViolation
from broker.core.ids import uuid7
from broker.messages.models import Message
from broker.oversight.service import AuditKind, record_event
from broker.policy.service import PolicyContext
from policies import model as policy_model

CONSENT_TYPE = "fiu.consent"
"""The message type of consent requests and answers (``policies.vocabulary.MESSAGE_TYPES``)."""


@dataclass(frozen=True, slots=True)
class ConsentOnRecord:
    """One granted consent for onward use, whichever door it came through: a message consent
    request (``door`` "message", ``id`` the consent's) or a case consent thread (``door``
    "case", ``id`` the thread's case id; UNTOC art. 18(19), Egmont).

    ``provider`` lets ``recipient`` use the material for ``purpose``, on ``conditions`` (they
    travel with every forward it permits, as restrictions: P9, UNTOC art. 18(26)), until
    ``valid_until`` if it is set."""

    door: Literal["message", "case"]
    id: str
    provider: str
    recipient: str
    purpose: str
    conditions: tuple[str, ...] = ()
    valid_until: dt.datetime | None = None

    def valid_at(self, now: dt.datetime) -> bool:
        return self.valid_until is None or now < self.valid_until

    def covers(self, *, provider: str, recipient: str, purpose: str | None) -> bool:
        """Whether it permits exactly this use (``policies.model.Context.consent_recorded``)."""
        return (self.provider, self.recipient, self.purpose) == (provider, recipient, purpose)

    def for_engine(self) -> policy_model.Consent:
        return policy_model.Consent(self.provider, self.recipient, self.purpose)


def _when(value: object) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


async def message_consents_under(
    session: AsyncSession, *, case_id: str, now: dt.datetime
) -> list[dict[str, Any]]:
    """The consents granted through the message door for the material any event of
    ``case_id`` carried, valid at ``now`` (a grant held for approval, or rejected, is not
    given), as ``{"consent", "provider", "recipient", "purpose", "valid_until"}``. The case
    door's ``consent_needed`` guard reads them (``broker.cases.config.MessageConsents``), so
    a consent thread is not opened for a use already consented to by message."""
    carried = select(CaseEvent.message_id).where(
        CaseEvent.case_id == case_id, CaseEvent.message_id.is_not(None)
    )
    rows = (
        await session.scalars(
            select(Consent)
            .join(Message, Message.id == Consent.answer_message_id)
            .where(
                Consent.root_message_id.in_(carried),
                Consent.status == ConsentStatus.GRANTED.value,
                Message.status.not_in(sorted(messages.HELD)),
            )
            .order_by(Consent.id)
        )
    ).all()
    return [
        {
            "consent": c.id,
            "provider": c.provider_id,
            "recipient": c.recipient_id,
            "purpose": c.purpose,
            "valid_until": c.valid_until.isoformat() if c.valid_until else None,
        }
        for c in rows
        if c.valid_until is None or now < c.valid_until
    ]


async def consents_on_record(
    session: AsyncSession, *, root_message_id: str, now: dt.datetime
) -> tuple[ConsentOnRecord, ...]:
    """The consents granted for the material of ``root_message_id`` and valid at ``now``,
    from both doors: granted message consents for that material, and the consents granted
    through the consent threads of the case the material was an event of (the parent's
    ``terms.consents``). The one reader of consents: forwards, and the consent requests that
    would ask again for what is already on record, decide with it."""
    rows = (
        await session.scalars(
            select(Consent)
            .join(Message, Message.id == Consent.answer_message_id)
            .where(
                Consent.root_message_id == root_message_id,
                Consent.status == ConsentStatus.GRANTED.value,
                Message.status.not_in(sorted(messages.HELD)),
            )
            .order_by(Consent.id)
        )
    ).all()
    found = [
        ConsentOnRecord(
            door="message",
            id=c.id,
            provider=c.provider_id,
            recipient=c.recipient_id,
            purpose=c.purpose,
            conditions=tuple(c.conditions or ()),
            valid_until=c.valid_until,
        )
        for c in rows
    ]
    terms = (
        await session.execute(
            select(Case.terms)
            .join(CaseEvent, CaseEvent.case_id == Case.id)
            .where(CaseEvent.message_id == root_message_id)
        )
    ).scalar_one_or_none()
    for entry in (terms or {}).get("consents", []):
        found.append(
            ConsentOnRecord(
                door="case",
                id=str(entry.get("thread")),
                provider=str(entry.get("provider")),
                recipient=str(entry.get("recipient")),
                purpose=str(entry.get("purpose")),
                conditions=tuple(entry.get("conditions", ())),
                valid_until=_when(entry.get("valid_until")),
            )
        )
    return tuple(c for c in found if c.valid_at(now))


def _reasons_given(reasons: str | None) -> frozenset[str]:
    return frozenset({"reasons"}) if reasons and reasons.strip() else frozenset()


async def request_consent(
    session: AsyncSession,
    *,
    ctx: PolicyContext,
    message_id: str,
    create: ConsentCreate,
) -> Consent | messages.Refused:
    """Ask the provider of the material of ``message_id`` to let ``create.recipient`` use it
    for ``create.purpose``: a ``fiu.consent`` message to the provider. Flushes.

    Raises NotFound, Forbidden (not the recipient), InvalidState (not delivered), Conflict
    (the caller provided the material, or the same request is pending), and the draft errors
    of ``messages.submit``. A policy denial is returned as ``Refused``.
    """
    node, caller = ctx.node, ctx.caller
    message = await messages.held_message(
        session,
        caller=caller,
        message_id=message_id,
        forbidden="only the recipient of a message asks for consent to use it onward",
    )
    held = await messages.terms_of(session, message)
    if held.provider_id == caller.participant_id:
        raise Conflict("you provided this material: its onward use needs no consent of yours")
    pending = await session.scalar(
        select(Consent.id).where(
            Consent.root_message_id == held.root_message_id,
            Consent.requester_id == caller.participant_id,
            Consent.recipient_id == create.recipient,
            Consent.purpose == create.purpose,
            Consent.status == ConsentStatus.REQUESTED.value,
        )
    )
    if pending is not None:
        raise Conflict(f"the same consent request is pending: {pending}", consent_id=pending)
    on_record = [
        c
        for c in await consents_on_record(
            session, root_message_id=held.root_message_id, now=ctx.now
        )
        if c.covers(provider=held.provider_id, recipient=create.recipient, purpose=create.purpose)
    ]
    if on_record:
        first = on_record[0]
        where = "consent" if first.door == "message" else "consent thread"
        raise Conflict(
            f"a consent for this recipient and purpose is on record ({where} {first.id}): "
            "there is nothing to ask",
            consent_id=first.id,
        )
    consent_id = str(uuid7())
    draft = {
        "type": CONSENT_TYPE,
        "recipient": held.provider_id,
        "in_reply_to": held.root_message_id,
        "legal_basis": create.legal_basis or message.legal_basis,
        "purpose": create.purpose,
        "transfer_basis": create.transfer_basis,
        "body": {
            "consent": "request",
            "consent_id": consent_id,
            "root_message_id": held.root_message_id,
            "recipient": create.recipient,
            "purpose": create.purpose,
            "reasons": create.reasons,
        },
    }
    outcome = await messages.sign_and_accept(
        session,
        ctx=ctx,
        draft={k: v for k, v in draft.items() if v is not None},
        request=messages.AcceptRequest(
            # The consent record is the provider's to answer at once: a request that needs
            # a supervisor's approval is refused, not held (broker.messages.approvals).
            holdable=False,
            known={
                "case_type": "fiu",
                "case_event": "request_consent",
                "case_fields": _reasons_given(create.reasons),
            },
        ),
    )
    if isinstance(outcome, messages.Refused):
        return outcome
    now = utcnow()
    consent = Consent(
        id=consent_id,
        message_id=message.id,
        root_message_id=held.root_message_id,
        provider_id=held.provider_id,
        requester_id=caller.participant_id,
        recipient_id=create.recipient,
        purpose=create.purpose,
        status=ConsentStatus.REQUESTED.value,
        reasons=None,
        grounds=[],
        request_message_id=outcome.message_id,
        answer_message_id=None,
        requested_at=now,
        requested_by=caller.account_id,
        retention_until=message.retention_until,
    )
    session.add(consent)
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.CONSENT_REQUESTED,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=caller.participant_id,
        message_id=held.root_message_id,
        consent_id=consent_id,
        provider=held.provider_id,
        requester=caller.participant_id,
        recipient=create.recipient,
        texts={"purpose": create.purpose},
        request_message_id=outcome.message_id,
    )
    return consent


async def get_consent(session: AsyncSession, *, caller: Caller, consent_id: str) -> Consent:
    """The consent, if the caller's participant asked for it or is asked. Raises NotFound."""
    consent = await session.get(Consent, consent_id)
    if consent is None or caller.participant_id not in (
        consent.provider_id,
        consent.requester_id,
    ):
        raise NotFound(f"no consent {consent_id}")
    return consent


async def list_consents(
    session: AsyncSession, *, caller: Caller, status: str | None, limit: int
) -> list[Consent]:
    """Consents the caller's participant asked for or is asked for, newest first."""
    me = caller.participant_id
    stmt = select(Consent).where(or_(Consent.provider_id == me, Consent.requester_id == me))
    if status is not None:
        stmt = stmt.where(Consent.status == status)
    stmt = stmt.order_by(Consent.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def answer_consent(
    session: AsyncSession,
    *,
    ctx: PolicyContext,
    consent_id: str,
    grant: bool,
    answer: ConsentAnswer,
) -> Consent | messages.Refused:
    """Grant or refuse a pending consent: a ``fiu.consent`` message to the requester. Flushes.

    Raises NotFound, Forbidden (not the provider), InvalidState (already answered), and the
    draft errors of ``messages.submit``. A policy denial (for example a refusal without
    reasons) is returned as ``Refused`` and leaves the consent pending.
    """
    node, caller = ctx.node, ctx.caller
    consent = await session.scalar(
        select(Consent).where(Consent.id == consent_id).with_for_update()
    )
    if consent is None or caller.participant_id not in (
        consent.provider_id,
        consent.requester_id,
    ):
        raise NotFound(f"no consent {consent_id}")
    if caller.participant_id != consent.provider_id:
        raise Forbidden("only the participant that provided the material answers")
    if consent.status != ConsentStatus.REQUESTED.value:
        raise InvalidState(f"the consent is already {consent.status}")
    if not grant and (answer.conditions or answer.valid_until is not None):
        field = "conditions" if answer.conditions else "valid_until"
        raise SchemaViolation(f"a refusal sets no {field}: only a grant does", field=field)
    if answer.valid_until is not None and answer.valid_until <= ctx.now:
        raise SchemaViolation(
            f"valid_until {answer.valid_until.isoformat()} is not in the future",
            field="valid_until",
        )
    valid_until = None if answer.valid_until is None else answer.valid_until.isoformat()
    request = await session.get(Message, consent.request_message_id)
    assert request is not None  # a foreign key
    verdict = ConsentStatus.GRANTED if grant else ConsentStatus.REFUSED
    draft = {
        "type": CONSENT_TYPE,
        "recipient": consent.requester_id,
        "in_reply_to": consent.request_message_id,
        "legal_basis": answer.legal_basis or request.legal_basis,
        "purpose": consent.purpose,
        "transfer_basis": answer.transfer_basis,
        "body": {
            "consent": verdict.value,
            "consent_id": consent.id,
            "root_message_id": consent.root_message_id,
            "recipient": consent.recipient_id,
            "purpose": consent.purpose,
            "reasons": answer.reasons,
            "grounds": answer.grounds,
            "conditions": answer.conditions,
            "valid_until": valid_until,
        },
    }
    outcome = await messages.sign_and_accept(
        session,
        ctx=ctx,
        draft={k: v for k, v in draft.items() if v is not None},
        request=messages.AcceptRequest(
            known={
                "case_type": "fiu",
                "case_event": "grant_consent" if grant else "refuse_consent",
                "case_fields": _reasons_given(answer.reasons),
                "grounds": frozenset(answer.grounds),
            }
        ),
    )
    if isinstance(outcome, messages.Refused):
        return outcome
    consent.status = verdict.value
    consent.reasons = answer.reasons
    consent.grounds = list(answer.grounds)
    consent.conditions = list(answer.conditions)
    consent.valid_until = answer.valid_until
    consent.answer_message_id = outcome.message_id
    consent.answered_at = utcnow()
    consent.answered_by = caller.account_id
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.CONSENT_GRANTED if grant else AuditKind.CONSENT_REFUSED,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=caller.participant_id,
        message_id=consent.root_message_id,
        consent_id=consent.id,
        provider=consent.provider_id,
        requester=consent.requester_id,
        recipient=consent.recipient_id,
        texts={"purpose": consent.purpose},
        grounds=list(answer.grounds) or None,
        conditions=len(answer.conditions) or None,
        valid_until=valid_until,
        request_message_id=consent.request_message_id,
        answer_message_id=outcome.message_id,
    )
    return consent


__all__ = [
    "CONSENT_TYPE",
    "ConsentOnRecord",
    "answer_consent",
    "consents_on_record",
    "get_consent",
    "list_consents",
    "message_consents_under",
    "request_consent",
]
