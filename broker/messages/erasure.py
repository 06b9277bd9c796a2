"""Crypto-shredding of messages at the end of their retention (P17; LED art. 4(1)(e), 5).

Erasing a message destroys every wrapped copy of its content key (the node's, and the copies
sealed to the sender and to the recipient) and deletes its ciphertext; the row keeps the
metadata the audit log and the statistics need (parties, type, times, digest, policy
decision) and ``erased_at``. Its declared purpose, free text that may name a person, goes
too: from the row, from its terms, and the text its audit leaf commits to. Its outbox row,
if it was never delivered, goes as well: there is nothing left to deliver. Each erased
message gets one ``content:erased`` audit leaf, in the caller's transaction.

Invariants: an erased message has ``ciphertext``, ``key_for_node``, ``key_for_sender`` and
``key_for_recipient`` NULL and ``erased_at`` set; nothing is erased before its
``retention_until``; services flush, the caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.context import NO_ACTOR, NodeContext
from broker.messages.keys import as_utc
from broker.messages.models import Message, MessageApproval, MessageTerms, OutboxEntry
from broker.oversight.service import AuditKind, erase_texts, record_event


async def erase_messages(
    session: AsyncSession,
    *,
    node: NodeContext,
    messages: Sequence[Message],
    now: dt.datetime,
    case_id: str | None = None,
) -> list[str]:
    """Shred ``messages`` (those not erased yet), each with its ``content:erased`` leaf;
    return their ids. ``case_id`` names the case whose expiry erases them. Flushes."""
    erased: list[str] = []
    for m in messages:
        if m.erased_at is not None:
            continue
        m.ciphertext = None
        m.key_for_node = None
        m.key_for_sender = None
        m.key_for_recipient = None
        m.purpose = None
        m.erased_at = now
        erased.append(m.id)
        await record_event(
            session,
            kind=AuditKind.CONTENT_ERASED,
            node=node.node_id,
            actor=NO_ACTOR,
            participant_id=m.sender_id,
            message_id=m.id,
            at=now,
            item="message",
            case_id=case_id or m.case_id,
            retention_until=m.retention_until,
            envelope_sha256=m.envelope_sha256,
        )
    if erased:
        await session.execute(delete(OutboxEntry).where(OutboxEntry.message_id.in_(erased)))
        await session.execute(
            update(MessageTerms)
            .where(MessageTerms.message_id.in_(erased))
            .values(original_purpose=None, permitted_purposes=[])
            .execution_options(synchronize_session=False)
        )
        # The justifications of their readings, any review's reasons and their purposes (the
        # texts their leaves commit to) go with them; so do the reasons of a supervisor who
        # rejected one held for approval.
        await erase_texts(session, message_ids=erased)
        await session.execute(
            update(MessageApproval)
            .where(MessageApproval.message_id.in_(erased), MessageApproval.reason.is_not(None))
            .values(reason=None)
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    return erased


async def backfill_deadlines(session: AsyncSession, *, node: NodeContext, limit: int = 500) -> int:
    """Give up to ``limit`` plain messages without a retention deadline (accepted before
    revision 0009 brought deadlines) the node's default from their acceptance; return how
    many. Their policy decision's P17 obligation was not kept then, so the default applies
    (``PALERMO_RETENTION_MESSAGE_DAYS``), never "for ever". A case's messages follow the case
    and are left alone. Flushes."""
    rows = (
        await session.scalars(
            select(Message)
            .where(
                Message.retention_until.is_(None),
                Message.case_id.is_(None),
                Message.erased_at.is_(None),
            )
            .order_by(Message.id)
            .limit(limit)
        )
    ).all()
    default = dt.timedelta(days=node.retention_message_days)
    for m in rows:
        m.retention_until = as_utc(m.accepted_at) + default
    await session.flush()
    return len(rows)


async def due_message_ids(session: AsyncSession, *, now: dt.datetime, limit: int) -> list[str]:
    """Messages past their retention deadline and not erased yet, oldest deadline first."""
    stmt = (
        select(Message.id)
        .where(Message.retention_until <= now, Message.erased_at.is_(None))
        .order_by(Message.retention_until)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def erase_due_messages(
    session: AsyncSession, *, node: NodeContext, now: dt.datetime, limit: int = 500
) -> list[str]:
    """Erase up to ``limit`` messages whose retention has ended; return their ids. Flushes."""
    ids = await due_message_ids(session, now=now, limit=limit)
    if not ids:
        return []
    rows = (
        await session.scalars(
            select(Message).where(Message.id.in_(ids)).order_by(Message.id).with_for_update()
        )
    ).all()
    due = [m for m in rows if m.retention_until is not None and m.retention_until <= now]
    return await erase_messages(session, node=node, messages=due, now=now)
