"""The consent pages: the consents asked of the participant (to answer) and by it (their
status), each with its page, where the provider grants or refuses.

They call ``broker.consents.service`` as ``/v1/consents`` does, in one transaction committed
before the page is sent. A consent the participant neither asked nor is asked for answers
404; only the provider answers (403 for the requester), once (409 after). A refusal needs
reasons (the form says so before anything is signed); a policy refusal (a ground that can
never be one, FIU.refusal-grounds) keeps its ``message:refused`` leaf and is shown with its
rules and citations. A grant may set conditions (one per line; they travel with every forward
the consent permits, as restrictions: P9) and an end (a date and time in the reader's time
zone, in the future), as ``POST /v1/consents/{id}/grant`` does.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from broker.consents import service as consents
from broker.consents.models import Consent
from broker.consents.schemas import ConsentAnswer
from broker.core.context import CallContext
from broker.core.db import utcnow
from broker.core.errors import SchemaViolation
from broker.http import NodeDep, SessionDep, SettingsDep
from broker.messages import Refused
from broker.policy.views import PolicyDep
from broker.web.case_views import reader_timezone
from broker.web.forward_views import errors_of
from broker.web.rendering import render
from broker.web.service import WebUser
from broker.web.views import CsrfField, Handling, check_csrf, router
from policies.vocabulary import GROUNDS

# Grounds a provider may name; bank secrecy and fiscal matters are listed, and refused by the
# policy with their rule, so that the page teaches why.
GROUND_CHOICES = sorted(GROUNDS)


@router.get("/consents")
async def consent_list(
    request: Request, session: SessionDep, settings: SettingsDep, user: Handling
) -> Response:
    rows = await consents.list_consents(
        session, caller=user.caller, status=None, limit=settings.inbox_page_size
    )
    await session.commit()
    me = user.caller.participant_id
    return render(
        request,
        "consents.html",
        {
            "asked_of_us": [c for c in rows if c.provider_id == me],
            "asked_by_us": [c for c in rows if c.requester_id == me],
        },
        user=user,
    )


def _context(consent: Consent, user: WebUser) -> dict[str, Any]:
    me = user.caller.participant_id
    return {
        "consent": consent,
        "is_provider": consent.provider_id == me,
        "is_requester": consent.requester_id == me,
        "grounds": GROUND_CHOICES,
        "values": {
            "reasons": "",
            "grounds": [],
            "answer": "",
            "conditions": "",
            "valid_until": "",
        },
        "errors": [],
        "refusal": None,
    }


@router.get("/consents/{consent_id}")
async def consent_page(
    consent_id: str, request: Request, session: SessionDep, user: Handling
) -> Response:
    consent = await consents.get_consent(session, caller=user.caller, consent_id=consent_id)
    await session.commit()
    return render(request, "consent.html", _context(consent, user), user=user)


async def _answer(
    consent_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    policy: PolicyDep,
    user: WebUser,
    *,
    grant: bool,
    reasons: str,
    grounds: list[str],
    conditions: str = "",
    valid_until: str = "",
    zone: dt.tzinfo = dt.UTC,
) -> Response:
    consent = await consents.get_consent(session, caller=user.caller, consent_id=consent_id)
    context = _context(consent, user)
    answer_name = "grant" if grant else "refuse"
    context["values"] = {
        "reasons": reasons,
        "grounds": grounds,
        "answer": answer_name,
        "conditions": conditions,
        "valid_until": valid_until,
    }
    prefix = f"{answer_name}-"
    errors: list[dict[str, str]] = []
    answer = None
    until: dt.datetime | None = None
    if valid_until.strip():
        try:
            until = dt.datetime.fromisoformat(valid_until.strip())
        except ValueError:
            errors.append({"field": "grant-valid_until", "text": "datetime_parsing"})
        else:
            until = until if until.tzinfo else until.replace(tzinfo=zone)
            if until <= utcnow():
                errors.append({"field": "grant-valid_until", "text": "valid_until_future"})
    if not grant and not reasons.strip():
        errors.append({"field": "refuse-reasons", "text": "reasons"})
    elif not errors:
        try:
            answer = ConsentAnswer(
                reasons=reasons.strip() or None,
                grounds=grounds,
                conditions=[line.strip() for line in conditions.splitlines() if line.strip()],
                valid_until=until,
            )
        except ValidationError as exc:
            names = ("reasons", "grounds", "conditions", "valid_until")
            errors = errors_of(exc, {k: prefix + k for k in names})
    if errors or answer is None:
        context["errors"] = errors
        await session.commit()
        return render(request, "consent.html", context, user=user, status=422)
    await session.commit()
    try:
        outcome = await consents.answer_consent(
            session,
            ctx=CallContext(node, user.caller, policy, None, utcnow()),
            consent_id=consent_id,
            grant=grant,
            answer=answer,
        )
    except SchemaViolation as exc:
        # An end that is not in the future: nothing was signed.
        await session.rollback()
        context["consent"] = await consents.get_consent(
            session, caller=user.caller, consent_id=consent_id
        )
        field = str(exc.extra.get("field") or "reasons")
        context["errors"] = [{"field": prefix + field, "text": exc.detail}]
        await session.commit()
        return render(request, "consent.html", context, user=user, status=422)
    # A policy refusal keeps its message:refused leaf: commit, then say why.
    await session.commit()
    if isinstance(outcome, Refused):
        consent = await consents.get_consent(session, caller=user.caller, consent_id=consent_id)
        context["consent"] = consent
        context["refusal"] = outcome
        await session.commit()
        return render(request, "consent.html", context, user=user, status=403)
    return RedirectResponse(f"/consents/{consent_id}?answered=1", status_code=303)


@router.post("/consents/{consent_id}/grant")
async def grant_consent(
    consent_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    policy: PolicyDep,
    user: Handling,
    settings: SettingsDep,
    csrf_token: CsrfField = "",
    reasons: Annotated[str, Form(max_length=4000)] = "",
    conditions: Annotated[str, Form(max_length=12000)] = "",
    valid_until: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    return await _answer(
        consent_id,
        request,
        session,
        node,
        policy,
        user,
        grant=True,
        reasons=reasons,
        grounds=[],
        conditions=conditions,
        valid_until=valid_until,
        zone=reader_timezone(request, settings),
    )


@router.post("/consents/{consent_id}/refuse")
async def refuse_consent(
    consent_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    policy: PolicyDep,
    user: Handling,
    csrf_token: CsrfField = "",
    reasons: Annotated[str, Form(max_length=4000)] = "",
    grounds: Annotated[list[str] | None, Form()] = None,
) -> Response:
    check_csrf(request, user, csrf_token)
    return await _answer(
        consent_id,
        request,
        session,
        node,
        policy,
        user,
        grant=False,
        reasons=reasons,
        grounds=grounds or [],
    )
