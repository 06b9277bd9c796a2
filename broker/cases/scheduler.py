"""The node's timers on cases: reminders and escalations as system events (P3, P8, P10, P17).

``run_clocks(db, node, config, now)`` is what the beat-scheduled task runs; tests call it with
the time they choose. Each case is handled in its own transaction: its due actions
(``broker.cases.clocks.due_actions``) become notices signed by the node, each with its one
audit leaf, and its ``next_check_at`` moves on. A transmitted request whose transmission the
requested side has receipted (a signed receipt) is acknowledged by the node on its behalf
(MLA.md: "CA-Q, or SYS on signed receipt"). A case that has been in a retained final state
for the retention period is erased: its request and evidence keys are destroyed, the
files deleted, and every message of the case shredded (``broker.messages.erasure``), one
``content:erased`` leaf per item; its history and audit leaves remain.

A joint investigation team whose agreement's expiry has passed is moved to ``EXPIRED`` by the
event its table fires at that date (``expire_team``, UNTOC art. 19; P21).
``remind_follow_ups`` (run by the same pass) reminds once about each tracked item a
``follow_up`` obligation opened (``broker.messages.followups``) when it falls due: a
``follow_up_due`` notice in the history of the case the item belongs to, like the clocks'
own notices, or a ``follow_up:due`` leaf for an item outside a case.

Invariants: an action happens once (its key is in the history); a notice never changes a
case's state; only ``expire_retention``, the acknowledgement on receipt and an event fired at a
date of the case's terms do, through the transition table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import messages
from broker.cases import evidence, service
from broker.cases.config import CaseConfig
from broker.cases.models import Case, CaseEvent
from broker.cases.tables import WORKFLOWS
from broker.cases.workflow import Side, Transition
from broker.core.context import NO_ACTOR, NodeContext
from broker.core.db import Database
from broker.messages.models import Message
from broker.oversight.service import AuditKind, erase_texts, record_event

_MAX_ACTIONS_PER_TICK = 50

# The retention expiries of every workflow (``expire_retention``).
_ERASING_EVENTS = frozenset(
    t.event for wf in WORKFLOWS.values() for t in wf.transitions if t.erases
)

# The (workflow, state) of the cases whose next event the node fires on a signed receipt.
_ON_RECEIPT = tuple(
    (wf.name, state)
    for wf in WORKFLOWS.values()
    for state in wf.states
    if wf.on_receipt_from(state) is not None
)


async def due_case_ids(session: AsyncSession, *, now: dt.datetime, limit: int) -> list[str]:
    """Cases whose timers are due, and transmitted requests whose transmission was receipted."""
    stmt = (
        select(Case.id)
        .outerjoin(Message, Message.id == Case.head_message_id)
        .where(
            or_(
                Case.next_check_at <= now,
                and_(
                    or_(
                        false(),
                        *(and_(Case.workflow == w, Case.state == s) for w, s in _ON_RECEIPT),
                    ),
                    Message.receipted_at.is_not(None),
                ),
            )
        )
        .order_by(Case.next_check_at)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def tick_case(
    session: AsyncSession, *, node: NodeContext, config: CaseConfig, case_id: str, now: dt.datetime
) -> list[str]:
    """Do what is due on one case; return the events raised. Flushes."""
    case = (await session.scalars(select(Case).where(Case.id == case_id).with_for_update())).first()
    if case is None:
        return []
    loaded = await service.load(session, case)
    raised: list[str] = []
    on_receipt = loaded.workflow.on_receipt_from(case.state)
    if on_receipt is not None and case.head_message_id:
        message = await session.get(Message, case.head_message_id)
        if message is not None and message.receipted_at is not None:
            await service.record_system_event(
                session,
                node=node,
                loaded=loaded,
                event=on_receipt.event,
                details={"on_receipt": message.id},
                now=now,
            )
            raised.append(on_receipt.event)
    for _ in range(_MAX_ACTIONS_PER_TICK):
        due = [a for a in service.reschedule(loaded, config, now) if a.at <= now]
        if not due:
            break
        action = due[0]
        expiry = loaded.workflow.erasing_from(loaded.projection.state)
        timed = loaded.workflow.timed_from(loaded.projection.state)
        if expiry is not None and action.kind == expiry.event:
            await expire(session, node=node, loaded=loaded, expiry=expiry, config=config, now=now)
        elif timed is not None and action.kind == timed.event:
            # A date of the case's terms has passed (a team's expiry): the table's event.
            await service.record_system_event(
                session,
                node=node,
                loaded=loaded,
                event=timed.event,
                details=dict(action.detail),
                now=now,
            )
        else:
            await service.record_notice(
                session,
                node=node,
                loaded=loaded,
                notice=action.kind,
                key=action.key,
                detail=action.detail,
                now=now,
            )
        raised.append(action.kind)
    service.reschedule(loaded, config, now)
    await service.follow_case_retention(session, loaded)
    return raised


_PURPOSE_KEYS = frozenset({"purpose", "permitted_purposes"})


def without_purposes(value: Any) -> Any:
    """``value`` (a case's terms, an event's details) without any purpose in it, at any
    depth (a consent in the terms names one)."""
    if isinstance(value, dict):
        return {k: without_purposes(v) for k, v in value.items() if k not in _PURPOSE_KEYS}
    if isinstance(value, list):
        return [without_purposes(v) for v in value]
    return value


async def expire(
    session: AsyncSession,
    *,
    node: NodeContext,
    loaded: service.Loaded,
    expiry: Transition,
    config: CaseConfig,
    now: dt.datetime,
) -> None:
    """Fire the retention expiry ``expiry`` (P17): destroy the request's key and ciphertext,
    the evidence files' keys and files, and every wrapped key and the ciphertext of each
    message of the case (the envelope of every event, and each message naming the case),
    with one ``content:erased`` leaf per item, in the caller's transaction."""
    case = loaded.case
    erased: list[str] = []
    for f in loaded.evidence:
        if f.erased_at is None:
            erased.append(f.id)
            evidence.erase(config.evidence_dir / f.storage)
            f.key_for_node = None
            f.key_for_requesting = None
            f.key_for_requested = None
            f.erased_at = now
            await record_event(
                session,
                kind=AuditKind.CONTENT_ERASED,
                node=node.node_id,
                actor=NO_ACTOR,
                participant_id=f.uploaded_by_participant,
                at=now,
                item="evidence",
                case_id=case.id,
                evidence_id=f.id,
                sha256=f.sha256,
                retention_until=case.retention_until,
            )
    case.request_ciphertext = None
    case.request_key = None
    case.erased_at = now
    # The declared purposes, free text that may name a person, go with the content: from the
    # case, its terms and its events' metadata (the leaves commit to them; the texts go below).
    case.purpose = None
    case.terms = without_purposes(case.terms)
    for ev in loaded.events:
        if ev.details:
            ev.details = without_purposes(ev.details)
    await record_event(
        session,
        kind=AuditKind.CONTENT_ERASED,
        node=node.node_id,
        actor=NO_ACTOR,
        participant_id=case.requesting_id,
        at=now,
        item="case_request",
        case_id=case.id,
        retention_until=case.retention_until,
    )
    event_messages = select(CaseEvent.message_id).where(
        CaseEvent.case_id == case.id, CaseEvent.message_id.is_not(None)
    )
    rows = (
        await session.scalars(
            select(Message)
            .where(
                or_(Message.case_id == case.id, Message.id.in_(event_messages)),
                Message.erased_at.is_(None),
            )
            .order_by(Message.id)
            .with_for_update()
        )
    ).all()
    await messages.erase_messages(session, node=node, messages=rows, now=now, case_id=case.id)
    # The justifications of the case's readings and the reasons of its reviews go with it.
    await erase_texts(session, case_id=case.id)
    await service.record_system_event(
        session,
        node=node,
        loaded=loaded,
        event=expiry.event,
        details={"erased_evidence": erased, "erased_request": True},
        now=now,
    )


