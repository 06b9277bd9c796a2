"""The operator's pages (role ``admin``): participants and their keys, and the helpers the
other operator pages share. The accounts of a participant are in ``admin_account_views``;
delivery, policy and the reference data in ``admin_delivery_views``.

Every action calls the service its ``/v1`` endpoint calls (``broker.participants.service``,
``broker.accounts.service``), with the same checks first (the API's Pydantic schema, the
hub-operator rule of ``check_may_manage``), in one transaction committed before the page is
sent, so a web action writes the same audit leaves as the API. A wrong form is answered 422
(409 for a taken id) with an error summary linking to each wrong field and the input kept;
nothing is stored before every check passed. A secret (a system's client secret, a reset
password) is in the one response that made it and nowhere else: no redirect, no page that
shows it again, only its hash is stored. A revocation is shown for a check first and done
only on the second post.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from broker.core.db import utcnow
from broker.core.errors import Conflict, NotFound, PalermoError, SchemaViolation
from broker.http import NodeDep, SessionDep
from broker.participants import service as participants
from broker.participants.models import ParticipantKind, ParticipantStatus
from broker.participants.schemas import KeyRevoke, KeyRotate, ParticipantCreate
from broker.web.forward_views import errors_of
from broker.web.rendering import render
from broker.web.service import WebUser
from broker.web.views import CsrfField, check_csrf, person_with, router

Operating = Annotated[WebUser, Depends(person_with("admin"))]
Short = Annotated[str, Form(max_length=200)]
KEY_PURPOSES = ("signing", "encryption")
DEFAULT_GRACE_DAYS = 7


def problem(field: str, code: str, detail: str = "") -> dict[str, str]:
    """One row of the error summary: the id of the wrong field, a code ``_admin.html``
    translates, and the service's own detail shown when no translation names the code."""
    return {"field": field, "text": code, "detail": detail}


def service_problem(exc: PalermoError, fields: dict[str, str], default: str) -> dict[str, str]:
    """A service's refusal as an error summary row, on the field it names."""
    named = str(exc.extra.get("field", "")).split(".")[0]
    return problem(fields.get(named, default), exc.slug, exc.detail)


# --- participants --------------------------------------------------------------------------

PARTICIPANT_FIELDS = {"id": "p-id", "kind": "p-kind", "display_name": "p-display_name"}


async def _participants_context(session: SessionDep, **extra: Any) -> dict[str, Any]:
    now = utcnow()
    keys = await participants.keys_by_participant(session)
    context: dict[str, Any] = {
        "participants": await participants.list_participants(session),
        "valid_keys": {pid: sum(k.valid_at(now) for k in ks) for pid, ks in keys.items()},
        "kinds": [k.value for k in ParticipantKind],
        "values": {"id": "", "kind": "", "display_name": ""},
        "errors": [],
    }
    context.update(extra)
    return context


@router.get("/admin/participants")
async def participants_page(request: Request, session: SessionDep, user: Operating) -> Response:
    context = await _participants_context(session)
    await session.commit()
    return render(request, "admin_participants.html", context, user=user)


@router.post("/admin/participants")
async def register_participant(
    request: Request,
    session: SessionDep,
    node: NodeDep,
    user: Operating,
    csrf_token: CsrfField = "",
    id: Annotated[str, Form(max_length=64)] = "",
    kind: Annotated[str, Form(max_length=32)] = "",
    display_name: Short = "",
) -> Response:
    """``POST /v1/participants``: the same schema, then the same service."""
    check_csrf(request, user, csrf_token)
    values = {"id": id.strip(), "kind": kind, "display_name": display_name.strip()}
    errors: list[dict[str, str]] = []
    body = None
    try:
        body = ParticipantCreate.model_validate(values)
    except ValidationError as exc:
        errors = errors_of(exc, PARTICIPANT_FIELDS)
    status = 422
    if body is not None:
        try:
            await participants.register_participant(
                session,
                node=node,
                participant_id=body.id,
                kind=body.kind.value,
                display_name=body.display_name,
                adapter=body.adapter,
                actor=user.caller.actor(),
            )
        except (SchemaViolation, Conflict) as exc:
            await session.rollback()
            errors = [service_problem(exc, PARTICIPANT_FIELDS, "p-id")]
            status = exc.status
    if errors:
        context = await _participants_context(session, values=values, errors=errors)
        await session.commit()
        return render(request, "admin_participants.html", context, user=user, status=status)
    await session.commit()
    assert body is not None
    return RedirectResponse(f"/admin/participants/{body.id}?registered=1", status_code=303)


