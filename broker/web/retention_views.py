"""The retention review on the message and case pages (P17: erased at expiry "unless a
reasoned review extends it"; LED art. 5), and the reviews due on the home page.

A supervisor of a holding participant sees, from PALERMO_RETENTION_REVIEW_DAYS before the
deadline, a form to extend it once with reasons; the same services as
``POST /v1/messages/{id}/retention`` and ``POST /v1/cases/{id}/retention`` decide and audit.
Before the review opens the pages say when it will.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import messages
from broker.cases import service as cases
from broker.core.context import CallContext, Caller
from broker.core.db import utcnow
from broker.core.errors import InvalidState, SchemaViolation
from broker.http import NodeDep, SessionDep, SettingsDep
from broker.messages.models import Message
from broker.policy.views import PolicyDep
from broker.web import i18n
from broker.web.case_views import ClockDep, ConfigDep, _case_context, reader_timezone
from broker.web.rendering import render
from broker.web.review import review_of
from broker.web.service import WebUser
from broker.web.views import CsrfField, _message_context, check_csrf, person_with, router

Supervising = Annotated[WebUser, Depends(person_with("supervisor"))]
HOME_REVIEWS = 10


def _error(exc: InvalidState | SchemaViolation) -> dict[str, str]:
    field = str(exc.extra.get("field") or "until")
    code = "closed" if isinstance(exc, InvalidState) else field
    return {"field": "review-reason" if field == "reason" else "review-until", "code": code}


@router.post("/messages/{message_id}/retention")
async def extend_message_retention(
    message_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    user: Supervising,
    csrf_token: CsrfField = "",
    until: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    terms = messages.ReviewTerms.from_settings(settings)
    now = utcnow()
    when = i18n.day_start(until, reader_timezone(request, settings))
    try:
        if when is None:
            raise SchemaViolation("give the new deadline as a date", field="until")
        await messages.extend_message_retention(
            session,
            node=node,
            caller=user.caller,
            message_id=message_id,
            until=when,
            reason=reason,
            now=now,
            terms=terms,
        )
    except (InvalidState, SchemaViolation) as exc:
        await session.rollback()
        context = await _message_context(
            session, user, message_id, min_justification=settings.justification_min_length
        )
        context.update(
            review=review_of(context["message"].retention_until, terms, now, user),
            review_errors=[_error(exc)],
            review_values={"until": until, "reason": reason},
        )
        await session.commit()
        return render(request, "message.html", context, user=user, status=422)
    await session.commit()
    return RedirectResponse(f"/messages/{message_id}?extended=1", status_code=303)


@router.post("/cases/{case_id}/retention")
async def extend_case_retention(
    case_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    policy: PolicyDep,
    config: ConfigDep,
    clock: ClockDep,
    user: Supervising,
    csrf_token: CsrfField = "",
    until: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    now = clock()
    when = i18n.day_start(until, reader_timezone(request, settings))
    try:
        if when is None:
            raise SchemaViolation("give the new deadline as a date", field="until")
        await cases.extend_case_retention(
            session,
            ctx=CallContext(node, user.caller, policy, config, now),
            case_id=case_id,
            until=when,
            reason=reason,
        )
    except (InvalidState, SchemaViolation) as exc:
        await session.rollback()
        context = await _case_context(session, user, config, now, case_id)
        context.update(
            uploaded=None,
            upload_error=None,
            review=review_of(context["case"].retention_until, config.review, now, user),
            review_errors=[_error(exc)],
            review_values={"until": until, "reason": reason},
        )
        await session.commit()
        return render(request, "case.html", context, user=user, status=422)
    await session.commit()
    return RedirectResponse(f"/cases/{case_id}?extended=1", status_code=303)


async def reviews_due(
    session: AsyncSession, *, caller: Caller, terms: messages.ReviewTerms, now: dt.datetime
) -> list[Message]:
    """The plain messages of the caller's participant whose retention review is open, the
    nearest deadline first (a case's review comes as a reminder from its clocks)."""
    me = caller.participant_id
    stmt = (
        select(Message)
        .where(
            or_(
                Message.sender_id == me,
                # Held for the sender's supervisor, or rejected: it never reached me.
                and_(Message.recipient_id == me, Message.status.not_in(sorted(messages.HELD))),
            ),
            Message.case_id.is_(None),
            Message.erased_at.is_(None),
            Message.retention_until.is_not(None),
            Message.retention_until <= now + terms.review,
        )
        .order_by(Message.retention_until)
        .limit(HOME_REVIEWS)
    )
    return list((await session.scalars(stmt)).all())
