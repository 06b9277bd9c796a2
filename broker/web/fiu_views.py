"""The FIU pages: anonymous matching, goAML import and goAML export.

- Matching (``broker.fiu.service.query``, as ``POST /v1/fiu/matches``): the subjects and the
  exchange key are typed into fields without a name, so the browser never posts them;
  ``static/matching.js`` computes ``HMAC-SHA-256(key, normalise(subject))`` with WebCrypto,
  exactly as ``broker.fiu.filters.keyed_filter``, and the form posts only the filters. With
  JavaScript off the page says that matching needs it, and the form stays hidden.
- Import: an uploaded goAML report is validated and mapped by ``adapters.goaml``
  (``disclosure_draft``) and sent as an ``fiu.disclosure`` draft (``messages.submit``, as
  ``POST /v1/messages``). A schema error lists every problem with its place in the report,
  and nothing is stored.
- Export: a disclosure's content, read with a justification (``read_content``, a
  ``content:consulted`` leaf as ``GET /v1/messages/{id}/content``), as a goAML download
  (``adapters.goaml.disclosure_to_report``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from adapters import goaml
from broker.cases.views import ClockDep, ConfigDep
from broker.core.context import CallContext
from broker.core.db import utcnow
from broker.core.errors import JustificationRequired, PalermoError
from broker.fiu import service as fiu
from broker.fiu.schemas import MatchCreate
from broker.http import NodeDep, SessionDep, SettingsDep
from broker.messages import Refused, get_message_for, read_content, submit
from broker.participants.service import list_participants
from broker.policy.views import PolicyDep
from broker.web.forward_views import errors_of
from broker.web.rendering import render
from broker.web.service import WebUser
from broker.web.views import CsrfField, Handling, check_csrf, router

MATCH_FIELDS = ("counterpart", "exchange_id", "purpose", "legal_basis", "filters")
FORM_LIMITS = {"max_files": 1, "max_fields": 10, "max_part_size": goaml.MAX_REPORT_BYTES + 1}


async def _partners(session: SessionDep, user: WebUser) -> list[Any]:
    return [
        p
        for p in await list_participants(session)
        if p.kind == "fiu" and p.id != user.caller.participant_id
    ]


async def _matching(
    request: Request, session: SessionDep, user: WebUser, values: dict[str, str], **extra: Any
) -> dict[str, Any]:
    rows = await fiu.list_matches(session, caller=user.caller, limit=50)
    return {
        "matches": rows,
        "partners": await _partners(session, user),
        "values": values,
        "errors": [],
        "refusal": None,
        **extra,
    }


@router.get("/fiu/matches")
async def matching_page(request: Request, session: SessionDep, user: Handling) -> Response:
    context = await _matching(request, session, user, dict.fromkeys(MATCH_FIELDS, ""))
    await session.commit()
    return render(request, "fiu_matching.html", context, user=user)


@router.post("/fiu/matches")
async def matching_query(
    request: Request,
    session: SessionDep,
    node: NodeDep,
    policy: PolicyDep,
    config: ConfigDep,
    clock: ClockDep,
    user: Handling,
    csrf_token: CsrfField = "",
    counterpart: Annotated[str, Form(max_length=64)] = "",
    exchange_id: Annotated[str, Form(max_length=64)] = "",
    purpose: Annotated[str, Form(max_length=200)] = "",
    legal_basis: Annotated[str, Form(max_length=200)] = "",
    filters: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    values = {
        "counterpart": counterpart,
        "exchange_id": exchange_id,
        "purpose": purpose,
        "legal_basis": legal_basis,
        "filters": filters,
    }
    errors: list[dict[str, str]] = []
    create = None
    try:
        create = MatchCreate(
            counterpart=counterpart,
            exchange_id=exchange_id,
            purpose=purpose,
            legal_basis=legal_basis,
            filters=filters.split(),
        )
    except ValidationError as exc:
        errors = errors_of(exc, {k: f"match-{k}" for k in MATCH_FIELDS})
    if create is not None:
        await session.commit()
        try:
            outcome = await fiu.query(
                session, ctx=CallContext(node, user.caller, policy, config, clock()), create=create
            )
        except PalermoError as exc:
            if exc.status >= 500 or exc.status in (403, 404):
                raise
            await session.rollback()
            field = str(exc.extra.get("field") or "filters").split(".")[-1]
            errors = [{"field": f"match-{field}", "text": exc.detail}]
        else:
            await session.commit()
            if isinstance(outcome, Refused):
                context = await _matching(request, session, user, values, refusal=outcome)
                await session.commit()
                return render(request, "fiu_matching.html", context, user=user, status=403)
            return RedirectResponse(f"/fiu/matches?sent={outcome[0].id}", status_code=303)
    context = await _matching(request, session, user, values)
    context["errors"] = errors
    await session.commit()
    return render(request, "fiu_matching.html", context, user=user, status=422)


# --- goAML -----------------------------------------------------------------------------------


async def _import_context(session: SessionDep, user: WebUser, **extra: Any) -> dict[str, Any]:
    recipients = [p for p in await list_participants(session) if p.id != user.caller.participant_id]
    return {
        "recipients": recipients,
        "values": dict.fromkeys(("recipient", "purpose", "legal_basis"), ""),
        "errors": [],
        "schema_errors": [],
        "refusal": None,
        **extra,
    }


@router.get("/fiu/goaml")
async def goaml_page(request: Request, session: SessionDep, user: Handling) -> Response:
    context = await _import_context(session, user)
    await session.commit()
    return render(request, "fiu_goaml.html", context, user=user)


@router.post("/fiu/goaml")
async def goaml_import(
    request: Request, session: SessionDep, node: NodeDep, policy: PolicyDep, user: Handling
) -> Response:
    form = await request.form(**FORM_LIMITS)
    check_csrf(request, user, str(form.get("csrf_token", "")))
    values = {k: str(form.get(k, ""))[:200] for k in ("recipient", "purpose", "legal_basis")}
    upload = form.get("report")
    errors: list[dict[str, str]] = []
    for key in ("recipient", "purpose", "legal_basis"):
        if not values[key].strip():
            errors.append({"field": f"goaml-{key}", "text": key})
    xml = b""
    name = "report.xml"
    if upload is None or isinstance(upload, str) or not upload.filename:
        errors.append({"field": "goaml-report", "text": "report"})
    else:
        xml = await upload.read(goaml.MAX_REPORT_BYTES + 1)
        name = upload.filename[:200]
    schema_errors: list[dict[str, str]] = []
    if not errors:
        try:
            draft = await asyncio.to_thread(
                goaml.disclosure_draft,
                xml,
                recipient=values["recipient"],
                legal_basis=values["legal_basis"],
                purpose=values["purpose"],
                name=name,
            )
        except goaml.GoamlInvalid as exc:
            listed = exc.extra.get("errors")
            schema_errors = (
                [{"where": str(e["field"]), "text": str(e["message"])} for e in listed]
                if isinstance(listed, list)
                else [{"where": "/", "text": exc.detail}]
            )
        else:
            await session.commit()
            outcome = await submit(
                session,
                ctx=CallContext(node, user.caller, policy, None, utcnow()),
                body=orjson.dumps({"draft": draft}),
            )
            await session.commit()
            if isinstance(outcome, Refused):
                context = await _import_context(session, user, values=values, refusal=outcome)
                await session.commit()
                return render(request, "fiu_goaml.html", context, user=user, status=403)
            return RedirectResponse(f"/messages/{outcome.message_id}", status_code=303)
    context = await _import_context(
        session, user, values=values, errors=errors, schema_errors=schema_errors
    )
    await session.commit()
    return render(request, "fiu_goaml.html", context, user=user, status=422)


@router.get("/messages/{message_id}/goaml")
async def goaml_export_page(
    message_id: str, request: Request, session: SessionDep, settings: SettingsDep, user: Handling
) -> Response:
    message = await get_message_for(session, caller=user.caller, message_id=message_id)
    await session.commit()
    context = {
        "message": message,
        "justification": "",
        "error": None,
        "min_justification": settings.justification_min_length,
    }
    return render(request, "fiu_goaml_export.html", context, user=user)


@router.post("/messages/{message_id}/goaml")
async def goaml_export(
    message_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    user: Handling,
    csrf_token: CsrfField = "",
    justification: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    check_csrf(request, user, csrf_token)
    message = await get_message_for(session, caller=user.caller, message_id=message_id)
    context: dict[str, Any] = {
        "message": message,
        "justification": justification,
        "error": None,
        "min_justification": settings.justification_min_length,
    }
    if message.type != goaml.DISCLOSURE:
        context["error"] = "type"
        await session.commit()
        return render(request, "fiu_goaml_export.html", context, user=user, status=422)
    try:
        _message, _envelope, payload = await read_content(
            session,
            node=node,
            caller=user.caller,
            message_id=message_id,
            justification=justification,
            min_justification=settings.justification_min_length,
        )
    except JustificationRequired:
        await session.rollback()
        context["message"] = await get_message_for(
            session, caller=user.caller, message_id=message_id
        )
        await session.commit()
        context["error"] = "justification"
        return render(request, "fiu_goaml_export.html", context, user=user, status=422)
    try:
        xml = await asyncio.to_thread(goaml.disclosure_to_report, payload)
    except goaml.GoamlInvalid as exc:
        # The reading is recorded even when the export fails: the content was opened.
        await session.commit()
        context["error"] = "export"
        context["detail"] = exc.detail
        return render(request, "fiu_goaml_export.html", context, user=user, status=422)
    await session.commit()
    return Response(
        xml,
        media_type=goaml.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{message_id}.goaml.xml"'},
    )
