"""Reading and listing: a case's threads, the caller's cases filtered, the events the
caller may fire next, the cases waiting on the caller, their deadlines and the notices of the
node's clocks (each one bounded query on indexed columns). The consents granted through a
case's consent threads are read with the others by ``broker.consents.service``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases.bodies import NoBody
from broker.cases.clocks import NOTICE_KINDS
from broker.cases.guards import EvidenceFacts, Facts
from broker.cases.models import Case, CaseEvent
from broker.cases.service.loading import (
    CASE_HANDLING_PEOPLE,
    Loaded,
    can_see,
    drafted_by,
    side_of,
)
from broker.cases.tables import WORKFLOWS
from broker.cases.workflow import Side, Transition, Workflow
from broker.core.context import Caller
from broker.core.db import utcnow


async def children_of(session: AsyncSession, case: Case, caller: Caller) -> list[Case]:
    rows = (
        await session.scalars(select(Case).where(Case.parent_id == case.id).order_by(Case.id))
    ).all()
    return [c for c in rows if can_see(c, caller)]


async def list_cases(
    session: AsyncSession,
    *,
    caller: Caller,
    now: dt.datetime,
    state: str | None = None,
    counterpart: str | None = None,
    overdue: bool | None = None,
    urgent: bool | None = None,
    workflow: str | None = None,
    parent_id: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Case]:
    """The caller's cases, newest first, filtered."""
    me = caller.participant_id
    stmt = select(Case).where(
        or_(
            Case.requesting_id == me,
            and_(Case.requested_id == me, Case.shared_at.is_not(None)),
        )
    )
    if caller.roles.isdisjoint(CASE_HANDLING_PEOPLE):
        stmt = stmt.where(Case.confidential.is_(False))
    if state:
        stmt = stmt.where(Case.state == state)
    if counterpart:
        stmt = stmt.where(
            or_(
                and_(Case.requesting_id == me, Case.requested_id == counterpart),
                and_(Case.requested_id == me, Case.requesting_id == counterpart),
            )
        )
    if overdue is True:
        stmt = stmt.where(Case.next_due_at.is_not(None), Case.next_due_at < now)
    elif overdue is False:
        stmt = stmt.where(or_(Case.next_due_at.is_(None), Case.next_due_at >= now))
    if urgent is not None:
        stmt = stmt.where(Case.urgent.is_(urgent))
    if workflow:
        stmt = stmt.where(Case.workflow == workflow)
    if parent_id:
        stmt = stmt.where(Case.parent_id == parent_id)
    if before:
        stmt = stmt.where(Case.id < before)
    return list((await session.scalars(stmt.order_by(Case.id.desc()).limit(limit))).all())


def allowed_events(
    loaded: Loaded, caller: Caller, now: dt.datetime | None = None
) -> list[Transition]:
    """The events the caller may fire now, as far as can be told without a body: the state,
    the side, the roles, the four-eyes rule, and the guards that decide from the case alone
    (``Guard.of_case``: no further response after a full one), judged at ``now`` (the
    request's clock; the wall clock when not given)."""
    side = side_of(loaded.case, caller.participant_id)
    fireable = _fireable(loaded.workflow, loaded.projection.state, side, caller, loaded.drafters)
    if side is None:
        return fireable
    at = now or utcnow()
    return [t for t in fireable if _case_guards_pass(loaded, t, side, caller, at)]


def _case_guards_pass(
    loaded: Loaded, t: Transition, side: Side, caller: Caller, now: dt.datetime
) -> bool:
    guards = [g for g in t.guards if g.of_case]
    if not guards:
        return True
    facts = case_facts(loaded, event=t.event, side=side, body=NoBody(), caller=caller, now=now)
    return all(g.failure(facts) is None for g in guards)


def case_facts(
    loaded: Loaded,
    *,
    event: str,
    side: Side,
    body: BaseModel,
    caller: Caller,
    now: dt.datetime,
    message_consents: tuple[Mapping[str, Any], ...] = (),
) -> Facts:
    """What the guards of ``event`` look at: the case as it stands and the event's body."""
    case, p = loaded.case, loaded.projection
    return Facts(
        workflow=loaded.workflow.name,
        case_type=case.case_type,
        state=p.state,
        event=event,
        side=side,
        body=body,
        account_id=caller.account_id,
        roles=caller.roles,
        now=now,
        drafters=loaded.drafters,
        records=p.records,
        initiated_by=case.initiated_by,
        urgent=case.urgent,
        response_kind=p.response_kind,
        parent_workflow=loaded.parent.workflow if loaded.parent else None,
        parent_state=loaded.parent.state if loaded.parent else None,
        parent_terms=loaded.parent.terms if loaded.parent else {},
        message_consents=message_consents,
        terms=case.terms,
        evidence={
            f.id: EvidenceFacts(Side(f.side), f.id in loaded.delivered)
            for f in loaded.evidence
            if f.erased_at is None
        },
    )


def _fireable(
    wf: Workflow, state: str, side: Side | None, caller: Caller, drafters: frozenset[str]
) -> list[Transition]:
    out = []
    for t in wf.from_state(state):
        if not t.fired_by(side) or caller.roles.isdisjoint(t.roles):
            continue
        four_eyes = any(g.excludes_drafters for g in t.guards)
        if four_eyes and caller.account_id in drafters:
            continue
        out.append(t)
    return out


