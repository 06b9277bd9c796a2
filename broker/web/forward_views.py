"""Forwarding from the browser, and asking the provider's consent when a forward is refused.

A forward is ``broker.consents.forwarding.forward`` with a ``{"draft": ...}`` body, exactly as
``POST /v1/messages/{id}/forward``: the node signs with the participant's custodial key, the
original's restrictions are added and what the form leaves out is taken from the original.
The form is checked first ("check your answers"): nothing is sent before the second post.
A policy refusal keeps its ``message:refused`` leaf, is shown with every rule and citation,
and offers the consent request form prefilled (``broker.consents.service.request_consent``,
as ``POST /v1/messages/{id}/consent-requests``).

Only the recipient of a delivered message (its officers and supervisors) forwards it or asks
consent for it: its sender gets 403, anyone else 404, as in the API.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from broker.consents import forwarding
from broker.consents import service as consents
from broker.consents.schemas import ConsentCreate
from broker.core.context import CallContext
from broker.core.db import utcnow
from broker.core.errors import SchemaViolation
from broker.http import NodeDep, SessionDep
from broker.messages import Refused, held_message, terms_of
from broker.participants.service import list_participants
from broker.policy.views import PolicyDep
from broker.web.rendering import render
from broker.web.service import WebUser
from broker.web.views import CsrfField, Handling, check_csrf, router

Text200 = Annotated[str, Form(max_length=200)]


def errors_of(exc: ValidationError, names: dict[str, str]) -> list[dict[str, str]]:
    """A pydantic error as the error summary's rows: the field's id, the error's type as the
    code the templates translate (``_onward.html``) and pydantic's message as the detail
    shown when no translation names the code."""
    rows = []
    for e in exc.errors():
        loc = str(e["loc"][0]) if e["loc"] else ""
        rows.append({"field": names.get(loc, loc), "text": str(e["type"]), "detail": str(e["msg"])})
    return rows


async def _recipients(session: SessionDep, user: WebUser) -> list[Any]:
    return [p for p in await list_participants(session) if p.id != user.caller.participant_id]


async def _context(
    session: SessionDep, user: WebUser, message_id: str, values: dict[str, str]
) -> dict[str, Any]:
    message = await held_message(session, caller=user.caller, message_id=message_id)
    terms = await terms_of(session, message)
    return {
        "message": message,
        "terms": terms,
        "recipients": await _recipients(session, user),
        "values": {"late_notice": "", **values},
        "errors": [],
        "refusal": None,
        "check": False,
        "consent": None,
    }


@router.get("/messages/{message_id}/forward")
async def forward_page(
    message_id: str,
    request: Request,
    session: SessionDep,
    user: Handling,
    recipient: Annotated[str, Query(max_length=64)] = "",
    purpose: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    context = await _context(session, user, message_id, {"recipient": recipient})
    context["values"]["purpose"] = purpose or context["message"].purpose or ""
    context["values"]["legal_basis"] = context["message"].legal_basis or ""
    await session.commit()
    return render(request, "forward.html", context, user=user)


@router.post("/messages/{message_id}/forward")
async def forward_message(
    message_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    policy: PolicyDep,
    user: Handling,
    csrf_token: CsrfField = "",
    recipient: Annotated[str, Form(max_length=64)] = "",
    purpose: Text200 = "",
    legal_basis: Text200 = "",
    late_notice: Annotated[str, Form(max_length=8)] = "",
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    values = {
        "recipient": recipient,
        "purpose": purpose,
        "legal_basis": legal_basis,
        "late_notice": "yes" if late_notice else "",
    }
    context = await _context(session, user, message_id, values)
    errors = []
    if recipient not in {p.id for p in context["recipients"]}:
        errors.append({"field": "recipient", "text": "recipient"})
    if not purpose.strip():
        errors.append({"field": "purpose", "text": "purpose"})
    if errors:
        context["errors"] = errors
        await session.commit()
        return render(request, "forward.html", context, user=user, status=422)
    if confirm != "yes":
        context["check"] = True
        await session.commit()
        return render(request, "forward.html", context, user=user)
    draft: dict[str, Any] = {"recipient": recipient, "purpose": purpose}
    if legal_basis.strip():
        draft["legal_basis"] = legal_basis
    if late_notice:
        # The payload's flag (P5.late, UNTOC art. 18(19)): prior notice of an exculpatory
        # disclosure was not possible; the policy then obliges a follow-up.
        draft["late_notice"] = True
    await session.commit()
    try:
        outcome = await forwarding.forward(
            session,
            ctx=CallContext(node, user.caller, policy, None, utcnow()),
            message_id=message_id,
            body=orjson.dumps({"draft": draft}),
        )
    except SchemaViolation as exc:
        await session.rollback()
        context = await _context(session, user, message_id, values)
        context["errors"] = [{"field": "recipient", "text": exc.detail}]
        await session.commit()
        return render(request, "forward.html", context, user=user, status=422)
    # A refusal keeps its message:refused leaf: commit, then say why.
    await session.commit()
    if isinstance(outcome, Refused):
        context = await _context(session, user, message_id, values)
        context["refusal"] = outcome
        context["consent"] = {
            "recipient": recipient,
            "purpose": purpose,
            "reasons": "",
            "providers": sorted(
                {o["value"] for o in outcome.obligations if o.get("kind") == "require_consent"}
            ),
        }
        await session.commit()
        return render(request, "forward.html", context, user=user, status=403)
    return RedirectResponse(
        f"/messages/{message_id}/forward/sent?id={outcome.message_id}", status_code=303
    )


@router.get("/messages/{message_id}/forward/sent")
async def forward_sent(
    message_id: str,
    request: Request,
    session: SessionDep,
    user: Handling,
    id: Annotated[str, Query(max_length=36)] = "",
) -> Response:
    context = await _context(session, user, message_id, {})
    context["sent_id"] = id
    await session.commit()
    return render(request, "forward_sent.html", context, user=user)


@router.get("/messages/{message_id}/consent-request")
async def consent_request_page(
    message_id: str,
    request: Request,
    session: SessionDep,
    user: Handling,
    recipient: Annotated[str, Query(max_length=64)] = "",
    purpose: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    context = await _context(session, user, message_id, {})
    context["consent"] = {"recipient": recipient, "purpose": purpose, "reasons": ""}
    await session.commit()
    return render(request, "consent_request.html", context, user=user)


@router.post("/messages/{message_id}/consent-request")
async def consent_request(
    message_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    policy: PolicyDep,
    user: Handling,
    csrf_token: CsrfField = "",
    recipient: Annotated[str, Form(max_length=64)] = "",
    purpose: Text200 = "",
    reasons: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    values = {"recipient": recipient, "purpose": purpose, "reasons": reasons}
    context = await _context(session, user, message_id, {})
    context["consent"] = values
    errors: list[dict[str, str]] = []
    if recipient not in {p.id for p in context["recipients"]}:
        errors.append({"field": "consent-recipient", "text": "recipient"})
    if not purpose.strip():
        errors.append({"field": "consent-purpose", "text": "purpose"})
    if not reasons.strip():
        errors.append({"field": "consent-reasons", "text": "reasons"})
    create = None
    if not errors:
        try:
            create = ConsentCreate(recipient=recipient, purpose=purpose, reasons=reasons)
        except ValidationError as exc:
            errors = errors_of(
                exc, {k: f"consent-{k}" for k in ("recipient", "purpose", "reasons")}
            )
    if errors or create is None:
        context["errors"] = errors
        await session.commit()
        return render(request, "consent_request.html", context, user=user, status=422)
    await session.commit()
    outcome = await consents.request_consent(
        session,
        ctx=CallContext(node, user.caller, policy, None, utcnow()),
        message_id=message_id,
        create=create,
    )
    await session.commit()
    if isinstance(outcome, Refused):
        context = await _context(session, user, message_id, {})
        context["consent"] = values
        context["refusal"] = outcome
        await session.commit()
        return render(request, "consent_request.html", context, user=user, status=403)
    return RedirectResponse(f"/consents/{outcome.id}?asked=1", status_code=303)
