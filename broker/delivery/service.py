"""Delivery bookkeeping: claim outbox rows, complete deliveries, schedule retries, dead-letter.

Invariants:
- An outbox row is the durable to-do of an accepted message. It leaves the outbox only in the
  transaction that records the delivery (inbox entry or push outcome, message status, one
  ``message:delivered`` leaf, one attempt row), so a crash at any point leaves it to be
  claimed again; and a row deleted by one transaction is not seen by another, so two tasks
  holding the same ids (a redelivered task, an expired lease) deliver and audit it once.
- Inbox deliveries are written under one lock (a PostgreSQL transaction-scoped advisory lock;
  on SQLite the ``BEGIN IMMEDIATE`` write lock), so inbox sequence numbers grow in commit
  order and an inbox cursor never skips a message.
- The relay claims due rows with a lease (``leased_until``); a claim whose task never ran
  expires and the row is claimed again. Nothing depends on the message broker keeping a task.
- A failed attempt increments ``attempts`` and sets ``next_attempt_at`` by exponential backoff
  with jitter; after ``max_attempts`` (or a permanent refusal) the row is dead-lettered: the
  relay skips it, the message shows ``dead_lettered``, and a ``message:dead_lettered`` leaf
  is written. Requeueing resets the row and writes ``message:requeued``.

Functions take a keyword-only ``session`` and flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

import adapters
from adapters.contracts import AdapterConfigError, DeliveryResult
from broker.core.db import utcnow
from broker.core.errors import NotFound
from broker.core.settings import ConfigurationError
from broker.delivery.models import DeliveryAttempt, DeliveryOutcome, OutboxEntry
from broker.messages.models import InboxEntry, Message, MessageStatus
from broker.oversight.models import AuditEvent
from broker.oversight.service import AuditKind, audit_row, record_event
from broker.participants.models import Participant

INBOX_LOCK_KEY = 0x50414C45524D4F  # "PALERMO"
RELAY_LOCK_KEY = INBOX_LOCK_KEY  # the name earlier code used
_O = OutboxEntry.__table__.c


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float

    def delay(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``failed_attempts``-th failure: exponential, capped, with
        "equal jitter" (uniform in the upper half), so retries of a batch spread out."""
        ceiling = min(
            self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, failed_attempts - 1)
        )
        return (rng or _rng).uniform(ceiling / 2, ceiling)


_rng = random.Random()  # noqa: S311 - jitter, not security


@dataclass(frozen=True, slots=True)
class Pending:
    """An outbox row about to be delivered, with its recipient's adapter."""

    outbox_id: int
    message_id: str
    recipient_id: str
    attempt: int  # the number this attempt will have
    adapter: str
    adapter_config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PushOutcome:
    pending: Pending
    result: DeliveryResult
    started_at: dt.datetime
    finished_at: dt.datetime


# --- the relay -----------------------------------------------------------------------------


async def claim_due(
    session: AsyncSession, *, limit: int, lease_seconds: float, now: dt.datetime | None = None
) -> list[int]:
    """Lease up to ``limit`` due outbox rows (not dead-lettered, not waiting for a retry, not
    leased) and return their ids in outbox order. Concurrent claimers skip each other's rows
    (``FOR UPDATE SKIP LOCKED``; SQLite has one writer at a time)."""
    now = now or utcnow()
    due = (
        select(OutboxEntry.id)
        .where(
            OutboxEntry.dead_lettered_at.is_(None),
            or_(OutboxEntry.next_attempt_at.is_(None), OutboxEntry.next_attempt_at <= now),
            or_(OutboxEntry.leased_until.is_(None), OutboxEntry.leased_until <= now),
        )
        .order_by(OutboxEntry.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.id.in_(due.scalar_subquery()))
        .values(leased_until=now + dt.timedelta(seconds=lease_seconds))
        .returning(OutboxEntry.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars().all())


async def extend_lease(session: AsyncSession, outbox_ids: Sequence[int], seconds: float) -> None:
    """Hold rows for ``seconds`` more: a deliver task about to call slow push adapters keeps
    the relay from handing its rows out again while it works (which would be safe, as rows
    are recorded once, but wasteful)."""
    if outbox_ids:
        await session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id.in_(list(outbox_ids)), OutboxEntry.dead_lettered_at.is_(None))
            .values(leased_until=utcnow() + dt.timedelta(seconds=seconds))
            .execution_options(synchronize_session=False)
        )


