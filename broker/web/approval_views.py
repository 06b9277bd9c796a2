"""Messages held for a supervisor's approval, in the web app (a ``require_approval``
obligation: P16.derogation, LED art. 38(2)).

A supervisor sees the held messages of their participant and approves or rejects each with
reasons, through the same services as ``POST /v1/approvals/{id}/approve|reject``, which decide
who may (a supervisor of the sending participant who did not submit the message) and audit.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from broker import messages
from broker.core.db import utcnow
from broker.core.errors import InvalidState, SchemaViolation
from broker.http import NodeDep, SessionDep
from broker.web.rendering import render
from broker.web.service import WebUser
from broker.web.views import CsrfField, check_csrf, person_with, router

Supervising = Annotated[WebUser, Depends(person_with("supervisor"))]
PAGE = "/approvals/messages"


async def _context(session: AsyncSession, user: WebUser) -> dict[str, Any]:
    pending = await messages.pending_approvals(session, caller=user.caller)
    return {
        "items": [
            {"message": m, "approval": a, "mine": a.drafter_account == user.caller.account_id}
            for a, m in pending
        ],
        "errors": {},
        "values": {},
        "done": None,
    }


@router.get(PAGE)
async def approvals_page(request: Request, session: SessionDep, user: Supervising) -> Response:
    context = await _context(session, user)
    context["done"] = request.query_params.get("done")
    await session.commit()
    return render(request, "approvals.html", context, user=user)


@router.post("/messages/{message_id}/approve")
async def approve(
    message_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    user: Supervising,
    csrf_token: CsrfField = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    await messages.approve(
        session, node=node, caller=user.caller, message_id=message_id, now=utcnow()
    )
    await session.commit()
    return RedirectResponse(f"{PAGE}?done=approved", status_code=303)


@router.post("/messages/{message_id}/reject")
async def reject(
    message_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    user: Supervising,
    csrf_token: CsrfField = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    try:
        await messages.reject(
            session,
            node=node,
            caller=user.caller,
            message_id=message_id,
            reason=reason,
            now=utcnow(),
        )
    except (SchemaViolation, InvalidState) as exc:
        await session.rollback()
        context = await _context(session, user)
        code = "decided" if isinstance(exc, InvalidState) else "reason"
        context.update(errors={message_id: code}, values={message_id: reason})
        await session.commit()
        return render(request, "approvals.html", context, user=user, status=422)
    await session.commit()
    return RedirectResponse(f"{PAGE}?done=rejected", status_code=303)
