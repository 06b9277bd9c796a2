"""Onward transmission: the holder of received material forwards it to another participant.

A forward is a NEW envelope, signed by the forwarding participant (by the node with its
custodial key for a draft, or by the participant itself), whose payload names the original in
``forwarded_from``. It is decided like any message, with ``Context.forwarding`` filled from
the stored terms of the original and ``Context.consents`` from the consents on record for
that material (``service.consents_on_record``: both doors, valid at the time of the
forward), and stored by the same path as a submission (``broker.messages.accept``). It lives
with consents, which it reads, and uses messages only through ``broker.messages``' public
names.

Invariants:
- Only the recipient of a delivered message forwards it; its sender gets 403 (a provider
  sends its own material as a new message), anyone else 404.
- A forward carries every restriction that binds the original (``payload.restrictions``):
  the node adds them to a draft; a self-signed envelope without them is refused (422).
- A forward carries the conditions of every consent on record for its recipient and purpose
  as restrictions (P9, UNTOC art. 18(26)): the node adds them to a draft; a self-signed
  envelope without them is refused (422).
- A draft keeps the original's handling (code and restriction text) and, for what it leaves
  out, its type, legal basis, purpose, categories, data subjects, evaluation, language,
  attachments and body; the node copies them without the caller reading them again.
- A denial stores nothing but the ``message:refused`` leaf and lists every failing rule with
  its citation, and the consents that would lift it (``require_consent`` obligations).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import messages
from broker.cases.models import Case, CaseEvent
from broker.consents.service import ConsentOnRecord, consents_on_record
from broker.core.context import NodeContext
from broker.core.errors import SchemaViolation
from broker.envelopes.schemas import MessagePayload
from broker.messages.models import Message
from broker.messages.policy import Terms
from broker.participants.models import Participant
from broker.policy.service import PolicyContext

# What a forward draft takes from the original when it leaves it out.
INHERITED = (
    "type",
    "legal_basis",
    "purpose",
    "data_categories",
    "data_subjects",
    "handling",
    "evaluation",
    "statement_kind",
    "language",
    "attachments",
    "body",
)


def conditions_for(
    consents: tuple[ConsentOnRecord, ...], *, held: Terms, recipient: object, purpose: object
) -> tuple[str, ...]:
    """The conditions of the consents on record for this very use (the provider of the
    material, this recipient, this purpose): restrictions the forward carries (P9, UNTOC art.
    18(26))."""
    if not isinstance(recipient, str) or not isinstance(purpose, str | None):
        return ()
    return tuple(
        dict.fromkeys(
            condition
            for c in consents
            if c.covers(provider=held.provider_id, recipient=recipient, purpose=purpose)
            for condition in c.conditions
        )
    )


def complete_draft(
    draft: dict[str, Any],
    *,
    original: dict[str, Any],
    held: Terms,
    message_id: str,
    consents: tuple[ConsentOnRecord, ...] = (),
) -> dict[str, Any]:
    """The forward draft with what it leaves out taken from the original payload, its
    ``forwarded_from`` set, and every restriction of the original added, with the conditions
    of the consents on record for its recipient and purpose.

    Raises SchemaViolation: the draft names another message in ``forwarded_from``.
    """
    given = draft.get("forwarded_from")
    if given is not None and given != message_id:
        raise SchemaViolation(
            f"forwarded_from must be the message forwarded, {message_id}",
            field="draft.forwarded_from",
        )
    completed = {key: original[key] for key in INHERITED if key in original and key not in draft}
    completed.update(draft)
    completed["forwarded_from"] = message_id
    extra = draft.get("restrictions", [])
    if isinstance(extra, list):
        conditions = conditions_for(
            consents,
            held=held,
            recipient=completed.get("recipient"),
            purpose=completed.get("purpose"),
        )
        completed["restrictions"] = list(dict.fromkeys([*held.travelling, *conditions, *extra]))
    return completed


def check_forward(
    payload: MessagePayload,
    *,
    message_id: str,
    held: Terms,
    consents: tuple[ConsentOnRecord, ...] = (),
) -> None:
    """Raises SchemaViolation: the payload forwards another message, drops a restriction, or
    leaves out a condition of a consent on record for its recipient and purpose."""
    if str(payload.forwarded_from) != message_id:
        raise SchemaViolation(
            f"forwarded_from must be the message forwarded, {message_id}",
            field="payload.forwarded_from",
        )
    missing = [r for r in held.travelling if r not in payload.restrictions]
    if missing:
        raise SchemaViolation(
            f"a forward carries every restriction of the original; missing: {missing[0]!r}",
            field="payload.restrictions",
            missing=missing,
        )
    conditions = conditions_for(
        consents, held=held, recipient=payload.recipient, purpose=payload.purpose
    )
    unmet = [c for c in conditions if c not in payload.restrictions]
    if unmet:
        raise SchemaViolation(
            "a forward carries the conditions of the consent on record for its recipient and "
            f"purpose as restrictions (P9); missing: {unmet[0]!r}",
            field="payload.restrictions",
            missing=unmet,
        )


async def _received_in(
    session: AsyncSession, message_id: str
) -> tuple[str | None, str | None, frozenset[str]]:
    """The case a message carried an event of, if any: its id, its type, and the records now
    on file in it (``Projection.records``: an ``exculpatory_notice``, a
    ``written_confirmation``)."""
    row = (
        await session.execute(
            select(Case.id, Case.case_type, Case.projection)
            .join(CaseEvent, CaseEvent.case_id == Case.id)
            .where(CaseEvent.message_id == message_id)
        )
    ).first()
    if row is None:
        return None, None, frozenset()
    return row.id, row.case_type, frozenset(row.projection.get("records", ()))


def _payload_of(node: NodeContext, message: Message) -> dict[str, Any]:
    envelope = messages.open_envelope(node, message)
    payload: dict[str, Any] = orjson.loads(base64.b64decode(envelope["payload"]))
    return payload


async def forward(
    session: AsyncSession,
    *,
    ctx: PolicyContext,
    message_id: str,
    body: bytes,
) -> messages.Accepted | messages.Refused:
    """Forward the material of ``message_id``: ``body`` is ``{"draft": {...}}`` (the node signs
    with the caller's custodial key) or a DSSE envelope whose payload has ``forwarded_from``.
    Flushes; the caller commits.

    Raises NotFound, Forbidden, InvalidState (see ``messages.held_message``), SchemaViolation,
    and the envelope errors of ``messages.submit``. A policy denial is returned as ``Refused``.
    """
    node, caller = ctx.node, ctx.caller
    original = await messages.held_message(session, caller=caller, message_id=message_id)
    data = messages.load_body(node, body)
    held = await messages.terms_of(session, original)
    now = ctx.now
    on_record = await consents_on_record(session, root_message_id=held.root_message_id, now=now)
    if isinstance(data, dict) and isinstance(data.get("draft"), dict):
        completed = complete_draft(
            data["draft"],
            original=_payload_of(node, original),
            held=held,
            message_id=message_id,
            consents=on_record,
        )
        data = {**data, "draft": completed}
    signed = await messages.verified_submission(
        session, node=node, caller=caller, data=data, now=now
    )
    check_forward(signed.payload, message_id=message_id, held=held, consents=on_record)
    provider_kind = (
        await session.execute(select(Participant.kind).where(Participant.id == held.provider_id))
    ).scalar_one()
    consents = tuple(c.for_engine() for c in on_record)
    # P5 (UNTOC art. 18(19)): the material is the root message's, whichever forward of it is
    # forwarded now, so the case it came in through decides every later hop too.
    case_id, case_type, case_records = await _received_in(session, held.root_message_id)
    forwarding = held.forwarding(provider_kind, case_type=case_type, case_records=case_records)
    return await messages.accept(
        session,
        ctx=ctx,
        signed=signed,
        request=messages.AcceptRequest(
            held=held,
            known={"forwarding": forwarding, "consents": consents},
            # P5.late: informing the requested State is followed up in the case it came in.
            follow_up_case_id=case_id,
        ),
    )


__all__ = [
    "INHERITED",
    "check_forward",
    "complete_draft",
    "conditions_for",
    "forward",
]