async def load_pending(session: AsyncSession, outbox_ids: Sequence[int]) -> list[Pending]:
    """The rows among ``outbox_ids`` still to deliver, with their recipients' adapters."""
    if not outbox_ids:
        return []
    rows = (
        await session.execute(
            select(
                OutboxEntry.id,
                OutboxEntry.message_id,
                OutboxEntry.recipient_id,
                OutboxEntry.attempts,
                Participant.adapter,
                Participant.adapter_config,
            )
            .join(Participant, Participant.id == OutboxEntry.recipient_id)
            .where(OutboxEntry.id.in_(list(outbox_ids)), OutboxEntry.dead_lettered_at.is_(None))
            .order_by(OutboxEntry.id)
        )
    ).all()
    return [
        Pending(r.id, r.message_id, r.recipient_id, r.attempts + 1, r.adapter, r.adapter_config)
        for r in rows
    ]


# --- completing deliveries ---------------------------------------------------------------


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
                OutboxEntry.id, OutboxEntry.message_id, OutboxEntry.recipient_id, _O.attempts
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not taken:
        return []
    taken = sorted(taken, key=lambda r: r.id)  # inbox order follows acceptance order
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
            actor={"participant": pending.recipient_id, "account": None},
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
    ``claim_due`` and deliver tasks). Returns how many were delivered. Flushes."""
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
            .order_by(OutboxEntry.id)
            .limit(batch_size)
        )
    ).all()
    return len(await complete_inbox(session, node_id=node_id, outbox_ids=list(ids)))


async def outbox_depth(session: AsyncSession) -> dict[str, int]:
    """Rows waiting (due or backing off) and dead-lettered: what an operator monitors."""
    rows = (
        await session.execute(
            select(OutboxEntry.dead_lettered_at.is_(None).label("live"), func.count()).group_by(
                OutboxEntry.dead_lettered_at.is_(None)
            )
        )
    ).all()
    by = {bool(live): int(n) for live, n in rows}
    return {"pending": by.get(True, 0), "dead_lettered": by.get(False, 0)}


# --- dead letters ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str
    recipient_id: str
    sender_id: str
    message_type: str
    adapter: str
    attempts: int
    last_error: str | None
    accepted_at: dt.datetime
    dead_lettered_at: dt.datetime


async def list_dead_letters(
    session: AsyncSession, *, recipient: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    stmt = (
        select(
            OutboxEntry.message_id,
            OutboxEntry.recipient_id,
            OutboxEntry.attempts,
            OutboxEntry.last_error,
            OutboxEntry.dead_lettered_at,
            Message.sender_id,
            Message.type,
            Message.accepted_at,
            Participant.adapter,
        )
        .join(Message, Message.id == OutboxEntry.message_id)
        .join(Participant, Participant.id == OutboxEntry.recipient_id)
        .where(OutboxEntry.dead_lettered_at.is_not(None))
        .order_by(OutboxEntry.id)
        .limit(limit)
    )
    if recipient:
        stmt = stmt.where(OutboxEntry.recipient_id == recipient)
    return [
        DeadLetter(
            message_id=r.message_id,
            recipient_id=r.recipient_id,
            sender_id=r.sender_id,
            message_type=r.type,
            adapter=r.adapter,
            attempts=r.attempts,
            last_error=r.last_error,
            accepted_at=r.accepted_at,
            dead_lettered_at=r.dead_lettered_at,
        )
        for r in (await session.execute(stmt)).all()
    ]


async def requeue_dead_letters(
    session: AsyncSession,
    *,
    node_id: str,
    actor: dict[str, str | None] | None,
    message_ids: Sequence[str] | None = None,
    recipient: str | None = None,
) -> list[str]:
    """Give dead-lettered messages a fresh set of attempts: the ones named, or all (of one
    recipient). Returns the ids requeued. Raises NotFound when a named message is not
    dead-lettered."""
    stmt = select(OutboxEntry.id, OutboxEntry.message_id, OutboxEntry.recipient_id).where(
        OutboxEntry.dead_lettered_at.is_not(None)
    )
    if message_ids is not None:
        stmt = stmt.where(OutboxEntry.message_id.in_(list(message_ids)))
    if recipient:
        stmt = stmt.where(OutboxEntry.recipient_id == recipient)
    rows = (await session.execute(stmt.order_by(OutboxEntry.id).with_for_update())).all()
    if message_ids is not None:
        missing = sorted(set(message_ids) - {r.message_id for r in rows})
        if missing:
            raise NotFound(f"no dead-lettered message {missing[0]}")
    if not rows:
        return []
    now = utcnow()
    await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.id.in_([r.id for r in rows]))
        .values(attempts=0, next_attempt_at=None, leased_until=None, dead_lettered_at=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Message)
        .where(
            and_(
                Message.id.in_([r.message_id for r in rows]),
                Message.status == MessageStatus.DEAD_LETTERED,
            )
        )
        .values(status=MessageStatus.ACCEPTED.value)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        insert(AuditEvent),
        [
            audit_row(
                kind=AuditKind.MESSAGE_REQUEUED,
                node=node_id,
                actor=actor,
                participant_id=r.recipient_id,
                message_id=r.message_id,
                at=now,
                recipient=r.recipient_id,
            )
            for r in rows
        ],
    )
    return [r.message_id for r in rows]


# --- adapter configuration ---------------------------------------------------------------


async def configure_adapter(
    session: AsyncSession,
    *,
    node_id: str,
    participant_id: str,
    adapter: str,
    config: dict[str, Any] | None,
    actor: dict[str, str | None] | None,
) -> Participant:
    """Set a participant's adapter and its configuration, checked first. Raises NotFound,
    AdapterConfigError."""
    participant = await session.get(Participant, participant_id)
    if participant is None:
        raise NotFound(f"no participant {participant_id}")
    normalised = adapters.check_config(adapter, config)
    participant.adapter = adapter
    participant.adapter_config = normalised
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.PARTICIPANT_UPDATED,
        node=node_id,
        actor=actor,
        participant_id=participant_id,
        participant=participant_id,
        changes={"adapter": adapter, "adapter_config": "changed"},
    )
    return participant


async def check_adapters(session: AsyncSession) -> None:
    """Raises ConfigurationError naming every participant whose adapter is unknown or whose
    configuration is unusable: the node refuses to start on them."""
    problems = []
    for pid, name, config in (
        await session.execute(
            select(Participant.id, Participant.adapter, Participant.adapter_config).order_by(
                Participant.id
            )
        )
    ).all():
        try:
            adapters.check_config(name, config)
        except AdapterConfigError as exc:
            problems.append(f"participant {pid}: {exc.detail}")
    if problems:
        raise ConfigurationError(
            "adapter configuration refused; fix it with `palermo adapter set` (or the admin "
            "API) before starting the node: " + "; ".join(problems)
        )


__all__ = [
    "DeadLetter",
    "Pending",
    "PushOutcome",
    "RetryPolicy",
    "check_adapters",
    "claim_due",
    "complete_inbox",
    "configure_adapter",
    "extend_lease",
    "list_dead_letters",
    "load_pending",
    "outbox_depth",
    "record_push_outcomes",
    "relay_outbox",
    "requeue_dead_letters",
]
