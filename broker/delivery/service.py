"""The outbox relay: move accepted messages into their recipients' inboxes.

One relay writes at a time (a PostgreSQL transaction-scoped advisory lock; on SQLite the
``BEGIN IMMEDIATE`` write lock), so inbox sequence numbers grow in commit order and an inbox
cursor never skips a message. Each batch is one transaction: inbox entries, the messages'
``delivered`` status, one ``message:delivered`` leaf per message, and the removal of the
outbox rows commit together, so a crash at any point leaves the rows to be relayed again.
"""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.db import utcnow
from broker.delivery.models import OutboxEntry
from broker.messages.models import InboxEntry, Message, MessageStatus
from broker.oversight.models import AuditEvent
from broker.oversight.service import AuditKind, audit_row

RELAY_LOCK_KEY = 0x50414C45524D4F  # "PALERMO"


async def relay_outbox(session: AsyncSession, *, node_id: str, batch_size: int) -> int:
    """Deliver up to ``batch_size`` outbox rows to the inbox; return how many. Flushes; the
    caller commits."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RELAY_LOCK_KEY})
    rows = (
        await session.execute(
            select(OutboxEntry.id, OutboxEntry.message_id, OutboxEntry.recipient_id)
            .order_by(OutboxEntry.id)
            .limit(batch_size)
        )
    ).all()
    if not rows:
        return 0
    now = utcnow()
    ids = [r.message_id for r in rows]
    already = set(
        (
            await session.scalars(
                select(InboxEntry.message_id).where(InboxEntry.message_id.in_(ids))
            )
        ).all()
    )
    fresh = [r for r in rows if r.message_id not in already]
    if fresh:
        await session.execute(
            insert(InboxEntry),
            [{"recipient_id": r.recipient_id, "message_id": r.message_id} for r in fresh],
        )
        await session.execute(
            update(Message)
            .where(Message.id.in_([r.message_id for r in fresh]))
            .where(Message.status == MessageStatus.ACCEPTED)
            .values(status=MessageStatus.DELIVERED.value, delivered_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            insert(AuditEvent),
            [
                audit_row(
                    kind=AuditKind.MESSAGE_DELIVERED,
                    node=node_id,
                    actor=None,
                    participant_id=r.recipient_id,
                    message_id=r.message_id,
                    at=now,
                    recipient=r.recipient_id,
                    adapter="inbox",
                )
                for r in fresh
            ],
        )
    await session.execute(delete(OutboxEntry).where(OutboxEntry.id.in_([r.id for r in rows])))
    return len(rows)


async def outbox_depth(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(OutboxEntry)) or 0)
