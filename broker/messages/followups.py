"""Follow-ups: the tracked items ``follow_up`` obligations open (issue 14 item 3).

A decision that admits a message with a ``follow_up`` obligation (P5.late: a late exculpatory
disclosure obliges the requesting State to inform the requested State without delay, UNTOC
art. 18(19); P20.national: a refusal to extradite a national opens domestic prosecution,
art. 16(10)) opens one item per obligation, for the sending participant, due
``NodeContext.follow_up_days`` after it opens, once the message is released (at acceptance,
or when a supervisor approves a held one). The clocks remind once when it falls due
(``broker.cases.scheduler.remind_follow_ups``): a ``follow_up_due`` notice in the case it
belongs to, or a ``follow_up:due`` leaf for an item outside a case. A handler of the
responsible participant marks it done.

Invariants: every opening, reminder and completion is one audit leaf; only the responsible
participant sees or completes an item (anyone else gets NotFound); a done item stays done.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.context import Actor, Caller, NodeContext
from broker.core.errors import InvalidState, NotFound
from broker.core.ids import uuid7
from broker.messages.models import FollowUp, FollowUpStatus
from broker.oversight.service import AuditKind, record_event


async def open_follow_ups(
    session: AsyncSession,
    *,
    node: NodeContext,
    actor: Actor,
    participant_id: str,
    obligations: Iterable[tuple[str, str]],
    message_id: str | None,
    case_id: str | None,
    now: dt.datetime,
) -> list[str]:
    """Open one item per ``(rule_id, what)`` obligation for ``participant_id``, each with its
    ``follow_up:opened`` leaf; return their ids. Flushes."""
    due = now + dt.timedelta(days=node.follow_up_days)
    ids: list[str] = []
    for rule_id, what in obligations:
        item_id = str(uuid7())
        await session.execute(
            insert(FollowUp),
            [
                {
                    "id": item_id,
                    "participant_id": participant_id,
                    "what": what[:500],
                    "rule_id": rule_id,
                    "message_id": message_id,
                    "case_id": case_id,
                    "opened_at": now,
                    "due_at": due,
                    "status": FollowUpStatus.OPEN.value,
                }
            ],
        )
        await record_event(
            session,
            kind=AuditKind.FOLLOW_UP_OPENED,
            node=node.node_id,
            actor=actor,
            participant_id=participant_id,
            message_id=message_id,
            at=now,
            follow_up_id=item_id,
            rule=rule_id,
            case_id=case_id,
            due_at=due,
        )
        ids.append(item_id)
    return ids


async def list_follow_ups(
    session: AsyncSession, *, caller: Caller, status: str | None = FollowUpStatus.OPEN
) -> list[FollowUp]:
    """The caller's participant's items (open ones by default; all when ``status`` is None),
    earliest due first."""
    stmt = select(FollowUp).where(FollowUp.participant_id == caller.participant_id)
    if status is not None:
        stmt = stmt.where(FollowUp.status == status)
    return list((await session.scalars(stmt.order_by(FollowUp.due_at, FollowUp.id))).all())


async def follow_up_for(
    session: AsyncSession, *, caller: Caller, follow_up_id: str, lock: bool = False
) -> FollowUp:
    """Raises NotFound: no such item, or another participant's (existence is not
    disclosed)."""
    try:
        uuid.UUID(follow_up_id)
    except ValueError as exc:
        raise NotFound(f"no follow-up {follow_up_id}") from exc
    stmt = select(FollowUp).where(FollowUp.id == follow_up_id)
    if lock:
        stmt = stmt.with_for_update()
    item = (await session.scalars(stmt)).first()
    if item is None or item.participant_id != caller.participant_id:
        raise NotFound(f"no follow-up {follow_up_id}")
    return item


async def complete_follow_up(
    session: AsyncSession, *, node: NodeContext, caller: Caller, follow_up_id: str, now: dt.datetime
) -> FollowUp:
    """Mark the item done, with its ``follow_up:done`` leaf. Flushes.

    Raises NotFound (not the caller's participant's), InvalidState (already done)."""
    item = await follow_up_for(session, caller=caller, follow_up_id=follow_up_id, lock=True)
    if item.status != FollowUpStatus.OPEN:
        raise InvalidState(f"follow-up {follow_up_id} is already done")
    item.status = FollowUpStatus.DONE.value
    item.done_at = now
    item.done_by = caller.account_id
    await record_event(
        session,
        kind=AuditKind.FOLLOW_UP_DONE,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=item.participant_id,
        message_id=item.message_id,
        at=now,
        follow_up_id=item.id,
        rule=item.rule_id,
        case_id=item.case_id,
    )
    await session.flush()
    return item


async def due_follow_ups(session: AsyncSession, *, now: dt.datetime, limit: int) -> list[str]:
    """The open items due by ``now`` not yet reminded, earliest first."""
    stmt = (
        select(FollowUp.id)
        .where(
            FollowUp.status == FollowUpStatus.OPEN.value,
            FollowUp.due_at <= now,
            FollowUp.reminded_at.is_(None),
        )
        .order_by(FollowUp.due_at, FollowUp.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def claim_reminder(
    session: AsyncSession, *, follow_up_id: str, now: dt.datetime
) -> FollowUp | None:
    """The item, locked and marked reminded at ``now``, if it is still open, due and not
    reminded (another pass may have reminded it since it was listed). Flushes."""
    item = (
        await session.scalars(select(FollowUp).where(FollowUp.id == follow_up_id).with_for_update())
    ).first()
    if (
        item is None
        or item.status != FollowUpStatus.OPEN
        or item.reminded_at is not None
        or item.due_at > now
    ):
        return None
    item.reminded_at = now
    await session.flush()
    return item


async def record_reminder_leaf(
    session: AsyncSession, *, node: NodeContext, item: FollowUp, now: dt.datetime
) -> None:
    """The ``follow_up:due`` leaf of an item outside a case (a case's item is reminded by a
    ``follow_up_due`` notice in its history, with the case notice's leaf)."""
    await record_event(
        session,
        kind=AuditKind.FOLLOW_UP_DUE,
        node=node.node_id,
        actor=None,
        participant_id=item.participant_id,
        message_id=item.message_id,
        at=now,
        follow_up_id=item.id,
        rule=item.rule_id,
        due_at=item.due_at,
    )