async def run_clocks(
    db: Database, node: NodeContext, config: CaseConfig, now: dt.datetime, *, limit: int = 500
) -> int:
    """One pass of the timers over every due case, a transaction per case; returns how many
    events were raised."""
    async with db.session() as session:
        ids = await due_case_ids(session, now=now, limit=limit)
        await session.commit()
    total = 0
    for case_id in ids:
        async with db.session() as session:
            total += len(
                await tick_case(session, node=node, config=config, case_id=case_id, now=now)
            )
            await session.commit()
    return total + await remind_follow_ups(db, node, config, now, limit=limit)


FOLLOW_UP_NOTICE = "follow_up_due"  # one of broker.cases.clocks.NOTICE_KINDS


async def remind_follow_ups(
    db: Database, node: NodeContext, config: CaseConfig, now: dt.datetime, *, limit: int = 500
) -> int:
    """Remind once about each open follow-up due by ``now``, a transaction each; returns how
    many reminders were raised."""
    async with db.session() as session:
        ids = await messages.due_follow_ups(session, now=now, limit=limit)
        await session.commit()
    raised = 0
    for follow_up_id in ids:
        async with db.session() as session:
            item = await messages.claim_reminder(session, follow_up_id=follow_up_id, now=now)
            if item is None:
                await session.commit()
                continue
            case = None
            if item.case_id is not None:
                case = (
                    await session.scalars(
                        select(Case).where(Case.id == item.case_id).with_for_update()
                    )
                ).first()
            if case is None:
                await messages.record_reminder_leaf(session, node=node, item=item, now=now)
            else:
                loaded = await service.load(session, case)
                await service.record_notice(
                    session,
                    node=node,
                    loaded=loaded,
                    notice=FOLLOW_UP_NOTICE,
                    key=f"follow_up:{item.id}",
                    detail={
                        "follow_up": item.id,
                        "rule": item.rule_id,
                        "what": item.what,
                        "participant": item.participant_id,
                        "due_at": item.due_at.isoformat(),
                        # The reminder goes to the participant responsible, not to both.
                        "side": (
                            Side.REQUESTING.value
                            if item.participant_id == case.requesting_id
                            else Side.REQUESTED.value
                        ),
                    },
                    now=now,
                )
                service.reschedule(loaded, config, now)
            await session.commit()
            raised += 1
    return raised


