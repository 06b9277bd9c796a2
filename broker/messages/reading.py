"""Reading: a message served to its sender and recipient, and what the recipient holds.

Invariants:
- only the sender and the recipient see a message (anyone else gets NotFound: existence is
  not disclosed); content is served only with a justification, and each serving is an
  audit leaf (``content:consulted``);
- ``held_message`` is the one answer to "the delivered message the caller holds": received
  by the caller's participant, and delivered (what forwarding and consent requests start
  from).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core import crypto
from broker.core.context import Caller, NodeContext
from broker.core.errors import (
    ContentErased,
    Forbidden,
    InvalidState,
    NotFound,
    UnservableContent,
)
from broker.core.jsonlimits import JsonShapeError, check_json
from broker.core.text import justification as justified
from broker.envelopes import dsse
from broker.messages.approvals import HELD, approvals_of
from broker.messages.issuing import NOTICE_TYPE
from broker.messages.models import (
    DeliveryAttempt,
    InboxEntry,
    Message,
    MessageApproval,
    MessageStatus,
    MessageTerms,
)
from broker.messages.policy import Terms, default_terms
from broker.oversight.service import record_consultation


async def terms_of(session: AsyncSession, message: Message) -> Terms:
    """The terms of onward use of an accepted message: its stored row, else the defaults its
    ``messages`` row implies."""
    row = await session.get(MessageTerms, message.id)
    if row is None:
        return default_terms(
            message_id=message.id,
            sender=message.sender_id,
            recipient=message.recipient_id,
            purpose=message.purpose,
            handling_code=message.handling_code,
        )
    return Terms(
        root_message_id=row.root_message_id,
        provider_id=row.provider_id,
        original_purpose=row.original_purpose,
        permitted_recipients=frozenset(row.permitted_recipients),
        permitted_purposes=frozenset(row.permitted_purposes),
        handling_code=row.handling_code,
        handling_restriction=row.handling_restriction,
        restrictions=tuple(row.restrictions),
        forwarded_from=row.forwarded_from,
        handling_texts=tuple(row.handling_texts or ()),
    )


@dataclass(frozen=True, slots=True)
class Shown:
    """What a message's metadata shows beside its row: the restrictions and handling texts
    that bind every reader (P9, P12), and, to its sender, the approval it is held for."""

    handling_restriction: str | None = None
    handling_texts: tuple[str, ...] = ()
    restrictions: tuple[str, ...] = ()
    approval: MessageApproval | None = None


async def shown_for(
    session: AsyncSession, *, caller: Caller, rows: Sequence[Message]
) -> dict[str, Shown]:
    """``Shown`` of each message in ``rows``, in two reads."""
    ids = [m.id for m in rows]
    if not ids:
        return {}
    terms = {
        t.message_id: t
        for t in await session.scalars(select(MessageTerms).where(MessageTerms.message_id.in_(ids)))
    }
    sent = [m.id for m in rows if m.sender_id == caller.participant_id]
    held = await approvals_of(session, sent)
    out: dict[str, Shown] = {}
    for m in rows:
        t = terms.get(m.id)
        restrictions: tuple[str, ...] = ()
        if t is not None:
            extra = (t.handling_restriction,) if t.handling_restriction else ()
            restrictions = tuple(dict.fromkeys((*t.restrictions, *extra)))
        out[m.id] = Shown(
            handling_restriction=t.handling_restriction if t else None,
            handling_texts=tuple(t.handling_texts or ()) if t else (),
            restrictions=restrictions,
            approval=held.get(m.id),
        )
    return out


async def get_message_for(session: AsyncSession, *, caller: Caller, message_id: str) -> Message:
    """The message, if the caller's participant sent or received it. Raises NotFound (also
    for messages of others: existence is not disclosed)."""
    try:
        uuid.UUID(message_id)
    except ValueError as exc:
        raise NotFound(f"no message {message_id}") from exc
    message = await session.get(Message, message_id)
    if message is None or caller.participant_id not in (message.sender_id, message.recipient_id):
        raise NotFound(f"no message {message_id}")
    if message.status in HELD and caller.participant_id != message.sender_id:
        # Held for a supervisor's approval, or rejected: it has not left the sender.
        raise NotFound(f"no message {message_id}")
    return message


async def held_message(
    session: AsyncSession,
    *,
    caller: Caller,
    message_id: str,
    forbidden: str = (
        "only the recipient of a message uses it onward; as its sender, send your "
        "material as a new message"
    ),
) -> Message:
    """The delivered message ``message_id`` if the caller's participant received it: what
    the caller holds, and may use onward (forward, ask consent for).

    Raises NotFound (not the caller's), Forbidden with ``forbidden`` (the caller sent it),
    InvalidState (not yet delivered).
    """
    message = await get_message_for(session, caller=caller, message_id=message_id)
    if message.recipient_id != caller.participant_id:
        raise Forbidden(forbidden)
    if message.status == MessageStatus.ACCEPTED:
        raise InvalidState("the message is not yet delivered to your inbox")
    return message


def open_envelope(node: NodeContext, message: Message) -> dict[str, Any]:
    """The stored envelope. Raises ContentErased (410) once the message was erased."""
    if message.key_for_node is None or message.ciphertext is None:
        raise erased_error(message)
    key = crypto.secretbox_decrypt(node.master_key, message.key_for_node)
    envelope: dict[str, Any] = orjson.loads(crypto.secretbox_decrypt(key, message.ciphertext))
    return envelope


def erased_error(message: Message) -> ContentErased:
    """The 410 problem of an erased message, naming the erasure date."""
    return ContentErased(
        f"the content of message {message.id}", message.erased_at, message_id=message.id
    )


def countersigned_envelope(node: NodeContext, message: Message) -> dsse.VerifiedEnvelope:
    """The stored envelope, once its last signature (the countersignature this node added
    at acceptance) verified under the node's signing key: what delivery hands an adapter.
    Raises BadSignature (not countersigned by this node's key)."""
    envelope = dsse.parse_envelope(open_envelope(node, message))
    return dsse.verify_signature(envelope, len(envelope.signatures) - 1, node.signer.public_key)


def servable_payload(message_id: str, raw: bytes) -> dict[str, Any]:
    """The decoded payload of a stored message, if it can be served: JSON within the limits
    that ingress now enforces (a message stored before them may be deeper than a response can
    nest). Raises UnservableContent, before anything is recorded."""
    try:
        payload: dict[str, Any] = check_json(orjson.loads(raw), what="its payload")
    except (orjson.JSONDecodeError, JsonShapeError) as exc:
        raise UnservableContent(
            f"message {message_id} was stored with content this node cannot serve ({exc}); "
            "its envelope and metadata are unchanged"
        ) from exc
    return payload


async def read_content(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    message_id: str,
    justification: str | None,
    min_justification: int,
) -> tuple[Message, dict[str, Any], dict[str, Any]]:
    """The countersigned envelope and its decoded payload; writes a ``content:consulted`` leaf.
    Raises NotFound, ContentErased, JustificationRequired, UnservableContent (and writes no
    leaf)."""
    message = await get_message_for(session, caller=caller, message_id=message_id)
    if message.erased_at is not None:
        raise erased_error(message)
    if caller.participant_id == message.recipient_id and message.status == MessageStatus.ACCEPTED:
        raise InvalidState("the message is not yet delivered to your inbox")
    text = justified(justification, minimum=min_justification, what="content")
    envelope = open_envelope(node, message)
    payload = servable_payload(message.id, base64.b64decode(envelope["payload"]))
    await record_consultation(
        session,
        node=node.node_id,
        actor=caller.actor(),
        justification=text,
        message_id=message.id,
        envelope_sha256=message.envelope_sha256,
        role="recipient" if caller.participant_id == message.recipient_id else "sender",
    )
    return message, envelope, payload


async def list_inbox(
    session: AsyncSession, *, caller: Caller, after: int, limit: int
) -> list[tuple[int, Message]]:
    stmt = (
        select(InboxEntry.seq, Message)
        .join(Message, Message.id == InboxEntry.message_id)
        .where(InboxEntry.recipient_id == caller.participant_id, InboxEntry.seq > after)
        .order_by(InboxEntry.seq)
        .limit(limit)
    )
    return [(seq, msg) for seq, msg in (await session.execute(stmt)).all()]


async def list_sent(
    session: AsyncSession,
    *,
    caller: Caller,
    limit: int,
    before: str | None,
    to_others: bool = False,
) -> list[Message]:
    """Messages the caller's participant sent, newest first, never the node's notices to it
    (``broker.messages.issuing``). ``to_others`` leaves out those it sent to itself (a case's
    events before the case is shared: drafting, vetting)."""
    stmt = select(Message).where(
        Message.sender_id == caller.participant_id, Message.type != NOTICE_TYPE
    )
    if to_others:
        stmt = stmt.where(Message.recipient_id != caller.participant_id)
    if before:
        stmt = stmt.where(Message.id < before)
    stmt = stmt.order_by(Message.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def attempts_of(session: AsyncSession, message_id: str) -> list[dict[str, Any]]:
    """Every delivery attempt of a message, oldest first, as the status view shows them."""
    rows = (
        await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.message_id == message_id)
            .order_by(DeliveryAttempt.id)
        )
    ).all()
    return [
        {
            "attempt": a.attempt,
            "adapter": a.adapter,
            "started_at": a.started_at,
            "finished_at": a.finished_at,
            "outcome": a.outcome,
            "error": a.error,
        }
        for a in rows
    ]


__all__ = [
    "attempts_of",
    "countersigned_envelope",
    "erased_error",
    "get_message_for",
    "held_message",
    "list_inbox",
    "list_sent",
    "open_envelope",
    "read_content",
    "servable_payload",
    "shown_for",
    "terms_of",
]
