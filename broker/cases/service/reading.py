"""Reading and listing: a case's threads, the caller's cases filtered, the events the
caller may fire next, and the consents granted on a case for onward-use decisions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases.models import Case
from broker.cases.service.loading import CASE_HANDLING_PEOPLE, Loaded, can_see, side_of
from broker.cases.tables import WORKFLOWS
from broker.cases.workflow import Transition
from broker.core.context import Caller
from policies.model import Consent


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


def allowed_events(loaded: Loaded, caller: Caller) -> list[Transition]:
    """The events the caller may fire now, as far as can be told without a body: the state,
    the side, the roles, and the four-eyes rule."""
    side = side_of(loaded.case, caller.participant_id)
    out = []
    for t in loaded.workflow.from_state(loaded.projection.state):
        if t.side is not side or caller.roles.isdisjoint(t.roles):
            continue
        four_eyes = any(g.excludes_drafters for g in t.guards)
        if four_eyes and caller.account_id in loaded.drafters:
            continue
        out.append(t)
    return out


async def consents_on_record(session: AsyncSession, case_id: str) -> tuple[Consent, ...]:
    """The consents granted through the case's consent threads, as the policy engine reads
    them (``Context.consents``): for deciding onward use of the case's material."""
    rows = (
        await session.scalars(
            select(Case).where(
                Case.parent_id == case_id,
                or_(
                    false(),
                    *(and_(Case.workflow == w, Case.state == s) for w, s in _GRANTED_CONSENTS),
                ),
            )
        )
    ).all()
    return tuple(
        Consent(c.requested_id, str(c.terms.get("recipient")), str(c.terms.get("purpose")))
        for c in rows
    )


# The (workflow, state) of a thread whose consent was granted: the targets of the rows that
# grant the parent's consent.
_GRANTED_CONSENTS = tuple(
    (wf.name, t.target)
    for wf in WORKFLOWS.values()
    for t in wf.transitions
    if t.grants_parent_consent and t.target is not None
)