@dataclass(frozen=True, slots=True)
class Erased:
    """What one erasure pass shredded."""

    messages: list[str]
    cases: list[str]
    sealed: int = 0
    """Key copies sealed to parties that lacked one (``seal_missing_copies``)."""


async def erase_due(
    db: Database,
    node: NodeContext,
    config: CaseConfig,
    now: dt.datetime,
    *,
    batch: int = 500,
) -> Erased:
    """Erase everything whose retention ended by ``now`` (P17): each due case through its
    retention expiry (a transaction per case), then plain messages in batches of ``batch``
    (a transaction per batch), each item with its ``content:erased`` leaf. Plain messages
    from before deadlines existed get the node's default deadline first; what is kept and
    lacks a party's sealed key copy gets it last."""
    async with db.session() as session:
        case_ids = list(
            (
                await session.scalars(
                    select(Case.id)
                    .where(Case.retention_until <= now, Case.erased_at.is_(None))
                    .order_by(Case.retention_until)
                )
            ).all()
        )
        await session.commit()
    cases: list[str] = []
    for case_id in case_ids:
        async with db.session() as session:
            raised = await tick_case(session, node=node, config=config, case_id=case_id, now=now)
            await session.commit()
        if _ERASING_EVENTS.intersection(raised):
            cases.append(case_id)
    while True:  # messages from before deadlines existed get the default first
        async with db.session() as session:
            filled = await messages.backfill_deadlines(session, node=node, limit=batch)
            await session.commit()
        if filled < batch:
            break
    async with db.session() as session:  # texts about no single item, at their own deadline
        await erase_texts(session, due_by=now)
        await session.commit()
    erased: list[str] = []
    while True:
        async with db.session() as session:
            done = await messages.erase_due_messages(session, node=node, now=now, limit=batch)
            await session.commit()
        erased += done
        if len(done) < batch:
            break
    if erased or cases:
        await _checkpoint_sqlite(db)
    return Erased(messages=erased, cases=cases, sealed=await seal_missing_copies(db, node, batch))


async def seal_missing_copies(db: Database, node: NodeContext, batch: int = 500) -> int:
    """Seal the content keys of messages and evidence files that lack a party's copy to
    that party's encryption key current now, in batches of ``batch`` (a transaction each);
    return how many copies. What has no copy is older than sealed copies (evidence before
    revision 0013) or was stored while the party had no encryption key."""
    sealed = 0
    for seal in (messages.seal_missing_copies, evidence.seal_missing_copies):
        after: str | None = ""
        while after is not None:
            async with db.session() as session:
                done = await seal(session, node=node, after=after, limit=batch)
                await session.commit()
            sealed, after = sealed + done.sealed, done.last_id
    return sealed


async def _checkpoint_sqlite(db: Database) -> None:
    """On SQLite, copy the write-ahead log into the database file and truncate it, so the
    pages that held erased content (zeroed by ``secure_delete``) replace the old ones and no
    earlier frame of them stays in the log. PostgreSQL: see docs/retention.md (VACUUM)."""
    if db.engine.dialect.name != "sqlite":
        return
    async with db.engine.connect() as connection:
        # Outside any transaction (the engine's "begin" hook would open one): the driver's
        # own connection.
        raw: Any = (await connection.get_raw_connection()).driver_connection
        cursor = await raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        await cursor.close()
