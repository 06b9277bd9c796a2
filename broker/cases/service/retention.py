"""A reasoned review that extends a case's retention (P17; LED art. 5; docs/retention.md).

A case's retention runs from its end (closure, refusal, withdrawal); a review opens
``review`` before the deadline, when the clocks remind both parties (a ``retention_review``
notice). A supervisor of either party may then extend it once with reasons: a
``retention_extended`` notice, signed by the node for that person, whose ``until`` the clocks
read as the new deadline (``broker.cases.clocks.due_actions``), with one
``retention:extended`` leaf. The case's messages and evidence follow the new deadline.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases.config import CaseContext
from broker.cases.models import Case
from broker.cases.service.loading import case_for, load
from broker.cases.service.notices import follow_case_retention, record_system_event, reschedule
from broker.cases.service.request import erased_error
from broker.core.errors import InvalidState
from broker.messages import checked_extension
from broker.oversight.service import AuditKind


async def extend_case_retention(
    session: AsyncSession,
    *,
    ctx: CaseContext,
    case_id: str,
    until: dt.datetime,
    reason: str,
) -> Case:
    """Extend the retention of an ended case the caller's participant is a party to; return
    the case with its new ``retention_until``. Flushes.

    Raises:
        NotFound: not a case the caller may see.
        ContentErased: the case was erased already.
        InvalidState: the case has not ended (no deadline runs), or the review has not opened.
        SchemaViolation: see ``broker.messages.checked_extension``.
    """
    case = await case_for(session, caller=ctx.caller, case_id=case_id)
    if case.erased_at is not None:
        raise erased_error(case)
    loaded = await load(session, case)
    if loaded.workflow.erasing_from(loaded.projection.state) is None:
        raise InvalidState(
            f"the case is {case.state}: its retention runs from its closure, refusal or withdrawal",
            field="until",
        )
    before = case.retention_until
    text = checked_extension(
        deadline=before, until=until, reason=reason, now=ctx.now, terms=ctx.config.review
    )
    await record_system_event(
        session,
        node=ctx.node,
        loaded=loaded,
        event="retention_extended",
        details={
            "notice": "retention_extended",
            "key": until.isoformat(),
            "until": until.isoformat(),
        },
        now=ctx.now,
        audit_kind=AuditKind.RETENTION_EXTENDED,
        actor=ctx.caller.actor(),
        leaf={"item": "case", "retention_until_before": before, "retention_until": until},
        texts={"reason": text},
    )
    reschedule(loaded, ctx.config, ctx.now)
    await follow_case_retention(session, loaded)
    await session.flush()
    return case
