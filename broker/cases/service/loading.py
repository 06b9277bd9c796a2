"""Loading a case and who may see it: the case with its history, evidence and parent, as
one ``Loaded``; the side a participant is on; the case row kept equal to its projection.

A caller sees a case only as one of its two participants (the requested one only once it is
shared); a confidential case (18(20)) only as a person with a case-handling role.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases.fold import Projection, projection_from, projection_json
from broker.cases.models import Case, CaseEvent, EvidenceFile
from broker.cases.tables import WORKFLOWS
from broker.cases.workflow import Side, Workflow
from broker.core.context import Caller
from broker.core.errors import NotFound

CASE_HANDLING_PEOPLE = frozenset({"officer", "supervisor"})


@dataclass(slots=True)
class Loaded:
    """A case with what reading it or firing an event needs."""

    case: Case
    workflow: Workflow
    projection: Projection
    events: list[CaseEvent]
    evidence: list[EvidenceFile]
    parent: Case | None

    @property
    def delivered(self) -> set[str]:
        return {str(f) for ev in self.events for f in ev.details.get("evidence", ())}

    @property
    def drafters(self) -> frozenset[str]:
        ids = {self.case.opened_by}
        ids |= {
            ev.actor_account
            for ev in self.events
            if ev.actor_account and _drafting(self.workflow, ev.from_state, ev.event)
        }
        return frozenset(ids)


async def drafted_by(session: AsyncSession, cases: list[Case], account_id: str) -> set[str]:
    """The ids of those ``cases`` the account drafted (``Loaded.drafters``), in one query
    for the whole list rather than a load per case."""
    mine = {c.id for c in cases if c.opened_by == account_id}
    by_id = {c.id: c for c in cases if c.id not in mine}
    if not by_id:
        return mine
    rows = await session.execute(
        select(CaseEvent.case_id, CaseEvent.from_state, CaseEvent.event).where(
            CaseEvent.case_id.in_(by_id), CaseEvent.actor_account == account_id
        )
    )
    for case_id, from_state, event in rows:
        if _drafting(WORKFLOWS[by_id[case_id].workflow], from_state, event):
            mine.add(case_id)
    return mine


def _drafting(wf: Workflow, from_state: str, event: str) -> bool:
    """Whether firing ``event`` from ``from_state`` makes its actor a drafter."""
    t = wf.transition(from_state, event)
    return t is not None and t.drafting


def side_of(case: Case, participant_id: str) -> Side | None:
    if participant_id == case.requesting_id:
        return Side.REQUESTING
    if participant_id == case.requested_id:
        return Side.REQUESTED
    return None


def can_see(case: Case, caller: Caller) -> bool:
    side = side_of(case, caller.participant_id)
    if side is None or (side is Side.REQUESTED and case.shared_at is None):
        return False
    return not (case.confidential and caller.roles.isdisjoint(CASE_HANDLING_PEOPLE))


def projection_of(case: Case) -> Projection:
    return projection_from(case.state, case.seq, case.projection)


async def _case(session: AsyncSession, case_id: str, *, lock: bool = False) -> Case | None:
    try:
        uuid.UUID(case_id)
    except ValueError:
        return None
    stmt = select(Case).where(Case.id == case_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).first()


async def load(session: AsyncSession, case: Case) -> Loaded:
    events = list(
        (
            await session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
            )
        ).all()
    )
    evidence = list(
        (
            await session.scalars(
                select(EvidenceFile)
                .where(EvidenceFile.case_id == case.id)
                .order_by(EvidenceFile.created_at, EvidenceFile.id)
            )
        ).all()
    )
    parent = await _case(session, case.parent_id) if case.parent_id else None
    return Loaded(case, WORKFLOWS[case.workflow], projection_of(case), events, evidence, parent)


async def case_for(
    session: AsyncSession, *, caller: Caller, case_id: str, lock: bool = False
) -> Case:
    """The case, if the caller may see it. Raises NotFound (also for cases of others)."""
    case = await _case(session, case_id, lock=lock)
    if case is None or not can_see(case, caller):
        raise NotFound(f"no case {case_id}")
    return case


def advance(case: Case, p: Projection, now: dt.datetime) -> None:
    """Keep the case row equal to its projection (the fold of its history)."""
    case.state = p.state
    case.seq = p.seq
    case.projection = projection_json(p)
    case.shared_at = p.shared_at
    case.updated_at = now