async def _participant_context(
    session: SessionDep, participant_id: str, **extra: Any
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "participant": await participants.get_participant(session, participant_id),
        "keys": await participants.keys_of(session, participant_id),
        "purposes": KEY_PURPOSES,
        "key_values": {"purpose": "signing", "public_key": "", "source": "paste"},
        "rotate_values": {
            "purpose": "signing",
            "public_key": "",
            "grace_days": str(DEFAULT_GRACE_DAYS),
        },
        "errors": [],
        "now": utcnow(),
        "done": request_notice(extra.pop("done", "")),
    }
    context.update(extra)
    return context


def request_notice(value: str) -> str:
    return value if value in {"registered", "added", "rotated", "revoked", "status"} else ""


@router.get("/admin/participants/{participant_id}")
async def participant_page(
    participant_id: str, request: Request, session: SessionDep, user: Operating
) -> Response:
    done = next((k for k in request.query_params if request_notice(k)), "")
    context = await _participant_context(session, participant_id, done=done)
    await session.commit()
    return render(request, "admin_participant.html", context, user=user)


@router.post("/admin/participants/{participant_id}/status")
async def set_participant_status(
    participant_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    user: Operating,
    csrf_token: CsrfField = "",
    status: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """``PATCH /v1/participants/{id}`` with a status: suspend or reactivate."""
    check_csrf(request, user, csrf_token)
    await participants.get_participant(session, participant_id)
    if status not in {s.value for s in ParticipantStatus}:
        context = await _participant_context(
            session, participant_id, errors=[problem("status-button", "status")]
        )
        await session.commit()
        return render(request, "admin_participant.html", context, user=user, status=422)
    await participants.update_participant(
        session,
        node=node,
        participant_id=participant_id,
        display_name=None,
        status=status,
        actor=user.caller.actor(),
    )
    await session.commit()
    return RedirectResponse(f"/admin/participants/{participant_id}?status=1", status_code=303)


@router.post("/admin/participants/{participant_id}/keys")
async def add_key(
    participant_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    user: Operating,
    csrf_token: CsrfField = "",
    purpose: Annotated[str, Form(max_length=16)] = "",
    source: Annotated[str, Form(max_length=16)] = "paste",
    public_key: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """``POST /v1/participants/{id}/keys``: a pasted public key, or (``source=generate``) a
    custodial key pair the node makes and holds."""
    check_csrf(request, user, csrf_token)
    await participants.get_participant(session, participant_id)
    values = {"purpose": purpose, "public_key": public_key.strip(), "source": source}
    errors = []
    if purpose not in KEY_PURPOSES:
        errors.append(problem("k-purpose", "purpose"))
    generate = source == "generate"
    if not generate and not values["public_key"]:
        errors.append(problem("k-public_key", "public_key"))
    if not errors:
        try:
            public = None if generate else participants.decode_public_key(values["public_key"])
            await participants.add_key(
                session,
                node=node,
                participant_id=participant_id,
                purpose=purpose,
                public_key=public,
                generate=generate,
                actor=user.caller.actor(),
            )
        except (SchemaViolation, Conflict) as exc:
            await session.rollback()
            errors.append(service_problem(exc, {"public_key": "k-public_key"}, "k-public_key"))
    if errors:
        context = await _participant_context(
            session, participant_id, key_values=values, errors=errors
        )
        await session.commit()
        return render(request, "admin_participant.html", context, user=user, status=422)
    await session.commit()
    return RedirectResponse(f"/admin/participants/{participant_id}?added=1", status_code=303)


@router.post("/admin/participants/{participant_id}/keys/rotate")
async def rotate_key(
    participant_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    user: Operating,
    csrf_token: CsrfField = "",
    purpose: Annotated[str, Form(max_length=16)] = "",
    public_key: Annotated[str, Form(max_length=200)] = "",
    grace_days: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """``POST /v1/participants/{id}/keys/rotate``: a new key (pasted, or custodial when left
    empty); the current ones of its purpose stay valid for the grace period."""
    check_csrf(request, user, csrf_token)
    await participants.get_participant(session, participant_id)
    values = {"purpose": purpose, "public_key": public_key.strip(), "grace_days": grace_days}
    errors = []
    body = None
    days = int(grace_days) if grace_days.strip().isdigit() else -1
    if days < 0:
        errors.append(problem("r-grace_days", "grace_days"))
    else:
        try:
            body = KeyRotate(
                purpose=purpose,
                public_key=values["public_key"] or None,
                grace_seconds=days * 86_400,
            )
        except ValidationError as exc:
            errors = errors_of(
                exc,
                {
                    "purpose": "r-purpose",
                    "public_key": "r-public_key",
                    "grace_seconds": "r-grace_days",
                },
            )
    if body is not None:
        try:
            public = participants.decode_public_key(body.public_key) if body.public_key else None
            await participants.rotate_key(
                session,
                node=node,
                participant_id=participant_id,
                purpose=body.purpose,
                grace=dt.timedelta(seconds=body.grace_seconds),
                public_key=public,
                actor=user.caller.actor(),
            )
        except (SchemaViolation, Conflict) as exc:
            await session.rollback()
            errors.append(service_problem(exc, {"public_key": "r-public_key"}, "r-public_key"))
    if errors:
        context = await _participant_context(
            session, participant_id, rotate_values=values, errors=errors
        )
        await session.commit()
        return render(request, "admin_participant.html", context, user=user, status=422)
    await session.commit()
    return RedirectResponse(f"/admin/participants/{participant_id}?rotated=1", status_code=303)


async def _key_context(
    session: SessionDep, participant_id: str, kid: str, reason: str, **extra: Any
) -> dict[str, Any]:
    participant = await participants.get_participant(session, participant_id)
    key = next(
        (k for k in await participants.keys_of(session, participant_id) if k.kid == kid), None
    )
    if key is None:
        raise NotFound(f"participant {participant_id} has no key {kid}")
    context: dict[str, Any] = {
        "participant": participant,
        "key": key,
        "reason": reason,
        "errors": [],
        "check": False,
    }
    context.update(extra)
    return context


@router.get("/admin/participants/{participant_id}/keys/{kid}/revoke")
async def revoke_key_page(
    participant_id: str, kid: str, request: Request, session: SessionDep, user: Operating
) -> Response:
    context = await _key_context(session, participant_id, kid, "")
    await session.commit()
    return render(request, "admin_key_revoke.html", context, user=user)


@router.post("/admin/participants/{participant_id}/keys/{kid}/revoke")
async def revoke_key(
    participant_id: str,
    kid: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    user: Operating,
    csrf_token: CsrfField = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    action: Annotated[str, Form(max_length=10)] = "check",
) -> Response:
    """``POST /v1/participants/{id}/keys/{kid}/revoke``, after a check: the first post
    shows what is to be revoked and why; only ``action=revoke`` revokes."""
    check_csrf(request, user, csrf_token)
    reason = reason.strip()
    context = await _key_context(session, participant_id, kid, reason)
    try:
        body = KeyRevoke(reason=reason)
    except ValidationError as exc:
        context["errors"] = errors_of(exc, {"reason": "reason"})
        await session.commit()
        return render(request, "admin_key_revoke.html", context, user=user, status=422)
    if context["key"].revoked_at is not None:
        context["errors"] = [problem("reason", "revoked")]
        await session.commit()
        return render(request, "admin_key_revoke.html", context, user=user, status=409)
    if action != "revoke":
        context["check"] = True
        await session.commit()
        return render(request, "admin_key_revoke.html", context, user=user)
    await participants.revoke_key(
        session,
        node=node,
        participant_id=participant_id,
        kid=kid,
        reason=body.reason,
        actor=user.caller.actor(),
    )
    await session.commit()
    return RedirectResponse(f"/admin/participants/{participant_id}?revoked=1", status_code=303)


__all__ = ["Operating", "Short", "problem", "service_problem"]
