"""Completing deliveries: an outbox row leaves the outbox, delivered to an inbox or recorded
as a push adapter's outcome (delivered, retried later, or dead-lettered), with a receipt a
push adapter brought back.

Invariants:
- An outbox row leaves the outbox only in the transaction that records the delivery (inbox
  entry or push outcome, message status, one ``message:delivered`` leaf, one attempt row),
  so a crash at any point leaves it to be claimed again; and a row deleted by one
  transaction is not seen by another, so two tasks holding the same ids (a redelivered task,
  an expired lease) deliver and audit it once.
- Inbox deliveries are written under one lock (a PostgreSQL transaction-scoped advisory lock;
  on SQLite the ``BEGIN IMMEDIATE`` write lock), so inbox sequence numbers grow in commit
  order and an inbox cursor never skips a message.
- A failed attempt increments ``attempts`` and sets ``next_attempt_at`` by exponential backoff
  with jitter; after ``max_attempts`` (or a permanent refusal) the row is dead-lettered: the
  relay skips it, the message shows ``dead_lettered``, and a ``message:dead_lettered`` leaf
  is written.

Functions take the session first and flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

import adapters
from broker.core.context import Actor
from broker.core.db import utcnow
from broker.delivery.models import DeliveryAttempt, DeliveryOutcome, OutboxEntry
from broker.delivery.outbox import PRIORITY, Pending, PushOutcome, RetryPolicy
from broker.messages.models import InboxEntry, Message, MessageStatus
from broker.oversight.models import AuditEvent
from broker.oversight.service import AuditKind, audit_row, record_event
from broker.participants.models import Participant

INBOX_LOCK_KEY = 0x50414C45524D4F  # "PALERMO"
RELAY_LOCK_KEY = INBOX_LOCK_KEY  # the name earlier code used
_O = OutboxEntry.__table__.c


async def _take_inbox_lock(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": INBOX_LOCK_KEY})


async def complete_inbox(
    session: AsyncSession, *, node_id: str, outbox_ids: Sequence[int], adapter: str = "inbox"
) -> list[str]:
    """Deliver these outbox rows to their recipients' inboxes, under the inbox lock; return the
    ids of the messages this transaction delivered (rows another transaction already took are
    left to it). Flushes; the caller commits, which releases the lock."""
    if not outbox_ids:
        return []
    await _take_inbox_lock(session)
    taken = (
        await session.execute(
            delete(OutboxEntry)
            .where(OutboxEntry.id.in_(list(outbox_ids)), OutboxEntry.dead_lettered_at.is_(None))
            .returning(
                OutboxEntry.id,
                OutboxEntry.message_id,
                OutboxEntry.recipient_id,
                _O.attempts,
                OutboxEntry.priority,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not taken:
        return []
    # Inbox order follows delivery order: urgent first, then acceptance order.
    taken = sorted(taken, key=lambda r: (r.priority, r.id))
    now = utcnow()
    ids = [r.message_id for r in taken]
    already = set(
        (
            await session.scalars(
                select(InboxEntry.message_id).where(InboxEntry.message_id.in_(ids))
            )
        ).all()
    )
    fresh = [r for r in taken if r.message_id not in already]
    if fresh:
        await session.execute(
            insert(InboxEntry),
            [{"recipient_id": r.recipient_id, "message_id": r.message_id} for r in fresh],
        )
    await _mark_delivered(session, ids, now)
    await session.execute(
        insert(DeliveryAttempt),
        [
            {
                "message_id": r.message_id,
                "attempt": r.attempts + 1,
                "adapter": adapter,
                "started_at": now,
                "finished_at": now,
                "outcome": DeliveryOutcome.DELIVERED,
                "error": None,
                "detail": None,
            }
            for r in taken
        ],
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
                adapter=adapter,
                attempt=r.attempts + 1,
            )
            for r in taken
        ],
    )
    return ids


async def _mark_delivered(session: AsyncSession, message_ids: list[str], now: dt.datetime) -> None:
    await session.execute(
        update(Message)
        .where(Message.id.in_(message_ids))
        .where(Message.status.in_([MessageStatus.ACCEPTED, MessageStatus.DEAD_LETTERED]))
        .values(status=MessageStatus.DELIVERED.value, delivered_at=now)
        .execution_options(synchronize_session=False)
    )


async def _lock_rows(session: AsyncSession, outbox_ids: Iterable[int]) -> dict[int, int]:
    """Lock the rows still in the outbox and not dead-lettered; return id -> attempts. Rows
    another transaction holds are skipped: that transaction records them."""
    rows = (
        await session.execute(
            select(OutboxEntry.id, OutboxEntry.attempts)
            .where(OutboxEntry.id.in_(list(outbox_ids)), OutboxEntry.dead_lettered_at.is_(None))
            .order_by(OutboxEntry.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    return {r.id: r.attempts for r in rows}


async def record_push_outcomes(
    session: AsyncSession,
    *,
    node_id: str,
    outcomes: Sequence[PushOutcome],
    policy: RetryPolicy,
    receipts: dict[str, tuple[str, str]] | None = None,
) -> dict[str, int]:
    """Record what push adapters answered: every attempt; a delivery completes (outbox row
    removed, status, leaf); a failure is rescheduled with backoff or dead-lettered.
    ``receipts`` maps a message id to (receipt JSON, receipt digest) for receipts the caller
    verified. Returns counts by outcome. Flushes; the caller commits."""
    counts = {"delivered": 0, "retry": 0, "dead_lettered": 0}
    if not outcomes:
        return counts
    held = await _lock_rows(session, (o.pending.outbox_id for o in outcomes))
    now = utcnow()
    await session.execute(
        insert(DeliveryAttempt),
        [
            {
                "message_id": o.pending.message_id,
                "attempt": o.pending.attempt,
                "adapter": o.pending.adapter,
                "started_at": o.started_at,
                "finished_at": o.finished_at,
                "outcome": DeliveryOutcome.DELIVERED
                if o.result.delivered
                else DeliveryOutcome.REJECTED
                if o.result.permanent
                else DeliveryOutcome.FAILED,
                "error": o.result.error,
                "detail": o.result.detail or None,
            }
            for o in outcomes
        ],
    )
    mine = [o for o in outcomes if o.pending.outbox_id in held]
    delivered = [o for o in mine if o.result.delivered]
    if delivered:
        await session.execute(
            delete(OutboxEntry).where(OutboxEntry.id.in_([o.pending.outbox_id for o in delivered]))
        )
        await _mark_delivered(session, [o.pending.message_id for o in delivered], now)
        await session.execute(
            insert(AuditEvent),
            [
                audit_row(
                    kind=AuditKind.MESSAGE_DELIVERED,
                    node=node_id,
                    actor=None,
                    participant_id=o.pending.recipient_id,
                    message_id=o.pending.message_id,
                    at=now,
                    recipient=o.pending.recipient_id,
                    adapter=o.pending.adapter,
                    attempt=o.pending.attempt,
                )
                for o in delivered
            ],
        )
        for o in delivered:
            if receipts and o.pending.message_id in receipts:
                receipt_json, receipt_digest = receipts[o.pending.message_id]
                await _record_receipt(session, node_id, o.pending, receipt_json, receipt_digest)
        counts["delivered"] = len(delivered)
    for o in mine:
        if o.result.delivered:
            continue
        failed = held[o.pending.outbox_id] + 1
        if o.result.permanent or failed >= policy.max_attempts:
            await _dead_letter(session, node_id, o.pending, failed, o.result.error, now)
            counts["dead_lettered"] += 1
        else:
            await session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == o.pending.outbox_id)
                .values(
                    attempts=failed,
                    next_attempt_at=now + dt.timedelta(seconds=policy.delay(failed)),
                    leased_until=None,
                    last_error=o.result.error,
                )
            )
            counts["retry"] += 1
    return counts


async def _record_receipt(
    session: AsyncSession, node_id: str, pending: Pending, receipt_json: str, digest: str
) -> None:
    now = utcnow()
    result = await session.execute(
        update(Message)
        .where(Message.id == pending.message_id, Message.receipt.is_(None))
        .values(receipt=receipt_json, receipted_at=now, status=MessageStatus.RECEIPTED.value)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0):
        envelope_sha256 = await session.scalar(
            select(Message.envelope_sha256).where(Message.id == pending.message_id)
        )
        await record_event(
            session,
            kind=AuditKind.MESSAGE_RECEIPTED,
            node=node_id,
            actor=Actor(pending.recipient_id),
            participant_id=pending.recipient_id,
            message_id=pending.message_id,
            receipt_sha256=digest,
            envelope_sha256=envelope_sha256,
            adapter=pending.adapter,
        )


async def _dead_letter(
    session: AsyncSession,
    node_id: str,
    pending: Pending,
    attempts: int,
    error: str | None,
    now: dt.datetime,
) -> None:
    await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.id == pending.outbox_id)
        .values(attempts=attempts, dead_lettered_at=now, leased_until=None, last_error=error)
    )
    await session.execute(
        update(Message)
        .where(Message.id == pending.message_id, Message.status == MessageStatus.ACCEPTED)
        .values(status=MessageStatus.DEAD_LETTERED.value)
        .execution_options(synchronize_session=False)
    )
    await record_event(
        session,
        kind=AuditKind.MESSAGE_DEAD_LETTERED,
        node=node_id,
        actor=None,
        participant_id=pending.recipient_id,
        message_id=pending.message_id,
        at=now,
        recipient=pending.recipient_id,
        adapter=pending.adapter,
        attempts=attempts,
        error=error,
    )


async def relay_outbox(session: AsyncSession, *, node_id: str, batch_size: int) -> int:
    """Deliver, in the caller's transaction, up to ``batch_size`` due outbox rows whose
    recipients use the inbox (the embedded path and tests; the worker does the same through
    ``claim_due`` and deliver tasks), urgent ones first. Returns how many were delivered.
    Flushes."""
    now = utcnow()
    ids = (
        await session.scalars(
            select(OutboxEntry.id)
            .join(Participant, Participant.id == OutboxEntry.recipient_id)
            .where(
                Participant.adapter == adapters.DEFAULT,
                OutboxEntry.dead_lettered_at.is_(None),
                or_(OutboxEntry.next_attempt_at.is_(None), OutboxEntry.next_attempt_at <= now),
            )
            .order_by(*PRIORITY)
            .limit(batch_size)
        )
    ).all()
    return len(await complete_inbox(session, node_id=node_id, outbox_ids=list(ids)))


__all__ = [
    "INBOX_LOCK_KEY",
    "complete_inbox",
    "record_push_outcomes",
    "relay_outbox",
]
