"""Opening a thread under a case from its page: the form of the thread's opening event
(feedback: the question), generated from its body schema as every event form is, and
``cases.open_case`` with the parent, as ``POST /v1/cases`` with ``parent_id``.

Only a thread the case page offers the reader may be opened here (``broker.web.threads``);
the service checks side, role, state and guards again in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from broker import messages
from broker.cases import service as cases
from broker.cases.service import Fired
from broker.cases.workflow import GuardError
from broker.core.context import CallContext
from broker.core.errors import Forbidden, InvalidState, SchemaViolation
from broker.http import NodeDep, SessionDep, SettingsDep
from broker.policy.views import PolicyDep
from broker.web import threads
from broker.web.case_views import (
    FORM_LIMITS,
    ClockDep,
    ConfigDep,
    guard_refusal,
    policy_refusal,
    reader_timezone,
    tone,
)
from broker.web.cases import FieldError, fill, form_fields, form_values, parse, validate
from broker.web.rendering import render
from broker.web.service import WebUser
from broker.web.views import Handling, check_csrf, router


async def _context(
    session: SessionDep,
    user: WebUser,
    case_id: str,
    workflow: str,
    values: Mapping[str, Any],
    errors: list[FieldError],
    refusal: dict[str, Any] | None,
) -> dict[str, Any]:
    case = await cases.case_for(session, caller=user.caller, case_id=case_id)
    loaded = await cases.load(session, case)
    wf, t = threads.opener(loaded, user.caller, workflow)
    fields = form_fields(t.body)
    fill(fields, values)
    return {
        "case": case,
        "parent_workflow": loaded.workflow,
        "tone": tone(case.state),
        "thread": wf,
        "transition": t,
        "fields": fields,
        "errors": errors,
        "refusal": refusal,
    }


@router.get("/cases/{case_id}/threads/{workflow}")
async def thread_page(
    case_id: str, workflow: str, request: Request, session: SessionDep, user: Handling
) -> Response:
    context = await _context(session, user, case_id, workflow, {}, [], None)
    await session.commit()
    return render(request, "case_thread.html", context, user=user)


@router.post("/cases/{case_id}/threads/{workflow}")
async def open_thread(
    case_id: str,
    workflow: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    policy: PolicyDep,
    settings: SettingsDep,
    config: ConfigDep,
    clock: ClockDep,
    user: Handling,
) -> Response:
    form = await request.form(**FORM_LIMITS)
    check_csrf(request, user, str(form.get("csrf_token") or ""))
    case = await cases.case_for(session, caller=user.caller, case_id=case_id)
    loaded = await cases.load(session, case)
    _, t = threads.opener(loaded, user.caller, workflow)
    fields = form_fields(t.body)
    values = form_values(fields, form)
    data, errors = parse(fields, values, reader_timezone(request, settings))
    if not errors:
        _, errors = validate(t.body, data, fields)
    refusal: dict[str, Any] | None = None
    status = 422
    if not errors:
        await session.commit()
        try:
            outcome = await cases.open_case(
                session,
                ctx=CallContext(node, user.caller, policy, config, clock()),
                workflow=workflow,
                counterpart=None,
                request=None,
                parent_id=case_id,
                event=t.event,
                body=data,
                envelope=None,
            )
        except (GuardError, Forbidden, InvalidState, SchemaViolation) as exc:
            await session.rollback()
            status = exc.status
            refusal = guard_refusal(exc, t)
        else:
            # A policy refusal keeps its message:refused leaf: commit, then say why.
            await session.commit()
            if isinstance(outcome, messages.Refused):
                status = 403
                refusal = policy_refusal(outcome)
            else:
                assert isinstance(outcome, Fired)
                child = outcome.case.id
                return RedirectResponse(f"/cases/{child}?done={t.event}", status_code=303)
    context = await _context(session, user, case_id, workflow, values, errors, refusal)
    await session.commit()
    return render(request, "case_thread.html", context, user=user, status=status)
