"""The inbox and sent lists with filters: message type, counterpart, status, handling code
and urgency, each a plain equality on a column of ``messages``, and cursor paging (the inbox by its
delivery sequence, oldest first; sent by message id, newest first).

Invariants: a list holds only messages the caller's participant received (inbox) or sent
(sent); a filter only narrows it; a page is one statement whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from broker.core.context import Caller
from broker.messages.approvals import HELD
from broker.messages.issuing import NOTICE_TYPE
from broker.messages.models import InboxEntry, Message, MessageStatus

STATUSES = tuple(s.value for s in MessageStatus)
"""The statuses a list may be filtered by, in the order of a message's life."""


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What a list is narrowed to; ``None`` or an empty string filters nothing."""

    type: str | None = None
    counterpart: str | None = None
    status: str | None = None
    handling_code: str | None = None
    urgent: bool | None = None
    """True: only urgent messages (an urgent request, a notice of an urgent case)."""

    def active(self) -> bool:
        return any((self.type, self.counterpart, self.status, self.handling_code, self.urgent))


def _conditions(f: MessageFilter, counterpart: Any) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.type:
        out.append(Message.type == f.type)
    if f.counterpart:
        out.append(counterpart == f.counterpart)
    if f.status:
        out.append(Message.status == f.status)
    if f.handling_code:
        out.append(Message.handling_code == f.handling_code)
    if f.urgent is not None:
        out.append(Message.urgent.is_(f.urgent))
    return out


async def filtered_inbox(
    session: AsyncSession, *, caller: Caller, where: MessageFilter, after: int, limit: int
) -> list[tuple[int, Message]]:
    """Messages delivered to the caller's participant after the inbox cursor ``after``,
    oldest first, with their sequence numbers (the next page's cursor is the last one)."""
    stmt = (
        select(InboxEntry.seq, Message)
        .join(Message, Message.id == InboxEntry.message_id)
        .where(InboxEntry.recipient_id == caller.participant_id, InboxEntry.seq > after)
        .where(*_conditions(where, Message.sender_id))
        .order_by(InboxEntry.seq)
        .limit(limit)
    )
    return [(seq, msg) for seq, msg in (await session.execute(stmt)).all()]


async def urgent_unread(session: AsyncSession, *, caller: Caller, limit: int) -> list[Message]:
    """Urgent messages delivered to the caller's participant and not yet receipted, oldest
    first: what an inbox shows before the rest."""
    stmt = (
        select(Message)
        .join(InboxEntry, InboxEntry.message_id == Message.id)
        .where(
            InboxEntry.recipient_id == caller.participant_id,
            Message.urgent.is_(True),
            Message.status == MessageStatus.DELIVERED.value,
        )
        .order_by(InboxEntry.seq)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def filtered_sent(
    session: AsyncSession, *, caller: Caller, where: MessageFilter, before: str | None, limit: int
) -> list[Message]:
    """Messages the caller's participant sent, newest first (ids are UUIDv7, so time
    ordered), those with an id below ``before`` when given; never the node's notices to it
    (``broker.messages.issuing``), which it did not send."""
    stmt = select(Message).where(
        Message.sender_id == caller.participant_id,
        Message.type != NOTICE_TYPE,
        *_conditions(where, Message.recipient_id),
    )
    if before:
        stmt = stmt.where(Message.id < before)
    stmt = stmt.order_by(Message.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def message_types(session: AsyncSession, *, caller: Caller) -> list[str]:
    """The message types the caller's participant sent or received, for the filter form."""
    me = caller.participant_id
    # A union of the two sides, each read from its (party, type) index alone; an OR of the
    # two would read every row the participant sent or received.
    sent = select(Message.type).where(Message.sender_id == me)
    # A message held for approval, or rejected, has not reached its recipient (not even its
    # type); the few such rows are read past the index.
    received = select(Message.type).where(
        Message.recipient_id == me, Message.status.not_in(sorted(HELD))
    )
    stmt = union(sent, received).order_by("type")
    return list((await session.scalars(stmt)).all())