@dataclass(frozen=True, slots=True)
class Awaiting:
    """A case whose next move is the caller's, with the events that would make it."""

    case: Case
    events: tuple[Transition, ...]


def _visible(caller: Caller) -> ColumnElement[bool]:
    """The cases the caller sees (``can_see``), as a condition on indexed columns."""
    me = caller.participant_id
    seen = or_(
        Case.requesting_id == me,
        and_(Case.requested_id == me, Case.shared_at.is_not(None)),
    )
    if caller.roles.isdisjoint(CASE_HANDLING_PEOPLE):
        return and_(seen, Case.confidential.is_(False))
    return seen


def _moves(caller: Caller, side: Side, ignoring: frozenset[str]) -> list[tuple[str, str]]:
    """The (workflow, state) in which a transition of ``side`` that moves the case on (not a
    side event, not one of ``ignoring``) is open to one of the caller's roles: read from the
    transition tables, so the list follows them."""
    return [
        (wf.name, state)
        for wf in WORKFLOWS.values()
        for state in wf.states
        if any(
            t.fired_by(side)
            and not t.side_event
            and t.event not in ignoring
            and not caller.roles.isdisjoint(t.roles)
            for t in wf.from_state(state)
        )
    ]


async def awaiting(
    session: AsyncSession,
    *,
    caller: Caller,
    limit: int,
    ignoring: frozenset[str] = frozenset(),
    excluding: frozenset[str] = frozenset(),
) -> list[Awaiting]:
    """The caller's cases whose next event is the caller's to fire (by participant, side and
    role, as ``allowed_events`` tells), urgent first, then the earliest due, then the longest
    untouched. ``ignoring`` names events that do not make a case wait (withdrawing is always
    possible); ``excluding`` names cases listed elsewhere. One query for the cases and one
    for who drafted them; four-eyes events the caller drafted are left out, so a page may
    hold fewer than ``limit``."""
    me = caller.participant_id
    by_side = []
    for side, column in (
        (Side.REQUESTING, Case.requesting_id),
        (Side.REQUESTED, Case.requested_id),
    ):
        pairs = _moves(caller, side, ignoring)
        if pairs:
            by_side.append(
                and_(
                    column == me,
                    or_(*(and_(Case.workflow == w, Case.state == s) for w, s in pairs)),
                )
            )
    if not by_side:
        return []
    stmt = select(Case.id).where(_visible(caller), or_(*by_side))
    if excluding:
        stmt = stmt.where(Case.id.not_in(excluding))
    stmt = stmt.order_by(
        Case.urgent.desc(),
        Case.next_due_at.is_(None),
        Case.next_due_at,
        Case.updated_at,
        Case.id,
    ).limit(2 * limit)
    rows = await _cases_by_id(session, list((await session.scalars(stmt)).all()))
    drafted = await drafted_by(session, rows, caller.account_id)
    out = []
    for c in rows:
        drafters = frozenset({caller.account_id}) if c.id in drafted else frozenset()
        events = tuple(
            t
            for t in _fireable(WORKFLOWS[c.workflow], c.state, side_of(c, me), caller, drafters)
            if not t.side_event and t.event not in ignoring
        )
        if events:
            out.append(Awaiting(c, events))
    return out[:limit]


async def due_first(session: AsyncSession, *, caller: Caller, limit: int) -> list[Case]:
    """The caller's cases with a running deadline, the earliest (or longest overdue) first."""
    stmt = (
        select(Case.id)
        .where(_visible(caller), Case.next_due_at.is_not(None))
        .order_by(Case.next_due_at, Case.id)
        .limit(limit)
    )
    return await _cases_by_id(session, list((await session.scalars(stmt)).all()))


async def recent_notices(
    session: AsyncSession, *, caller: Caller, limit: int
) -> list[tuple[Case, CaseEvent]]:
    """The reminders and escalations the node's clocks raised on the caller's cases, newest
    first; on the requested side only those raised once the case was shared with it (the
    history it sees, ``read_models.visible_timeline``)."""
    me = caller.participant_id
    stmt = (
        select(CaseEvent.id, Case.id)
        .join(CaseEvent, CaseEvent.case_id == Case.id)
        .where(
            _visible(caller),
            CaseEvent.side == Side.SYSTEM.value,
            CaseEvent.event.in_(NOTICE_KINDS),
            or_(Case.requesting_id == me, CaseEvent.at >= Case.shared_at),
        )
        .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())
        .limit(limit)
    )
    pairs = [(event_id, case_id) for event_id, case_id in await session.execute(stmt)]
    if not pairs:
        return []
    events = {
        ev.id: ev
        for ev in await session.scalars(
            select(CaseEvent).where(CaseEvent.id.in_([e for e, _ in pairs]))
        )
    }
    by_id = {c.id: c for c in await _cases_by_id(session, list({c for _, c in pairs}))}
    return [(by_id[c], events[e]) for e, c in pairs]


async def _cases_by_id(session: AsyncSession, ids: list[str]) -> list[Case]:
    """The cases of ``ids``, in that order. A list query sorts and limits ids first and
    loads whole rows (their sealed request and projection) only for the page it keeps."""
    if not ids:
        return []
    rows = {c.id: c for c in await session.scalars(select(Case).where(Case.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]
