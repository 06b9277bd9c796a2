"""Delivery bookkeeping: dead letters (listed and requeued) and adapter configuration; and,
for callers, the names of ``outbox`` (claiming due rows, the retry policy) and ``completion``
(completing deliveries), so ``service.__all__`` stays delivery's one list of services.

Invariants:
- A dead-lettered row is skipped by the relay until it is requeued; requeueing resets the
  row (attempts, lease, backoff) and writes one ``message:requeued`` leaf per message.
- A participant's adapter configuration is checked before it is stored, and a node refuses to
  start on a configuration that is unusable (``check_adapters``).

Functions take the session first and flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import adapters
from adapters.contracts import AdapterConfigError, DestinationRules
from broker.core.context import Actor
from broker.core.db import utcnow
from broker.core.errors import NotFound
from broker.core.settings import ConfigurationError
from broker.delivery.completion import complete_inbox, record_push_outcomes, relay_outbox
from broker.delivery.models import OutboxEntry
from broker.delivery.outbox import (
    Pending,
    PushOutcome,
    RetryPolicy,
    claim_due,
    extend_lease,
    load_pending,
    outbox_depth,
)
from broker.messages.models import Message, MessageStatus
from broker.oversight.models import AuditEvent
from broker.oversight.service import AuditKind, audit_row, record_event
from broker.participants.models import Participant

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
    actor: Actor | None,
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
    rules: DestinationRules,
    actor: Actor | None,
) -> Participant:
    """Set a participant's adapter and its configuration, checked first under the node's
    destination ``rules``. Raises NotFound, AdapterConfigError."""
    participant = await session.get(Participant, participant_id)
    if participant is None:
        raise NotFound(f"no participant {participant_id}")
    normalised = adapters.check_config(adapter, config, rules=rules)
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


async def check_adapters(session: AsyncSession, *, rules: DestinationRules) -> None:
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
            adapters.check_config(name, config, rules=rules)
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
