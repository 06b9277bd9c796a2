"""The outbox relay's side of delivery: which outbox rows are due, leasing them to a deliver
task, loading them with their recipients' adapters, and the retry policy that spaces out
failed attempts.

Invariants:
- An outbox row is the durable to-do of an accepted message; the relay claims due rows with
  a lease (``leased_until``); a claim whose task never ran expires and the row is claimed
  again. Nothing depends on the message broker keeping a task.
- A failed attempt is retried after ``RetryPolicy.delay``: exponential backoff with jitter,
  capped.
- Urgent rows go first (``PRIORITY``): the relay claims and hands out the due urgent rows
  before any other, however many others were queued before them; among rows of one
  priority, acceptance order.

Functions take the session first and flush at most; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.contracts import DeliveryResult
from broker.core.db import utcnow
from broker.delivery.models import OutboxEntry
from broker.participants.models import Participant


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

PRIORITY = (OutboxEntry.priority, OutboxEntry.id)
"""The order outbox rows are delivered in: by priority (urgent first), then acceptance order;
the index on (priority, id) serves it."""


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
    leased) and return their ids in delivery order (``PRIORITY``: urgent first). Concurrent
    claimers skip each other's rows (``FOR UPDATE SKIP LOCKED``; SQLite has one writer at a
    time)."""
    now = now or utcnow()
    due = (
        select(OutboxEntry.id)
        .where(
            OutboxEntry.dead_lettered_at.is_(None),
            or_(OutboxEntry.next_attempt_at.is_(None), OutboxEntry.next_attempt_at <= now),
            or_(OutboxEntry.leased_until.is_(None), OutboxEntry.leased_until <= now),
        )
        .order_by(*PRIORITY)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.id.in_(due.scalar_subquery()))
        .values(leased_until=now + dt.timedelta(seconds=lease_seconds))
        .returning(OutboxEntry.id, OutboxEntry.priority)
        .execution_options(synchronize_session=False)
    )
    return [r.id for r in sorted(claimed.all(), key=lambda r: (r.priority, r.id))]


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
            .order_by(*PRIORITY)
        )
    ).all()
    return [
        Pending(r.id, r.message_id, r.recipient_id, r.attempts + 1, r.adapter, r.adapter_config)
        for r in rows
    ]


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


__all__ = [
    "PRIORITY",
    "Pending",
    "PushOutcome",
    "RetryPolicy",
    "claim_due",
    "extend_lease",
    "load_pending",
    "outbox_depth",
]
